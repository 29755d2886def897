// Running a till through the Kotlin bindings: offline risk limits, a 403 that pauses
// instead of failing sales, retry of a failed command with its dependants, and closeout,
// against the real library and the real reference server on loopback.
package outbox.tests

import java.net.HttpURLConnection
import java.net.URI
import java.util.concurrent.CopyOnWriteArrayList
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotEquals
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import uniffi.outbox_ffi.CommandState
import uniffi.outbox_ffi.EnqueueRequest
import uniffi.outbox_ffi.EventListener
import uniffi.outbox_ffi.LimitKind
import uniffi.outbox_ffi.MutatorOptions
import uniffi.outbox_ffi.Outbox
import uniffi.outbox_ffi.OutboxConfig
import uniffi.outbox_ffi.OutboxEvent
import uniffi.outbox_ffi.OutboxException
import uniffi.outbox_ffi.Query
import uniffi.outbox_ffi.Settlement

/** Replaces (or with `null` clears) the server's fault spec through its admin endpoint. */
fun TestServer.faults(spec: String?) {
    val conn = URI("$url/v1/_faults").toURL().openConnection() as HttpURLConnection
    conn.requestMethod = if (spec == null) "DELETE" else "POST"
    if (spec != null) {
        conn.doOutput = true
        conn.outputStream.use { it.write(spec.toByteArray()) }
    }
    check(conn.responseCode == 200) { "faults: HTTP ${conn.responseCode}" }
}

private fun sale(id: String, cents: Long) =
    EnqueueRequest(mutator = "put", args = """{"collection":"sales","id":"$id","doc":{"total_cents":$cents}}""")

private fun Outbox.events(): MutableList<OutboxEvent> {
    val seen = CopyOnWriteArrayList<OutboxEvent>()
    subscribe(object : EventListener {
        override fun onEvent(event: OutboxEvent) {
            seen.add(event)
        }
    })
    return seen
}

class TillTest {
    @Test
    fun limitsWarnAtTheSoftThresholdAndRefuseAtTheMaximum() = runBlocking {
        val cfg = config(tempDb(), online = false).copy(
            maxUnsynced = 5uL,
            limitAmountField = "/doc/total_cents",
            maxUnsyncedAmount = 10_000L,
        )
        val ob = Outbox.open(cfg)
        ob.registerMutator("put", MutatorOptions())
        val events = ob.events()
        ob.enqueue(sale("s1", 6_000))
        ob.enqueue(sale("s2", 2_500)) // 8500 of 10000: at the soft threshold
        eventually("amount warning") {
            events.any { it is OutboxEvent.LimitWarning && it.limit == LimitKind.UNSYNCED_AMOUNT && it.current == 8_500L }
        }
        val refused = assertFailsWith<OutboxException.LimitExceeded> { ob.enqueue(sale("s3", 2_000)) }
        assertEquals(LimitKind.UNSYNCED_AMOUNT, refused.limit)
        assertEquals(8_500L, refused.current)
        assertEquals(10_000L, refused.max)
        assertEquals("limit_exceeded", refused.code())
        ob.enqueue(sale("s4", 0))
        ob.enqueue(sale("s5", 0)) // 4 of 5 unsynced
        ob.enqueue(sale("s6", 0))
        val full = assertFailsWith<OutboxException.LimitExceeded> { ob.enqueue(sale("s7", 0)) }
        assertEquals(LimitKind.UNSYNCED_COUNT, full.limit)
        assertEquals(5L, full.current)
        assertEquals(5uL, ob.status().pending, "refused enqueues wrote nothing")
        ob.shutdown()
    }

    @Test
    fun a403PausesWithoutConsumingAttemptsAndResumesOnSyncNow() = runBlocking {
        TestServer.start().use { server ->
            // Retries wait a minute: what moves within the test moved because of a trigger.
            val cfg = config(tempDb(), server, online = false).copy(retryBaseMs = 60_000uL, retryCapMs = 60_000uL)
            val ob = Outbox.openWithTokens(cfg, CountingTokens())
            ob.registerMutator("put", MutatorOptions())
            val events = ob.events()
            server.faults("403=1")
            val id = ob.enqueue(sale("s1", 100))
            ob.setOnline(true)
            eventually("access denied") { events.any { it is OutboxEvent.AccessDenied } }
            eventually("back to pending") { ob.command(id).state == CommandState.PENDING }
            val paused = ob.command(id)
            assertEquals(0u, paused.attempts, "a 403 consumes no attempt")
            assertEquals(403.toUShort(), paused.history.last().httpStatus)
            server.faults(null)
            ob.syncNow()
            assertIs<Settlement.Succeeded>(withTimeout(10_000) { ob.waitFor(id) })
            ob.shutdown()
        }
    }

