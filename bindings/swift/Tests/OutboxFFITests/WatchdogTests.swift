// The stall watchdog through the Swift bindings (issue 18): a stuck drain timer (driven by
// the `wedgeDrainTimerForTest` hook) is reported as `queueStalled` with its cause, kicked,
// followed by `queueRecovered`, and the sale reaches the real reference server. The other
// causes (hung connection, lease held by a frozen process) run through Kotlin and TypeScript.
import Foundation
import XCTest
@testable import OutboxFFI

/// Engine events with the time each arrived.
final class TimedCollector: EventListener, @unchecked Sendable {
    private let events = Locked<[(Date, OutboxEvent)]>([])
    var all: [(Date, OutboxEvent)] { events.get }
    func onEvent(event: OutboxEvent) { events.withValue { $0.append((Date(), event)) } }
}

final class WatchdogTests: OutboxTestCase {
    func testAStuckDrainTimerIsReportedKickedAndTheSaleReachesTheServer() async throws {
        let server = try startServer()
        var cfg = config(try tempDb(), server)
        cfg.stallWindowMs = 300
        cfg.attemptTimeoutMs = 60_000
        let ob = track(try await Outbox.openWithTokens(config: cfg, tokenProvider: CountingTokens()))
        try ob.registerMutator(name: "createOrder", options: MutatorOptions())
        let events = TimedCollector()
        let sub = try ob.subscribe(listener: events)
        try await eventually("this engine holds the lease") { try await ob.status().isDrainer }
        try ob.wedgeDrainTimerForTest()
        let wedged = Date()
        let id = try await ob.enqueue(request: order("swift-stall-timer"))
        var stalled: (Date, StallReport)?
        try await eventually("queueStalled", seconds: 15) {
            stalled = events.all.lazy.compactMap { at, e -> (Date, StallReport)? in
                if case .queueStalled(let report) = e { return (at, report) }
                return nil
            }.first
            return stalled != nil
        }
        guard let (at, report) = stalled else { return XCTFail("no queueStalled") }
        print("stall drain_loop_stuck (stuck timer, Swift) reported after \(Int(at.timeIntervalSince(wedged) * 1000)) ms: \(report)")
        XCTAssertEqual(report.cause, "drain_loop_stuck", "\(report)")
        XCTAssertTrue(report.ready || report.inFlight > 0, "\(report)")
        var recovered: (cause: String, stalledForMs: UInt64, how: String)?
        try await eventually("queueRecovered", seconds: 15) {
            recovered = events.all.lazy.compactMap { _, e -> (cause: String, stalledForMs: UInt64, how: String)? in
                if case .queueRecovered(let cause, let stalledForMs, let how) = e { return (cause, stalledForMs, how) }
                return nil
            }.first
            return recovered != nil
        }
        XCTAssertEqual(recovered?.cause, "drain_loop_stuck")
        XCTAssertEqual(recovered?.how, "progress")
        XCTAssertGreaterThanOrEqual(recovered?.stalledForMs ?? 0, 300)
        let settled = try await settle(ob, id)
        XCTAssertTrue(settled.isSucceeded, "\(settled)")
        let status = try await ob.status()
        XCTAssertFalse(status.stalled)
        sub.cancel()
    }
}
