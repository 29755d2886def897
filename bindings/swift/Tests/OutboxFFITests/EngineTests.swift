// The engine through the generated Swift bindings, against the real library and the real
// reference server on loopback (the scenarios of bindings/kotlin/tests/EngineTest.kt).
import Foundation
import XCTest
@testable import OutboxFFI

final class EngineTests: OutboxTestCase {
    func testBindingsMatchTheLibrary() {
        // The checksum check of every exported function: fails (fatalError) when the generated
        // Swift is stale against the library.
        uniffiEnsureOutboxFfiInitialized()
        XCTAssertFalse(outboxVersion().isEmpty)
    }

    func testEnqueueOfflineIsPendingThenDrainsWhenOnline() async throws {
        let server = try startServer()
        let ob = try await openOutbox(try tempDb(), server, online: false)
        let id = try await ob.enqueue(request: order("s-offline-1"))
        let status = try await ob.status()
        XCTAssertEqual(status.pending, 1)
        XCTAssertFalse(status.online)
        let pending = try await ob.command(id: id)
        XCTAssertEqual(pending.state, .pending)
        try await ob.setOnline(online: true)
        guard case .succeeded(let result) = try await settle(ob, id) else { return XCTFail("not succeeded") }
        XCTAssertTrue(result.contains("total"), result)
        let after = try await ob.status()
        XCTAssertEqual(after.pending, 0)
        let done = try await ob.command(id: id)
        XCTAssertEqual(done.state, .succeeded)
        XCTAssertTrue(done.history.contains { $0.outcome == "applied" }, "\(done.history)")
    }

    func testDrainForReportsWhatItSent() async throws {
        let server = try startServer()
        let ob = try await openOutbox(try tempDb(), server, online: false)
        for i in 0..<5 { _ = try await ob.enqueue(request: order("s-drain-\(i)")) }
        try await ob.setOnline(online: true)
        let report = try await within(20, "drainFor") { try await ob.drainFor(budgetMs: 10_000) }
        XCTAssertTrue(report.completed, "\(report)")
        XCTAssertEqual(report.remaining, 0)
        let status = try await ob.status()
        XCTAssertEqual(status.succeeded, 5)
    }

    func testRestartRestoresPendingCommandsWithTheirIdempotencyKeys() async throws {
        let server = try startServer()
        let path = try tempDb()
        let first = try await openOutbox(path, server, online: false)
        var ids: [String] = []
        var keys: [String] = []
        for i in 1...3 {
            let id = try await first.enqueue(request: order("s-restart-\(i)"))
            ids.append(id)
            keys.append(try await first.command(id: id).idempotencyKey)
        }
        await first.shutdown()

        let again = try await openOutbox(path, server, online: false)
        let pending = try await again.peek(filter: PeekFilter(states: [.pending]))
        XCTAssertEqual(pending.map(\.id), ids)
        XCTAssertEqual(pending.map(\.idempotencyKey), keys)
        try await again.setOnline(online: true)
        for id in ids {
            let settled = try await settle(again, id)
            XCTAssertTrue(settled.isSucceeded, "\(settled)")
        }
    }

    func testOptimisticChangeIsVisibleAtOnceAndHandedOffWithoutFlicker() async throws {
        let server = try startServer()
        let ob = try await openOutbox(try tempDb(), server, online: false)
        let id = try await ob.enqueue(request: putNote("n1", "hello"))
        let local = try await ob.get(collection: "notes", id: "n1")
        XCTAssertEqual(local?.status, .pending)
        XCTAssertEqual(local?.commands, [id])
        XCTAssertTrue(local?.value.contains("hello") ?? false)
        try await ob.setOnline(online: true)
        let settled = try await settle(ob, id)
        XCTAssertTrue(settled.isSucceeded, "\(settled)")
        try await eventually("the server version replaces the overlay") {
            try await ob.get(collection: "notes", id: "n1")?.status == .synced
        }
        let synced = try await ob.get(collection: "notes", id: "n1")
        XCTAssertTrue(synced?.value.contains("hello") ?? false, "never back to nothing: \(String(describing: synced))")
        XCTAssertEqual(synced?.version, 1)
        let count = try await ob.count(collection: "notes", query: Query())
        XCTAssertEqual(count, 1)
        let listed = try await ob.list(collection: "notes", query: Query())
        XCTAssertEqual(listed.map(\.id), ["n1"])
    }

