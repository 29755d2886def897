import Foundation

/// What a background drain run should tell the OS.
public enum DrainVerdict: Equatable, Sendable {
    /// Nothing is left to send: the background work is finished.
    case done
    /// Commands are still pending or in flight: ask for background time again.
    case runAgain
}

/// When background draining must be requested from the OS, what a finished run means, and how
/// much of the granted time a drain may use.
///
/// It decides only *whether to ask the OS for background time*; when and how commands are sent
/// stays in the engine. Requests are deduplicated in memory: after one is made, further
/// `enqueued` events do not ask again until a run reports ``DrainVerdict/done``. Status checks
/// (at start-up and on entering the background) always ask while work is left. Pure logic
/// (Foundation only), thread-safe; the same rules as the Android adapter.
public final class BackgroundDrainPolicy: @unchecked Sendable {
    /// The default BGTaskScheduler task identifier (add it to `BGTaskSchedulerPermittedIdentifiers`).
    /// Declared here, not in `BackgroundDrain`, because it is part of the configuration on every
    /// platform the package compiles for, while `BackgroundDrain` exists only with UIKit and
    /// BackgroundTasks.
    public static let defaultTaskIdentifier = "dev.outbox.drain"

    private let lock = NSLock()
    private var requested = false

    /// Creates a policy with no outstanding request.
    public init() {}

    /// True when `pending + inFlight` shows work a background run could send.
    public static func hasWork(pending: UInt64, inFlight: UInt64) -> Bool {
        pending + inFlight > 0
    }

    /// The verdict for a finished run that left `remaining` commands pending or in flight.
    public static func verdict(remaining: UInt64) -> DrainVerdict {
        remaining == 0 ? .done : .runAgain
    }

    /// The drain budget inside an expiring background window: the OS's `remaining` seconds
    /// minus `marginSeconds` (to stop and clean up before the deadline), capped at `capMs`;
    /// `capMs` when the OS reports no finite limit.
    public static func budgetMs(remainingSeconds: TimeInterval, capMs: UInt64, marginSeconds: TimeInterval = 5) -> UInt64 {
        // iOS reports DBL_MAX while the app is still in the foreground.
        guard remainingSeconds.isFinite else { return capMs }
        let usable = (remainingSeconds - marginSeconds) * 1000
        guard usable > 0 else { return 0 }
        guard usable < Double(capMs) else { return capMs } // also catches overflow to +inf
        return UInt64(usable)
    }

    /// For a status read at start-up or on entering the background: true when a request is due.
    public func onStatus(pending: UInt64, inFlight: UInt64) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let due = Self.hasWork(pending: pending, inFlight: inFlight)
        if due { requested = true }
        return due
    }

    /// For an `enqueued` event: true when no request is outstanding yet.
    public func onEnqueued() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if requested { return false }
        requested = true
        return true
    }

    /// For the end of a background run: what to tell the OS.
    public func onRunFinished(remaining: UInt64) -> DrainVerdict {
        lock.lock()
        defer { lock.unlock() }
        let verdict = Self.verdict(remaining: remaining)
        if verdict == .done { requested = false }
        return verdict
    }

    /// Forgets the outstanding request (the run failed or could not be scheduled).
    public func onRunAbandoned() {
        lock.lock()
        defer { lock.unlock() }
        requested = false
    }
}
