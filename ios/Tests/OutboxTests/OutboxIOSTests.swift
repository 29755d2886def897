// `OutboxIOS.start` wiring, the async API, the streams and the background-drain runs, against
// the real engine (and the real reference server on 127.0.0.1 where a test sends). What needs a
// device (NWPathMonitor, UIKit notifications, BGTaskScheduler) is not here: the observations
// those would make are fed in directly (docs/ios.md section 8).
import Foundation
import XCTest
@testable import Outbox
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class Box<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func update<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
    var get: Value { update { $0 } }
}

#if os(macOS) || os(Linux)
/// The reference server (`outbox-server --dev --admin`) on 127.0.0.1, killed by PID (SIGKILL).
final class ReferenceServer {
    private let process = Process()
    private let dir: URL
    let url: String

    init(dir: URL) throws {
        guard let bin = ProcessInfo.processInfo.environment["OUTBOX_SERVER_BIN"] else {
            throw NSError(domain: "ReferenceServer", code: 1, userInfo: [NSLocalizedDescriptionKey: "set OUTBOX_SERVER_BIN"])
        }
        self.dir = dir
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
            throw NSError(domain: "ReferenceServer", code: 2, userInfo: [NSLocalizedDescriptionKey: text])
        }
        url = String(text.dropFirst("listening on ".count))
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
#else
/// No child processes on iOS: the tests that send to the reference server are skipped on a
/// simulator (they run on Linux and macOS).
final class ReferenceServer {
    let url = ""
    init(dir: URL) throws { throw XCTSkip("the reference server runs as a child process (macOS or Linux)") }
    func stop() {}
}
#endif

final class DevTokens: TokenProvider, @unchecked Sendable {
    func token(forceRefresh: Bool) async throws -> String { "dev-alice" }
}

private func note(_ n: Int) -> EnqueueRequest {
    EnqueueRequest(mutator: "put", args: "{\"collection\":\"notes\",\"id\":\"n\(n)\",\"doc\":{\"n\":\(n)}}")
}

final class OutboxIOSTests: XCTestCase {
    private var dirs: [URL] = []
    private var servers: [ReferenceServer] = []
    private let adapterErrors = Box<[String]>([])

    private func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-swift-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        dirs.append(dir)
        return dir
    }

    private func startServer() throws -> ReferenceServer {
        let server = try ReferenceServer(dir: try tempDir())
        servers.append(server)
        return server
    }

    /// A configuration for a fresh "Application Support" folder: no server, `put` registered,
    /// offline debounce 50 ms, adapter errors collected.
    private func makeConfig(server: ReferenceServer? = nil, support: URL? = nil) throws -> OutboxIOSConfig {
        var config = OutboxIOSConfig(userId: "alice", workspaceId: "ws-1", serverUrl: server?.url,
                                     tokenProvider: server == nil ? nil : DevTokens())
        config.supportDirectory = try support ?? tempDir()
        config.mutators = ["put": MutatorOptions(), "createOrder": MutatorOptions()]
        config.offlineDebounceMs = 50
        config.configure = { var c = $0; c.retryBaseMs = 50; c.retryCapMs = 500; return c }
        let errors = adapterErrors
        config.onAdapterError = { what, error in errors.update { $0.append("\(what): \(error)") } }
        return config
    }

    private func start(_ config: OutboxIOSConfig) async throws -> OutboxIOS {
        try await OutboxIOS.start(config)
    }

    override func tearDown() async throws {
        await OutboxIOS.current?.shutdown()
        servers.forEach { $0.stop() }
        servers = []
        dirs.forEach { try? FileManager.default.removeItem(at: $0) }
        dirs = []
        try await super.tearDown()
    }

    private func eventually(_ what: String, seconds: Double = 5, file: StaticString = #filePath, line: UInt = #line,
                            _ check: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await check() { return }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        XCTFail("never happened: \(what)", file: file, line: line)
    }

    func testTheDatabaseLivesInApplicationSupportOutboxExcludedFromBackup() async throws {
        let support = try tempDir()
        let ios = try await start(try makeConfig(support: support))
        let expected = support.appendingPathComponent("Outbox/outbox.db")
        XCTAssertEqual(ios.databaseURL.standardizedFileURL.path, expected.standardizedFileURL.path)
        _ = try await ios.enqueue(note(1))
        XCTAssertTrue(FileManager.default.fileExists(atPath: expected.path), "the engine wrote \(expected.path)")
        let enginePath = try await ios.outbox().path()
        XCTAssertEqual(enginePath, expected.path)
        XCTAssertTrue(OutboxIOS.current === ios)
        #if canImport(Darwin)
        let values = try expected.deletingLastPathComponent().resourceValues(forKeys: [.isExcludedFromBackupKey])
        XCTAssertEqual(values.isExcludedFromBackup, true)
        #endif
        await ios.shutdown()
        XCTAssertNil(OutboxIOS.current, "close clears the instance")
    }

