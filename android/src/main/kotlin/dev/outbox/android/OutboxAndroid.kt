package dev.outbox.android

import android.content.Context
import android.net.ConnectivityManager
import android.util.Log
import androidx.lifecycle.ProcessLifecycleOwner
import java.io.File
import kotlin.coroutines.cancellation.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.channelFlow
import kotlinx.coroutines.flow.emitAll
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import uniffi.outbox_ffi.DrainReport
import uniffi.outbox_ffi.EnqueueRequest
import uniffi.outbox_ffi.EventListener
import uniffi.outbox_ffi.MutatorOptions
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
 * @property mutators the mutators to register (name → options), before the engine is handed
 *   to any caller, so no enqueue can run ahead of its registration.
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
    val mutators: Map<String, MutatorOptions> = emptyMap(),
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
 * WorkManager, and coroutine APIs. Create it once with [init] (from `Application.onCreate`: it
 * returns at once and opens the database off the main thread), reach the full engine API with
 * [outbox], and [shutdown] (or [close]) it on logout.
 */
class OutboxAndroid private constructor(
    context: Context,
    private val config: OutboxAndroidConfig,
    /** The previous instance's graceful shutdown, which the open waits for (null: none). */
    private val previousClose: Job?,
    engineConfig: OutboxConfig,
    private val networkMonitor: NetworkMonitor?,
    private val scope: CoroutineScope,
) : AutoCloseable {
    /** The background-drain decision; shared with [OutboxDrainWorker]. */
    internal val drainPolicy = BackgroundDrainPolicy()

    private val engine = CompletableDeferred<Outbox>()
    private val closed = MutableStateFlow(false)
    private val shutdownDone = CompletableDeferred<Unit>()

    /**
     * Serialises the facts reported to the engine (online, foreground, background) and the
     * status reads of [status]: each fact is taken in report order, and a status read reflects
     * every fact reported before it. Kotlin's [Mutex] is fair (FIFO).
     */
    private val factOrder = Mutex()

    private val drainScheduler = if (config.backgroundDrain) {
        BackgroundDrainScheduler(context, config.backgroundDrainBudgetMs)
    } else {
        null
    }
    private val lifecycleMonitor = if (config.observeLifecycle) {
        LifecycleMonitor(
            ProcessLifecycleOwner.get().lifecycle,
            onForeground = { reportFact("onForeground") { it.onForeground() } },
            onBackground = {
                reportFact("onBackground") { it.onBackground() }
                // The report made while starting up is covered by the open's own check.
                if (started) scope.launch { scheduleBackgroundDrainIfPending() }
            },
        )
    } else {
        null
    }

    @Volatile
    private var started = false
    private var subscription: Subscription? = null

    /** Path of the database file. */
    val databasePath: String = engineConfig.path

    /** Engine events until [close] (see [Outbox.events]). */
    val events: Flow<OutboxEvent> = flow { emitAll(outbox().events()) }.untilClosed()

    /** Status snapshots until [close]: the current one, then one after each burst of events. */
    val statusFlow: Flow<Status> = flow { emitAll(outbox().statusUpdates()) }.untilClosed()

    /**
     * The engine itself, for every method of the generated `Outbox` (queries, retry, discard, …):
     * suspends until the database is open (the first call after [init]).
     *
     * @throws uniffi.outbox_ffi.OutboxException when the database could not be opened.
     * @throws IllegalStateException after [close].
     */
    suspend fun outbox(): Outbox {
        check(!closed.value) { "OutboxAndroid is closed" }
        return engine.await()
    }

    /** Enqueues a command (durable when this returns) and returns its id. */
    suspend fun enqueue(request: EnqueueRequest): String = outbox().enqueue(request)

    /** Suspends until the command [id] is settled (succeeded, failed, conflict, wedged, discarded). */
    suspend fun waitFor(id: String): Settlement = outbox().waitFor(id)

    /** A status snapshot; reflects every connectivity and lifecycle fact reported before the call. */
    suspend fun status(): Status = factsApplied().status()

    /**
     * Drains for at most [budgetMs] and reports what happened (see `Outbox.drainFor`); starts
     * after every connectivity and lifecycle fact reported before the call has reached the engine.
     */
    suspend fun drainFor(budgetMs: Long): DrainReport = factsApplied().drainFor(budgetMs.coerceAtLeast(0).toULong())

    /** Asks the engine to send and pull now. */
    suspend fun syncNow() = outbox().syncNow()

    /**
     * Enqueues the WorkManager drain work when commands are pending or in flight; returns whether
     * it did. Called at start-up and on going to the background; apps rarely need it.
     */
    suspend fun scheduleBackgroundDrainIfPending(): Boolean {
        val scheduler = drainScheduler ?: return false
        if (closed.value) return false
        val status = try {
            status()
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            reportAdapterError("status for background drain", e)
            return false
        }
        if (!drainPolicy.onStatus(status)) return false
        report("schedule background drain") { scheduler.enqueue() }
        return true
    }

    /**
     * Stops the platform wiring, ends [events] and [statusFlow], clears the instance (so [init]
     * can run again, after logout, for another user) and shuts the engine down gracefully: this
     * returns once nothing of the engine is in flight (sends already on the wire are answered
     * and recorded, within the attempt timeout), and the handle is freed. Idempotent; every
     * caller returns when the shutdown is over.
     */
    suspend fun shutdown() {
        close()
        shutdownDone.await()
    }

    /**
     * [shutdown] without waiting: stops the platform wiring and clears the instance at once
     * (call on the main thread, e.g. on logout), and finishes the engine's graceful shutdown in
     * the background. A following [init] on the same database waits for it before opening.
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
        val finishing = engineScope.launch {
            try {
                val ob = runCatching { engine.await() }.getOrNull() ?: return@launch
                try {
                    ob.shutdown()
                } catch (e: Exception) {
                    reportAdapterError("shutdown", e)
                } finally {
                    ob.close() // frees the handle
                }
            } finally {
                shutdownDone.complete(Unit)
            }
        }
        synchronized(Companion) { lastClose = finishing }
    }

    internal fun reportAdapterError(what: String, error: Throwable) = config.onAdapterError(what, error)

    /** Opens the engine (after the previous instance's shutdown), then starts what needs it. */
    private fun open(engineConfig: OutboxConfig) {
        engineScope.launch {
            previousClose?.join()
            val opened = try {
                val transport = config.transport
                val tokens = config.tokenProvider
                val ob = when {
                    transport != null -> Outbox.openWithTransport(engineConfig, transport)
                    tokens != null -> Outbox.openWithTokens(engineConfig, tokens)
                    else -> Outbox.open(engineConfig)
                }
                try {
                    config.mutators.forEach { (name, options) -> ob.registerMutator(name, options) }
                    if (drainScheduler != null) {
                        subscription = ob.subscribe(object : EventListener {
                            override fun onEvent(event: OutboxEvent) {
                                if (event is OutboxEvent.Enqueued && !closed.value && drainPolicy.onEnqueued()) {
                                    report("schedule background drain") { drainScheduler.enqueue() }
                                }
                            }
                        })
                    }
                } catch (e: Exception) {
                    ob.shutdown()
                    ob.close()
                    throw e
                }
                ob
            } catch (e: Exception) {
                reportAdapterError("open", e)
                engine.completeExceptionally(e)
                return@launch
            }
            engine.complete(opened)
            // Closed while opening: close() is waiting for the engine to shut it down.
            if (!closed.value) scope.launch { scheduleBackgroundDrainIfPending() }
        }
    }

    private fun start() {
        networkMonitor?.start()
        lifecycleMonitor?.start()
        started = true
    }

    /**
     * Reports a fact to the engine, in report order, once it is open. The caller's thread only
     * queues the report (no I/O on it); failures go to `onAdapterError`.
     */
    private fun reportFact(what: String, block: suspend (Outbox) -> Unit) {
        // UNDISPATCHED: the coroutine queues on the fair lock in the caller's thread, so facts
        // keep the order in which they were reported.
        scope.launch(start = CoroutineStart.UNDISPATCHED) {
            factOrder.withLock {
                if (closed.value) return@withLock // a fact for a closing engine is moot
                try {
                    block(engine.await())
                } catch (e: CancellationException) {
                    throw e
                } catch (e: Exception) {
                    if (!closed.value) reportAdapterError(what, e)
                }
            }
        }
    }

    /** The engine, once every fact reported so far has reached it (the fair lock is FIFO). */
    private suspend fun factsApplied(): Outbox {
        val ob = outbox()
        factOrder.withLock { }
        return ob
    }

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

        /** The graceful shutdown of the last closed instance (the next open waits for it). */
        private var lastClose: Job? = null

        /** Opens and shuts down engines; never cancelled, so a shutdown always completes. */
        private val engineScope = CoroutineScope(SupervisorJob() + Dispatchers.Default)

        /**
         * Creates the process-wide instance for `<noBackupFilesDir>/<databaseName>` and starts
         * the adapters. Returns at once: the database is opened off the calling thread, and
         * [outbox] (and every suspend method) waits for it. Call once per process on the main
         * thread, typically in `Application.onCreate` (so a process that WorkManager starts
         * for [OutboxDrainWorker] has an instance too).
         *
         * @throws IllegalStateException when an instance is already open (close it first).
         * @throws IllegalArgumentException for a bad [OutboxAndroidConfig.databaseName], or a
         *   [OutboxAndroidConfig.serverUrl] without a token provider or transport.
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
            var instance: OutboxAndroid? = null
            val debouncer = if (config.monitorNetwork) {
                ConnectivityDebouncer(CoroutineDelayScheduler(scope), config.offlineDebounceMs) { online ->
                    instance?.reportFact("setOnline") { it.setOnline(online) }
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
            OutboxAndroid(app, config, lastClose, engineConfig, monitor, scope).also {
                instance = it
                current = it
                it.open(engineConfig)
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