    func testAsyncCallsRunConcurrentlyInATaskGroup() async throws {
        let server = try startServer()
        let ob = try await openOutbox(try tempDb(), server)
        var ids: [String] = []
        for i in 1...20 { ids.append(try await ob.enqueue(request: order("s-co-\(i)"))) }
        let all = ids
        let settled = try await within(20, "20 concurrent waitFor") {
            try await withThrowingTaskGroup(of: Settlement.self) { group in
                for id in all { group.addTask { try await ob.waitFor(id: id) } }
                var all: [Settlement] = []
                for try await s in group { all.append(s) }
                return all
            }
        }
        XCTAssertEqual(settled.count, 20)
        XCTAssertTrue(settled.allSatisfy(\.isSucceeded), "\(settled)")
    }

    func testConcurrentEnqueuesFromManyTasksAreAllKept() async throws {
        let ob = try await openOutbox(try tempDb(), online: false)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    for i in 0..<50 { _ = try await ob.enqueue(request: order("s-task-\(t)-\(i)")) }
                }
            }
            try await group.waitForAll()
        }
        let all = try await ob.peek(filter: PeekFilter(limit: 1000))
        XCTAssertEqual(all.count, 400)
        XCTAssertEqual(Set(all.map(\.id)).count, 400)
        XCTAssertEqual(Set(all.map(\.idempotencyKey)).count, 400)
        let seqs = all.map(\.seq).sorted()
        XCTAssertEqual(seqs.map { $0 - seqs[0] }, (0..<400).map(Int64.init), "gapless enqueue order")
    }

    func testSameKeyRunsInOrderAndARejectionFailsDependantsAndRollsBack() async throws {
        let server = try startServer()
        let ob = try await openOutbox(try tempDb(), server, online: false)
        let rolledBack = Collector()
        let sub = try ob.subscribe(listener: rolledBack)
        // juice has 20 in stock: the first order takes 15, the second (same key) asks for 10.
        func juice(_ id: String, _ qty: Int) -> EnqueueRequest {
            var r = order(id, "juice", qty, keys: ["register-1"])
            r.ops = [OptimisticOp(collection: "orders", id: id, kind: .insert(value: "{\"qty\":\(qty)}"))]
            return r
        }
        let a = try await ob.enqueue(request: juice("s-lane-1", 15))
        let b = try await ob.enqueue(request: juice("s-lane-2", 10))
        let c = try await ob.enqueue(request: juice("s-lane-3", 1))
        let optimistic = try await ob.list(collection: "orders", query: Query())
        XCTAssertEqual(Set(optimistic.map(\.id)), ["s-lane-1", "s-lane-2", "s-lane-3"])
        try await ob.setOnline(online: true)
        let sa = try await settle(ob, a)
        XCTAssertTrue(sa.isSucceeded, "\(sa)")
        guard case .failed(let code, _) = try await settle(ob, b) else { return XCTFail("b was not rejected") }
        XCTAssertEqual(code, "insufficient_stock")
        guard case .failed(let dependant, _) = try await settle(ob, c) else { return XCTFail("c did not fail") }
        XCTAssertEqual(dependant, "dependency_failed")
        // The rejected commands' optimistic rows are rolled back; the applied one stays.
        let rejected = try await ob.get(collection: "orders", id: "s-lane-2")
        XCTAssertNil(rejected)
        let dependantDoc = try await ob.get(collection: "orders", id: "s-lane-3")
        XCTAssertNil(dependantDoc)
        try await eventually("rolledBack events for both") {
            let ids = rolledBack.all.compactMap { e -> String? in if case .rolledBack(let id, _, _, _) = e { return id }; return nil }
            return Set(ids) == [b, c]
        }
        let failedState = try await ob.command(id: b).state
        XCTAssertEqual(failedState, .failed)
        sub.cancel()
    }

    func testWipeAndDeleteDatabaseOnLogout() async throws {
        let path = try tempDb()
        let ob = try await openOutbox(path, online: false)
        _ = try await ob.enqueue(request: order("s-logout-1"))
        _ = try await ob.enqueue(request: order("s-logout-2"))
        let refused = await expectError("unsent_commands") { try await ob.wipe(force: false) }
        guard case .UnsentCommands(_, let count) = refused else { return XCTFail("\(String(describing: refused))") }
        XCTAssertEqual(count, 2)
        let dropped = try await ob.deleteDatabase(force: true)
        XCTAssertEqual(dropped, 2)
        let left = try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent)
        XCTAssertEqual(left, [], "database, -wal and -shm are gone")
        await expectError("closed") { try await ob.status() }
    }
}
