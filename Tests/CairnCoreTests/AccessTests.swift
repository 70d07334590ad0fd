import CairnCore
import CairnTestSupport
import Foundation
import Glibc
import Testing

/// Roles beyond single grants: the store's default for new workspaces, and the audit rows of
/// administrative actions and of opens for reading.
@Suite struct AccessTests {
    private let stranger = Caller(uid: 4321, gid: 4321, pid: 2, actor: "stranger")

    @Test func theStoreDefaultRoleReachesOnlyWorkspacesCreatedAfterIt() throws {
        let t = try TemporaryStore()
        defer { t.close() }
        #expect(throws: FSError.self) { try t.fs.perform(.setDefaultRole(.reader), caller: stranger) }
        _ = try t.fs.perform(.setDefaultRole(.reader), caller: .tester)
        #expect(try t.fs.storeDefaultRole() == .reader)
        _ = try t.fs.perform(.createWorkspace(name: "later"), caller: .tester)
        let later = try t.store.workspace(named: "later")
        #expect(try t.fs.role(of: stranger, in: later) == .reader)
        #expect(try t.fs.role(of: stranger, in: t.workspace) == .writer, "an older workspace keeps what it had")
        #expect(throws: FSError.permissionDenied) {
            try t.fs.authorize(stranger, later.root, needs: .writer)
        }
        _ = try t.fs.perform(.grant(workspace: "later", principal: "everyone", role: .writer), caller: .tester)
        #expect(try t.fs.role(of: stranger, in: later) == .writer, "an admin changes it per workspace")
    }

    @Test func administrativeActionsAreAuditedAndRefusalsToo() throws {
        let t = try TemporaryStore()
        defer { t.close() }
        _ = try t.fs.perform(.grant(workspace: "default", principal: "uid:4321", role: .reader), caller: .tester)
        #expect(throws: FSError.self) {
            try t.fs.perform(.grant(workspace: "default", principal: "uid:4321", role: .admin), caller: stranger)
        }
        _ = try t.fs.perform(.setQuota(workspace: "default", bytes: 1000, files: nil), caller: .tester)
        t.fs.flushAudit()
        let rows = try t.fs.auditRecords(ops: ["grant", "quota"]).reversed().map { ($0.op, $0.actor, $0.result) }
        #expect(rows.count == 3)
        #expect(rows.first! == ("grant", "tester", "ok: uid:4321 reader"))
        #expect(rows[1].0 == "grant" && rows[1].1 == "stranger" && rows[1].2.hasPrefix("denied: only an admin"))
        #expect(rows[2] == ("quota", "tester", "ok: bytes 1000, files none"))
        #expect(try t.fs.auditRecords(ops: ["grant"]).allSatisfy { $0.workspace == "default" })
        // Only the refusal is a denial, not the actions whose result says more than "ok".
        #expect(try t.fs.auditRecords(deniedOnly: true).map(\.actor) == ["stranger"])
    }

    @Test func cliActionsNeedTheRoleTheirChangeNeeds() throws {
        let t = try TemporaryStore()
        defer { t.close() }
        try t.fs.writeFile(t.root, "a.txt", Array("1".utf8))
        _ = try t.fs.perform(.grant(workspace: "default", principal: "uid:4321", role: .reader), caller: .tester)
        let refused: [StoreAction] = [
            .createSnapshot(workspace: "default", name: "s"),
            .restore(workspace: "default", path: "a.txt", source: .at("@1")),
            .rollback(workspace: "default", source: .at("@1")),
            .setRetention(workspace: "default", policy: .default),
            .collectGarbage(dryRun: false),
            .setDefaultRole(.admin),
        ]
        for action in refused {
            #expect(throws: FSError.self, "\(action)") { try t.fs.perform(action, caller: stranger) }
        }
        _ = try t.fs.perform(.fork(source: "default", name: "mine", at: nil), caller: stranger)
        #expect(try t.fs.role(of: stranger, in: t.store.workspace(named: "mine")) == .admin, "a fork is its maker's")
        _ = try t.fs.perform(.grant(workspace: "default", principal: "uid:4321", role: .writer), caller: .tester)
        _ = try t.fs.perform(.createSnapshot(workspace: "default", name: "s"), caller: stranger)
    }

    @Test func opensForReadingAreAuditedUnlessSwitchedOff() throws {
        let t = try TemporaryStore()
        defer { t.close() }
        let file = try t.fs.writeFile(t.root, "contract.txt", Array("terms".utf8))
        func readOnce() throws -> Int {
            try t.fs.release(handle: t.fs.open(file.id, flags: O_RDONLY, caller: .tester))
            t.fs.flushAudit()
            return try t.fs.auditRecords(pathGlob: "contract.txt", ops: ["open-read"]).count
        }
        #expect(try t.fs.auditsReads(in: t.workspace))
        #expect(try readOnce() == 1)
        _ = try t.fs.perform(.setAuditReads(workspace: "default", on: false), caller: .tester)
        #expect(try !t.fs.auditsReads(in: t.workspace))
        #expect(try readOnce() == 1, "a read while switched off leaves no row")
        _ = try t.fs.perform(.setAuditReads(workspace: "default", on: true), caller: .tester)
        #expect(try readOnce() == 2)
        #expect(try t.fs.verifyAudit().intact, "a skipped read does not break the chain")
    }

    /// Each record names the path its file has when the record is written: below directories,
    /// and below their new names after a rename.
    @Test func auditedPathsFollowDirectoriesAndTheirRenames() throws {
        let t = try TemporaryStore()
        defer { t.close() }
        let outer = try t.fs.mkdir(parent: t.root, name: Array("outer".utf8), mode: 0o755, caller: .tester)
        let inner = try t.fs.mkdir(parent: outer.id, name: Array("inner".utf8), mode: 0o755, caller: .tester)
        let file = try t.fs.writeFile(inner.id, "notes.txt", Array("x".utf8))
        t.fs.flushAudit()
        #expect(try t.fs.auditRecords(ops: ["create"]).map(\.path) == ["outer/inner/notes.txt"])
        #expect(try t.fs.auditRecords(ops: ["mkdir"]).compactMap(\.path).sorted() == ["outer", "outer/inner"])
        try t.fs.rename(
            parent: t.root, name: Array("outer".utf8), newParent: t.root, newName: Array("moved".utf8), options: [],
            caller: .tester)
        _ = try t.fs.setattr(file.id, changes: AttributeChanges(mode: 0o600), handle: nil, caller: .tester)
        t.fs.flushAudit()
        #expect(try t.fs.auditRecords(ops: ["setattr"]).map(\.path) == ["moved/inner/notes.txt"])
        #expect(try t.fs.auditRecords(pathGlob: "outer/inner/*", ops: ["write"]).count == 1)
    }
}
