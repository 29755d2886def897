package dev.outbox.android

import androidx.lifecycle.DefaultLifecycleObserver
import androidx.lifecycle.Lifecycle
import androidx.lifecycle.LifecycleOwner

/**
 * Reports the app's foreground/background state from the process lifecycle
 * (`ProcessLifecycleOwner`): `ON_START` means some activity is visible, `ON_STOP` that none is
 * (dispatched about 700 ms after the last activity stops, so rotation does not count).
 *
 * [start] and [stop] must run on the main thread (a `LifecycleRegistry` rule).
 *
 * @param onForeground called on the main thread when the app becomes visible.
 * @param onBackground called on the main thread when it stops being visible, and once from
 *   [start] when the process starts in the background (for example for a WorkManager job).
 */
class LifecycleMonitor(
    private val lifecycle: Lifecycle,
    private val onForeground: () -> Unit,
    private val onBackground: () -> Unit,
) {
    private var started = false

    private val observer = object : DefaultLifecycleObserver {
        override fun onStart(owner: LifecycleOwner) = onForeground()

        override fun onStop(owner: LifecycleOwner) = onBackground()
    }

    /** Reports the current state and starts observing. Idempotent. */
    fun start() {
        if (started) return
        started = true
        // The engine starts out "foreground"; a registry dispatches ON_START to a new observer
        // only when the process is already started, so report the background case here.
        if (!lifecycle.currentState.isAtLeast(Lifecycle.State.STARTED)) onBackground()
        lifecycle.addObserver(observer)
    }

    /** Stops observing. Idempotent. */
    fun stop() {
        if (!started) return
        started = false
        lifecycle.removeObserver(observer)
    }
}