    func testWithoutAnOverrideTheFolderIsOutboxInsideApplicationSupport() throws {
        let support = try FileManager.default.url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
        let existed = FileManager.default.fileExists(atPath: support.appendingPathComponent("Outbox").path)
        let dir = try OutboxIOS.databaseDirectory()
        defer { if !existed { try? FileManager.default.removeItem(at: dir) } }
        XCTAssertEqual(dir.lastPathComponent, "Outbox")
        XCTAssertEqual(dir.deletingLastPathComponent().standardizedFileURL.path, support.standardizedFileURL.path)
        var isDir: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir) && isDir.boolValue)
    }

    func testOneInstancePerProcessAndBadConfigurationsAreRefused() async throws {
        let ios = try await start(try makeConfig())
        var second = try makeConfig()
        second.databaseName = "other.db"
        do {
            _ = try await start(second)
            XCTFail("a second start was accepted")
        } catch let e as OutboxIOSError {
            XCTAssertEqual(e, .alreadyStarted)
        }
        await ios.shutdown()
        await XCTAssertThrowsErrorAsync(try await ios.outbox(), OutboxIOSError.closed)
        var badName = try makeConfig()
        badName.databaseName = "../x.db"
        await XCTAssertThrowsErrorAsync(try await start(badName), OutboxIOSError.invalidDatabaseName("../x.db"))
        var noTokens = try makeConfig()
        noTokens.serverUrl = "http://127.0.0.1:9"
        await XCTAssertThrowsErrorAsync(try await start(noTokens), OutboxIOSError.missingTokenProvider)
        XCTAssertNil(OutboxIOS.current)
    }

    func testACommandIsSentToTheRealServerThroughTheAsyncAPI() async throws {
        let server = try startServer()
        let ios = try await start(try makeConfig(server: server))
        let id = try await ios.enqueue(EnqueueRequest(mutator: "createOrder", args: "{\"id\":\"ios-1\",\"lines\":[{\"product_id\":\"espresso\",\"qty\":1}]}"))
        guard case .succeeded(let result) = try await ios.waitFor(id) else { return XCTFail("not succeeded") }
        XCTAssertTrue(result.contains("total"), result)
        try await ios.syncNow()
        let status = try await ios.status()
        XCTAssertEqual(status.pending, 0)
        XCTAssertEqual(status.succeeded, 1)
        XCTAssertEqual(adapterErrors.get, [])
    }

    func testNetworkObservationsReachTheEngineWithTheDebounce() async throws {
        let ios = try await start(try makeConfig())
        let monitor = try XCTUnwrap(ios.networkMonitor)
        monitor.observe(false) // the first path update seeds without debounce
        let seeded = try await ios.status()
        XCTAssertFalse(seeded.online, "seeded offline at once")
        monitor.observe(true)
        let online = try await ios.status()
        XCTAssertTrue(online.online, "online at once")
        monitor.observe(false)
        let still = try await ios.status()
        XCTAssertTrue(still.online, "offline is debounced (50 ms here)")
        try await eventually("offline after the debounce") { try await !ios.status().online }
        monitor.observe(true)
        monitor.observe(false)
        monitor.observe(true) // a flap shorter than the debounce
        try await Task.sleep(nanoseconds: 150_000_000)
        let after = try await ios.status()
        XCTAssertTrue(after.online, "the flap was never reported")
    }

    func testFactsReachTheEngineInTheOrderTheyWereReported() async throws {
        var config = try makeConfig()
        config.offlineDebounceMs = 0 // every observation is reported at once
        let ios = try await start(config)
        let monitor = try XCTUnwrap(ios.networkMonitor)
        for round in 0..<5 {
            for i in 0..<40 { monitor.observe(i % 2 == 0) }
            let last = round % 2 == 0
            monitor.observe(!last)
            monitor.observe(last)
            let status = try await ios.status()
            XCTAssertEqual(status.online, last, "round \(round): the engine holds the last reported fact")
        }
    }

    func testTheEventsStreamDeliversEngineEventsAndEndsOnClose() async throws {
        let ios = try await start(try makeConfig())
        let seen = Box<[OutboxEvent]>([])
        let ended = Box(false)
        let consumer = Task {
            for await event in ios.events() { seen.update { $0.append(event) } }
            ended.update { $0 = true }
        }
        try await Task.sleep(nanoseconds: 200_000_000) // the subscription is made once the engine is open
        let id = try await ios.enqueue(note(1))
        try await eventually("the enqueued event") {
            seen.get.contains { if case .enqueued(id, "put") = $0 { return true }; return false }
        }
        await ios.shutdown()
        try await eventually("close ended the stream") { ended.get }
        consumer.cancel() // (only matters when the test failed: never hang the suite)
    }

    func testEachEventsStreamHasItsOwnSubscription() async throws {
        let ios = try await start(try makeConfig())
        func firstEnqueued() -> Task<String?, Never> {
            Task {
                for await event in ios.events() { if case .enqueued(let id, _) = event { return id } }
                return nil
            }
        }
        let a = firstEnqueued()
        let b = firstEnqueued()
        try await Task.sleep(nanoseconds: 200_000_000)
        let id = try await ios.enqueue(note(1))
        let got = [await a.value, await b.value]
        XCTAssertEqual(got, [id, id])
    }

    func testStatusUpdatesStartWithTheCurrentStatusAndFollowChanges() async throws {
        let ios = try await start(try makeConfig())
        ios.networkMonitor?.observe(false)
        let seen = Box<[Status]>([])
        let consumer = Task {
            for await status in ios.statusUpdates() { seen.update { $0.append(status) } }
        }
        try await eventually("the current status at once") { !seen.get.isEmpty }
        XCTAssertEqual(seen.get.first?.pending, 0)
        try await Task.sleep(nanoseconds: 200_000_000)
        _ = try await ios.enqueue(note(1))
        _ = try await ios.enqueue(note(2))
        try await eventually("a status with both commands") { seen.get.last?.pending == 2 }
        XCTAssertEqual(seen.get.last?.online, false)
        consumer.cancel()
        await consumer.value
    }

    func testQueueHealthTicksWithoutEventsAndReportsStorage() async throws {
        let ios = try await start(try makeConfig())
        ios.networkMonitor?.observe(false)
        _ = try await ios.enqueue(note(1))
        let seen = Box<[Status]>([])
        let consumer = Task {
            for await status in ios.queueHealth(everyMilliseconds: 20) { seen.update { $0.append(status) } }
        }
        // No event happens while offline: only the ticks bring new snapshots, with the age
        // of the oldest unsynced command growing.
        try await eventually("three snapshots") { seen.get.count >= 3 }
        let last = try XCTUnwrap(seen.get.last)
        XCTAssertEqual(last.pending, 1)
        XCTAssertFalse(last.stalled, "offline is not a stall")
        XCTAssertGreaterThan(last.storageUsedBytes, 0)
        XCTAssertEqual(last.consecutiveFailures, 0)
        XCTAssertNotNil(last.oldestPendingAgeMs)
        consumer.cancel()
        await consumer.value
    }

    func testBackgroundDrainRunsReportRunAgainThenDone() async throws {
        let server = try startServer()
        let ios = try await start(try makeConfig(server: server))
        let monitor = try XCTUnwrap(ios.networkMonitor)
        monitor.observe(false)
        let idle = await ios.scheduleBackgroundDrainIfPending()
        XCTAssertFalse(idle, "nothing pending: no background time requested")
        let id = try await ios.enqueue(EnqueueRequest(mutator: "createOrder", args: "{\"id\":\"ios-bg\",\"lines\":[{\"product_id\":\"espresso\",\"qty\":1}]}"))
        let due = await ios.scheduleBackgroundDrainIfPending()
        XCTAssertTrue(due, "a pending command asks for background time")
        let offline = await ios.runBackgroundDrain(budgetMs: 300)
        XCTAssertEqual(offline, .runAgain, "offline: the command is still there")
        XCTAssertFalse(ios.drainPolicy.onEnqueued(), "the request stays outstanding while work is left")
        monitor.observe(true)
        let online = await ios.runBackgroundDrain(budgetMs: 10_000)
        XCTAssertEqual(online, .done)
        guard case .succeeded = try await ios.waitFor(id) else { return XCTFail("not sent") }
        XCTAssertTrue(ios.drainPolicy.onEnqueued(), "done: the next enqueue asks again")
    }

    func testAnUnopenableDatabaseIsThrownByOutboxAndReportedToOnAdapterError() async throws {
        let support = try tempDir()
        let dir = support.appendingPathComponent("Outbox")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let garbage = Data((0..<8192).map { UInt8(($0 * 31) % 251) })
        try garbage.write(to: dir.appendingPathComponent("outbox.db"))
        let ios = try await start(try makeConfig(support: support)) // returns at once
        do {
            _ = try await ios.outbox()
            XCTFail("a corrupt database was opened")
        } catch let e as OutboxError {
            XCTAssertEqual(e.code(), "db_corrupt")
        }
        await XCTAssertThrowsErrorAsync(try await ios.enqueue(note(1)), nil)
        XCTAssertTrue(adapterErrors.get.contains { $0.hasPrefix("open:") }, "\(adapterErrors.get)")
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("outbox.db")), garbage)
    }

    func testAStartAfterCloseWaitsForTheShutdownAndReopensTheSameQueue() async throws {
        let support = try tempDir()
        let first = try await start(try makeConfig(support: support))
        first.networkMonitor?.observe(false)
        let id = try await first.enqueue(note(1))
        await first.close() // returns at once; the shutdown finishes in the background
        let again = try await start(try makeConfig(support: support))
        XCTAssertFalse(first === again)
        let cmd = try await again.outbox().command(id: id)
        XCTAssertEqual(cmd.state, .pending, "the queued command survived close and reopen")
    }
}

/// `body` must throw `expected` (or anything, when `expected` is nil).
func XCTAssertThrowsErrorAsync<T>(_ body: @autoclosure () async throws -> T, _ expected: OutboxIOSError?,
                                  file: StaticString = #filePath, line: UInt = #line) async {
    do {
        _ = try await body()
        XCTFail("no error thrown", file: file, line: line)
    } catch {
        if let expected { XCTAssertEqual(error as? OutboxIOSError, expected, "\(error)", file: file, line: line) }
    }
}
