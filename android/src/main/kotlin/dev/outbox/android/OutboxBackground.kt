package dev.outbox.android

import android.content.Context
import android.net.ConnectivityManager
import android.net.NetworkCapabilities
import android.util.Log
import androidx.work.Constraints
import androidx.work.Data
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ListenableWorker
import androidx.work.NetworkType
import androidx.work.PeriodicWorkRequest
import androidx.work.WorkManager
import java.io.File
import java.util.Properties
import java.util.concurrent.TimeUnit
import kotlin.coroutines.cancellation.CancellationException
import uniffi.outbox_ffi.Outbox
import uniffi.outbox_ffi.OutboxConfig
import uniffi.outbox_ffi.TokenProvider

/**
 * The database a background drain opens on its own: the same file, user, workspace and server
 * as the app's foreground engine. Holds no secret: tokens come from the provider the app
 * registers with [OutboxBackground.setTokenProvider] in every process start.
 *
 * @property path absolute path of the foreground engine's database file.
 * @property serverUrl base URL of the sync server, or null (then nothing can be sent).
 */
data class BackgroundDrainTarget(
    val path: String,
    val userId: String,
    val workspaceId: String,
    val serverUrl: String?,
)

/**
 * Periodic background draining for apps whose foreground engine is not an [OutboxAndroid]
 * (React Native: the engine is opened from JavaScript), or that want a drain at fixed intervals
 * on top of [OutboxAndroid]'s on-demand one.
 *
 * [enable] stores a [BackgroundDrainTarget] (no tokens) in the no-backup directory and asks
 * WorkManager for a unique periodic [OutboxDrainWorker] run on a connected network. A run uses
 * the process's [OutboxAndroid] when there is one; otherwise it opens the target's database
 * itself. When the app's engine is open in the same process, that open returns the very same
 * engine (one engine per file per process), so the run drains it and leaves it open; when it is
 * not, the run's engine is a second drainer candidate on the file, which the database lease makes
 * safe, and it stops when the run ends.
 *
 * Tokens: call [setTokenProvider] from `Application.onCreate`, which runs before WorkManager
 * starts a worker in a fresh process; without a provider a run against a server fails.
 */
object OutboxBackground {
    /** Name of the unique periodic work, e.g. for `WorkManager.getWorkInfosForUniqueWork`. */
    const val PERIODIC_WORK_NAME = "dev.outbox.drain.periodic"

    /** File (in `Context.noBackupFilesDir`) that holds the [BackgroundDrainTarget]. */
    const val TARGET_FILE = "outbox-background.properties"

    /** WorkManager's shortest period, in minutes. */
    const val MIN_INTERVAL_MINUTES = 15L

    private const val TAG = "Outbox"

    @Volatile
    private var tokens: TokenProvider? = null

    /**
     * The token provider background runs use for the built-in HTTP transport. Set it in
     * `Application.onCreate` (every process start: it is never stored); `null` removes it.
     */
    @JvmStatic
    fun setTokenProvider(provider: TokenProvider?) {
        tokens = provider
    }

    /**
     * Stores [target] and schedules the periodic drain (replacing an earlier schedule's
     * interval and constraints).
     *
     * @param minIntervalMinutes at least [MIN_INTERVAL_MINUTES]; the OS may run it later.
     * @param requiresCharging run only while the device charges.
     * @param budgetMs time limit of one run (inside WorkManager's 10-minute limit).
     * @throws IllegalArgumentException for a relative path, an empty user or workspace, a
     *   non-http(s) server URL, a too short interval or a non-positive budget.
     */
    @JvmStatic
    @JvmOverloads
    fun enable(
        context: Context,
        target: BackgroundDrainTarget,
        minIntervalMinutes: Long,
        requiresCharging: Boolean = false,
        budgetMs: Long = BackgroundDrainScheduler.DEFAULT_BUDGET_MS,
    ) {
        require(File(target.path).isAbsolute && target.path.isNotBlank()) { "path must be an absolute file path" }
        require(target.userId.isNotEmpty() && target.workspaceId.isNotEmpty()) { "userId and workspaceId must not be empty" }
        require(target.serverUrl == null || Regex("^https?://[^/]").containsMatchIn(target.serverUrl)) {
            "serverUrl must be an http(s) URL"
        }
        require(minIntervalMinutes >= MIN_INTERVAL_MINUTES) {
            "minIntervalMinutes must be at least $MIN_INTERVAL_MINUTES (WorkManager's shortest period)"
        }
        require(budgetMs > 0) { "budgetMs must be positive" }
        val app = context.applicationContext
        writeTarget(app, target)
        val request = PeriodicWorkRequest.Builder(OutboxDrainWorker::class.java, minIntervalMinutes, TimeUnit.MINUTES)
            .setConstraints(
                Constraints.Builder()
                    .setRequiredNetworkType(NetworkType.CONNECTED)
                    .setRequiresCharging(requiresCharging)
                    .build(),
            )
            .setInputData(Data.Builder().putLong(OutboxDrainWorker.KEY_BUDGET_MS, budgetMs).build())
            .build()
        WorkManager.getInstance(app).enqueueUniquePeriodicWork(PERIODIC_WORK_NAME, ExistingPeriodicWorkPolicy.UPDATE, request)
    }

