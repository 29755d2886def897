// Foreign traits implemented in Swift (TokenProvider, Transport, EventListener, DocsListener,
// Logger), called by the real engine (the scenarios of bindings/kotlin/tests/CallbacksTest.kt).
import Foundation
import XCTest
@testable import OutboxFFI

/// A Swift transport that applies everything and records what it was sent. `misbehave` answers
/// the first calls wrongly: `.noOutcomes` returns nothing for the batch, `.garbage` a result
/// that is not JSON, `.throwing` throws a Swift error of its own.
final class RecordingTransport: Transport, @unchecked Sendable {
    enum Misbehaviour { case noOutcomes, garbage, throwing }
    struct NetworkStackFailed: Error {}
    private let state: Locked<(batches: [[OutgoingCommand]], script: [Misbehaviour])>
    init(misbehave: [Misbehaviour] = []) { state = Locked(([], misbehave)) }
    var sent: [OutgoingCommand] { state.get.batches.flatMap { $0 } }

    func send(batch: [OutgoingCommand]) async throws -> [Outcome] {
        let next: Misbehaviour? = state.withValue { s in
            s.batches.append(batch)
            return s.script.isEmpty ? nil : s.script.removeFirst()
        }
        switch next {
        case .noOutcomes?: return []
        case .garbage?: return batch.map { _ in .applied(result: "{not json", changes: []) }
        case .throwing?: throw NetworkStackFailed()
        case nil: return batch.map { .applied(result: "{\"echo\":\"\($0.mutator)\"}", changes: []) }
        }
    }

    func pull(cursor: String?, limit: UInt32) async -> PullOutcome { .unsupported }

    func receipt(idempotencyKey: String) async -> ReceiptLookup { .unsupported }
}

struct TokenServiceDown: Error {}

/// A token provider whose token service is down (it throws a Swift error of its own) while `broken`.
final class FlakyTokens: TokenProvider, @unchecked Sendable {
    let broken = Locked(true)
    let thrown = Locked(0)
    func token(forceRefresh: Bool) async throws -> String {
        if broken.get {
            thrown.withValue { $0 += 1 }
            throw TokenServiceDown()
        }
        return "dev-alice"
    }
}

final class CallbacksTests: OutboxTestCase {
    func testTheTokenProviderIsCalledForEveryRequestAndTheTokenNeverHitsDisk() async throws {
        let server = try startServer()
        let tokens = CountingTokens()
        let path = try tempDb()
        let ob = try await openOutbox(path, server, tokens: tokens)
        let first = try await settle(ob, try await ob.enqueue(request: order("s-tok-1")))
        XCTAssertTrue(first.isSucceeded, "\(first)")
        let afterFirst = tokens.calls
        XCTAssertGreaterThanOrEqual(afterFirst, 1)
        let second = try await settle(ob, try await ob.enqueue(request: order("s-tok-2")))
        XCTAssertTrue(second.isSucceeded, "\(second)")
        XCTAssertGreaterThan(tokens.calls, afterFirst, "a new request asks for a token again")
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
        func scan(_ when: String) throws {
            let files = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            XCTAssertFalse(files.isEmpty)
            for file in files {
                let bytes = try Data(contentsOf: file)
                XCTAssertNil(bytes.range(of: Data("dev-alice".utf8)), "token in \(file.lastPathComponent) \(when)")
            }
        }
        try scan("while open") // database, -wal and -shm
        await ob.shutdown()
        try scan("after shutdown")
    }

    func testARefusedTokenIsRefreshedWithForceRefresh() async throws {
        let server = try startServer()
        let tokens = CountingTokens(first: "expired-token")
        let ob = try await openOutbox(try tempDb(), server, tokens: tokens)
        let settled = try await settle(ob, try await ob.enqueue(request: order("s-refresh")))
        XCTAssertTrue(settled.isSucceeded, "\(settled)")
        // The command (and the pull / event stream beside it) each got one 401 at most.
        XCTAssertTrue((1...3).contains(tokens.forced), "forced refreshes: \(tokens.forced)")
    }

    func testATokenProviderThatThrowsIsContainedAndTheCommandIsSentOnceItRecovers() async throws {
        let server = try startServer()
        let tokens = FlakyTokens()
        let ob = try await openOutbox(try tempDb(), server, online: false, tokens: tokens)
        let id = try await ob.enqueue(request: order("s-flaky-token"))
        try await ob.setOnline(online: true)
        try await eventually("an attempt failed on the token") {
            try await ob.command(id: id).history.contains { $0.error?.contains("token unavailable") == true }
        }
        let meanwhile = try await ob.command(id: id).state
        XCTAssertEqual(meanwhile, .pending, "a throwing provider is a retriable failure")
        tokens.broken.withValue { $0 = false }
        let settled = try await settle(ob, id)
        XCTAssertTrue(settled.isSucceeded, "\(settled)")
        XCTAssertGreaterThanOrEqual(tokens.thrown.get, 1)
    }

