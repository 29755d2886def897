#if canImport(UIKit) && canImport(BackgroundTasks)
import BackgroundTasks
import Foundation
import UIKit

/// Background time for draining, from the two iOS mechanisms:
///
/// - `BGTaskScheduler` with a `BGProcessingTaskRequest` (network required): the system runs
///   the task later, possibly for minutes, possibly in a freshly launched process. The task
///   identifier must be listed under `BGTaskSchedulerPermittedIdentifiers` in Info.plist and the
///   `processing` background mode enabled, and ``register(identifier:)`` must run before the app
///   finishes launching.
/// - `UIApplication.beginBackgroundTask`: the few seconds iOS grants right after the app enters
///   the background, used to finish what is in flight.
///
/// Both call `drainFor` with a budget inside the time granted; what is sent, and in what
/// order, stays the engine's business.
public enum BackgroundDrain {
    /// The default task identifier (add it to `BGTaskSchedulerPermittedIdentifiers`).
    public static let defaultTaskIdentifier = BackgroundDrainPolicy.defaultTaskIdentifier

    /// Registers the processing-task handler. Call once, from
    /// `application(_:didFinishLaunchingWithOptions:)` (before it returns), also when the app was
    /// launched for a background task. The handler drains ``OutboxIOS/current``.
    ///
    /// - Returns: false when the identifier is not permitted by Info.plist.
    @discardableResult
    public static func register(identifier: String = defaultTaskIdentifier) -> Bool {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: identifier, using: nil) { task in
            guard let task = task as? BGProcessingTask else {
                task.setTaskCompleted(success: false)
                return
            }
            handle(task)
        }
    }

    /// Submits the processing-task request (replacing an earlier one with the same identifier).
    static func submit(identifier: String) throws {
        let request = BGProcessingTaskRequest(identifier: identifier)
        request.requiresNetworkConnectivity = true
        request.requiresExternalPower = false
        try BGTaskScheduler.shared.submit(request)
    }

    private static func handle(_ task: BGProcessingTask) {
        guard let instance = OutboxIOS.current else {
            task.setTaskCompleted(success: false)
            return
        }
        let completion = Once()
        let work = Task {
            let verdict = await instance.runBackgroundDrain(budgetMs: instance.config.backgroundDrainBudgetMs)
            completion.run {
                if verdict == .runAgain { instance.submitBackgroundDrain() }
                task.setTaskCompleted(success: verdict == .done)
            }
        }
        task.expirationHandler = {
            work.cancel()
            completion.run {
                instance.submitBackgroundDrain() // work is left: ask again
                task.setTaskCompleted(success: false)
            }
        }
    }

    /// Drains within the seconds granted after entering the background. Main actor.
    @MainActor
    static func drainInGrantedTime(_ instance: OutboxIOS) {
        let app = UIApplication.shared
        let completion = Once()
        var taskID = UIBackgroundTaskIdentifier.invalid
        let end = {
            completion.run {
                DispatchQueue.main.async { app.endBackgroundTask(taskID) }
            }
        }
        taskID = app.beginBackgroundTask(withName: "dev.outbox.drain") { end() }
        guard taskID != .invalid else { return }
        let budget = BackgroundDrainPolicy.budgetMs(
            remainingSeconds: app.backgroundTimeRemaining,
            capMs: instance.config.exitDrainBudgetMs
        )
        guard budget > 0 else {
            end()
            return
        }
        Task.detached {
            _ = await instance.runBackgroundDrain(budgetMs: budget)
            end()
        }
    }
}

/// Runs a block at most once, from any thread.
final class Once: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false

    func run(_ block: () -> Void) {
        lock.lock()
        let first = !done
        done = true
        lock.unlock()
        if first { block() }
    }
}
#endif
