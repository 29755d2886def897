// The engine through the generated Kotlin bindings, against the real library and the real
// reference server on loopback.
package outbox.tests

import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import uniffi.outbox_ffi.CommandState
import uniffi.outbox_ffi.DocStatus
import uniffi.outbox_ffi.EnqueueRequest
import uniffi.outbox_ffi.OpKind
import uniffi.outbox_ffi.OptimisticOp
import uniffi.outbox_ffi.PeekFilter
import uniffi.outbox_ffi.Query
import uniffi.outbox_ffi.Settlement
import uniffi.outbox_ffi.outboxVersion
import uniffi.outbox_ffi.uniffiEnsureInitialized

class EngineTest {
    @Test
    fun bindingsMatchTheLibrary() {
        // Fails with "UniFFI API checksum mismatch" when the .kt is stale against the .so.
        uniffiEnsureInitialized()
        assertTrue(outboxVersion().isNotEmpty())
    }

    @Test
    fun enqueueOfflineIsPendingThenDrainsWhenOnline() = runBlocking {
        TestServer.start().use { server ->
            val ob = openOutbox(tempDb(), server, online = false)
            val id = ob.enqueue(order("k-offline-1"))
            val status = ob.status()
            assertEquals(1uL, status.pending)
            assertEquals(false, status.online)
            assertEquals(CommandState.PENDING, ob.command(id).state)
            ob.setOnline(true)
            val settled = withTimeout(10_000) { ob.waitFor(id) }
            assertIs<Settlement.Succeeded>(settled)
            assertTrue(settled.result.contains("total"), settled.result)
            assertEquals(0uL, ob.status().pending)
            assertEquals(CommandState.SUCCEEDED, ob.command(id).state)
            assertTrue(ob.command(id).history.any { it.outcome == "applied" })
            ob.shutdown()
        }
    }

    @Test
    fun drainForReportsWhatItSent() = runBlocking {
        TestServer.start().use { server ->
            val ob = openOutbox(tempDb(), server, online = false)
            repeat(5) { ob.enqueue(order("k-drain-$it")) }
            ob.setOnline(true)
            val report = ob.drainFor(10_000uL)
            assertTrue(report.completed, "$report")
            assertEquals(0uL, report.remaining)
            assertEquals(5uL, ob.status().succeeded)
            ob.shutdown()
        }
    }

    @Test
    fun restartRestoresPendingCommandsWithTheirIdempotencyKeys() = runBlocking {
        TestServer.start().use { server ->
            val db = tempDb()
            val first = openOutbox(db, server, online = false)
            val ids = (1..3).map { first.enqueue(order("k-restart-$it")) }
            val keys = ids.map { first.command(it).idempotencyKey }
            first.shutdown()

            val again = openOutbox(db, server, online = false)
            val pending = again.peek(PeekFilter(states = listOf(CommandState.PENDING)))
            assertEquals(ids, pending.map { it.id })
            assertEquals(keys, pending.map { it.idempotencyKey })
            again.setOnline(true)
            ids.forEach { assertIs<Settlement.Succeeded>(withTimeout(10_000) { again.waitFor(it) }) }
            again.shutdown()
        }
    }

    @Test
    fun optimisticChangeIsVisibleAtOnceAndHandedOffWithoutFlicker() = runBlocking {
        TestServer.start().use { server ->
            val ob = openOutbox(tempDb(), server, online = false)
            val id = ob.enqueue(
                EnqueueRequest(
                    mutator = "put",
                    args = """{"collection":"notes","id":"n1","doc":{"text":"hello"}}""",
                    ops = listOf(OptimisticOp("notes", "n1", OpKind.Insert("""{"text":"hello"}"""))),
                ),
            )
            val local = assertNotNull(ob.get("notes", "n1"))
            assertEquals(DocStatus.PENDING, local.status)
            assertEquals(listOf(id), local.commands)
            assertTrue(local.value.contains("hello"))
            ob.setOnline(true)
            assertIs<Settlement.Succeeded>(withTimeout(10_000) { ob.waitFor(id) })
            eventually("the server version replaces the overlay") { ob.get("notes", "n1")?.status == DocStatus.SYNCED }
            val synced = assertNotNull(ob.get("notes", "n1"))
            assertTrue(synced.value.contains("hello"), "never back to nothing: ${synced.value}")
            assertEquals(1L, synced.version)
            assertEquals(1uL, ob.count("notes", Query()))
            ob.shutdown()
        }
    }

    @Test
    fun suspendCallsRunConcurrentlyInCoroutines() = runBlocking {
        TestServer.start().use { server ->
            val ob = openOutbox(tempDb(), server)
            val ids = (1..20).map { ob.enqueue(order("k-co-$it")) }
            val settled = ids.map { id -> async { ob.waitFor(id) } }.awaitAll()
            assertTrue(settled.all { it is Settlement.Succeeded }, "$settled")
            ob.shutdown()
        }
    }

    @Test
    fun concurrentEnqueuesFromManyThreadsAreAllKept() = runBlocking {
        val ob = openOutbox(tempDb(), online = false)
        // Plain threads, each blocking on its own suspend calls: the engine is shared across threads.
        val threads = (0 until 8).map { t ->
            Thread { runBlocking { repeat(50) { ob.enqueue(order("k-thread-$t-$it")) } } }
        }
        threads.forEach { it.start() }
        threads.forEach { it.join() }
        val all = ob.peek(PeekFilter(limit = 1000u))
        assertEquals(400, all.size)
        assertEquals(400, all.map { it.id }.toSet().size)
        assertEquals(400, all.map { it.idempotencyKey }.toSet().size)
        assertEquals((1..400).map { it.toLong() }, all.map { it.seq }.sorted().let { s -> s.map { it - s.first() + 1 } })
        ob.shutdown()
    }

    @Test
    fun sameKeyRunsInEnqueueOrderAndRejectionFailsDependants() = runBlocking {
        TestServer.start().use { server ->
            val ob = openOutbox(tempDb(), server, online = false)
            // juice has 20 in stock: the first order takes 15, the second (same key) asks 10.
            val a = ob.enqueue(order("k-lane", "juice", 15).copy(keys = listOf("register-1")))
            val b = ob.enqueue(order("k-lane-2", "juice", 10).copy(keys = listOf("register-1")))
            val c = ob.enqueue(order("k-lane-3", "juice", 1).copy(keys = listOf("register-1")))
            ob.setOnline(true)
            assertIs<Settlement.Succeeded>(withTimeout(10_000) { ob.waitFor(a) })
            val rejected = assertIs<Settlement.Failed>(withTimeout(10_000) { ob.waitFor(b) })
            assertEquals("insufficient_stock", rejected.code)
            val dependant = assertIs<Settlement.Failed>(withTimeout(10_000) { ob.waitFor(c) })
            assertEquals("dependency_failed", dependant.code)
            ob.shutdown()
        }
    }
}