    func testASwiftTransportSendsCommandsWithTheirIdempotencyKeys() async throws {
        let transport = RecordingTransport()
        let ob = track(try await Outbox.openWithTransport(config: config(try tempDb()), transport: transport))
        try ob.registerMutator(name: "createOrder", options: MutatorOptions())
        let id = try await ob.enqueue(request: order("s-custom"))
        guard case .succeeded(let result) = try await settle(ob, id) else { return XCTFail("not succeeded") }
        XCTAssertEqual(result, "{\"echo\":\"createOrder\"}")
        XCTAssertEqual(transport.sent.count, 1)
        let sent = try XCTUnwrap(transport.sent.first)
        XCTAssertEqual(sent.id, id)
        let key = try await ob.command(id: id).idempotencyKey
        XCTAssertEqual(sent.idempotencyKey, key)
        XCTAssertTrue(sent.args.contains("s-custom"))
        XCTAssertEqual(sent.attempt, 1)
    }

    func testAMisbehavingSwiftTransportIsRetriedUnderTheSameKeyAndTheEngineGoesOn() async throws {
        // No outcomes, unparsable outcomes and a thrown error are each a failed attempt.
        let transport = RecordingTransport(misbehave: [.noOutcomes, .garbage, .throwing])
        let ob = track(try await Outbox.openWithTransport(config: config(try tempDb()), transport: transport))
        try ob.registerMutator(name: "createOrder", options: MutatorOptions())
        let id = try await ob.enqueue(request: order("s-misbehaves"))
        let settled = try await settle(ob, id)
        XCTAssertTrue(settled.isSucceeded, "\(settled)")
        let cmd = try await ob.command(id: id)
        XCTAssertGreaterThanOrEqual(cmd.history.count, 4, "three failed attempts, then the good one: \(cmd.history)")
        XCTAssertTrue(cmd.history.contains { $0.error?.contains("the transport threw") == true }, "\(cmd.history)")
        XCTAssertEqual(transport.sent.map(\.attempt), [1, 2, 3, 4])
        XCTAssertEqual(Set(transport.sent.map(\.idempotencyKey)), [cmd.idempotencyKey])
    }

    func testEventsArriveInOrder() async throws {
        let server = try startServer()
        let ob = try await openOutbox(try tempDb(), server, online: false)
        let events = Collector()
        let sub = try ob.subscribe(listener: events)
        let id = try await ob.enqueue(request: order("s-events"))
        try await ob.setOnline(online: true)
        _ = try await settle(ob, id)
        try await eventually("the final state change is delivered") {
            events.all.contains { if case .stateChanged(id, _, .succeeded) = $0 { return true }; return false }
        }
        let mine = events.all
        func index(_ what: String, _ p: (OutboxEvent) -> Bool) -> Int {
            guard let i = mine.firstIndex(where: p) else { XCTFail("no \(what) in \(mine)"); return -1 }
            return i
        }
        let enqueued = index("enqueued") { if case .enqueued(id, "createOrder") = $0 { return true }; return false }
        let online = index("online") { $0 == .onlineChanged(online: true) }
        let started = index("attemptStarted") { $0 == .attemptStarted(id: id, attempt: 1) }
        let finished = index("attemptFinished") { if case .attemptFinished(id, 1, "applied", _) = $0 { return true }; return false }
        let succeeded = index("succeeded") { if case .stateChanged(id, _, .succeeded) = $0 { return true }; return false }
        XCTAssertTrue(enqueued < online && online < started && started < finished && finished < succeeded, "\(mine)")
        sub.cancel()
        try await eventually("cancelled") { sub.isFinished() }
    }

