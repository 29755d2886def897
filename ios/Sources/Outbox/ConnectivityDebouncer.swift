import Foundation

/// A scheduled action that can still be called off.
public protocol ScheduledAction: AnyObject {
    /// Stops the action if it has not run yet; does nothing afterwards.
    func cancel()
}

/// Runs an action after a delay. Production code uses ``DispatchDelayScheduler``; tests inject
/// a manual clock so debounce timing is checked without sleeping.
public protocol DelayScheduler: AnyObject {
    /// Runs `action` once, `delayMs` milliseconds from now.
    func schedule(afterMs delayMs: UInt64, _ action: @escaping @Sendable () -> Void) -> ScheduledAction
}

extension DispatchWorkItem: ScheduledAction {}

/// A ``DelayScheduler`` on a dispatch queue.
public final class DispatchDelayScheduler: DelayScheduler, @unchecked Sendable {
    private let queue: DispatchQueue

    /// Schedules on `queue` (a private serial queue by default).
    public init(queue: DispatchQueue = DispatchQueue(label: "dev.outbox.debounce")) {
        self.queue = queue
    }

    public func schedule(afterMs delayMs: UInt64, _ action: @escaping @Sendable () -> Void) -> ScheduledAction {
        let item = DispatchWorkItem(block: action)
        queue.asyncAfter(deadline: .now() + .milliseconds(Int(clamping: delayMs)), execute: item)
        return item
    }
}

/// Turns a stream of raw connectivity observations into calls to `report` that do not thrash.
///
/// Going offline is reported only after the device has stayed offline for `offlineDelayMs`
/// (Wi-Fi hand-overs briefly drop the path); going online after `onlineDelayMs` (0 by default:
/// immediately, so queued work starts at once). A change undone within its delay is never
/// reported, and a value is reported only when it differs from the last one reported. Pure
/// logic (Foundation only), thread-safe; the same rules as the Android adapter.
public final class ConnectivityDebouncer: @unchecked Sendable {
    /// Default time the device must stay offline before it is reported offline.
    public static let defaultOfflineDelayMs: UInt64 = 500

    private let scheduler: DelayScheduler
    private let offlineDelayMs: UInt64
    private let onlineDelayMs: UInt64
    private let report: (Bool) -> Void
    private let lock = NSLock()
    private var reported: Bool?
    private var pendingTarget: Bool?
    private var pending: ScheduledAction?
    private var generation: UInt64 = 0

    /// - Parameters:
    ///   - scheduler: runs the delayed reports.
    ///   - report: receives each debounced value; called while an internal lock is held, so it
    ///     must not call back into this object.
    public init(
        scheduler: DelayScheduler,
        offlineDelayMs: UInt64 = ConnectivityDebouncer.defaultOfflineDelayMs,
        onlineDelayMs: UInt64 = 0,
        report: @escaping (Bool) -> Void
    ) {
        self.scheduler = scheduler
        self.offlineDelayMs = offlineDelayMs
        self.onlineDelayMs = onlineDelayMs
        self.report = report
    }

    /// The last value passed to `report`, or nil before the first one.
    public var lastReported: Bool? {
        lock.lock()
        defer { lock.unlock() }
        return reported
    }

    /// Reports `online` at once (no debounce) and drops any pending report: for the initial state.
    public func seed(online: Bool) {
        lock.lock()
        defer { lock.unlock() }
        dropPending()
        deliver(online)
    }

    /// Feeds one observation; reports it after the matching delay unless it is undone first.
    public func update(online: Bool) {
        lock.lock()
        defer { lock.unlock() }
        if pendingTarget == online { return } // already on its way: keep the original deadline
        dropPending()
        if reported == online { return } // a flap that came back before its delay ran out
        let delayMs = online ? onlineDelayMs : offlineDelayMs
        if delayMs == 0 {
            deliver(online)
            return
        }
        generation &+= 1
        let mine = generation
        pendingTarget = online
        pending = scheduler.schedule(afterMs: delayMs) { [weak self] in
            self?.fire(generation: mine, online: online)
        }
    }

    /// Drops a pending report (call when the monitor stops).
    public func cancel() {
        lock.lock()
        defer { lock.unlock() }
        dropPending()
    }

    private func fire(generation mine: UInt64, online: Bool) {
        lock.lock()
        defer { lock.unlock() }
        guard generation == mine, pendingTarget == online else { return }
        pendingTarget = nil
        pending = nil
        deliver(online)
    }

    private func dropPending() {
        generation &+= 1
        pending?.cancel()
        pending = nil
        pendingTarget = nil
    }

    private func deliver(_ online: Bool) {
        if reported == online { return }
        reported = online
        report(online)
    }
}
