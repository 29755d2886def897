package dev.outbox.android

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch

/** A scheduled action that can still be called off. */
fun interface Cancellable {
    /** Stops the action if it has not run yet; does nothing afterwards. */
    fun cancel()
}

/**
 * Runs an action after a delay. Production code uses [CoroutineDelayScheduler]; tests inject a
 * manual clock so debounce timing is checked without sleeping.
 */
fun interface DelayScheduler {
    /** Runs [action] once, [delayMs] milliseconds from now, on a thread of the scheduler's choosing. */
    fun schedule(delayMs: Long, action: () -> Unit): Cancellable
}

/** A [DelayScheduler] that launches a coroutine in [scope] (cancelled with the scope). */
class CoroutineDelayScheduler(private val scope: CoroutineScope) : DelayScheduler {
    override fun schedule(delayMs: Long, action: () -> Unit): Cancellable {
        val job = scope.launch {
            delay(delayMs)
            action()
        }
        return Cancellable { job.cancel() }
    }
}

/**
 * Turns a stream of raw connectivity observations into calls to [report] that do not thrash.
 *
 * Going offline is reported only after the device has stayed offline for [offlineDelayMs]
 * (Wi-Fi hand-overs and captive-portal re-validation briefly drop the validated network); going
 * online is reported after [onlineDelayMs] (0 by default: immediately, so queued work starts at
 * once). A change that is undone within its delay is never reported, and a value is reported
 * only when it differs from the last one reported. Pure logic: no Android types; thread-safe.
 *
 * @param scheduler runs the delayed reports.
 * @param report receives each debounced value; called while an internal lock is held, so it must
 *   not call back into this object.
 */
class ConnectivityDebouncer(
    private val scheduler: DelayScheduler,
    private val offlineDelayMs: Long = DEFAULT_OFFLINE_DELAY_MS,
    private val onlineDelayMs: Long = 0,
    private val report: (online: Boolean) -> Unit,
) {
    private val lock = Any()
    private var reported: Boolean? = null
    private var pendingTarget: Boolean? = null
    private var pending: Cancellable? = null
    private var generation = 0L

    init {
        require(offlineDelayMs >= 0 && onlineDelayMs >= 0) { "delays must not be negative" }
    }

    /** The last value passed to [report], or null before the first one. */
    val lastReported: Boolean?
        get() = synchronized(lock) { reported }

    /** Reports [online] at once (no debounce) and drops any pending report: for the initial state. */
    fun seed(online: Boolean) = synchronized(lock) {
        dropPending()
        deliver(online)
    }

    /** Feeds one observation; reports it after the matching delay unless it is undone first. */
    fun update(online: Boolean) = synchronized(lock) {
        if (pendingTarget == online) return@synchronized // already on its way: keep the original deadline
        dropPending()
        if (reported == online) return@synchronized // a flap that came back before its delay ran out
        val delayMs = if (online) onlineDelayMs else offlineDelayMs
        if (delayMs == 0L) {
            deliver(online)
            return@synchronized
        }
        val mine = ++generation
        pendingTarget = online
        pending = scheduler.schedule(delayMs) {
            synchronized(lock) {
                if (generation != mine || pendingTarget != online) return@synchronized
                pendingTarget = null
                pending = null
                deliver(online)
            }
        }
    }

    /** Drops a pending report (call when the monitor stops). */
    fun cancel() = synchronized(lock) { dropPending() }

    private fun dropPending() {
        generation++
        pending?.cancel()
        pending = null
        pendingTarget = null
    }

    private fun deliver(online: Boolean) {
        if (reported == online) return
        reported = online
        report(online)
    }

    companion object {
        /** Default time the device must stay offline before it is reported offline. */
        const val DEFAULT_OFFLINE_DELAY_MS = 500L
    }
}
