package dev.outbox.android.tests

import dev.outbox.android.events
import dev.outbox.android.queueHealth
import java.io.File
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import uniffi.outbox_ffi.MutatorOptions
import uniffi.outbox_ffi.Outbox
import uniffi.outbox_ffi.OutboxConfig
import uniffi.outbox_ffi.OutboxEvent

/** `queueHealth()` and the stall watchdog through the generated bindings, on a real engine. */
class QueueHealthTest {
    private suspend fun open(serverUrl: String, stallWindowMs: ULong? = null): Outbox {
        val config = OutboxConfig(
            path = File(tempDir("outbox-health"), "outbox.db").absolutePath,
            userId = "alice",
            workspaceId = "ws-1",
            serverUrl = serverUrl,
            attemptTimeoutMs = 60_000uL,
            stallWindowMs = stallWindowMs,
            maxSizeBytes = 8uL * 1024uL * 1024uL,
        )
        val outbox = Outbox.openWithTokens(config, FixedToken)
        outbox.registerMutator(MUTATOR, MutatorOptions())
        return outbox
    }

    @Test
    fun healthReportsTheLastSuccessPullAndStorage() = runBlocking {
        ReferenceServer().use { server ->
            val outbox = open(server.url)
            try {
                outbox.enqueue(note(1))
                val healthy = withTimeout(10_000) {
                    outbox.queueHealth(everyMs = 50).first {
                        it.succeeded == 1uL && it.lastSuccessAtMs != null && it.lastPullAtMs != null
                    }
                }
                assertEquals(0u, healthy.consecutiveFailures)
                assertEquals(8uL * 1024uL * 1024uL, healthy.storageCapBytes)
                assertTrue(healthy.storageUsedBytes in 1uL..healthy.storageCapBytes!!, "$healthy")
                assertTrue(!healthy.storageFull && !healthy.stalled && healthy.online && healthy.isDrainer, "$healthy")
            } finally {
                outbox.close()
            }
        }
    }

    @Test
    fun aHungConnectionIsReportedAsAStall() = runBlocking {
        SilentServer().use { server ->
            val outbox = open(server.url, stallWindowMs = 300uL)
            try {
                val stalledEvent = async(start = CoroutineStart.UNDISPATCHED) {
                    outbox.events().filterIsInstance<OutboxEvent.QueueStalled>().first()
                }
                val started = System.nanoTime()
                outbox.enqueue(note(1))
                val event = withTimeout(10_000) { stalledEvent.await() }
                val tookMs = (System.nanoTime() - started) / 1_000_000
                println("hung connection (Kotlin) reported after $tookMs ms: ${event.report}")
                assertEquals("send_hung", event.report.cause)
                assertTrue(event.report.stalledForMs >= 300uL, "${event.report}")
                val health = withTimeout(10_000) { outbox.queueHealth(everyMs = 50).first { it.stalled && it.consecutiveFailures >= 1u } }
                assertNotNull(health.lastError, "the abandoned attempt is the last error: $health")
                assertTrue(health.consecutiveFailures >= 1u, "$health")
            } finally {
                outbox.close()
            }
        }
    }
}
