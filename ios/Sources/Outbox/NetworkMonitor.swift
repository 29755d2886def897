import Foundation
import Network

/// Reports whether the device has a usable network path, from `NWPathMonitor`.
///
/// A path counts as online when its status is `.satisfied`. The first update after ``start()``
/// (delivered at once by the monitor) seeds the engine without debounce; later updates go
/// through the ``ConnectivityDebouncer``. Unlike Android's `NET_CAPABILITY_VALIDATED`, iOS does
/// not say whether the path really reaches the internet (a captive portal is "satisfied"); the
/// engine copes, as a send that cannot connect is retried without using up an attempt.
public final class NetworkMonitor: @unchecked Sendable {
    private let debouncer: ConnectivityDebouncer
    private let queue = DispatchQueue(label: "dev.outbox.network")
    private let lock = NSLock()
    private var monitor: NWPathMonitor?
    private var seeded = false

    /// - Parameter debouncer: receives the observations (its report function calls `setOnline`).
    public init(debouncer: ConnectivityDebouncer) {
        self.debouncer = debouncer
    }

    /// Starts monitoring. Idempotent.
    public func start() {
        lock.lock()
        defer { lock.unlock() }
        guard monitor == nil else { return }
        let m = NWPathMonitor() // a cancelled monitor cannot be restarted: one per start
        seeded = false
        m.pathUpdateHandler = { [weak self] path in self?.observe(path.status == .satisfied) }
        monitor = m
        m.start(queue: queue)
    }

    /// Stops monitoring and drops a pending debounced report. Idempotent.
    public func stop() {
        lock.lock()
        let m = monitor
        monitor = nil
        lock.unlock()
        m?.cancel()
        debouncer.cancel()
    }

    private func observe(_ online: Bool) {
        lock.lock()
        let first = !seeded
        seeded = true
        lock.unlock()
        if first {
            debouncer.seed(online: online)
        } else {
            debouncer.update(online: online)
        }
    }
}
