// The stall watchdog through the Kotlin bindings (issue 18): each way we know to wedge the
// queue — a stuck drain timer, a hung connection, a drainer lease held by a frozen process —
// is reported as `QueueStalled` with its cause, then `QueueRecovered`, and the command
// reaches the real reference server. Each test prints `stall <cause> reported after N ms`.
package outbox.tests

import java.io.File
import java.net.InetAddress
import java.net.ServerSocket
import java.net.Socket
import java.net.URI
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertTrue
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import uniffi.outbox_ffi.CommandState
import uniffi.outbox_ffi.EventListener
import uniffi.outbox_ffi.MutatorOptions
import uniffi.outbox_ffi.Outbox
import uniffi.outbox_ffi.OutboxEvent
import uniffi.outbox_ffi.Settlement
import uniffi.outbox_ffi.StallReport

private const val WINDOW_MS = 300uL
/** The lease holder's TTL; alive, it passes (and sends what is queued) every third of it. */
private const val LEASE_HOLDER_TTL_MS = 6_000uL
/** By then a live lease holder would have sent a sale queued on its file. */
private const val LIVE_HOLDER_SENDS_WITHIN_MS = 2_500L

/** Engine events with the monotonic time each arrived, for the stall-report timings. */
class TimedEvents(ob: Outbox) {
    val seen = CopyOnWriteArrayList<Pair<Long, OutboxEvent>>()

    // Held for the test's lifetime: a collected handle would cancel the subscription.
    private val subscription = ob.subscribe(object : EventListener {
        override fun onEvent(event: OutboxEvent) {
            seen.add(System.nanoTime() to event)
        }
    })

    /** Waits (at most `timeoutMs`) for the first event matching `p`; returns it with its arrival time. */
    suspend fun <T : Any> first(what: String, timeoutMs: Long = 15_000, p: (OutboxEvent) -> T?): Pair<Long, T> {
        val deadline = System.nanoTime() + timeoutMs * 1_000_000
        while (true) {
            for ((at, e) in seen) p(e)?.let { return at to it }
            if (System.nanoTime() > deadline) error("no $what within $timeoutMs ms; events: ${seen.map { it.second }}")
            delay(10)
        }
    }

    suspend fun stalled(): Pair<Long, StallReport> =
        first("QueueStalled") { (it as? OutboxEvent.QueueStalled)?.report }

    suspend fun recovered(): OutboxEvent.QueueRecovered = first("QueueRecovered") { it as? OutboxEvent.QueueRecovered }.second
}

private fun since(startNanos: Long, atNanos: Long) = (atNanos - startNanos) / 1_000_000

/**
 * A TCP proxy on 127.0.0.1 in front of the reference server. While held, no byte from the
 * client reaches the server (new and open keep-alive connections alike): the connection is
 * up and the request never answered. `release()` lets everything through.
 */
class HoldingProxy(upstream: String) : AutoCloseable {
    private val target = URI(upstream)
    private val server = ServerSocket(0, 50, InetAddress.getLoopbackAddress())
    private val lock = Object()
    private var held = false
    private val sockets = CopyOnWriteArrayList<Socket>()
    val url = "http://127.0.0.1:${server.localPort}"

    init {
        thread {
            while (!server.isClosed) {
                val client = try { server.accept() } catch (_: Exception) { break }
                val up = try { Socket(target.host, target.port) } catch (_: Exception) { client.close(); continue }
                sockets.add(client)
                sockets.add(up)
                thread { pump(client, up, gated = true) }
                thread { pump(up, client, gated = false) }
            }
        }
    }

    private fun thread(body: () -> Unit) = Thread(body).apply { isDaemon = true; start() }

    private fun pump(from: Socket, to: Socket, gated: Boolean) {
        val buf = ByteArray(16 * 1024)
        try {
            while (true) {
                val n = from.getInputStream().read(buf)
                if (n < 0) break
                if (gated) synchronized(lock) { while (held) lock.wait() }
                to.getOutputStream().write(buf, 0, n)
                to.getOutputStream().flush()
            }
        } catch (_: Exception) {
        } finally {
            runCatching { to.shutdownOutput() }
        }
    }

    fun hold() = synchronized(lock) { held = true }

    fun release() = synchronized(lock) {
        held = false
        lock.notifyAll()
    }

