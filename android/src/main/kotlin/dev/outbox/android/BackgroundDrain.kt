package dev.outbox.android

import android.content.Context
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.Data
import androidx.work.ExistingWorkPolicy
import androidx.work.ListenableWorker
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequest
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import java.util.concurrent.TimeUnit
import kotlin.coroutines.cancellation.CancellationException

/**
 * Asks WorkManager for background time to drain the outbox: one unique one-time work
 * ([UNIQUE_WORK_NAME], policy `KEEP`, so asking again while it is queued is a no-op) that runs
 * [OutboxDrainWorker] when a network is connected, with exponential backoff between runs.
 */
class BackgroundDrainScheduler(
    context: Context,
    private val budgetMs: Long = DEFAULT_BUDGET_MS,
    private val backoffDelayMs: Long = DEFAULT_BACKOFF_MS,
) {
    private val appContext = context.applicationContext

    init {
        require(budgetMs > 0) { "budgetMs must be positive" }
    }

    /** Enqueues the unique drain work unless it is already queued or running. */
    fun enqueue() {
        val request = OneTimeWorkRequest.Builder(OutboxDrainWorker::class.java)
            .setConstraints(Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build())
            .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, backoffDelayMs, TimeUnit.MILLISECONDS)
            .setInputData(Data.Builder().putLong(OutboxDrainWorker.KEY_BUDGET_MS, budgetMs).build())
            .build()
        WorkManager.getInstance(appContext).enqueueUniqueWork(UNIQUE_WORK_NAME, ExistingWorkPolicy.KEEP, request)
    }

    companion object {
        /** Name of the unique work, e.g. for `WorkManager.getWorkInfosForUniqueWork`. */
        const val UNIQUE_WORK_NAME = "dev.outbox.drain"

        /**
         * Default drain budget per run: 8 minutes, inside WorkManager's 10-minute execution
         * limit. A run returns as soon as nothing is left to send now, so most runs are short.
         */
        const val DEFAULT_BUDGET_MS = 8 * 60 * 1000L

        /** Default initial backoff between runs that left work behind (WorkManager's minimum is 10 s). */
        const val DEFAULT_BACKOFF_MS = 30 * 1000L
    }
}

/**
 * The WorkManager worker that drains the outbox in the background (one-time work from
 * [BackgroundDrainScheduler], periodic work from [OutboxBackground]): it calls
 * `Outbox.drainFor(budget)` on the instance created by [OutboxAndroid.init] and maps the report
 * to a WorkManager result: `success` when nothing is left pending or in flight, `retry` (with the
 * request's backoff) when some is, and when the drain failed (engine error, instance closed).
 * Without an [OutboxAndroid] in this process it drains the target stored by
 * [OutboxBackground.enable] on its own (React Native apps), and returns `failure` when there is
 * none: call [OutboxAndroid.init] (or [OutboxBackground.setTokenProvider]) from
 * `Application.onCreate` so a process started by WorkManager is ready.
 *
 * WorkManager creates it by reflection; apps never construct it.
 */
class OutboxDrainWorker(appContext: Context, params: WorkerParameters) : CoroutineWorker(appContext, params) {
    override suspend fun doWork(): ListenableWorker.Result {
        val budgetMs = inputData.getLong(KEY_BUDGET_MS, BackgroundDrainScheduler.DEFAULT_BUDGET_MS)
        val instance = OutboxAndroid.instanceOrNull()
            ?: return OutboxBackground.drainStandalone(applicationContext, budgetMs)
        val report = try {
            instance.drainFor(budgetMs.coerceAtLeast(1))
        } catch (e: CancellationException) {
            throw e // WorkManager stopped the work
        } catch (e: Exception) {
            // OutboxException from the engine (or from opening it), or the instance closed meanwhile.
            instance.reportAdapterError("background drain", e)
            instance.drainPolicy.onRunAbandoned()
            return ListenableWorker.Result.retry()
        }
        return when (instance.drainPolicy.onRunFinished(report)) {
            DrainVerdict.DONE -> ListenableWorker.Result.success()
            DrainVerdict.RUN_AGAIN -> ListenableWorker.Result.retry()
        }
    }

    companion object {
        /** Input-data key of the drain budget in milliseconds. */
        const val KEY_BUDGET_MS = "dev.outbox.drain.budget_ms"
    }
}
