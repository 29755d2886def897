import Foundation
import os

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
    /// File name inside `Application Support/Outbox/` (a plain name, no `/`).
    public var databaseName = "outbox.db"
    /// Report connectivity from `NWPathMonitor` (``NetworkMonitor``).
    public var monitorNetwork = true
    /// Report foreground/background from UIKit notifications (``LifecycleMonitor``).
    public var observeLifecycle = true
    /// Ask for background time (BGProcessingTask, and the seconds after entering the
    /// background) while commands are pending. Needs ``BackgroundDrain/register(identifier:)``.
    public var backgroundDrain = true
    /// The BGTaskScheduler identifier (must match ``BackgroundDrain/register(identifier:)`` and Info.plist).
    public var backgroundTaskIdentifier = BackgroundDrain.defaultTaskIdentifier
    /// How long the network must stay down before the engine hears "offline".
    public var offlineDebounceMs = ConnectivityDebouncer.defaultOfflineDelayMs
    /// Time limit of one BGProcessingTask drain (the system may expire it sooner).
    public var backgroundDrainBudgetMs: UInt64 = 5 * 60 * 1000
    /// Upper bound of the drain run in the seconds granted after entering the background.
    public var exitDrainBudgetMs: UInt64 = 25 * 1000
    /// Adjusts the engine configuration (concurrency, attempts, durability, …); the database
    /// path is always the one in Application Support.
    public var configure: (OutboxConfig) -> OutboxConfig = { $0 }
    /// Receives errors of the platform wiring (reporting a fact to a closing engine, a refused
    /// background-task request); logs them by default.
    public var onAdapterError: (String, Error) -> Void = { what, error in
        os.Logger(subsystem: "dev.outbox", category: "adapters").warning("\(what, privacy: .public): \(String(describing: error), privacy: .public)")
    }

    /// A configuration with the defaults above.
    public init(userId: String, workspaceId: String, serverUrl: String?, tokenProvider: TokenProvider?, transport: Transport? = nil) {
        self.userId = userId
        self.workspaceId = workspaceId
        self.serverUrl = serverUrl
        self.tokenProvider = tokenProvider
        self.transport = transport
    }
}

/// Errors of ``OutboxIOS/start(_:)`` itself (the engine's own errors are ``OutboxError``).
public enum OutboxIOSError: Error, Equatable {
    /// An instance is open already: close it first.
    case alreadyStarted
    /// `databaseName` is empty or contains a `/`.
    case invalidDatabaseName(String)
    /// `serverUrl` is set but neither `tokenProvider` nor `transport` is.
    case missingTokenProvider
}

/// The Outbox engine wired into an iOS app: database in Application Support (excluded from
/// backup), connectivity and lifecycle reported to the engine, background draining through
/// BGTaskScheduler and `beginBackgroundTask`, `async` calls and `AsyncStream`s. Create it once
/// with ``start(_:)``, use ``outbox`` for the full engine API, and ``close()`` it on logout.
public final class OutboxIOS: @unchecked Sendable {
    /// The engine itself: every method of the generated `Outbox` (queries, retry, discard, …).
    public let outbox: Outbox
    /// Where the database file lives.
    public let databaseURL: URL
    /// The configuration it was started with.
    public let config: OutboxIOSConfig

    let drainPolicy = BackgroundDrainPolicy()
    private let lock = NSLock()
    private var closed = false
    private var started = false
    private var subscription: Subscription?
    private var streamEnders: [UUID: () -> Void] = [:]
    private var networkMonitor: NetworkMonitor?
    #if canImport(UIKit)
    private var lifecycleMonitor: LifecycleMonitor?
    #endif

    private static let currentLock = NSLock()
    private static var currentInstance: OutboxIOS?

    /// The open instance, or nil before ``start(_:)`` and after ``close()``.
    public static var current: OutboxIOS? {
        currentLock.lock()
        defer { currentLock.unlock() }
        return currentInstance
    }

    private init(outbox: Outbox, databaseURL: URL, config: OutboxIOSConfig) {
        self.outbox = outbox
        self.databaseURL = databaseURL
        self.config = config
    }

