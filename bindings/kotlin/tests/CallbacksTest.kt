// Foreign traits implemented in Kotlin: TokenProvider, Transport, EventListener,
// DocsListener and Logger, called by the real engine.
package outbox.tests

import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertTrue
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import uniffi.outbox_ffi.CommandState
import uniffi.outbox_ffi.Doc
import uniffi.outbox_ffi.DocsListener
import uniffi.outbox_ffi.EnqueueRequest
import uniffi.outbox_ffi.EventListener
import uniffi.outbox_ffi.LogLevel
import uniffi.outbox_ffi.Logger
import uniffi.outbox_ffi.MutatorOptions
import uniffi.outbox_ffi.OpKind
import uniffi.outbox_ffi.OptimisticOp
import uniffi.outbox_ffi.Outbox
import uniffi.outbox_ffi.OutboxEvent
import uniffi.outbox_ffi.OutboxException
import uniffi.outbox_ffi.Outcome
import uniffi.outbox_ffi.OutgoingCommand
import uniffi.outbox_ffi.PullOutcome
import uniffi.outbox_ffi.Query
import uniffi.outbox_ffi.ReceiptLookup
import uniffi.outbox_ffi.Settlement
import uniffi.outbox_ffi.Transport
import uniffi.outbox_ffi.clearLogger
import uniffi.outbox_ffi.droppedLogRecords
import uniffi.outbox_ffi.setLogger

/** A Kotlin transport: applies everything, records what it was sent; can throw once. */
class RecordingTransport(private val throwFirst: Boolean = false) : Transport {
    val batches = CopyOnWriteArrayList<List<OutgoingCommand>>()
    private val calls = AtomicInteger()
    override suspend fun send(batch: List<OutgoingCommand>): List<Outcome> {
        if (calls.getAndIncrement() == 0 && throwFirst) throw IllegalStateException("socket exploded")
        batches.add(batch)
        return batch.map { Outcome.Applied("""{"echo":"${it.mutator}"}""", listOf()) }
    }
    override suspend fun pull(cursor: String?, limit: UInt): PullOutcome = PullOutcome.Unsupported
    override suspend fun receipt(idempotencyKey: String): ReceiptLookup = ReceiptLookup.Unsupported
}

class CallbacksTest {
    @Test
    fun tokenProviderIsCalledForEveryRequestAndTheTokenNeverHitsDisk() = runBlocking {
        TestServer.start().use { server ->
            val tokens = CountingTokens()
            val db = tempDb()
            val ob = openOutbox(db, server, tokens = tokens)
            assertIs<Settlement.Succeeded>(withTimeout(10_000) { ob.waitFor(ob.enqueue(order("k-tok-1"))) })
            val afterFirst = tokens.calls.get()
            assertTrue(afterFirst >= 1)
            assertIs<Settlement.Succeeded>(withTimeout(10_000) { ob.waitFor(ob.enqueue(order("k-tok-2"))) })
            assertTrue(tokens.calls.get() > afterFirst, "a new request asks for a token again")
            ob.shutdown()
            db.parentFile.listFiles()!!.forEach { f ->
                assertFalse(String(f.readBytes(), Charsets.ISO_8859_1).contains("dev-alice"), "token found in ${f.name}")
            }
        }
    }

    @Test
    fun aRefusedTokenIsRefreshedOnceWithForceRefresh() = runBlocking {
        TestServer.start().use { server ->
            val tokens = CountingTokens(first = "expired-token")
            val ob = openOutbox(tempDb(), server, tokens = tokens)
            assertIs<Settlement.Succeeded>(withTimeout(10_000) { ob.waitFor(ob.enqueue(order("k-refresh"))) })
            // The command (and the pull / event stream beside it) each got one 401 at most.
            assertTrue(tokens.forced.get() in 1..3, "forced refreshes: ${tokens.forced.get()}")
            ob.shutdown()
        }
    }

    @Test
    fun aKotlinTransportSendsCommandsWithTheirIdempotencyKeys() = runBlocking {
        val transport = RecordingTransport()
        val ob = Outbox.openWithTransport(config(tempDb()), transport)
        ob.registerMutator("createOrder", MutatorOptions())
        val id = ob.enqueue(order("k-custom"))
        val settled = assertIs<Settlement.Succeeded>(withTimeout(10_000) { ob.waitFor(id) })
        assertEquals("""{"echo":"createOrder"}""", settled.result)
        val sent = transport.batches.flatten().single()
        assertEquals(id, sent.id)
        assertEquals(ob.command(id).idempotencyKey, sent.idempotencyKey)
        assertTrue(sent.args.contains("k-custom"))
        assertEquals(1u, sent.attempt)
        ob.shutdown()
    }

    @Test
    fun aTransportThatThrowsIsRetriedAndTheEngineGoesOn() = runBlocking {
        val transport = RecordingTransport(throwFirst = true)
        val ob = Outbox.openWithTransport(config(tempDb()), transport)
        ob.registerMutator("createOrder", MutatorOptions())
        val id = ob.enqueue(order("k-throws"))
        assertIs<Settlement.Succeeded>(withTimeout(10_000) { ob.waitFor(id) })
        val cmd = ob.command(id)
        assertTrue(cmd.history.size >= 2, "the throw counted as a failed attempt: ${cmd.history}")
        assertEquals(2u, transport.batches.flatten().single().attempt)
        ob.shutdown()
    }

