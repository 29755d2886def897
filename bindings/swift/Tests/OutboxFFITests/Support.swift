// Test support: the real reference server as a child process on loopback, temporary database
// folders that are removed after each test, and waiting helpers. Nothing here stands in for an
// Outbox component. Runs on Linux (scripts/suites/swift.sh) and on a Mac (docs/bindings.md).
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest
@testable import OutboxFFI
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind a lock, usable from async code (no `lock()`/`unlock()` across suspension points).
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withValue<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
    var get: Value { withValue { $0 } }
}

/// A new folder under the temporary directory, named `outbox-swift-*` (the suite checks that
/// none is left behind).
func makeTempDir() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-swift-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// The reference server (`outbox-server --dev --admin`, seed users alice/dev-alice in ws-1) on
/// 127.0.0.1, as a child process of the test.
final class TestServer: @unchecked Sendable {
    private let process = Process()
    let url: String
    private let dir: URL

    init() throws {
        // Not a skip: a suite that silently skips its server tests passes for the wrong reason.
        guard let bin = ProcessInfo.processInfo.environment["OUTBOX_SERVER_BIN"] else {
            throw NSError(domain: "TestServer", code: 1, userInfo: [NSLocalizedDescriptionKey: "set OUTBOX_SERVER_BIN to target/debug/outbox-server"])
        }
        dir = try makeTempDir()
        process.executableURL = URL(fileURLWithPath: bin)
        process.arguments = ["--addr", "127.0.0.1:0", "--dev", "--admin", "--db", dir.appendingPathComponent("server.db").path]
        let out = Pipe()
        process.standardOutput = out
        // Its log goes to a file, not to the test's stderr: if the test process crashes, an
        // orphaned server holding that pipe open would keep `swift test` waiting for EOF.
        let log = dir.appendingPathComponent("server.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        var line = Data()
        while let byte = try out.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data([0x0a]) {
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("listening on http://127.0.0.1:") else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: dir)
            throw NSError(domain: "TestServer", code: 2, userInfo: [NSLocalizedDescriptionKey: "unexpected first line: \(text)"])
        }
        url = String(text.dropFirst("listening on ".count))
    }

    /// `GET path` as alice in ws-1: the body, or nil on an error status.
    func get(_ path: String) async throws -> String? {
        var request = URLRequest(url: URL(string: url + path)!)
        request.setValue("Bearer dev-alice", forHTTPHeaderField: "Authorization")
        request.setValue("ws-1", forHTTPHeaderField: "X-Workspace-Id")
        let (data, response) = try await URLSession.shared.data(for: request)
        guard (response as? HTTPURLResponse)?.statusCode == 200 else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// Stops the child this test started, with SIGKILL by its PID, and removes its folder.
    /// (`terminate()` sends SIGTERM, which a child spawned from an async test's worker thread on
    /// Linux ignores: it inherits a signal mask that blocks it, swift-corelibs-foundation #4772.)
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: dir)
    }
}

/// A token provider that counts its calls and can hand out a refused token first.
final class CountingTokens: TokenProvider, @unchecked Sendable {
    private let state: Locked<(token: String, calls: Int, forced: Int)>
    init(first: String = "dev-alice") { state = Locked((first, 0, 0)) }
    var calls: Int { state.get.calls }
    var forced: Int { state.get.forced }
    func token(forceRefresh: Bool) async throws -> String {
        state.withValue { s in
            s.calls += 1
            if forceRefresh {
                s.forced += 1
                s.token = "dev-alice"
            }
            return s.token
        }
    }
}

/// Collects engine events.
final class Collector: EventListener, @unchecked Sendable {
    private let events = Locked<[OutboxEvent]>([])
    var all: [OutboxEvent] { events.get }
    func onEvent(event: OutboxEvent) { events.withValue { $0.append(event) } }
}

/// Base class: temporary folders, servers and engines made through it are removed, stopped and
/// shut down after each test, also when the test fails.
class OutboxTestCase: XCTestCase {
    private let owned = Locked<(dirs: [URL], servers: [TestServer], outboxes: [Outbox])>(([], [], []))

    func tempDir() throws -> URL {
        let dir = try makeTempDir()
        owned.withValue { $0.dirs.append(dir) }
        return dir
    }

    /// A database path in a new temporary folder.
    func tempDb(_ name: String = "outbox.db") throws -> String {
        try tempDir().appendingPathComponent(name).path
    }

    func startServer() throws -> TestServer {
        let server = try TestServer()
        owned.withValue { $0.servers.append(server) }
        return server
    }