    /// The directory the database lives in: `Application Support/Outbox`, created if needed and
    /// marked `isExcludedFromBackup` (the queue is device state, not user data to restore on
    /// another phone: restoring it would re-send commands under another device's lease).
    public static func databaseDirectory() throws -> URL {
        let support = try FileManager.default.url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
        var dir = support.appendingPathComponent("Outbox", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try dir.setResourceValues(values)
        return dir
    }

    /// Opens the engine on `Application Support/Outbox/<databaseName>` and starts the adapters.
    /// Call once per process on the main thread, from `application(_:didFinishLaunchingWithOptions:)`
    /// (after ``BackgroundDrain/register(identifier:)``), so a process launched for a background
    /// task has an instance too.
    ///
    /// - Throws: ``OutboxIOSError`` for a second start or a bad name, ``OutboxError`` when the
    ///   database cannot be opened, a file-system error when the directory cannot be created.
    @MainActor
    public static func start(_ config: OutboxIOSConfig) throws -> OutboxIOS {
        currentLock.lock()
        defer { currentLock.unlock() }
        guard currentInstance == nil else { throw OutboxIOSError.alreadyStarted }
        guard !config.databaseName.isEmpty, !config.databaseName.contains("/") else {
            throw OutboxIOSError.invalidDatabaseName(config.databaseName)
        }
        let url = try databaseDirectory().appendingPathComponent(config.databaseName, isDirectory: false)
        var engineConfig = config.configure(OutboxConfig(
            path: url.path,
            userId: config.userId,
            workspaceId: config.workspaceId,
            serverUrl: config.serverUrl
        ))
        engineConfig.path = url.path
        let outbox: Outbox
        if let transport = config.transport {
            outbox = try Outbox.openWithTransport(config: engineConfig, transport: transport)
        } else if let tokens = config.tokenProvider {
            outbox = try Outbox.openWithTokens(config: engineConfig, tokenProvider: tokens)
        } else if config.serverUrl != nil {
            throw OutboxIOSError.missingTokenProvider
        } else {
            outbox = try Outbox.open(config: engineConfig)
        }
        let instance = OutboxIOS(outbox: outbox, databaseURL: url, config: config)
        currentInstance = instance
        instance.wire()
        return instance
    }

    @MainActor
    private func wire() {
        if config.monitorNetwork {
            let debouncer = ConnectivityDebouncer(scheduler: DispatchDelayScheduler(), offlineDelayMs: config.offlineDebounceMs) { [weak self] online in
                self?.report("setOnline") { try self?.outbox.setOnline(online: online) }
            }
            let monitor = NetworkMonitor(debouncer: debouncer)
            networkMonitor = monitor
            monitor.start()
        }
        if config.backgroundDrain {
            do {
                subscription = try outbox.subscribe(listener: EnqueuedListener { [weak self] in
                    guard let self, !self.isClosed, self.drainPolicy.onEnqueued() else { return }
                    self.submitBackgroundDrain()
                })
            } catch {
                config.onAdapterError("subscribe", error)
            }
        }
        #if canImport(UIKit)
        if config.observeLifecycle {
            let monitor = LifecycleMonitor(
                onForeground: { [weak self] in self?.report("onForeground") { try self?.outbox.onForeground() } },
                onBackground: { [weak self] in self?.enteredBackground() }
            )
            lifecycleMonitor = monitor
            monitor.start()
        }
        #endif
        lock.lock()
        started = true
        lock.unlock()
        Task.detached { [weak self] in self?.scheduleBackgroundDrainIfPending() }
    }

    @MainActor
    private func enteredBackground() {
        report("onBackground") { try outbox.onBackground() }
        lock.lock()
        let isStarted = started
        lock.unlock()
        // The report made while starting up is covered by wire()'s own check.
        guard isStarted, config.backgroundDrain else { return }
        #if canImport(UIKit) && canImport(BackgroundTasks)
        BackgroundDrain.drainInGrantedTime(self)
        #endif
        Task.detached { [weak self] in self?.scheduleBackgroundDrainIfPending() }
    }

    private var isClosed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return closed
    }

    // MARK: async API

