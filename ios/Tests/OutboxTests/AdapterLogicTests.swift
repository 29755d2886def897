// The iOS adapters' pure logic (the same rules the Kotlin suite checks on the JVM). Needs a Mac:
// xcodebuild test -scheme Outbox -destination 'platform=iOS Simulator,name=iPhone 15' (docs/ios.md).
import XCTest
@testable import Outbox

/// A manual clock: nothing runs until `advance(by:)` passes its deadline.
final class ManualScheduler: DelayScheduler, @unchecked Sendable {
    private final class Item: ScheduledAction {
        let at: UInt64
        let action: @Sendable () -> Void
        var cancelled = false
        init(at: UInt64, action: @escaping @Sendable () -> Void) {
            self.at = at
            self.action = action
        }
        func cancel() { cancelled = true }
    }

    private var items: [Item] = []
    private(set) var now: UInt64 = 0

    func schedule(afterMs delayMs: UInt64, _ action: @escaping @Sendable () -> Void) -> ScheduledAction {
        let item = Item(at: now + delayMs, action: action)
        items.append(item)
        return item
    }

    func advance(by ms: UInt64) {
        let end = now + ms
        while let next = items.filter({ !$0.cancelled && $0.at <= end }).min(by: { $0.at < $1.at }) {
            items.removeAll { $0 === next }
            now = next.at
            next.action()
        }
        now = end
    }
}

final class ConnectivityDebouncerTests: XCTestCase {
    private var clock = ManualScheduler()
    private var reports: [Bool] = []

    private func makeDebouncer(onlineDelayMs: UInt64 = 0) -> ConnectivityDebouncer {
        ConnectivityDebouncer(scheduler: clock, offlineDelayMs: 500, onlineDelayMs: onlineDelayMs) { [unowned self] in
            self.reports.append($0)
        }
    }

    func testOnlineIsReportedAtOnce() {
        let d = makeDebouncer()
        d.update(online: true)
        XCTAssertEqual(reports, [true])
    }

    func testOfflineIsReportedOnlyAfterTheDelay() {
        let d = makeDebouncer()
        d.seed(online: true)
        d.update(online: false)
        clock.advance(by: 499)
        XCTAssertEqual(reports, [true])
        clock.advance(by: 1)
        XCTAssertEqual(reports, [true, false])
    }

    func testAFlapShorterThanTheDelayIsNeverReported() {
        let d = makeDebouncer()
        d.seed(online: true)
        for _ in 0..<5 {
            d.update(online: false)
            clock.advance(by: 300)
            d.update(online: true)
            clock.advance(by: 300)
        }
        XCTAssertEqual(reports, [true])
    }

    func testRepeatedOfflineObservationsKeepTheFirstDeadline() {
        let d = makeDebouncer()
        d.seed(online: true)
        d.update(online: false)
        clock.advance(by: 300)
        d.update(online: false)
        clock.advance(by: 200)
        XCTAssertEqual(reports, [true, false])
    }

    func testCancelDropsThePendingReport() {
        let d = makeDebouncer()
        d.seed(online: true)
        d.update(online: false)
        d.cancel()
        clock.advance(by: 1_000)
        XCTAssertEqual(reports, [true])
    }

    func testAnOnlineDelayDebouncesComingBackToo() {
        let d = makeDebouncer(onlineDelayMs: 200)
        d.seed(online: false)
        d.update(online: true)
        clock.advance(by: 100)
        d.update(online: false)
        clock.advance(by: 1_000)
        XCTAssertEqual(reports, [false])
        d.update(online: true)
        clock.advance(by: 200)
        XCTAssertEqual(reports, [false, true])
    }
}

final class BackgroundDrainPolicyTests: XCTestCase {
    func testEnqueuedAsksOnceUntilARunFinishesDone() {
        let p = BackgroundDrainPolicy()
        XCTAssertTrue(p.onEnqueued())
        XCTAssertFalse(p.onEnqueued())
        XCTAssertEqual(p.onRunFinished(remaining: 2), .runAgain)
        XCTAssertFalse(p.onEnqueued(), "work left: the request is still outstanding")
        XCTAssertEqual(p.onRunFinished(remaining: 0), .done)
        XCTAssertTrue(p.onEnqueued())
    }

    func testStatusChecksAlwaysAskWhileWorkIsLeft() {
        let p = BackgroundDrainPolicy()
        XCTAssertFalse(p.onStatus(pending: 0, inFlight: 0))
        XCTAssertTrue(p.onStatus(pending: 1, inFlight: 0))
        XCTAssertTrue(p.onStatus(pending: 0, inFlight: 1))
        XCTAssertFalse(p.onEnqueued())
        p.onRunAbandoned()
        XCTAssertTrue(p.onEnqueued())
    }

    func testBudgetStaysInsideTheGrantedTime() {
        XCTAssertEqual(BackgroundDrainPolicy.budgetMs(remainingSeconds: 30, capMs: 25_000), 25_000)
        XCTAssertEqual(BackgroundDrainPolicy.budgetMs(remainingSeconds: 10, capMs: 25_000), 5_000)
        XCTAssertEqual(BackgroundDrainPolicy.budgetMs(remainingSeconds: 3, capMs: 25_000), 0)
        XCTAssertEqual(BackgroundDrainPolicy.budgetMs(remainingSeconds: .greatestFiniteMagnitude, capMs: 25_000), 25_000)
        XCTAssertEqual(BackgroundDrainPolicy.budgetMs(remainingSeconds: .infinity, capMs: 25_000), 25_000)
    }
}
