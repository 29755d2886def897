import Foundation
#if canImport(Network)
import Network
#endif

/// Reports whether the device has a usable network path, from `NWPathMonitor`.
///
/// A path counts as online when its status is `.satisfied`. The first update after ``start()``
/// (delivered at once by the monitor) seeds the engine without debounce; later updates go
/// through the ``ConnectivityDebouncer``. Unlike Android's `NET_CAPABILITY_VALIDATED`, iOS does
/// not say whether the path really reaches the internet (a captive portal is "satisfied"); the
/// engine copes, as a send that cannot connect is retried without using up an attempt.
///
/// Where the `Network` framework does not exist (Linux, where the package is compiled and
/// tested), ``start()`` observes nothing and the engine keeps its `startOnline` value; the
/// seeding and debouncing logic is the same and is tested there through ``observe(_:)``.
public final class NetworkMonitor: @unchecked Sendable {
    private let debouncer: ConnectivityDebouncer
    private let queue = DispatchQueue(label: "dev.outbox.network")
    private let lock = NSLock()
    #if canImport(Network)
    private var monitor: NWPathMonitor?
    #endif
    private var running = false
    private var seeded = false

    /// - Parameter debouncer: receives the observations (its report function calls `setOnline`).
    public init(debouncer: ConnectivityDebouncer) {
        self.debouncer = debouncer
    }

    /// Starts monitoring. Idempotent.
    public func start() {
        lock.lock()
        defer { lock.unlock() }
        guard !running else { return }
        running = true
        seeded = false
        #if canImport(Network)
        let m = NWPathMonitor() // a cancelled monitor cannot be restarted: one per start
        m.pathUpdateHandler = { [weak self] path in self?.observe(path.status == .satisfied) }
        monitor = m
        m.start(queue: queue)
        #endif
    }

    /// Stops monitoring and drops a pending debounced report. Idempotent.
    public func stop() {
        lock.lock()
        running = false
        #if canImport(Network)
        let m = monitor
        monitor = nil
        #endif
        lock.unlock()
        #if canImport(Network)
        m?.cancel()
        #endif
        debouncer.cancel()
    }

    /// One observation of the path (from `NWPathMonitor`'s update handler): the first after
    /// ``start()`` seeds the debouncer, later ones go through it. Ignored while stopped.
    func observe(_ online: Bool) {
        lock.lock()
        guard running else {
            lock.unlock()
            return
        }
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
