package dev.outbox.android.tests

import androidx.lifecycle.Lifecycle
import androidx.lifecycle.ProcessLifecycleOwner
import dev.outbox.android.LifecycleMonitor
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertTrue

/** ProcessLifecycleOwner start/stop → `onForeground`/`onBackground` on a real engine. */
class LifecycleMonitorTest {
    private val process = ProcessLifecycleOwner.get()

    private fun monitorFor(outbox: uniffi.outbox_ffi.Outbox) =
        LifecycleMonitor(process.lifecycle, onForeground = { outbox.onForeground() }, onBackground = { outbox.onBackground() })

    @Test
    fun startAndStopFlipForeground() {
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
    fun aProcessStartedInTheBackgroundIsReportedBackground() {
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