    override fun close() {
        release()
        server.close()
        sockets.forEach { runCatching { it.close() } }
    }
}

/**
 * The child process of the lost-lease test: opens an Outbox on the database file given as
 * `args[0]` against the server `args[1]` with a 6 s lease (renewed every 2 s, so a frozen holder
 * keeps it at least 4 s more), prints `drainer` once it holds the drainer lease (and pulled
 * once), then idles until killed.
 */
object LeaseHolder {
    @JvmStatic
    fun main(args: Array<String>) = runBlocking {
        val db = File(args[0])
        val ob = Outbox.openWithTokens(
            config(db, null).copy(serverUrl = args[1], leaseTtlMs = LEASE_HOLDER_TTL_MS, stallWindowMs = 0uL),
            CountingTokens(),
        )
        ob.registerMutator("createOrder", MutatorOptions())
        withTimeout(20_000) {
            while (!ob.status().let { it.isDrainer && it.lastPullAtMs != null }) delay(20)
        }
        println("drainer")
        System.out.flush()
        while (true) delay(60_000)
    }
}

private fun signal(pid: Long, sig: String) {
    val kill = ProcessBuilder("kill", "-$sig", pid.toString()).redirectErrorStream(true).start()
    check(kill.waitFor(5, TimeUnit.SECONDS) && kill.exitValue() == 0) { "kill -$sig $pid failed" }
}

class WatchdogTest {
    private fun watchdogConfig(db: File, url: String) =
        config(db, null).copy(serverUrl = url, stallWindowMs = WINDOW_MS, attemptTimeoutMs = 60_000uL)

    private suspend fun open(db: File, url: String, leaseTtlMs: ULong? = null): Outbox {
        val ob = Outbox.openWithTokens(watchdogConfig(db, url).copy(leaseTtlMs = leaseTtlMs), CountingTokens())
        ob.registerMutator("createOrder", MutatorOptions())
        return ob
    }

    @Test
    fun aStuckDrainTimerIsReportedKickedAndTheSaleReachesTheServer() = runBlocking {
        TestServer.start().use { server ->
            val ob = open(tempDb(), server.url)
            val events = TimedEvents(ob)
            eventually("this engine holds the lease") { ob.status().isDrainer }
            ob.wedgeDrainTimerForTest()
            val wedged = System.nanoTime()
            val id = ob.enqueue(order("kt-stall-timer"))
            val (at, report) = events.stalled()
            println("stall drain_loop_stuck (stuck timer, Kotlin) reported after ${since(wedged, at)} ms: $report")
            assertEquals("drain_loop_stuck", report.cause, "$report")
            assertTrue(report.ready || report.inFlight > 0uL, "$report")
            val recovered = events.recovered()
            assertEquals("drain_loop_stuck" to "progress", recovered.cause to recovered.how)
            assertTrue(recovered.stalledForMs >= WINDOW_MS, "$recovered")
            assertIs<Settlement.Succeeded>(withTimeout(10_000) { ob.waitFor(id) })
            assertFalse(ob.status().stalled)
            ob.shutdown()
        }
    }

    @Test
    fun aHungConnectionIsReportedAbandonedAndRetriedUnderTheSameKey() = runBlocking {
        TestServer.start().use { server ->
            HoldingProxy(server.url).use { proxy ->
                val ob = open(tempDb(), proxy.url)
                val events = TimedEvents(ob)
                eventually("the lease and a first pull through the proxy") {
                    ob.status().let { it.isDrainer && it.lastPullAtMs != null }
                }
                proxy.hold()
                val wedged = System.nanoTime()
                val id = ob.enqueue(order("kt-stall-hung"))
                val (at, report) = events.stalled()
                println("stall send_hung (hung connection, Kotlin) reported after ${since(wedged, at)} ms: $report")
                assertEquals("send_hung", report.cause, "$report")
                assertEquals(1uL, report.sendsInFlight, "$report")
                assertEquals("held here", report.lease)
                // The abandoned attempt is retried (that request hangs too), well before the
                // HTTP transport's own 15 s request timeout could end it ...
                events.first("the retry", timeoutMs = 5_000) { e -> e.takeIf { it is OutboxEvent.AttemptStarted && it.id == id && it.attempt == 2u } }
                // ... and the connection comes back.
                proxy.release()
                val recovered = events.recovered()
                assertEquals("send_hung" to "progress", recovered.cause to recovered.how)
                assertIs<Settlement.Succeeded>(withTimeout(15_000) { ob.waitFor(id) })
                val cmd = ob.command(id)
                assertTrue(cmd.history.any { it.error?.contains("stall watchdog") == true }, "${cmd.history}")
                assertTrue(cmd.history.all { it.idempotencyKey == cmd.idempotencyKey }, "${cmd.history}")
                // Applied once on the server, whichever of the two requests arrived first.
                val stats = server.get("/v1/_stats")
                assertTrue(stats.contains("\"applied\":1") && !Regex("\"applied\":([2-9]|\\d{2,})").containsMatchIn(stats), stats)
                ob.shutdown()
            }
        }
    }

