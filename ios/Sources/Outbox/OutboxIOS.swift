import Foundation
#if canImport(os)
import os
#endif

/// How ``OutboxIOS/start(_:)`` opens and wires the engine.
public struct OutboxIOSConfig {
    /// The signed-in user; data is scoped per (user, workspace).
    public var userId: String
    /// The workspace the app works in.
    public var workspaceId: String
    /// Base URL of the sync server (`https://…`), or nil to queue without sending.
    public var serverUrl: String?
    /// Supplies an auth token per request for the built-in HTTP transport (required with
    /// `serverUrl`); tokens are never stored.
    public var tokenProvider: TokenProvider?
    /// The app's own transport instead of the built-in HTTP one (then `serverUrl` and
    /// `tokenProvider` are not used).
    public var transport: Transport?
    /// The mutators to register (name → options), before the engine is handed to any caller,
    /// so no enqueue can run ahead of its registration.
    public var mutators: [String: MutatorOptions] = [:]
    /// File name inside `Application Support/Outbox/` (a plain name, no `/`).
    public var databaseName = "outbox.db"
    /// Report connectivity from `NWPathMonitor` (``NetworkMonitor``).
    public var monitorNetwork = true
    /// Report foreground/background from UIKit notifications (``LifecycleMonitor``).
    public var observeLifecycle = true
    /// Ask for background time (BGProcessingTask, and the seconds after entering the
    /// background) while commands are pending. Needs `BackgroundDrain.register(identifier:)`.
    public var backgroundDrain = true
    /// The BGTaskScheduler identifier (must match `BackgroundDrain.register(identifier:)` and Info.plist).
    public var backgroundTaskIdentifier = BackgroundDrainPolicy.defaultTaskIdentifier
    /// How long the network must stay down before the engine hears "offline".
    public var offlineDebounceMs = ConnectivityDebouncer.defaultOfflineDelayMs
    /// Time limit of one BGProcessingTask drain (the system may expire it sooner).
    public var backgroundDrainBudgetMs: UInt64 = 5 * 60 * 1000
    /// Upper bound of the drain run in the seconds granted after entering the background.
    public var exitDrainBudgetMs: UInt64 = 25 * 1000
    /// Adjusts the engine configuration (concurrency, attempts, durability, …); the database
    /// path is always the one in Application Support.
    public var configure: (OutboxConfig) -> OutboxConfig = { $0 }
    /// Receives errors of the platform wiring (opening the database, reporting a fact to a
    /// closing engine, a refused background-task request); logs them by default (`os.Logger`
    /// on Apple platforms, standard error elsewhere).
    public var onAdapterError: (String, Error) -> Void = OutboxIOSConfig.logAdapterError

    /// Tests only: the folder that stands for Application Support.
    var supportDirectory: URL?

    /// A configuration with the defaults above.
    public init(userId: String, workspaceId: String, serverUrl: String?, tokenProvider: TokenProvider?, transport: Transport? = nil) {
        self.userId = userId
        self.workspaceId = workspaceId
        self.serverUrl = serverUrl
        self.tokenProvider = tokenProvider
        self.transport = transport
    }

    /// The default ``onAdapterError``.
    public static func logAdapterError(_ what: String, _ error: Error) {
        #if canImport(os)
        os.Logger(subsystem: "dev.outbox", category: "adapters").warning("\(what, privacy: .public): \(String(describing: error), privacy: .public)")
        #else
        FileHandle.standardError.write(Data("[outbox adapters] \(what): \(error)\n".utf8))
        #endif
    }
}

/// Errors of ``OutboxIOS`` itself (the engine's own errors are ``OutboxError``).
public enum OutboxIOSError: Error, Equatable {
    /// An instance is open already: close it first.
    case alreadyStarted
    /// `databaseName` is empty or contains a `/`.
    case invalidDatabaseName(String)
    /// `serverUrl` is set but neither `tokenProvider` nor `transport` is.
    case missingTokenProvider
    /// The instance was closed.
    case closed
}