    /// Registers an engine to be shut down after the test.
    @discardableResult
    func track(_ ob: Outbox) -> Outbox {
        owned.withValue { $0.outboxes.append(ob) }
        return ob
    }

    func config(_ path: String, _ server: TestServer? = nil, online: Bool = true) -> OutboxConfig {
        OutboxConfig(path: path, userId: "alice", workspaceId: "ws-1", serverUrl: server?.url, startOnline: online,
                     retryBaseMs: 50, retryCapMs: 500)
    }

    /// Opens an engine (HTTP transport with `tokens` when a server is given) with the mutators
    /// `createOrder` and `put` registered.
    func openOutbox(_ path: String, _ server: TestServer? = nil, online: Bool = true, tokens: TokenProvider? = nil) async throws -> Outbox {
        let cfg = config(path, server, online: online)
        let ob = server != nil
            ? try await Outbox.openWithTokens(config: cfg, tokenProvider: tokens ?? CountingTokens())
            : try await Outbox.open(config: cfg)
        track(ob)
        try ob.registerMutator(name: "createOrder", options: MutatorOptions())
        try ob.registerMutator(name: "put", options: MutatorOptions())
        return ob
    }

    override func tearDown() async throws {
        let (dirs, servers, outboxes) = owned.withValue { o in
            defer { o = ([], [], []) }
            return (o.dirs, o.servers, o.outboxes)
        }
        for ob in outboxes { await ob.shutdown() }
        for server in servers { server.stop() }
        for dir in dirs { try? FileManager.default.removeItem(at: dir) }
        try await super.tearDown()
    }
}

func order(_ id: String, _ product: String = "espresso", _ qty: Int = 1, keys: [String] = []) -> EnqueueRequest {
    EnqueueRequest(mutator: "createOrder", args: "{\"id\":\"\(id)\",\"lines\":[{\"product_id\":\"\(product)\",\"qty\":\(qty)}]}", keys: keys)
}

/// A `put` of `notes/<id>` with its optimistic insert.
func putNote(_ id: String, _ text: String, baseVersion: Int? = nil) -> EnqueueRequest {
    let base = baseVersion.map { ",\"base_version\":\($0)" } ?? ""
    return EnqueueRequest(
        mutator: "put",
        args: "{\"collection\":\"notes\",\"id\":\"\(id)\",\"doc\":{\"text\":\"\(text)\"}\(base)}",
        keys: ["notes:\(id)"],
        ops: [OptimisticOp(collection: "notes", id: id, kind: .insert(value: "{\"text\":\"\(text)\"}"))]
    )
}

/// Polls `check` every 20 ms until it holds; fails the test after `seconds`.
func eventually(_ what: String, seconds: Double = 10, file: StaticString = #filePath, line: UInt = #line,
                _ check: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await check() { return }
        try await Task.sleep(nanoseconds: 20_000_000)
    }
    XCTFail("never happened: \(what)", file: file, line: line)
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out: \(what)" }
}

/// `body` with a deadline: a call that never returns fails the test instead of hanging the
/// suite (the call itself is left running; tearDown's shutdown ends it).
func within<T: Sendable>(_ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, Error>) in
        let done = Locked(false)
        let finish: @Sendable (Result<T, Error>) -> Void = { result in
            if done.withValue({ d in defer { d = true }; return !d }) { cont.resume(with: result) }
        }
        Task { do { finish(.success(try await body())) } catch { finish(.failure(error)) } }
        Task {
            try? await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
            finish(.failure(TimedOut(what: what)))
        }
    }
}

/// `waitFor` with a 10 s deadline.
func settle(_ ob: Outbox, _ id: String, seconds: Double = 10) async throws -> Settlement {
    try await within(seconds, "command \(id) to settle") { try await ob.waitFor(id: id) }
}

/// Runs `body`, which must throw an `OutboxError` with `code`; returns that error.
@discardableResult
func expectError<T>(_ code: String, file: StaticString = #filePath, line: UInt = #line,
                    _ body: () async throws -> T) async -> OutboxError? {
    do {
        let value = try await body()
        XCTFail("expected \(code), got \(value)", file: file, line: line)
    } catch let error as OutboxError {
        XCTAssertEqual(error.code(), code, "\(error)", file: file, line: line)
        return error
    } catch {
        XCTFail("expected OutboxError \(code), got \(error)", file: file, line: line)
    }
    return nil
}

extension Settlement {
    var isSucceeded: Bool { if case .succeeded = self { return true }; return false }
}
