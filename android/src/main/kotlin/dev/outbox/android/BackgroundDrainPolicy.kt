package dev.outbox.android

import uniffi.outbox_ffi.DrainReport
import uniffi.outbox_ffi.Status

/** What a background drain run should tell the OS scheduler. */
enum class DrainVerdict {
    /** Nothing is left to send: the background work is finished. */
    DONE,

    /** Commands are still pending or in flight: run again later, with the OS's backoff. */
    RUN_AGAIN,
}

/**
 * When background draining must be requested from the OS, and what a finished run means.
 *
 * It decides only *whether to ask the OS for background time*; when and how commands are sent
 * stays in the engine. Requests are deduplicated in memory: after one is made, further
 * `Enqueued` events do not ask again until a run reports [DrainVerdict.DONE]. Status checks (at
 * start-up and when the app goes to the background) always ask while work is left, because the
 * OS work they refer to may have been dropped (app update, force stop). Pure logic, thread-safe.
 */
class BackgroundDrainPolicy {
    private var requested = false

    /** True when [status] shows work that a background run could send (pending or in flight). */
    fun hasWork(status: Status): Boolean = status.pending + status.inFlight > 0uL

    /** For a status read at start-up or on going to the background: true when a request is due. */
    @Synchronized
    fun onStatus(status: Status): Boolean {
        val due = hasWork(status)
        if (due) requested = true
        return due
    }

    /** For an `Enqueued` event: true when no request is outstanding yet. */
    @Synchronized
    fun onEnqueued(): Boolean {
        if (requested) return false
        requested = true
        return true
    }

    /** For the end of a background run: what to tell the OS. */
    @Synchronized
    fun onRunFinished(report: DrainReport): DrainVerdict {
        val verdict = verdictFor(report)
        if (verdict == DrainVerdict.DONE) requested = false
        return verdict
    }

    /** Forget the outstanding request (the run failed or was never possible). */
    @Synchronized
    fun onRunAbandoned() {
        requested = false
    }

    companion object {
        /** The verdict for [report]: done when nothing remains pending or in flight. */
        fun verdictFor(report: DrainReport): DrainVerdict =
            if (report.remaining == 0uL) DrainVerdict.DONE else DrainVerdict.RUN_AGAIN
    }
}