    @Test
    fun aDrainerLeaseHeldByAFrozenProcessIsReportedAndTakenOverAfterItsTtl() = runBlocking {
        TestServer.start().use { server ->
            val db = tempDb()
            val java = ProcessHandle.current().info().command().orElse("java")
            val child = ProcessBuilder(
                java,
                "-Djna.library.path=${System.getProperty("jna.library.path")}",
                "-cp",
                System.getProperty("java.class.path"),
                "outbox.tests.LeaseHolder",
                db.path,
                server.url,
            ).redirectError(ProcessBuilder.Redirect.INHERIT).start()
            try {
                val line = withTimeout(30_000) {
                    kotlinx.coroutines.withContext(kotlinx.coroutines.Dispatchers.IO) { child.inputStream.bufferedReader().readLine() }
                }
                assertEquals("drainer", line, "the child did not take the lease")
                val ob = open(db, server.url, leaseTtlMs = 3_000uL)
                val events = TimedEvents(ob)
                // The child (pid ${child.pid()}) drains; freeze it with the lease in hand.
                signal(child.pid(), "STOP")
                val wedged = System.nanoTime()
                val id = ob.enqueue(order("kt-stall-lease"))
                val (at, report) = events.stalled()
                println("stall lease_held_elsewhere (frozen child pid ${child.pid()}, Kotlin) reported after ${since(wedged, at)} ms: $report")
                assertEquals("lease_held_elsewhere", report.cause, "$report")
                assertTrue(report.lease.startsWith("held by another engine"), "$report")
                // A live holder would have sent the sale by now; the frozen one has not, and
                // this engine does not take over a held lease.
                delay(LIVE_HOLDER_SENDS_WITHIN_MS - since(wedged, System.nanoTime()))
                ob.status().let { assertFalse(it.isDrainer, "$it") }
                ob.command(id).let { assertEquals(CommandState.PENDING, it.state, "$it") }
                // The frozen holder dies; its lease runs out and this engine takes over.
                val killed = System.nanoTime()
                child.destroyForcibly().waitFor(5, TimeUnit.SECONDS)
                val recovered = events.recovered()
                assertEquals("lease_held_elsewhere", recovered.cause)
                assertIs<Settlement.Succeeded>(withTimeout(15_000) { ob.waitFor(id) })
                println("lease taken over ${since(killed, System.nanoTime())} ms after the child was killed")
                assertTrue(ob.status().isDrainer)
                ob.shutdown()
            } finally {
                child.destroyForcibly()
                child.waitFor(5, TimeUnit.SECONDS)
            }
        }
    }

    @Test
    fun waitingOfflineOrForABackoffIsNotAStall() = runBlocking {
        TestServer.start().use { server ->
            val cfg = watchdogConfig(tempDb(), server.url).copy(retryBaseMs = 30_000uL, retryCapMs = 30_000uL)
            val ob = Outbox.openWithTokens(cfg, CountingTokens())
            ob.registerMutator("createOrder", MutatorOptions())
            val events = TimedEvents(ob)
            server.faults("500=1")
            val id = ob.enqueue(order("kt-stall-backoff"))
            eventually("the first attempt to fail") { ob.command(id).let { it.attempts == 1u && it.state == CommandState.PENDING } }
            delay(WINDOW_MS.toLong() * 4)
            ob.setOnline(false)
            ob.enqueue(order("kt-stall-offline"))
            delay(WINDOW_MS.toLong() * 4)
            assertTrue(events.seen.none { it.second is OutboxEvent.QueueStalled }, "${events.seen.map { it.second }}")
            assertFalse(ob.status().stalled)
            server.faults(null)
            ob.shutdown()
        }
    }
}
