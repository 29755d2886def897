// JVM COMPILE STUB — not shipped. androidx.work.OneTimeWorkRequest / PeriodicWorkRequest and their builders, only the
// members dev.outbox.android uses; the built request exposes what was set (test hooks).
package androidx.work

import java.util.concurrent.TimeUnit

/** Stub of `androidx.work.BackoffPolicy`. */
enum class BackoffPolicy { EXPONENTIAL, LINEAR }

/** Stub of `androidx.work.ExistingWorkPolicy`. */
enum class ExistingWorkPolicy { REPLACE, KEEP, APPEND, APPEND_OR_REPLACE }

/** Stub of `androidx.work.OneTimeWorkRequest`. */
class OneTimeWorkRequest private constructor(
    /** Test hook: the worker class. */
    val testWorkerClass: Class<out ListenableWorker>,
    /** Test hook: the constraints. */
    val testConstraints: Constraints?,
    /** Test hook: the input data. */
    val testInputData: Data,
    /** Test hook: backoff policy and initial delay in milliseconds. */
    val testBackoff: Pair<BackoffPolicy, Long>?,
) {
    /** Stub of `OneTimeWorkRequest.Builder`. */
    class Builder(private val workerClass: Class<out ListenableWorker>) {
        private var constraints: Constraints? = null
        private var inputData = Data.EMPTY
        private var backoff: Pair<BackoffPolicy, Long>? = null

        /** Real: `WorkRequest.Builder.setConstraints`. */
        fun setConstraints(constraints: Constraints): Builder = apply { this.constraints = constraints }

        /** Real: `WorkRequest.Builder.setBackoffCriteria(BackoffPolicy, long, TimeUnit)`. */
        fun setBackoffCriteria(backoffPolicy: BackoffPolicy, backoffDelay: Long, timeUnit: TimeUnit): Builder =
            apply { backoff = backoffPolicy to timeUnit.toMillis(backoffDelay) }

        /** Real: `WorkRequest.Builder.setInputData`. */
        fun setInputData(inputData: Data): Builder = apply { this.inputData = inputData }

        /** Real: `WorkRequest.Builder.build`. */
        fun build(): OneTimeWorkRequest = OneTimeWorkRequest(workerClass, constraints, inputData, backoff)
    }
}

/** Stub of `androidx.work.ExistingPeriodicWorkPolicy`. */
enum class ExistingPeriodicWorkPolicy { REPLACE, KEEP, UPDATE, CANCEL_AND_REENQUEUE }

/** Stub of `androidx.work.PeriodicWorkRequest`. */
class PeriodicWorkRequest private constructor(
    /** Test hook: the worker class. */
    val testWorkerClass: Class<out ListenableWorker>,
    /** Test hook: the repeat interval in milliseconds. */
    val testIntervalMs: Long,
    /** Test hook: the constraints. */
    val testConstraints: Constraints?,
    /** Test hook: the input data. */
    val testInputData: Data,
) {
    /** Stub of `PeriodicWorkRequest.Builder(Class, long, TimeUnit)`. */
    class Builder(
        private val workerClass: Class<out ListenableWorker>,
        repeatInterval: Long,
        repeatIntervalTimeUnit: TimeUnit,
    ) {
        private val intervalMs = repeatIntervalTimeUnit.toMillis(repeatInterval)
        private var constraints: Constraints? = null
        private var inputData = Data.EMPTY

        /** Real: `WorkRequest.Builder.setConstraints`. */
        fun setConstraints(constraints: Constraints): Builder = apply { this.constraints = constraints }

        /** Real: `WorkRequest.Builder.setInputData`. */
        fun setInputData(inputData: Data): Builder = apply { this.inputData = inputData }

        /** Real: `WorkRequest.Builder.build`. */
        fun build(): PeriodicWorkRequest = PeriodicWorkRequest(workerClass, intervalMs, constraints, inputData)
    }

    companion object {
        /** Real: `PeriodicWorkRequest.MIN_PERIODIC_INTERVAL_MILLIS` (15 minutes). */
        const val MIN_PERIODIC_INTERVAL_MILLIS = 15 * 60 * 1000L
    }
}