    @Test
    fun retryOfAFailedOrderSendsItUnderAFreshKeyWithItsDependants() = runBlocking {
        TestServer.start().use { server ->
            val ob = openOutbox(tempDb(), server, online = false)
            ob.registerMutator("adjustStock", MutatorOptions())
            // juice has 20 in stock: the order is rejected, the receipt after it fails too.
            val order = ob.enqueue(order("kt-retry", "juice", 25))
            val receipt = ob.enqueue(sale("r-kt-retry", 900).copy(after = listOf(order)))
            ob.setOnline(true)
            assertEquals("insufficient_stock", assertIs<Settlement.Failed>(withTimeout(10_000) { ob.waitFor(order) }).code)
            assertEquals("dependency_failed", assertIs<Settlement.Failed>(withTimeout(10_000) { ob.waitFor(receipt) }).code)
            val oldKey = ob.command(order).idempotencyKey
            val restock = ob.enqueue(
                EnqueueRequest(mutator = "adjustStock", args = """{"product_id":"juice","delta":100}"""),
            )
            assertIs<Settlement.Succeeded>(withTimeout(10_000) { ob.waitFor(restock) })
            ob.retry(order)
            assertIs<Settlement.Succeeded>(withTimeout(10_000) { ob.waitFor(order) })
            assertIs<Settlement.Succeeded>(withTimeout(10_000) { ob.waitFor(receipt) })
            val sent = ob.command(order)
            assertNotEquals(oldKey, sent.idempotencyKey)
            assertEquals(listOf(oldKey, sent.idempotencyKey), sent.history.map { it.idempotencyKey })
            ob.shutdown()
        }
    }

    @Test
    fun closeoutIsCleanWhenDrainedAndNotCleanPastItsDeadline() = runBlocking {
        TestServer.start().use { server ->
            val cfg = config(tempDb(), server, online = true).copy(limitAmountField = "/doc/total_cents")
            val ob = Outbox.openWithTokens(cfg, CountingTokens())
            ob.registerMutator("put", MutatorOptions())
            ob.enqueue(sale("c1", 1_250))
            ob.enqueue(sale("c2", 750))
            val clean = ob.closeout(10_000uL)
            assertTrue(clean.clean, "$clean")
            assertEquals(2_000L, clean.states.single { it.state == CommandState.SUCCEEDED }.amount)

            server.faults("latency=3000ms")
            val slow = ob.enqueue(sale("c3", 500))
            val late = ob.closeout(300uL)
            assertFalse(late.clean)
            assertFalse(late.drain.completed)
            assertEquals(listOf(slow), late.unsettled.map { it.id })
            assertEquals(slow, late.oldestUnsynced?.id)
            server.faults(null)
            ob.shutdown()
        }
    }

    @Test
    fun aQueueFilledToItsSizeCapDrainsToEmptyAndTakesSalesAgain() = runBlocking {
        TestServer.start().use { server ->
            val cfg = config(tempDb(), server, online = false).copy(maxSizeBytes = 512uL * 1024uL)
            val ob = Outbox.openWithTokens(cfg, CountingTokens())
            ob.registerMutator("put", MutatorOptions())
            // Each answer brings back a 4 KB document new to the device: the answers of the
            // whole queue are far larger than the drain's reserve.
            fun big(i: Int) = EnqueueRequest(
                mutator = "put",
                args = """{"collection":"ktcap","id":"k$i","doc":{"i":$i,"pad":"${"p".repeat(4000)}"}}""",
            )
            var queued = 0
            assertFailsWith<OutboxException.StorageFull> {
                repeat(1_000) {
                    ob.enqueue(big(it))
                    queued++
                }
            }
            assertTrue(queued > 50, "only $queued fit")
            assertEquals(queued.toULong(), ob.status().pending, "nothing accepted before the cap was lost")
            ob.setOnline(true)
            val report = ob.drainFor(30_000uL)
            assertEquals(0uL, report.remaining, "$report ${ob.status()}")
            assertEquals(queued.toULong(), ob.status().succeeded)
            // Pruning makes room: enqueue works again, and the sale goes out.
            withTimeout(30_000) {
                while (true) {
                    try {
                        ob.enqueue(big(100_000))
                        break
                    } catch (e: OutboxException.StorageFull) {
                        kotlinx.coroutines.delay(20)
                    }
                }
            }
            assertEquals(0uL, ob.drainFor(30_000uL).remaining)
            // Every server document arrives, or as many as pulls may keep: 4 KB documents take
            // two pages each, and pulls stop at 90% of the app's share (the rest stays for sales).
            eventually("every server document in the store, or as many as pulls may keep") {
                val held = ob.count("ktcap", Query())
                val stopped = ob.status().lastError?.contains("pull failed: storage is full") == true
                held == queued.toULong() + 1uL || (stopped && held > 0uL)
            }
            // Pulled documents cannot be pruned: whatever they filled, a sale still fits.
            ob.enqueue(big(100_001))
            assertEquals(0uL, ob.drainFor(30_000uL).remaining)
            assertTrue(cfg.path.let { java.io.File(it).length() } <= 512L * 1024L)
            ob.shutdown()
        }
    }
}
