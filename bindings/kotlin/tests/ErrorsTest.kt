// Every bad input is a typed OutboxException with a stable code, and nothing is written.
package outbox.tests

import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import uniffi.outbox_ffi.EnqueueRequest
import uniffi.outbox_ffi.MutatorOptions
import uniffi.outbox_ffi.Outbox
import uniffi.outbox_ffi.OutboxConfig
import uniffi.outbox_ffi.OutboxException
import uniffi.outbox_ffi.Resolution

class ErrorsTest {
    @Test
    fun badEnqueuesAreTypedErrorsAndWriteNothing() = runBlocking {
        val ob = openOutbox(tempDb(), online = false)
        ob.registerMutator("small", MutatorOptions(maxArgsBytes = 64u))
        val unknown = assertFailsWith<OutboxException.UnknownMutator> { ob.enqueue(EnqueueRequest("nope", "{}")) }
        assertEquals("unknown_mutator", unknown.code())
        assertEquals("nope", unknown.name)
        val json = assertFailsWith<OutboxException.InvalidJson> { ob.enqueue(EnqueueRequest("createOrder", "{not json")) }
        assertEquals("invalid_json", json.code())
        val big = assertFailsWith<OutboxException.ArgsTooLarge> {
            ob.enqueue(EnqueueRequest("small", """{"id":"x","pad":"${"a".repeat(100)}"}"""))
        }
        assertEquals("args_too_large", big.code())
        assertEquals(64uL, big.limit)
        val key = assertFailsWith<OutboxException.InvalidKey> { ob.enqueue(order("x").copy(keys = listOf(""))) }
        assertEquals("invalid_key", key.code())
        assertEquals(0uL, ob.status().pending, "nothing was written")
        ob.shutdown()
    }

    @Test
    fun unknownIdsAndWrongStatesAreTypedErrors() = runBlocking {
        val ob = openOutbox(tempDb(), online = false)
        val missing = assertFailsWith<OutboxException.UnknownCommand> { ob.command("not-an-id") }
        assertEquals("unknown_command", missing.code())
        val id = ob.enqueue(order("k-state"))
        val state = assertFailsWith<OutboxException.InvalidState> { ob.resolveConflict(id, Resolution.Discard) }
        assertEquals("invalid_state", state.code())
        assertEquals("pending", state.state)
        ob.shutdown()
    }

    @Test
    fun aCorruptDatabaseIsRefusedAndLeftUntouched() = runBlocking {
        val db = tempDb()
        val garbage = ByteArray(8192) { (it * 31 % 251).toByte() }
        db.writeBytes(garbage)
        val e = assertFailsWith<OutboxException.DbCorrupt> { Outbox.open(config(db)) }
        assertEquals("db_corrupt", e.code())
        assertTrue(garbage.contentEquals(db.readBytes()), "the file is byte-for-byte untouched")
    }

    @Test
    fun anUnwritableLocationAndABadConfigAreTypedErrors() = runBlocking {
        val cfg = OutboxConfig(path = "/proc/outbox-cannot-live-here/o.db", userId = "alice", workspaceId = "ws-1")
        assertEquals("db_unwritable", assertFailsWith<OutboxException.DbUnwritable> { Outbox.open(cfg) }.code())
        val noTokens = config(tempDb()).copy(serverUrl = "http://127.0.0.1:9")
        assertEquals("invalid_config", assertFailsWith<OutboxException.InvalidConfig> { Outbox.open(noTokens) }.code())
        val zero = config(tempDb()).copy(maxConcurrency = 0u)
        assertEquals("invalid_config", assertFailsWith<OutboxException.InvalidConfig> { Outbox.open(zero) }.code())
    }

    @Test
    fun callsAfterCloseFailWithClosed() = runBlocking {
        val ob = openOutbox(tempDb(), online = false)
        ob.shutdown()
        assertEquals("closed", assertFailsWith<OutboxException.Closed> { ob.enqueue(order("late")) }.code())
    }

    @Test
    fun aFullDiskIsStorageFullAndLosesNothingAlreadyQueued() = runBlocking {
        val ob = Outbox.open(config(tempDb()).copy(startOnline = false, maxSizeBytes = 256uL * 1024uL))
        ob.registerMutator("createOrder", MutatorOptions())
        var queued = 0
        val e = assertFailsWith<OutboxException.StorageFull> {
            repeat(10_000) {
                ob.enqueue(EnqueueRequest("createOrder", """{"id":"o$it","pad":"${"p".repeat(2000)}"}"""))
                queued++
            }
        }
        assertEquals("storage_full", e.code())
        assertTrue(queued > 0)
        assertEquals(queued.toULong(), ob.status().pending, "every enqueue that returned is still queued")
        ob.shutdown()
    }
}
