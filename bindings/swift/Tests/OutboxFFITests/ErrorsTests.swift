// Every bad input and every broken database is a typed `OutboxError` with a stable code, and
// nothing is written (the scenarios of bindings/kotlin/tests/ErrorsTest.kt).
import Foundation
import XCTest
@testable import OutboxFFI

final class ErrorsTests: OutboxTestCase {
    func testBadEnqueuesAreTypedErrorsAndWriteNothing() async throws {
        let ob = try await openOutbox(try tempDb(), online: false)
        try ob.registerMutator(name: "small", options: MutatorOptions(maxArgsBytes: 64))
        let unknown = await expectError("unknown_mutator") { try await ob.enqueue(request: EnqueueRequest(mutator: "nope", args: "{}")) }
        guard case .UnknownMutator(_, let name)? = unknown else { return XCTFail("\(String(describing: unknown))") }
        XCTAssertEqual(name, "nope")
        await expectError("invalid_json") { try await ob.enqueue(request: EnqueueRequest(mutator: "createOrder", args: "{not json")) }
        let big = await expectError("args_too_large") {
            try await ob.enqueue(request: EnqueueRequest(mutator: "small", args: "{\"id\":\"x\",\"pad\":\"\(String(repeating: "a", count: 100))\"}"))
        }
        guard case .ArgsTooLarge(_, _, let limit)? = big else { return XCTFail("\(String(describing: big))") }
        XCTAssertEqual(limit, 64)
        await expectError("invalid_key") { try await ob.enqueue(request: order("x", keys: [""])) }
        let status = try await ob.status()
        XCTAssertEqual(status.pending, 0, "nothing was written")
        let all = try await ob.peek(filter: PeekFilter())
        XCTAssertEqual(all, [])
    }

    func testUnknownIdsAndWrongStatesAreTypedErrors() async throws {
        let ob = try await openOutbox(try tempDb(), online: false)
        let missing = await expectError("unknown_command") { try await ob.command(id: "not-an-id") }
        guard case .UnknownCommand(_, let id)? = missing else { return XCTFail("\(String(describing: missing))") }
        XCTAssertEqual(id, "not-an-id")
        let pending = try await ob.enqueue(request: order("s-state"))
        let state = await expectError("invalid_state") { try await ob.resolveConflict(id: pending, resolution: .discard) }
        guard case .InvalidState(_, let current)? = state else { return XCTFail("\(String(describing: state))") }
        XCTAssertEqual(current, "pending")
        await expectError("invalid_state") { try await ob.retry(id: pending) }
    }

    func testACorruptDatabaseIsRefusedAndLeftUntouched() async throws {
        let path = try tempDb()
        let garbage = Data((0..<8192).map { UInt8(($0 * 31) % 251) })
        try garbage.write(to: URL(fileURLWithPath: path))
        await expectError("db_corrupt") { try await Outbox.open(config: config(path)) }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), garbage, "byte-for-byte untouched")
    }

    func testADatabaseFromANewerVersionIsRefusedAndLeftUntouched() async throws {
        // What a newer app version leaves behind: a SQLite file whose schema version
        // (`PRAGMA user_version`) this library has never heard of.
        let path = try tempDb()
        let url = URL(fileURLWithPath: path)
        let file = emptySQLiteDatabase(userVersion: 999)
        try file.write(to: url)
        let refused = await expectError("db_newer_version") { try await Outbox.open(config: config(path)) }
        guard case .DbNewerVersion(_, let found, let supported)? = refused else { return XCTFail("\(String(describing: refused))") }
        XCTAssertEqual(found, 999)
        XCTAssertGreaterThan(supported, 0)
        XCTAssertLessThan(supported, 999)
        XCTAssertEqual(try Data(contentsOf: url), file, "the file is left byte-for-byte as it was")
        let names = try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)
        XCTAssertEqual(names, ["outbox.db"], "no -wal or -shm beside it")
    }

    func testAnUnwritableLocationAndABadConfigAreTypedErrors() async throws {
        let unwritable = OutboxConfig(path: "/proc/outbox-cannot-live-here/o.db", userId: "alice", workspaceId: "ws-1")
        await expectError("db_unwritable") { try await Outbox.open(config: unwritable) }
        var noTokens = config(try tempDb())
        noTokens.serverUrl = "http://127.0.0.1:9"
        await expectError("invalid_config") { try await Outbox.open(config: noTokens) }
        var zero = config(try tempDb())
        zero.maxConcurrency = 0
        await expectError("invalid_config") { try await Outbox.open(config: zero) }
    }

    func testCallsAfterShutdownFailWithClosed() async throws {
        let ob = try await openOutbox(try tempDb(), online: false)
        let id = try await ob.enqueue(request: order("s-before-close"))
        await ob.shutdown()
        await expectError("closed") { try await ob.enqueue(request: order("s-late")) }
        await expectError("closed") { try await ob.status() }
        await expectError("closed") { try await ob.command(id: id) }
        await expectError("closed") { try await ob.waitFor(id: id) }
        await expectError("closed") { try await ob.setOnline(online: true) }
        await ob.shutdown() // twice is fine
    }

    func testAFullDiskIsStorageFullAndLosesNothingAlreadyQueued() async throws {
        var cfg = config(try tempDb(), online: false)
        cfg.maxSizeBytes = 256 * 1024
        let ob = track(try await Outbox.open(config: cfg))
        try ob.registerMutator(name: "createOrder", options: MutatorOptions())
        var queued: UInt64 = 0
        let full = await expectError("storage_full") {
            for i in 0..<10_000 {
                _ = try await ob.enqueue(request: EnqueueRequest(mutator: "createOrder", args: "{\"id\":\"o\(i)\",\"pad\":\"\(String(repeating: "p", count: 2000))\"}"))
                queued += 1
            }
        }
        XCTAssertNotNil(full)
        XCTAssertGreaterThan(queued, 0)
        let status = try await ob.status()
        XCTAssertEqual(status.pending, queued, "every enqueue that returned is still queued")
    }
}

/// A valid, empty SQLite database file (one 4 KiB page: the header and an empty schema table)
/// with the given `PRAGMA user_version`; see https://www.sqlite.org/fileformat.html.
func emptySQLiteDatabase(userVersion: UInt32) -> Data {
    var page = [UInt8](repeating: 0, count: 4096)
    func put32(_ offset: Int, _ value: UInt32) {
        for i in 0..<4 { page[offset + i] = UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32(i))) }
    }
    page.replaceSubrange(0..<16, with: Array("SQLite format 3\u{0}".utf8))
    page[16] = 0x10; page[17] = 0x00 // page size 4096
    page[18] = 1; page[19] = 1 // rollback journal file format
    page[21] = 64; page[22] = 32; page[23] = 32 // payload fractions
    put32(24, 1) // file change counter
    put32(28, 1) // database size in pages
    put32(44, 4) // schema format
    put32(56, 1) // UTF-8
    put32(60, userVersion)
    put32(92, 1) // version-valid-for (= change counter)
    put32(96, 3_045_000)
    page[100] = 0x0D // leaf table b-tree page: sqlite_schema, no rows
    page[105] = 0x10; page[106] = 0x00 // cell content area starts at 4096
    return Data(page)
}
