// A 409 from the real server (two devices of one user write the same note, each expecting it
// not to exist yet) and both ways out: send again with merged args, or discard.
import Foundation
import XCTest
@testable import OutboxFFI

final class ConflictTests: OutboxTestCase {
    /// Device A creates notes/shared; device B, which had not seen it, then does the same and
    /// gets a conflict with the server's snapshot. Returns B and its command id.
    private func conflictOnB(_ server: TestServer) async throws -> (Outbox, String) {
        let a = try await openOutbox(try tempDb("a.db"), server)
        let sa = try await settle(a, try await a.enqueue(request: putNote("shared", "from a", baseVersion: 0)))
        XCTAssertTrue(sa.isSucceeded, "\(sa)")
        let b = try await openOutbox(try tempDb("b.db"), server, online: false)
        let ib = try await b.enqueue(request: putNote("shared", "from b", baseVersion: 0))
        try await b.setOnline(online: true)
        guard case .conflict(let snapshot) = try await settle(b, ib) else {
            XCTFail("expected a conflict")
            throw TimedOut(what: "conflict")
        }
        let json = try JSONSerialization.jsonObject(with: Data(snapshot.utf8)) as? [String: Any]
        XCTAssertEqual(json?["version"] as? Int, 1, snapshot)
        XCTAssertEqual((json?["doc"] as? [String: Any])?["text"] as? String, "from a", snapshot)
        let state = try await b.command(id: ib).state
        XCTAssertEqual(state, .conflict)
        let status = try await b.status()
        XCTAssertEqual(status.conflict, 1)
        return (b, ib)
    }

    func testAConflictResolvedWithNewArgsIsAppliedOnTopOfTheServerVersion() async throws {
        let server = try startServer()
        let (b, ib) = try await conflictOnB(server)
        let merged = putNote("shared", "a and b", baseVersion: 1)
        try await b.resolveConflict(id: ib, resolution: .retryWith(args: merged.args))
        try await eventually("the merged command succeeds") { try await b.command(id: ib).state == .succeeded }
        guard case .succeeded(let result)? = try await b.command(id: ib).settlement else { return XCTFail("no settlement") }
        XCTAssertTrue(result.contains("\"version\":2"), result)
        try await eventually("the merged note is synced locally") {
            let doc = try await b.get(collection: "notes", id: "shared")
            return doc?.status == .synced && doc?.value.contains("a and b") == true
        }
        let onServer = try await server.get("/v1/changes?limit=100")
        XCTAssertTrue(onServer?.contains("a and b") ?? false, onServer ?? "no answer")
    }

    func testAConflictResolvedByDiscardingRollsBackToTheServerVersion() async throws {
        let server = try startServer()
        let (b, ib) = try await conflictOnB(server)
        try await b.resolveConflict(id: ib, resolution: .discard)
        let state = try await b.command(id: ib).state
        XCTAssertEqual(state, .discarded)
        let settled = try await settle(b, ib)
        XCTAssertEqual(settled, .discarded)
        try await b.syncNow()
        try await eventually("B shows A's note, not its own discarded write") {
            let doc = try await b.get(collection: "notes", id: "shared")
            return doc?.status == .synced && doc?.value.contains("from a") == true
        }
        let status = try await b.status()
        XCTAssertEqual(status.conflict, 0)
        XCTAssertEqual(status.pending, 0)
    }
}