    func testAListenerThatReentersTheEngineNeitherDeadlocksNorStallsIt() async throws {
        // A Swift `onEvent` cannot throw; the hazard it has is calling back into the engine
        // from the engine's own thread: cancelling its subscription, subscribing, registering.
        let server = try startServer()
        let ob = try await openOutbox(try tempDb(), server)
        final class Reentrant: EventListener, @unchecked Sendable {
            let calls = Locked(0)
            let sub = Locked<Subscription?>(nil)
            let extra = Locked<[Subscription]>([])
            weak var ob: Outbox?
            func onEvent(event: OutboxEvent) {
                let n = calls.withValue { c -> Int in c += 1; return c }
                guard let ob else { return }
                try? ob.registerMutator(name: "late-\(n)", options: MutatorOptions())
                if n == 1, let more = try? ob.subscribe(listener: Collector()) { extra.withValue { $0.append(more) } }
                if n == 3 { sub.get?.cancel() }
            }
        }
        let reentrant = Reentrant()
        reentrant.ob = ob
        reentrant.sub.withValue { $0 = try? ob.subscribe(listener: reentrant) }
        let healthy = Collector()
        let good = try ob.subscribe(listener: healthy)
        var ids: [String] = []
        for i in 1...5 { ids.append(try await ob.enqueue(request: order("s-reenter-\(i)"))) }
        for id in ids {
            let settled = try await settle(ob, id)
            XCTAssertTrue(settled.isSucceeded, "\(settled)")
        }
        try await eventually("the healthy listener saw every success") {
            healthy.all.filter { if case .stateChanged(_, _, .succeeded) = $0 { return true }; return false }.count == 5
        }
        // It cancelled itself from inside its third callback. `cancel()` takes effect at the
        // delivery task's next suspension point, so an event already queued may still arrive.
        try await eventually("its subscription ended") { reentrant.sub.get?.isFinished() ?? false }
        let atEnd = reentrant.calls.get
        XCTAssertGreaterThanOrEqual(atEnd, 3)
        _ = try await ob.enqueue(request: order("s-reenter-after"))
        try await Task.sleep(nanoseconds: 200_000_000)
        XCTAssertEqual(reentrant.calls.get, atEnd, "nothing is delivered once it has ended")
        _ = try await ob.enqueue(request: EnqueueRequest(mutator: "late-1", args: "{}"))
        good.cancel()
        reentrant.extra.get.forEach { $0.cancel() }
    }

    func testAListenerThatThrowsIsSkippedAndTheOthersStillHearEverything() async throws {
        struct ListenerBroke: Error {}
        final class Throwing: EventListener, @unchecked Sendable {
            let calls = Locked(0)
            func onEvent(event: OutboxEvent) throws {
                calls.withValue { $0 += 1 }
                throw ListenerBroke()
            }
        }
        let server = try startServer()
        let ob = try await openOutbox(try tempDb(), server)
        let throwing = Throwing()
        let bad = try ob.subscribe(listener: throwing)
        let healthy = Collector()
        let good = try ob.subscribe(listener: healthy)
        var ids: [String] = []
        for i in 1...3 { ids.append(try await ob.enqueue(request: order("s-throwing-listener-\(i)"))) }
        for id in ids {
            let settled = try await settle(ob, id)
            XCTAssertTrue(settled.isSucceeded, "\(settled)")
        }
        try await eventually("the healthy listener saw every success") {
            healthy.all.filter { if case .stateChanged(_, _, .succeeded) = $0 { return true }; return false }.count == 3
        }
        // It threw on every event and was still called for each one, not dropped after the first.
        XCTAssertGreaterThanOrEqual(throwing.calls.get, 6)
        XCTAssertFalse(bad.isFinished())
        bad.cancel()
        good.cancel()
    }

    func testWatchDeliversTheCurrentResultThenEachChange() async throws {
        final class Seen: DocsListener, @unchecked Sendable {
            let results = Locked<[[Doc]]>([])
            let errors = Locked<[OutboxError]>([])
            func onDocs(docs: [Doc]) { results.withValue { $0.append(docs) } }
            func onError(error: OutboxError) { errors.withValue { $0.append(error) } }
        }
        let ob = try await openOutbox(try tempDb(), online: false)
        let seen = Seen()
        let sub = try ob.watch(collection: "notes", query: Query(), listener: seen)
        try await eventually("the first (empty) result") { !seen.results.get.isEmpty }
        XCTAssertEqual(seen.results.get.first, [])
        _ = try await ob.enqueue(request: putNote("n1", "hi"))
        try await eventually("the new note is delivered") { seen.results.get.last?.map(\.id) == ["n1"] }
        XCTAssertEqual(seen.results.get.last?.first?.status, .pending)
        sub.cancel()
        try await eventually("cancelled") { sub.isFinished() }
        let delivered = seen.results.get.count
        _ = try await ob.enqueue(request: putNote("n2", "after cancel"))
        try await Task.sleep(nanoseconds: 200_000_000)
        XCTAssertEqual(seen.results.get.count, delivered, "nothing after cancel")
        XCTAssertEqual(seen.errors.get, [])
    }

    func testASwiftLoggerReceivesTheLibrarysRecords() async throws {
        final class Lines: OutboxFFI.Logger, @unchecked Sendable {
            let lines = Locked<[String]>([])
            func log(level: LogLevel, target: String, message: String) { lines.withValue { $0.append("\(level) \(target) \(message)") } }
        }
        let logger = Lines()
        setLogger(logger: logger, level: .info)
        defer { clearLogger() }
        let ob = try await openOutbox(try tempDb(), online: false)
        _ = try await ob.enqueue(request: order("s-log-secret-arg"))
        let dropped = try await ob.wipe(force: true)
        XCTAssertEqual(dropped, 1)
        try await eventually("the wipe is logged") {
            logger.lines.get.contains { $0.contains("outbox wiped") && $0.hasPrefix("info") }
        }
        XCTAssertFalse(logger.lines.get.contains { $0.contains("s-log-secret-arg") }, "no args in logs: \(logger.lines.get)")
    }
}
