package dev.outbox.android.tests

import androidx.lifecycle.Lifecycle
import androidx.lifecycle.ProcessLifecycleOwner
import dev.outbox.android.LifecycleMonitor
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking

/** ProcessLifecycleOwner start/stop → `onForeground`/`onBackground` on a real engine. */
class LifecycleMonitorTest {
    private val process = ProcessLifecycleOwner.get()

    // The monitor's callbacks are plain functions on the main thread; the test reports
    // synchronously so each assertion sees the fact (OutboxAndroid queues it instead).
    private fun monitorFor(outbox: uniffi.outbox_ffi.Outbox) = LifecycleMonitor(
        process.lifecycle,
        onForeground = { runBlocking { outbox.onForeground() } },
        onBackground = { runBlocking { outbox.onBackground() } },
    )

    @Test
    fun startAndStopFlipForeground() = runBlocking {
        process.testMoveTo(Lifecycle.State.RESUMED)
        val outbox = openOutbox()
        val monitor = monitorFor(outbox)
        try {
            monitor.start()
            assertTrue(outbox.status().foreground)
            process.testMoveTo(Lifecycle.State.CREATED) // ON_STOP: no activity visible
            assertFalse(outbox.status().foreground)
            process.testMoveTo(Lifecycle.State.STARTED)
            assertTrue(outbox.status().foreground)
            monitor.stop()
            assertEquals(0, process.testObserverCount)
            process.testMoveTo(Lifecycle.State.CREATED)
            assertTrue(outbox.status().foreground, "no reports after stop")
        } finally {
            monitor.stop()
            outbox.close()
        }
    }

    @Test
    fun aProcessStartedInTheBackgroundIsReportedBackground() = runBlocking {
        process.testMoveTo(Lifecycle.State.CREATED) // e.g. started by WorkManager
        val outbox = openOutbox()
        val monitor = monitorFor(outbox)
        try {
            assertTrue(outbox.status().foreground, "the engine starts out foreground")
            monitor.start()
            assertFalse(outbox.status().foreground)
            monitor.start() // idempotent: one observer
            assertEquals(1, process.testObserverCount)
        } finally {
            monitor.stop()
            outbox.close()
        }
    }
}