    @Test
    fun eventsArriveInOrder() = runBlocking {
        TestServer.start().use { server ->
            val ob = openOutbox(tempDb(), server, online = false)
            val events = ConcurrentLinkedQueue<OutboxEvent>()
            val sub = ob.subscribe(object : EventListener {
                override fun onEvent(event: OutboxEvent) { events.add(event) }
            })
            val id = ob.enqueue(order("k-events"))
            ob.setOnline(true)
            withTimeout(10_000) { ob.waitFor(id) }
            eventually("the final state change is delivered") {
                events.any { it is OutboxEvent.StateChanged && it.id == id && it.to == CommandState.SUCCEEDED }
            }
            val mine = events.toList()
            fun index(p: (OutboxEvent) -> Boolean) = mine.indexOfFirst(p).also { assertTrue(it >= 0, "missing in $mine") }
            val enqueued = index { it is OutboxEvent.Enqueued && it.id == id && it.mutator == "createOrder" }
            val online = index { it is OutboxEvent.OnlineChanged && it.online }
            val started = index { it is OutboxEvent.AttemptStarted && it.id == id && it.attempt == 1u }
            val finished = index { it is OutboxEvent.AttemptFinished && it.id == id && it.outcome == "applied" }
            val succeeded = index { it is OutboxEvent.StateChanged && it.id == id && it.to == CommandState.SUCCEEDED }
            assertTrue(enqueued < online && online < started && started < finished && finished < succeeded, "$mine")
            sub.cancel()
            ob.shutdown()
        }
    }

    @Test
    fun aListenerThatThrowsNeitherCrashesNorStallsTheEngine() = runBlocking {
        TestServer.start().use { server ->
            val ob = openOutbox(tempDb(), server)
            val thrown = AtomicInteger()
            val healthy = ConcurrentLinkedQueue<OutboxEvent>()
            val bad = ob.subscribe(object : EventListener {
                override fun onEvent(event: OutboxEvent) {
                    thrown.incrementAndGet()
                    throw RuntimeException("listener bug")
                }
            })
            val good = ob.subscribe(object : EventListener {
                override fun onEvent(event: OutboxEvent) { healthy.add(event) }
            })
            val ids = (1..5).map { ob.enqueue(order("k-bad-listener-$it")) }
            ids.forEach { assertIs<Settlement.Succeeded>(withTimeout(10_000) { ob.waitFor(it) }) }
            eventually("both listeners kept receiving") {
                thrown.get() >= 10 && healthy.count { it is OutboxEvent.StateChanged && it.to == CommandState.SUCCEEDED } == 5
            }
            assertFalse(bad.isFinished(), "the throwing listener is still subscribed")
            bad.cancel()
            good.cancel()
            ob.shutdown()
        }
    }

    @Test
    fun watchDeliversTheCurrentResultThenEachChange() = runBlocking {
        val ob = openOutbox(tempDb(), online = false)
        val seen = CopyOnWriteArrayList<List<Doc>>()
        val sub = ob.watch("notes", Query(), object : DocsListener {
            override fun onDocs(docs: List<Doc>) { seen.add(docs) }
            override fun onError(error: OutboxException) { throw AssertionError("unexpected: $error") }
        })
        eventually("the first (empty) result") { seen.isNotEmpty() }
        assertTrue(seen.first().isEmpty())
        ob.enqueue(
            EnqueueRequest(
                mutator = "put",
                args = """{"collection":"notes","id":"n1","doc":{"text":"hi"}}""",
                ops = listOf(OptimisticOp("notes", "n1", OpKind.Insert("""{"text":"hi"}"""))),
            ),
        )
        eventually("the new note is delivered") { seen.last().map { it.id } == listOf("n1") }
        sub.cancel()
        eventually("cancelled") { sub.isFinished() }
        ob.shutdown()
    }

    @Test
    fun aKotlinLoggerReceivesTheLibrarysRecords() = runBlocking {
        val lines = ConcurrentLinkedQueue<String>()
        setLogger(object : Logger {
            override fun log(level: LogLevel, target: String, message: String) { lines.add("$level $target $message") }
        }, LogLevel.INFO)
        val ob = openOutbox(tempDb(), online = false)
        ob.enqueue(order("k-log"))
        assertEquals(1uL, ob.wipe(true))
        eventually("the wipe is logged") { lines.any { it.contains("outbox wiped") && it.startsWith("INFO") } }
        assertTrue(lines.none { it.contains("k-log") }, "no args in logs: $lines")
        clearLogger()
        ob.shutdown()
    }

    @Test
    fun aLoggerThatThrowsHasItsRecordsCountedAsDroppedAndIsNeverFedItsOwnFailure() = runBlocking {
        val calls = AtomicInteger()
        val before = droppedLogRecords()
        setLogger(object : Logger {
            override fun log(level: LogLevel, target: String, message: String) {
                calls.incrementAndGet()
                throw RuntimeException("logger bug")
            }
        }, LogLevel.INFO)
        val ob = openOutbox(tempDb(), online = false)
        ob.enqueue(order("k-log-throws"))
        assertEquals(1uL, ob.wipe(true))
        eventually("the refused record is counted as dropped") { droppedLogRecords() > before }
        // Logging the failure would hand the logger a new record to throw on, forever.
        val settled = calls.get()
        delay(300)
        assertTrue(calls.get() <= settled + 2, "the logger kept being called: ${calls.get()} after $settled")
        clearLogger()
        ob.shutdown()
    }
}
