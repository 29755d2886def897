// The scenarios of bindings/kotlin/tests, in Swift: the generated bindings against the
// real library and the real reference server on loopback. Not compiled on the Linux build
// machine (no Swift compiler there); run on a Mac with the steps in docs/bindings.md.
import Foundation
import XCTest
@testable import OutboxFFI

/// The reference server (`target/debug/outbox-server --dev --admin`) as a child process.
final class TestServer {
    let process = Process()
    let url: String
    let dir: URL

    init() throws {
        guard let bin = ProcessInfo.processInfo.environment["OUTBOX_SERVER_BIN"] else {
            throw XCTSkip("set OUTBOX_SERVER_BIN to target/debug/outbox-server")
        }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: bin)
        process.arguments = ["--addr", "127.0.0.1:0", "--dev", "--admin", "--db", dir.appendingPathComponent("server.db").path]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        var line = Data()
        while let byte = try out.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data([0x0a]) {
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("listening on ") else { throw NSError(domain: "TestServer", code: 1, userInfo: [NSLocalizedDescriptionKey: text]) }
        url = String(text.dropFirst("listening on ".count))
    }

    func stop() {
        process.terminate()  // our own child, by its handle
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: dir)
    }
}

final class CountingTokens: TokenProvider, @unchecked Sendable {
    private let lock = NSLock()
    private var token = "dev-alice"
    private(set) var calls = 0
    private(set) var forced = 0
    init(first: String = "dev-alice") { token = first }
    func token(forceRefresh: Bool) async throws -> String {
        lock.lock(); defer { lock.unlock() }
        calls += 1
        if forceRefresh { forced += 1; token = "dev-alice" }
        return token
    }
}

final class RecordingTransport: Transport, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var batches: [[OutgoingCommand]] = []
    func send(batch: [OutgoingCommand]) async -> [Outcome] {
        lock.lock(); batches.append(batch); lock.unlock()
        return batch.map { .applied(result: "{\"echo\":\"\($0.mutator)\"}", changes: []) }
    }
    func pull(cursor: String?, limit: UInt32) async -> PullOutcome { .unsupported }
}

final class Collector: EventListener, @unchecked Sendable {
    private let lock = NSLock()
    private var _events: [OutboxEvent] = []
    var events: [OutboxEvent] { lock.lock(); defer { lock.unlock() }; return _events }
    func onEvent(event: OutboxEvent) { lock.lock(); _events.append(event); lock.unlock() }
}

func tempDb() -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent("outbox.db").path
}

func config(_ path: String, _ server: TestServer? = nil, online: Bool = true) -> OutboxConfig {
    OutboxConfig(path: path, userId: "alice", workspaceId: "ws-1", serverUrl: server?.url, startOnline: online,
                 retryBaseMs: 50, retryCapMs: 500)
}

func openOutbox(_ path: String, _ server: TestServer? = nil, online: Bool = true, tokens: TokenProvider? = nil) throws -> Outbox {
    let cfg = config(path, server, online: online)
    let ob = server != nil
        ? try Outbox.openWithTokens(config: cfg, tokenProvider: tokens ?? CountingTokens())
        : try Outbox.open(config: cfg)
    try ob.registerMutator(name: "createOrder", options: MutatorOptions())
    try ob.registerMutator(name: "put", options: MutatorOptions())
    return ob
}

func order(_ id: String, _ product: String = "espresso", _ qty: Int = 1) -> EnqueueRequest {
    EnqueueRequest(mutator: "createOrder", args: "{\"id\":\"\(id)\",\"lines\":[{\"product_id\":\"\(product)\",\"qty\":\(qty)}]}")
}