    /// Enqueues a command (durable when this returns) and returns its id; runs off the caller's actor.
    public func enqueue(_ request: EnqueueRequest) async throws -> String {
        let outbox = self.outbox
        return try await Task.detached { try outbox.enqueue(request: request) }.value
    }

    /// Suspends until the command `id` is settled (succeeded, failed, conflict, wedged, discarded).
    public func waitFor(_ id: String) async throws -> Settlement {
        try await outbox.waitFor(id: id)
    }

    /// A status snapshot; runs off the caller's actor.
    public func status() async throws -> Status {
        let outbox = self.outbox
        return try await Task.detached { try outbox.status() }.value
    }

    /// Drains for at most `budgetMs` and reports what happened (see `Outbox.drainFor`).
    public func drainFor(budgetMs: UInt64) async throws -> DrainReport {
        try await outbox.drainFor(budgetMs: budgetMs)
    }

    /// Asks the engine to send and pull now.
    public func syncNow() throws {
        try outbox.syncNow()
    }

    // MARK: streams

    /// Engine events until ``close()`` (or until the consumer stops iterating, which cancels
    /// its subscription). Each call is a separate subscription.
    public func events(bufferingPolicy: AsyncStream<OutboxEvent>.Continuation.BufferingPolicy = .unbounded) -> AsyncStream<OutboxEvent> {
        AsyncStream(bufferingPolicy: bufferingPolicy) { continuation in
            let key = UUID()
            guard addStreamEnder(key, { continuation.finish() }) else {
                continuation.finish()
                return
            }
            let subscription: Subscription
            do {
                subscription = try outbox.subscribe(listener: StreamListener(continuation))
            } catch {
                removeStreamEnder(key)
                continuation.finish()
                return
            }
            continuation.onTermination = { [weak self] _ in
                subscription.cancel()
                self?.removeStreamEnder(key)
            }
        }
    }

    /// Status snapshots until ``close()``: the current one at once, then a fresh one after
    /// events (bursts coalesce; a slow consumer sees the newest).
    public func statusUpdates() -> AsyncStream<Status> {
        let outbox = self.outbox
        let triggers = events(bufferingPolicy: .bufferingNewest(1))
        return AsyncStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let task = Task.detached {
                if let s = try? outbox.status() { continuation.yield(s) }
                for await _ in triggers {
                    guard let s = try? outbox.status() else { break }
                    continuation.yield(s)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    private func addStreamEnder(_ key: UUID, _ end: @escaping () -> Void) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return false }
        streamEnders[key] = end
        return true
    }

    private func removeStreamEnder(_ key: UUID) {
        lock.lock()
        streamEnders[key] = nil
        lock.unlock()
    }

    // MARK: background draining

    /// Submits the BGProcessingTask request when commands are pending or in flight; returns
    /// whether it did. Called at start-up and on entering the background; apps rarely need it.
    @discardableResult
    public func scheduleBackgroundDrainIfPending() -> Bool {
        guard config.backgroundDrain, !isClosed else { return false }
        let status: Status
        do {
            status = try outbox.status()
        } catch {
            config.onAdapterError("status for background drain", error)
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
            let report = try await outbox.drainFor(budgetMs: budgetMs)
            return drainPolicy.onRunFinished(remaining: report.remaining)
        } catch {
            config.onAdapterError("background drain", error)
            return .runAgain
        }
    }

    // MARK: closing

    /// Stops the adapters, ends every stream, shuts the engine down (in-flight sends resume at
    /// the next open) and clears ``current`` so ``start(_:)`` can run again (after logout).
    /// Main actor. Idempotent.
    @MainActor
    public func close() {
        lock.lock()
        if closed {
            lock.unlock()
            return
        }
        closed = true
        let enders = Array(streamEnders.values)
        streamEnders = [:]
        lock.unlock()
        Self.currentLock.lock()
        if Self.currentInstance === self { Self.currentInstance = nil }
        Self.currentLock.unlock()
        #if canImport(UIKit)
        lifecycleMonitor?.stop()
        #endif
        networkMonitor?.stop()
        subscription?.cancel()
        enders.forEach { $0() }
        outbox.shutdown()
    }

    private func report(_ what: String, _ body: () throws -> Void) {
        do {
            try body()
        } catch {
            config.onAdapterError(what, error)
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