extension NSLock {
    /// Runs `body` holding the lock. Usable from `async` code, where a bare `lock()`/`unlock()`
    /// pair is not (and cannot span a suspension point).
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// The Outbox engine wired into an iOS app: database in Application Support (excluded from
/// backup), connectivity and lifecycle reported to the engine, background draining through
/// BGTaskScheduler and `beginBackgroundTask`, `async` calls and `AsyncStream`s. Create it once
/// with ``start(_:)`` (it returns at once and opens the database off the main thread), reach the
/// full engine API with ``outbox()``, and ``shutdown()`` (or ``close()``) it on logout.
public final class OutboxIOS: @unchecked Sendable {
    /// Where the database file lives.
    public let databaseURL: URL
    /// The configuration it was started with.
    public let config: OutboxIOSConfig

    let drainPolicy = BackgroundDrainPolicy()
    /// The engine being opened (after the previous instance's shutdown), then open.
    private let engine: Task<Outbox, Error>
    private let lock = NSLock()
    private var closed = false
    private var started = false
    private var subscription: Subscription?
    private var streamEnders: [UUID: () -> Void] = [:]
    /// The last fact reported to the engine: each report waits for the one before it, so facts
    /// reach the engine in report order, and ``status()`` waits for all of them.
    private var lastFact: Task<Void, Never>?
    private var finishing: Task<Void, Never>?
    /// Reports connectivity (nil when `monitorNetwork` is off). Internal for tests, which feed
    /// it observations where there is no `NWPathMonitor`.
    private(set) var networkMonitor: NetworkMonitor?
    #if canImport(UIKit)
    private var lifecycleMonitor: LifecycleMonitor?
    #endif

    private static let currentLock = NSLock()
    private static var currentInstance: OutboxIOS?
    /// The graceful shutdown of the last closed instance (the next open waits for it).
    private static var lastClose: Task<Void, Never>?

    /// The open instance, or nil before ``start(_:)`` and after ``close()``.
    public static var current: OutboxIOS? {
        currentLock.withLock { currentInstance }
    }

    private init(databaseURL: URL, config: OutboxIOSConfig, previousClose: Task<Void, Never>?) {
        self.databaseURL = databaseURL
        self.config = config
        var engineConfig = config.configure(OutboxConfig(
            path: databaseURL.path,
            userId: config.userId,
            workspaceId: config.workspaceId,
            serverUrl: config.serverUrl
        ))
        engineConfig.path = databaseURL.path
        let cfg = engineConfig
        engine = Task.detached {
            await previousClose?.value
            let ob: Outbox
            do {
                if let transport = config.transport {
                    ob = try await Outbox.openWithTransport(config: cfg, transport: transport)
                } else if let tokens = config.tokenProvider {
                    ob = try await Outbox.openWithTokens(config: cfg, tokenProvider: tokens)
                } else {
                    ob = try await Outbox.open(config: cfg)
                }
            } catch {
                config.onAdapterError("open", error)
                throw error
            }
            do {
                for (name, options) in config.mutators.sorted(by: { $0.key < $1.key }) {
                    try ob.registerMutator(name: name, options: options)
                }
            } catch {
                config.onAdapterError("registerMutator", error)
                await ob.shutdown()
                throw error
            }
            return ob
        }
    }

    /// The directory the database lives in: `Application Support/Outbox`, created if needed and
    /// marked `isExcludedFromBackup` (the queue is device state, not user data to restore on
    /// another phone: restoring it would re-send commands under another device's lease).
    public static func databaseDirectory() throws -> URL {
        try databaseDirectory(in: nil)
    }