func eventually(_ what: String, _ check: () throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(10)
    while Date() < deadline {
        if try check() { return }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    XCTFail("never happened: \(what)")
}

final class OutboxTests: XCTestCase {
    func testEnqueueOfflineIsPendingThenDrainsWhenOnline() async throws {
        let server = try TestServer(); defer { server.stop() }
        let ob = try openOutbox(tempDb(), server, online: false)
        let id = try ob.enqueue(request: order("s-offline"))
        XCTAssertEqual(try ob.status().pending, 1)
        XCTAssertEqual(try ob.command(id: id).state, .pending)
        try ob.setOnline(online: true)
        guard case .succeeded(let result) = try await ob.waitFor(id: id) else { return XCTFail("not succeeded") }
        XCTAssertTrue(result.contains("total"))
        ob.shutdown()
    }

    func testDrainForReportsWhatItSent() async throws {
        let server = try TestServer(); defer { server.stop() }
        let ob = try openOutbox(tempDb(), server, online: false)
        for i in 0..<5 { _ = try ob.enqueue(request: order("s-drain-\(i)")) }
        try ob.setOnline(online: true)
        let report = try await ob.drainFor(budgetMs: 10_000)
        XCTAssertTrue(report.completed)
        XCTAssertEqual(report.remaining, 0)
        XCTAssertEqual(try ob.status().succeeded, 5)
        ob.shutdown()
    }

    func testRestartRestoresPendingCommandsWithTheirKeys() async throws {
        let server = try TestServer(); defer { server.stop() }
        let path = tempDb()
        let first = try openOutbox(path, server, online: false)
        let ids = try (1...3).map { try first.enqueue(request: order("s-restart-\($0)")) }
        let keys = try ids.map { try first.command(id: $0).idempotencyKey }
        first.shutdown()
        let again = try openOutbox(path, server, online: false)
        let pending = try again.peek(filter: PeekFilter(states: [.pending]))
        XCTAssertEqual(pending.map(\.id), ids)
        XCTAssertEqual(pending.map(\.idempotencyKey), keys)
        try again.setOnline(online: true)
        for id in ids {
            guard case .succeeded = try await again.waitFor(id: id) else { return XCTFail("not succeeded") }
        }
        again.shutdown()
    }

    func testOptimisticChangeIsVisibleThenHandedOff() async throws {
        let server = try TestServer(); defer { server.stop() }
        let ob = try openOutbox(tempDb(), server, online: false)
        let id = try ob.enqueue(request: EnqueueRequest(
            mutator: "put", args: "{\"collection\":\"notes\",\"id\":\"n1\",\"doc\":{\"text\":\"hello\"}}",
            ops: [OptimisticOp(collection: "notes", id: "n1", kind: .insert(value: "{\"text\":\"hello\"}"))]))
        XCTAssertEqual(try ob.get(collection: "notes", id: "n1")?.status, .pending)
        try ob.setOnline(online: true)
        _ = try await ob.waitFor(id: id)
        try await eventually("synced") { try ob.get(collection: "notes", id: "n1")?.status == .synced }
        XCTAssertTrue(try ob.get(collection: "notes", id: "n1")?.value.contains("hello") ?? false)
        ob.shutdown()
    }

    func testConcurrentEnqueuesAreAllKept() throws {
        let ob = try openOutbox(tempDb(), online: false)
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for i in 0..<50 { _ = try? ob.enqueue(request: order("s-thread-\(t)-\(i)")) }
        }
        let all = try ob.peek(filter: PeekFilter(limit: 1000))
        XCTAssertEqual(all.count, 400)
        XCTAssertEqual(Set(all.map(\.idempotencyKey)).count, 400)
        ob.shutdown()
    }

    func testRejectionFailsLaterCommandsOnTheKey() async throws {
        let server = try TestServer(); defer { server.stop() }
        let ob = try openOutbox(tempDb(), server, online: false)
        var a = order("s-lane-1", "juice", 15); a.keys = ["register-1"]
        var b = order("s-lane-2", "juice", 10); b.keys = ["register-1"]
        var c = order("s-lane-3", "juice", 1); c.keys = ["register-1"]
        let ids = try [a, b, c].map { try ob.enqueue(request: $0) }
        try ob.setOnline(online: true)
        guard case .succeeded = try await ob.waitFor(id: ids[0]) else { return XCTFail("a") }
        guard case .failed(let code, _) = try await ob.waitFor(id: ids[1]) else { return XCTFail("b") }
        XCTAssertEqual(code, "insufficient_stock")
        guard case .failed(let dep, _) = try await ob.waitFor(id: ids[2]) else { return XCTFail("c") }
        XCTAssertEqual(dep, "dependency_failed")
        ob.shutdown()
    }

    func testTokenProviderIsCalledPerRequestAndNeverStored() async throws {
        let server = try TestServer(); defer { server.stop() }
        let tokens = CountingTokens()
        let path = tempDb()
        let ob = try openOutbox(path, server, tokens: tokens)
        _ = try await ob.waitFor(id: try ob.enqueue(request: order("s-tok-1")))
        let first = tokens.calls
        _ = try await ob.waitFor(id: try ob.enqueue(request: order("s-tok-2")))
        XCTAssertGreaterThan(tokens.calls, first)
        ob.shutdown()
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
        for file in try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil) {
            let bytes = try Data(contentsOf: file)
            XCTAssertNil(bytes.range(of: Data("dev-alice".utf8)), "token in \(file.lastPathComponent)")
        }
    }

    func testRefusedTokenIsRefreshed() async throws {
        let server = try TestServer(); defer { server.stop() }
        let tokens = CountingTokens(first: "expired")
        let ob = try openOutbox(tempDb(), server, tokens: tokens)
        guard case .succeeded = try await ob.waitFor(id: try ob.enqueue(request: order("s-refresh"))) else { return XCTFail() }
        XCTAssertGreaterThanOrEqual(tokens.forced, 1)
        ob.shutdown()
    }

    func testSwiftTransportSendsWithIdempotencyKeys() async throws {
        let transport = RecordingTransport()
        let ob = try Outbox.openWithTransport(config: config(tempDb()), transport: transport)
        try ob.registerMutator(name: "createOrder", options: MutatorOptions())
        let id = try ob.enqueue(request: order("s-custom"))
        guard case .succeeded(let result) = try await ob.waitFor(id: id) else { return XCTFail() }
        XCTAssertEqual(result, "{\"echo\":\"createOrder\"}")
        XCTAssertEqual(transport.batches.flatMap { $0 }.first?.idempotencyKey, try ob.command(id: id).idempotencyKey)
        ob.shutdown()
    }

    func testEventsArriveInOrder() async throws {
        let server = try TestServer(); defer { server.stop() }
        let ob = try openOutbox(tempDb(), server, online: false)
        let collector = Collector()
        let sub = try ob.subscribe(listener: collector)
        let id = try ob.enqueue(request: order("s-events"))
        try ob.setOnline(online: true)
        _ = try await ob.waitFor(id: id)
        try await eventually("succeeded event") {
            collector.events.contains { if case .stateChanged(let i, _, .succeeded) = $0 { return i == id }; return false }
        }
        let events = collector.events
        let enq = events.firstIndex { if case .enqueued(let i, _) = $0 { return i == id }; return false }
        let started = events.firstIndex { if case .attemptStarted(let i, _) = $0 { return i == id }; return false }
        let done = events.firstIndex { if case .stateChanged(let i, _, .succeeded) = $0 { return i == id }; return false }
        XCTAssertTrue(enq! < started! && started! < done!)
        sub.cancel()
        ob.shutdown()
    }

    func testBadInputIsTypedWithCodes() throws {
        let ob = try openOutbox(tempDb(), online: false)
        XCTAssertThrowsError(try ob.enqueue(request: EnqueueRequest(mutator: "nope", args: "{}"))) { e in
            XCTAssertEqual((e as? OutboxError)?.code(), "unknown_mutator")
        }
        XCTAssertThrowsError(try ob.enqueue(request: EnqueueRequest(mutator: "createOrder", args: "{oops"))) { e in
            XCTAssertEqual((e as? OutboxError)?.code(), "invalid_json")
        }
        try ob.registerMutator(name: "small", options: MutatorOptions(maxArgsBytes: 64))
        XCTAssertThrowsError(try ob.enqueue(request: EnqueueRequest(mutator: "small", args: "{\"pad\":\"\(String(repeating: "a", count: 100))\"}"))) { e in
            guard case .ArgsTooLarge(_, _, let limit) = e as? OutboxError else { return XCTFail("\(e)") }
            XCTAssertEqual(limit, 64)
        }
        XCTAssertEqual(try ob.status().pending, 0)
        ob.shutdown()
        XCTAssertThrowsError(try ob.status()) { e in XCTAssertEqual((e as? OutboxError)?.code(), "closed") }
    }

    func testCorruptDatabaseIsRefusedUntouched() throws {
        let path = tempDb()
        let garbage = Data((0..<8192).map { UInt8(($0 * 31) % 251) })
        try garbage.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Outbox.open(config: config(path))) { e in
            XCTAssertEqual((e as? OutboxError)?.code(), "db_corrupt")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), garbage)
    }
}
