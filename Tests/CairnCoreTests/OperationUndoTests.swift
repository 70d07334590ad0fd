import CairnTestSupport
import Foundation
import Glibc
import Testing

@testable import CairnCore

/// An operation that fails after some of its statements ran leaves nothing behind, and the
/// operations before it in the same open transaction (answered already) stay, committed or not.
@Suite struct OperationUndoTests {
    private struct Refused: Error {}

    private func meta(_ store: Store, _ key: String) throws -> String? {
        try store.read { db in try db.value(String.self, "SELECT value FROM meta WHERE key = ?", [key]) }
    }

    /// A statement that changes the database, then a failure, inside one operation.
    private func failAfterWriting(_ store: Store, key: String) {
        #expect(throws: FSError.self) {
            try store.write(.deferred) { db in
                try db.run("INSERT INTO meta(key, value) VALUES (?, 'half-done')", [key])
                throw Refused()
            }
        }
    }

    @Test func aFailedOperationTakesOnlyItsOwnChangesBack() throws {
        let t = try TemporaryStore(commitDelay: 3600)
        // Before the failure, in the same open transaction: deferred operations and a journaled
        // close.
        _ = try t.fs.mkdir(parent: t.root, name: Array("before".utf8), mode: 0o755, caller: .tester)
        try t.store.write(.deferred) { db in
            try db.run("INSERT INTO meta(key, value) VALUES ('deferred', 'kept')")
        }
        try t.fs.writeFile(t.root, "closed", Array("data".utf8))
        failAfterWriting(t.store, key: "failed")

        #expect(try meta(t.store, "failed") == nil)
        #expect(try meta(t.store, "deferred") == "kept")
        #expect(try t.fs.lookup(parent: t.root, name: Array("before".utf8)).isDirectory)
        #expect(try t.fs.readFile(t.fs.lookup(parent: t.root, name: Array("closed".utf8)).id) == Array("data".utf8))
        // The transaction goes on: later operations and the commit see the same state.
        try t.fs.writeFile(t.root, "after", Array("more".utf8))
        try t.fs.syncMetadata()
        let committed = try t.store.readCommitted { db in
            try db.values(String.self, "SELECT key FROM meta WHERE key IN ('failed', 'deferred') ORDER BY key")
        }
        #expect(committed == ["deferred"])
        #expect(try t.store.check().isEmpty)
    }

    @Test func theJournalAfterAnUndoneOperationReplaysWithoutIt() throws {
        let t = try TemporaryStore(commitDelay: 3600)
        try t.fs.writeFile(t.root, "first", Array("1".utf8))
        _ = try t.fs.mkdir(parent: t.root, name: Array("deferred".utf8), mode: 0o755, caller: .tester)
        failAfterWriting(t.store, key: "failed")
        // Journaled with everything not journaled before it: the mkdir, not the failed insert.
        try t.fs.writeFile(t.root, "second", Array("2".utf8))

        let copy = try t.crashCopy()
        let store = try Store.open(at: copy)
        defer { store.close() }
        let fs = try FileSystem(store: store)
        let root = try store.workspace(named: "default").root
        #expect(try fs.readFile(fs.lookup(parent: root, name: Array("first".utf8)).id) == Array("1".utf8))
        #expect(try fs.readFile(fs.lookup(parent: root, name: Array("second".utf8)).id) == Array("2".utf8))
        #expect(try fs.lookup(parent: root, name: Array("deferred".utf8)).isDirectory)
        #expect(try meta(store, "failed") == nil)
        #expect(try store.check().isEmpty)
    }

    @Test func anOperationThatFailsBeforeWritingLeavesTheTransactionAsItWas() throws {
        let t = try TemporaryStore(commitDelay: 3600)
        _ = try t.fs.mkdir(parent: t.root, name: Array("dir".utf8), mode: 0o755, caller: .tester)
        // An ordinary refusal: no such name.
        #expect(throws: FSError.notFound) {
            try t.fs.unlink(parent: t.root, name: Array("missing".utf8), caller: .tester)
        }
        #expect(try t.fs.lookup(parent: t.root, name: Array("dir".utf8)).isDirectory)
        try t.fs.syncMetadata()
        #expect(try t.store.check().isEmpty)
    }

    /// A node made under a name another took first fails with `exists` once its inode and event
    /// rows are written (the name's unique index refuses it): they are undone, nothing else.
    @Test func aNameTakenAlreadyUndoesTheNodeMadeForIt() throws {
        let t = try TemporaryStore(commitDelay: 3600)
        let name = Array("taken".utf8)
        let file = try t.fs.writeFile(t.root, "taken", Array("kept".utf8))
        let before = try t.store.statistics()
        #expect(throws: FSError.exists) { try t.fs.mkdir(parent: t.root, name: name, mode: 0o755, caller: .tester) }
        #expect(throws: FSError.exists) {
            try t.fs.create(parent: t.root, name: name, mode: 0o644, flags: O_WRONLY | O_EXCL, caller: .tester)
        }
        #expect(throws: FSError.exists) {
            try t.fs.symlink(parent: t.root, name: name, target: Array("x".utf8), caller: .tester)
        }
        let after = try t.store.statistics()
        #expect(after.inodes == before.inodes && after.events == before.events && after.versions == before.versions)
        // Without O_EXCL, the file there is opened.
        let (opened, handle) = try t.fs.create(
            parent: t.root, name: name, mode: 0o644, flags: O_RDONLY, caller: .tester)
        try t.fs.release(handle: handle)
        #expect(opened.id == file.id)
        #expect(try t.fs.readFile(file.id) == Array("kept".utf8))
        try t.fs.syncMetadata()
        #expect(try t.store.check().isEmpty)
    }
}
