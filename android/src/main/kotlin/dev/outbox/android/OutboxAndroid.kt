package dev.outbox.android

import android.content.Context
import android.net.ConnectivityManager
import android.util.Log
import androidx.lifecycle.ProcessLifecycleOwner
import java.io.File
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.channelFlow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import uniffi.outbox_ffi.DrainReport
import uniffi.outbox_ffi.EnqueueRequest
import uniffi.outbox_ffi.EventListener
import uniffi.outbox_ffi.Outbox
import uniffi.outbox_ffi.OutboxConfig
import uniffi.outbox_ffi.OutboxEvent
import uniffi.outbox_ffi.Settlement
import uniffi.outbox_ffi.Status
import uniffi.outbox_ffi.Subscription
import uniffi.outbox_ffi.TokenProvider
import uniffi.outbox_ffi.Transport

/**
 * How [OutboxAndroid.init] opens and wires the engine.
 *
 * @property userId the signed-in user; data is scoped per (user, workspace).
 * @property workspaceId the workspace the app works in.
 * @property serverUrl base URL of the sync server (`https://…`), or null to queue without sending.
 * @property tokenProvider supplies an auth token per request for the built-in HTTP transport
 *   (required with [serverUrl]); tokens are never stored.
 * @property transport the app's own transport instead of the built-in HTTP one (then
 *   [serverUrl] and [tokenProvider] are not used).
 * @property databaseName file name inside `Context.noBackupFilesDir` (a plain name, no `/`).
 * @property monitorNetwork report validated-internet connectivity to the engine ([NetworkMonitor]).
 * @property observeLifecycle report foreground/background from `ProcessLifecycleOwner` ([LifecycleMonitor]).
 * @property backgroundDrain schedule [OutboxDrainWorker] through WorkManager while commands are pending.
 * @property offlineDebounceMs how long the network must stay down before the engine hears "offline".
 * @property backgroundDrainBudgetMs time limit of one background drain run.
 * @property configure adjusts the engine configuration (concurrency, attempts, durability, …);
 *   the database path is always the one in the no-backup directory.
 * @property onAdapterError receives errors of the platform wiring (reporting a fact to a closing
 *   engine, a failed background run); logs a warning by default.
 */
data class OutboxAndroidConfig(
    val userId: String,
    val workspaceId: String,
    val serverUrl: String?,
    val tokenProvider: TokenProvider?,
    val transport: Transport? = null,
    val databaseName: String = "outbox.db",
    val monitorNetwork: Boolean = true,
    val observeLifecycle: Boolean = true,
    val backgroundDrain: Boolean = true,
    val offlineDebounceMs: Long = ConnectivityDebouncer.DEFAULT_OFFLINE_DELAY_MS,
    val backgroundDrainBudgetMs: Long = BackgroundDrainScheduler.DEFAULT_BUDGET_MS,
    val configure: (OutboxConfig) -> OutboxConfig = { it },
    val onAdapterError: (what: String, error: Throwable) -> Unit = { what, error -> Log.w(TAG, what, error) },
) {
    private companion object {
        const val TAG = "Outbox"
    }
}

/**
 * The Outbox engine wired into an Android app: database in the no-backup directory,
 * connectivity and process lifecycle reported to the engine, background draining through
 * WorkManager, and coroutine APIs. Create it once with [init] (from `Application.onCreate`), use
 * [outbox] for the full engine API, and [close] it on logout.
 */