    static func databaseDirectory(in supportDirectory: URL?) throws -> URL {
        let support = try supportDirectory
            ?? FileManager.default.url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
        var dir = support.appendingPathComponent("Outbox", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        #if canImport(Darwin)
        // Linux has no backup to be excluded from (and corelibs Foundation cannot set the flag).
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try dir.setResourceValues(values)
        #endif
        return dir
    }

    /// Creates the process-wide instance for `Application Support/Outbox/<databaseName>` and
    /// starts the adapters. Returns at once: the database is opened off the calling thread, and
    /// ``outbox()`` (and every `async` method) waits for it. Call once per process on the main
    /// thread, from `application(_:didFinishLaunchingWithOptions:)` (after
    /// `BackgroundDrain.register(identifier:)`), so a process launched for a background task has
    /// an instance too. After ``close()``, the next start opens once the previous engine is shut down.
    ///
    /// - Throws: ``OutboxIOSError`` for a second start, a bad name or a server without a token
    ///   provider; a file-system error when the directory cannot be created. Errors opening the
    ///   database (``OutboxError``) are thrown by ``outbox()`` and reported to `onAdapterError`.
    @MainActor
    @discardableResult
    public static func start(_ config: OutboxIOSConfig) throws -> OutboxIOS {
        let instance: OutboxIOS = try currentLock.withLock {
            guard currentInstance == nil else { throw OutboxIOSError.alreadyStarted }
            guard !config.databaseName.isEmpty, !config.databaseName.contains("/") else {
                throw OutboxIOSError.invalidDatabaseName(config.databaseName)
            }
            guard config.serverUrl == nil || config.tokenProvider != nil || config.transport != nil else {
                throw OutboxIOSError.missingTokenProvider
            }
            let url = try databaseDirectory(in: config.supportDirectory)
                .appendingPathComponent(config.databaseName, isDirectory: false)
            let instance = OutboxIOS(databaseURL: url, config: config, previousClose: lastClose)
            currentInstance = instance
            return instance
        }
        instance.wire()
        return instance
    }

    @MainActor
    private func wire() {
        if config.monitorNetwork {
            let debouncer = ConnectivityDebouncer(scheduler: DispatchDelayScheduler(), offlineDelayMs: config.offlineDebounceMs) { [weak self] online in
                self?.reportFact("setOnline") { try await $0.setOnline(online: online) }
            }
            let monitor = NetworkMonitor(debouncer: debouncer)
            networkMonitor = monitor
            monitor.start()
        }
        #if canImport(UIKit)
        if config.observeLifecycle {
            let monitor = LifecycleMonitor(
                onForeground: { [weak self] in self?.reportFact("onForeground") { try await $0.onForeground() } },
                onBackground: { [weak self] in self?.enteredBackground() }
            )
            lifecycleMonitor = monitor
            monitor.start()
        }
        #endif
        lock.withLock { started = true }
        let backgroundDrain = config.backgroundDrain
        Task.detached { [weak self] in
            guard let self, let ob = try? await self.outbox() else { return }
            if backgroundDrain {
                do {
                    let sub = try ob.subscribe(listener: EnqueuedListener { [weak self] in
                        guard let self, !self.isClosed, self.drainPolicy.onEnqueued() else { return }
                        self.submitBackgroundDrain()
                    })
                    let keep = self.lock.withLock { () -> Bool in
                        if self.closed { return false }
                        self.subscription = sub
                        return true
                    }
                    if !keep { sub.cancel() }
                } catch {
                    self.config.onAdapterError("subscribe", error)
                }
            }
            await self.scheduleBackgroundDrainIfPending()
        }
    }

    @MainActor
    private func enteredBackground() {
        reportFact("onBackground") { try await $0.onBackground() }
        // The report made while starting up is covered by wire()'s own check.
        guard lock.withLock({ started }), config.backgroundDrain else { return }
        #if canImport(UIKit) && canImport(BackgroundTasks)
        BackgroundDrain.drainInGrantedTime(self)
        #endif
        Task.detached { [weak self] in await self?.scheduleBackgroundDrainIfPending() }
    }

    private var isClosed: Bool {
        lock.withLock { closed }
    }

    /// Reports a fact to the engine once it is open, in report order. The caller only queues
    /// the report (no I/O on its thread); failures go to `onAdapterError`.
    func reportFact(_ what: String, _ body: @escaping @Sendable (Outbox) async throws -> Void) {
        let engine = self.engine
        let onError = config.onAdapterError
        lock.withLock {
            guard !closed else { return }
            let previous = lastFact
            lastFact = Task.detached {
                await previous?.value
                do {
                    try await body(try await engine.value)
                } catch {
                    onError(what, error)
                }
            }
        }
    }

    // MARK: async API

    /// The engine itself, for every method of the generated `Outbox` (queries, retry, discard,
    /// …): waits until the database is open (the first call after ``start(_:)``).
    ///
    /// - Throws: ``OutboxError`` when the database could not be opened, ``OutboxIOSError/closed``
    ///   after ``close()``.
    public func outbox() async throws -> Outbox {
        guard !isClosed else { throw OutboxIOSError.closed }
        return try await engine.value
    }

    /// Enqueues a command (durable when this returns) and returns its id.
    public func enqueue(_ request: EnqueueRequest) async throws -> String {
        try await outbox().enqueue(request: request)
    }

    /// Suspends until the command `id` is settled (succeeded, failed, conflict, wedged, discarded).
    public func waitFor(_ id: String) async throws -> Settlement {
        try await outbox().waitFor(id: id)
    }

    /// A status snapshot; reflects every connectivity and lifecycle fact reported before the call.
    public func status() async throws -> Status {
        let ob = try await outbox()
        await factsReported()
        return try await ob.status()
    }

    /// Drains for at most `budgetMs` and reports what happened (see `Outbox.drainFor`); starts
    /// after every fact reported before the call has reached the engine.
    public func drainFor(budgetMs: UInt64) async throws -> DrainReport {
        let ob = try await outbox()
        await factsReported()
        return try await ob.drainFor(budgetMs: budgetMs)
    }

    /// Returns once every fact reported so far has reached the engine (or failed).
    private func factsReported() async {
        let facts = lock.withLock { lastFact }
        await facts?.value
    }

    /// Asks the engine to send and pull now.
    public func syncNow() async throws {
        try await outbox().syncNow()
    }

    // MARK: streams

    /// Engine events until ``close()`` (or until the consumer stops iterating, which cancels
    /// its subscription). Each call is a separate subscription, made once the engine is open:
    /// events from before that are not delivered.
    public func events(bufferingPolicy: AsyncStream<OutboxEvent>.Continuation.BufferingPolicy = .unbounded) -> AsyncStream<OutboxEvent> {
        AsyncStream(bufferingPolicy: bufferingPolicy) { continuation in
            let key = UUID()
            guard addStreamEnder(key, { continuation.finish() }) else {
                continuation.finish()
                return
            }
            // The subscription, or `ended` once iteration stopped (then a late one is cancelled).
            let state = StreamState()
            continuation.onTermination = { [weak self] _ in
                state.end()?.cancel()
                self?.removeStreamEnder(key)
            }
            Task.detached { [weak self] in
                guard let self, let ob = try? await self.outbox() else {
                    continuation.finish()
                    return
                }
                do {
                    let sub = try ob.subscribe(listener: StreamListener(continuation))
                    if !state.set(sub) { sub.cancel() }
                } catch {
                    continuation.finish()
                }
            }
        }
    }

    /// Status snapshots until ``close()``: the current one at once, then a fresh one after
    /// events (bursts coalesce; a slow consumer sees the newest).
    public func statusUpdates() -> AsyncStream<Status> {
        let triggers = events(bufferingPolicy: .bufferingNewest(1))
        return AsyncStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let task = Task.detached { [weak self] in
                guard let self else { return continuation.finish() }
                if let s = try? await self.status() { continuation.yield(s) }
                for await _ in triggers {
                    guard let s = try? await self.status() else { break }
                    continuation.yield(s)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Queue health for a status bar or a till's "all synced" light: `status()` snapshots
    /// (counts per state, the oldest unsynced command's age, the last successful send and
    /// pull, the last error and the failures in a row since, storage used against the cap,
    /// online, the drainer lease and `stalled`) until ``close()``: the current one at once,
    /// a fresh one after events, and one every `everyMilliseconds` even without events, so
    /// ages and `stalled` stay current. A slow consumer sees the newest.
    public func queueHealth(everyMilliseconds: UInt64 = 1_000) -> AsyncStream<Status> {
        let triggers = events(bufferingPolicy: .bufferingNewest(1))
        let period = max(everyMilliseconds, 10) * 1_000_000
        return AsyncStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let onEvents = Task.detached { [weak self] in
                guard let self else { return continuation.finish() }
                if let s = try? await self.status() { continuation.yield(s) }
                for await _ in triggers {
                    guard let s = try? await self.status() else { break }
                    continuation.yield(s)
                }
                continuation.finish()
            }
            let ticks = Task.detached { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: period)
                    guard let self, let s = try? await self.status() else { break }
                    continuation.yield(s)
                }
            }
            continuation.onTermination = { _ in
                onEvents.cancel()
                ticks.cancel()
            }
        }
    }

    private func addStreamEnder(_ key: UUID, _ end: @escaping () -> Void) -> Bool {
        lock.withLock {
            guard !closed else { return false }
            streamEnders[key] = end
            return true
        }
    }

    private func removeStreamEnder(_ key: UUID) {
        lock.withLock { streamEnders[key] = nil }
    }

    // MARK: background draining

    /// Submits the BGProcessingTask request when commands are pending or in flight; returns
    /// whether a request was due. Called at start-up and on entering the background; apps
    /// rarely need it.
    @discardableResult
    public func scheduleBackgroundDrainIfPending() async -> Bool {
        guard config.backgroundDrain, !isClosed else { return false }
        let status: Status
        do {
            status = try await self.status()
        } catch {
            if !isClosed { config.onAdapterError("status for background drain", error) }
            return false
        }
        guard drainPolicy.onStatus(pending: status.pending, inFlight: status.inFlight) else { return false }
        submitBackgroundDrain()
        return true
    }

    func submitBackgroundDrain() {
        #if canImport(UIKit) && canImport(BackgroundTasks)
        do {
            try BackgroundDrain.submit(identifier: config.backgroundTaskIdentifier)
        } catch {
            drainPolicy.onRunAbandoned()
            config.onAdapterError("submit BGProcessingTaskRequest", error)
        }
        #endif
    }

    /// One background run: `drainFor(budgetMs)` mapped to a verdict (errors: run again).
    func runBackgroundDrain(budgetMs: UInt64) async -> DrainVerdict {
        do {
            let report = try await drainFor(budgetMs: budgetMs)
            return drainPolicy.onRunFinished(remaining: report.remaining)
        } catch {
            config.onAdapterError("background drain", error)
            return .runAgain
        }
    }

    // MARK: closing

    /// Stops the adapters, ends every stream, clears ``current`` (so ``start(_:)`` can run again,
    /// after logout, for another user) and shuts the engine down in the background: facts
    /// already reported are delivered first, then the engine stops (see ``shutdown()`` to wait
    /// for it). A following ``start(_:)`` waits for this shutdown before opening. Main actor.
    /// Idempotent.
    @MainActor
    public func close() {
        let taken: (enders: [() -> Void], subscription: Subscription?, lastFact: Task<Void, Never>?)? = lock.withLock {
            if closed { return nil }
            closed = true
            defer {
                streamEnders = [:]
                subscription = nil
            }
            return (Array(streamEnders.values), subscription, lastFact)
        }
        guard let taken else { return }
        #if canImport(UIKit)
        lifecycleMonitor?.stop()
        #endif
        networkMonitor?.stop()
        taken.subscription?.cancel()
        taken.enders.forEach { $0() }
        let engine = self.engine
        let done = Task.detached {
            await taken.lastFact?.value
            guard let ob = try? await engine.value else { return }
            await ob.shutdown()
        }
        lock.withLock { finishing = done }
        Self.currentLock.withLock {
            if Self.currentInstance === self { Self.currentInstance = nil }
            Self.lastClose = done
        }
    }

    /// ``close()``, then waits until the engine is shut down: nothing of it is in flight any more.
    public func shutdown() async {
        await close()
        let done = lock.withLock { finishing }
        await done?.value
    }
}

/// The subscription behind one `events()` stream, which is made after the stream may already
/// have ended.
private final class StreamState: @unchecked Sendable {
    private let lock = NSLock()
    private var subscription: Subscription?
    private var ended = false

    /// Keeps `sub`; false when the stream ended already (the caller cancels it).
    func set(_ sub: Subscription) -> Bool {
        lock.withLock {
            if ended { return false }
            subscription = sub
            return true
        }
    }

    /// Marks the stream ended; returns the subscription to cancel.
    func end() -> Subscription? {
        lock.withLock {
            ended = true
            defer { subscription = nil }
            return subscription
        }
    }
}

/// Forwards engine events into an `AsyncStream`.
private final class StreamListener: EventListener, @unchecked Sendable {
    private let continuation: AsyncStream<OutboxEvent>.Continuation

    init(_ continuation: AsyncStream<OutboxEvent>.Continuation) {
        self.continuation = continuation
    }

    func onEvent(event: OutboxEvent) {
        continuation.yield(event)
    }
}

/// Calls `onEnqueued` for every `enqueued` event (the background-drain trigger).
private final class EnqueuedListener: EventListener, @unchecked Sendable {
    private let onEnqueued: () -> Void

    init(_ onEnqueued: @escaping () -> Void) {
        self.onEnqueued = onEnqueued
    }

    func onEvent(event: OutboxEvent) {
        if case .enqueued = event { onEnqueued() }
    }
}
