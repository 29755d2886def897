#if canImport(UIKit)
import UIKit

/// Reports the app's foreground/background state from UIKit's
/// `willEnterForegroundNotification` / `didEnterBackgroundNotification`.
///
/// ``start()`` and ``stop()`` run on the main actor (UIKit state is main-thread only).
@MainActor
public final class LifecycleMonitor {
    private let onForeground: @MainActor () -> Void
    private let onBackground: @MainActor () -> Void
    private var tokens: [NSObjectProtocol] = []

    /// - Parameters:
    ///   - onForeground: called on the main thread when the app is about to become visible.
    ///   - onBackground: called on the main thread when it entered the background, and once
    ///     from ``start()`` when the app was launched in the background (a background task).
    public init(onForeground: @escaping @MainActor () -> Void, onBackground: @escaping @MainActor () -> Void) {
        self.onForeground = onForeground
        self.onBackground = onBackground
    }

    /// Reports the current state when it is "background", then starts observing. Idempotent.
    public func start() {
        guard tokens.isEmpty else { return }
        // The engine starts out "foreground"; correct it for a background launch.
        if UIApplication.shared.applicationState == .background { onBackground() }
        let center = NotificationCenter.default
        tokens = [
            center.addObserver(forName: UIApplication.willEnterForegroundNotification, object: nil, queue: .main) { [weak self] _ in
                MainActor.assumeIsolated { self?.onForeground() }
            },
            center.addObserver(forName: UIApplication.didEnterBackgroundNotification, object: nil, queue: .main) { [weak self] _ in
                MainActor.assumeIsolated { self?.onBackground() }
            },
        ]
    }

    /// Stops observing. Idempotent.
    public func stop() {
        for token in tokens { NotificationCenter.default.removeObserver(token) }
        tokens = []
    }
}
#endif
