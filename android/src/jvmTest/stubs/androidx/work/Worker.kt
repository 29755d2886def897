// JVM COMPILE STUB — not shipped. androidx.work.ListenableWorker / CoroutineWorker /
// WorkerParameters, only the members dev.outbox.android uses. Tests build WorkerParameters
// with the test-only constructor and call doWork() themselves.
package androidx.work

import android.content.Context

/** Stub of `androidx.work.WorkerParameters` (test-only constructor). */
class WorkerParameters(
    /** Real: `WorkerParameters.getInputData()`. */
    val inputData: Data,
)

/** Stub of `androidx.work.ListenableWorker`. */
abstract class ListenableWorker(
    /** Real: `ListenableWorker.getApplicationContext()`. */
    val applicationContext: Context,
    private val workerParams: WorkerParameters,
) {
    /** Real: `ListenableWorker.getInputData()`. */
    val inputData: Data
        get() = workerParams.inputData

    /** Stub of `ListenableWorker.Result`. */
    abstract class Result internal constructor() {
        /** Real: `Result.Success`. */
        class Success : Result() {
            override fun toString() = "Success"
        }

        /** Real: `Result.Retry`. */
        class Retry : Result() {
            override fun toString() = "Retry"
        }

        /** Real: `Result.Failure`. */
        class Failure : Result() {
            override fun toString() = "Failure"
        }

        companion object {
            /** Real: `Result.success()`. */
            @JvmStatic
            fun success(): Result = Success()

            /** Real: `Result.retry()`. */
            @JvmStatic
            fun retry(): Result = Retry()

            /** Real: `Result.failure()`. */
            @JvmStatic
            fun failure(): Result = Failure()
        }
    }
}

/** Stub of `androidx.work.CoroutineWorker`. */
abstract class CoroutineWorker(appContext: Context, params: WorkerParameters) : ListenableWorker(appContext, params) {
    /** Real: `CoroutineWorker.doWork()`. */
    abstract suspend fun doWork(): Result
}