class OutboxAndroid private constructor(
    context: Context,
    /** The engine itself: every method of the generated `Outbox` (queries, retry, discard, …). */
    val outbox: Outbox,
    private val config: OutboxAndroidConfig,
    private val networkMonitor: NetworkMonitor?,
    private val scope: CoroutineScope,
) : AutoCloseable {
    /** The background-drain decision; shared with [OutboxDrainWorker]. */
    internal val drainPolicy = BackgroundDrainPolicy()

    private val drainScheduler = if (config.backgroundDrain) {
        BackgroundDrainScheduler(context, config.backgroundDrainBudgetMs)
    } else {
        null
    }
    private val lifecycleMonitor = if (config.observeLifecycle) {
        LifecycleMonitor(
            ProcessLifecycleOwner.get().lifecycle,
            onForeground = { report("onForeground") { outbox.onForeground() } },
            onBackground = {
                report("onBackground") { outbox.onBackground() }
                // The report made while starting up is covered by start()'s own check.
                if (started) scope.launch { scheduleBackgroundDrainIfPending() }
            },
        )
    } else {
        null
    }
    private val closed = MutableStateFlow(false)

    @Volatile
    private var started = false
    private var subscription: Subscription? = null

    /** Path of the database file. */
    val databasePath: String = File(context.noBackupFilesDir, config.databaseName).absolutePath

    /** Engine events until [close] (see [Outbox.events]). */
    val events: Flow<OutboxEvent> = outbox.events().untilClosed()

    /** Status snapshots until [close]: the current one, then one after each burst of events. */
    val statusFlow: Flow<Status> = outbox.statusUpdates().untilClosed()

    private fun start() {
        networkMonitor?.start()
        if (drainScheduler != null) {
            subscription = outbox.subscribe(object : EventListener {
                override fun onEvent(event: OutboxEvent) {
                    if (event is OutboxEvent.Enqueued && !closed.value && drainPolicy.onEnqueued()) {
                        report("schedule background drain") { drainScheduler.enqueue() }
                    }
                }
            })
        }
        lifecycleMonitor?.start()
        started = true
        scope.launch { scheduleBackgroundDrainIfPending() }
    }

    /** Enqueues a command (durable when this returns) and returns its id; runs on [Dispatchers.IO]. */
    suspend fun enqueue(request: EnqueueRequest): String = withContext(Dispatchers.IO) { outbox.enqueue(request) }

    /** Suspends until the command [id] is settled (succeeded, failed, conflict, wedged, discarded). */
    suspend fun waitFor(id: String): Settlement = outbox.waitFor(id)

    /** A status snapshot; runs on [Dispatchers.IO]. */
    suspend fun status(): Status = withContext(Dispatchers.IO) { outbox.status() }

    /** Drains for at most [budgetMs] and reports what happened (see `Outbox.drainFor`). */
    suspend fun drainFor(budgetMs: Long): DrainReport = outbox.drainFor(budgetMs.coerceAtLeast(0).toULong())

    /** Asks the engine to send and pull now. */
    fun syncNow() = outbox.syncNow()

    /**
     * Enqueues the WorkManager drain work when commands are pending or in flight; returns whether
     * it did. Called at start-up and on going to the background; apps rarely need it.
     */
    suspend fun scheduleBackgroundDrainIfPending(): Boolean {
        val scheduler = drainScheduler ?: return false
        if (closed.value) return false
        val status = try {
            status()
        } catch (e: Exception) {
            reportAdapterError("status for background drain", e)
            return false
        }
        if (!drainPolicy.onStatus(status)) return false
        report("schedule background drain") { scheduler.enqueue() }
        return true
    }

    /**
     * Stops the platform wiring, ends [events] and [statusFlow], shuts the engine down (in-flight
     * sends resume at the next open), frees its handle and clears the
     * instance so [init] can run again (after logout, for another user). Call on the main thread.
     * Idempotent.
     */
    override fun close() {
        synchronized(Companion) {
            if (closed.value) return
            closed.value = true
            if (current === this) current = null
        }
        lifecycleMonitor?.stop()
        networkMonitor?.stop()
        subscription?.cancel()
        scope.cancel()
        try {
            outbox.shutdown()
        } finally {
            outbox.close() // frees the handle
        }
    }

    internal fun reportAdapterError(what: String, error: Throwable) = config.onAdapterError(what, error)

    private inline fun report(what: String, block: () -> Unit) {
        try {
            block()
        } catch (e: Exception) {
            reportAdapterError(what, e)
        }
    }

    private fun <T> Flow<T>.untilClosed(): Flow<T> {
        val upstream = this
        return channelFlow {
            val forward = launch { upstream.collect { send(it) } }
            launch {
                closed.first { it }
                forward.cancel()
                this@channelFlow.close()
            }
            awaitClose { forward.cancel() }
        }
    }

    /** Creating and finding the process-wide instance. */
    companion object {
        @Volatile
        private var current: OutboxAndroid? = null

        /**
         * Opens the engine on `<noBackupFilesDir>/<databaseName>` and starts the adapters. Call
         * once per process on the main thread, typically in `Application.onCreate` (so a process
         * that WorkManager starts for [OutboxDrainWorker] has an instance too).
         *
         * @throws IllegalStateException when an instance is already open (close it first).
         * @throws IllegalArgumentException for a bad [OutboxAndroidConfig.databaseName], or a
         *   [OutboxAndroidConfig.serverUrl] without a token provider or transport.
         * @throws uniffi.outbox_ffi.OutboxException when the database cannot be opened.
         */
        @JvmStatic
        fun init(context: Context, config: OutboxAndroidConfig): OutboxAndroid = synchronized(this) {
            check(current == null) { "OutboxAndroid is already initialised; close() it first" }
            require(config.databaseName.isNotEmpty() && '/' !in config.databaseName) {
                "databaseName must be a plain file name"
            }
            require(config.serverUrl == null || config.tokenProvider != null || config.transport != null) {
                "serverUrl needs a tokenProvider (or pass a transport)"
            }
            val app = context.applicationContext
            val dir = app.noBackupFilesDir
            dir.mkdirs()
            val path = File(dir, config.databaseName).absolutePath
            val scope = CoroutineScope(SupervisorJob() + Dispatchers.Default)
            var outbox: Outbox? = null
            val debouncer = if (config.monitorNetwork) {
                ConnectivityDebouncer(CoroutineDelayScheduler(scope), config.offlineDebounceMs) { online ->
                    try {
                        outbox?.setOnline(online)
                    } catch (e: Exception) {
                        config.onAdapterError("setOnline", e)
                    }
                }
            } else {
                null
            }
            val monitor = debouncer?.let {
                val cm = app.getSystemService(ConnectivityManager::class.java)
                    ?: error("ConnectivityManager is not available")
                NetworkMonitor(cm, it)
            }
            val engineConfig = config.configure(
                OutboxConfig(
                    path = path,
                    userId = config.userId,
                    workspaceId = config.workspaceId,
                    serverUrl = config.serverUrl,
                    startOnline = monitor?.isOnlineNow() ?: true,
                ),
            ).copy(path = path)
            val opened = try {
                val transport = config.transport
                val tokens = config.tokenProvider
                when {
                    transport != null -> Outbox.openWithTransport(engineConfig, transport)
                    tokens != null -> Outbox.openWithTokens(engineConfig, tokens)
                    else -> Outbox.open(engineConfig)
                }
            } catch (e: Exception) {
                scope.cancel()
                throw e
            }
            outbox = opened
            OutboxAndroid(app, opened, config, monitor, scope).also {
                current = it
                try {
                    it.start()
                } catch (e: Exception) {
                    it.close()
                    throw e
                }
            }
        }

        /** The open instance, or null before [init] and after [close]. */
        @JvmStatic
        fun instanceOrNull(): OutboxAndroid? = current

        /**
         * The open instance.
         *
         * @throws IllegalStateException before [init] and after [close].
         */
        @JvmStatic
        fun get(): OutboxAndroid = current ?: error("OutboxAndroid.init has not been called (or the instance was closed)")
    }
}