    /** Cancels the periodic drain and deletes the stored target (on logout). Idempotent. */
    @JvmStatic
    fun disable(context: Context) {
        val app = context.applicationContext
        WorkManager.getInstance(app).cancelUniqueWork(PERIODIC_WORK_NAME)
        targetFile(app).delete()
    }

    /** The stored target, or null when the periodic drain is not enabled. */
    @JvmStatic
    fun target(context: Context): BackgroundDrainTarget? {
        val file = targetFile(context.applicationContext)
        if (!file.isFile) return null
        val p = Properties()
        file.inputStream().use { p.load(it) }
        val path = p.getProperty(KEY_PATH) ?: return null
        val user = p.getProperty(KEY_USER) ?: return null
        val workspace = p.getProperty(KEY_WORKSPACE) ?: return null
        return BackgroundDrainTarget(path, user, workspace, p.getProperty(KEY_SERVER))
    }

    /**
     * One background run without an [OutboxAndroid] in the process: opens the stored target
     * (sharing the app's engine when it is open here), reports the current connectivity,
     * drains for at most [budgetMs] and frees its handle, which stops the engine only when
     * nothing else in the process holds it. `failure` when nothing is enabled or no token
     * provider is set; `retry` when work is left or the run failed.
     */
    internal suspend fun drainStandalone(context: Context, budgetMs: Long): ListenableWorker.Result {
        val target = target(context) ?: return ListenableWorker.Result.failure()
        val provider = tokens
        if (target.serverUrl != null && provider == null) {
            Log.w(TAG, "background drain", IllegalStateException("no token provider: call OutboxBackground.setTokenProvider in Application.onCreate"))
            return ListenableWorker.Result.failure()
        }
        val online = onlineNow(context)
        val config = OutboxConfig(
            path = target.path,
            userId = target.userId,
            workspaceId = target.workspaceId,
            serverUrl = target.serverUrl,
            startOnline = online ?: true,
        )
        val outbox = try {
            if (provider != null && target.serverUrl != null) Outbox.openWithTokens(config, provider) else Outbox.open(config)
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            Log.w(TAG, "background drain: open", e)
            return ListenableWorker.Result.retry()
        }
        try {
            // A fact: the app's own reports stop while it is in the background.
            if (online != null) outbox.setOnline(online)
            val report = outbox.drainFor(budgetMs.coerceAtLeast(1).toULong())
            return when (BackgroundDrainPolicy.verdictFor(report)) {
                DrainVerdict.DONE -> ListenableWorker.Result.success()
                DrainVerdict.RUN_AGAIN -> ListenableWorker.Result.retry()
            }
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            Log.w(TAG, "background drain", e)
            return ListenableWorker.Result.retry()
        } finally {
            // Never shutdown(): when the app's engine is open in this process, this handle is
            // that engine, and it must keep running. Freeing the last handle stops it.
            outbox.close()
        }
    }

    /** Validated internet on the default network, or null when it cannot be read. */
    private fun onlineNow(context: Context): Boolean? {
        val cm = context.applicationContext.getSystemService(ConnectivityManager::class.java) ?: return null
        val caps = cm.getNetworkCapabilities(cm.activeNetwork) ?: return false
        return caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_INTERNET) &&
            caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_VALIDATED)
    }

    private fun targetFile(app: Context) = File(app.noBackupFilesDir, TARGET_FILE)

    private fun writeTarget(app: Context, target: BackgroundDrainTarget) {
        val p = Properties()
        p.setProperty(KEY_PATH, target.path)
        p.setProperty(KEY_USER, target.userId)
        p.setProperty(KEY_WORKSPACE, target.workspaceId)
        target.serverUrl?.let { p.setProperty(KEY_SERVER, it) }
        val dir = app.noBackupFilesDir
        dir.mkdirs()
        val tmp = File(dir, "$TARGET_FILE.tmp")
        tmp.outputStream().use { p.store(it, "Outbox background drain target (no secrets)") }
        check(tmp.renameTo(targetFile(app))) { "could not write ${targetFile(app)}" }
    }

    private const val KEY_PATH = "path"
    private const val KEY_USER = "userId"
    private const val KEY_WORKSPACE = "workspaceId"
    private const val KEY_SERVER = "serverUrl"
}
