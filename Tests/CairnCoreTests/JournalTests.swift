import CairnCore
import CairnTestSupport
import Foundation
import Glibc
import Testing

/// Operations answered before a crash but not yet committed come back from the redo journal.
@Suite struct JournalTests {
    /// Opens the crashed copy the way the next daemon would, and finds `name` in the default
    /// workspace's root.
    private func reopen(_ path: String) throws -> (Store, FileSystem, InodeID) {
        let store = try Store.open(at: path)
        let fs = try FileSystem(store: store)
        return (store, fs, try store.workspace(named: "default").root)
    }

    @Test func closedAndRenamedFilesSurviveACrashBeforeTheirCommit() throws {
        // Nothing commits on its own while the test runs: only the journal holds the changes.
        let t = try TemporaryStore(commitDelay: 3600)
        let early = try t.fs.mkdir(parent: t.root, name: Array("early".utf8), mode: 0o755, caller: .tester)
        let content = pseudoRandomBytes(100_000, seed: 3)
        try t.fs.writeFile(early.id, "big", content)
        try t.fs.writeFile(t.root, "small", Array("hello".utf8))
        try t.fs.rename(
            parent: t.root, name: Array("small".utf8), newParent: early.id, newName: Array("moved".utf8), options: [],
            caller: .tester)
        // Deferred after the last journaled answer: a crash may lose it (SEMANTICS.md).
        _ = try t.fs.mkdir(parent: t.root, name: Array("late".utf8), mode: 0o755, caller: .tester)

        let copy = try t.crashCopy()
        let (store, fs, root) = try reopen(copy)
        defer { store.close() }
        let dir = try fs.lookup(parent: root, name: Array("early".utf8))
        #expect(try fs.readFile(fs.lookup(parent: dir.id, name: Array("big".utf8)).id) == content)
        #expect(try fs.readFile(fs.lookup(parent: dir.id, name: Array("moved".utf8)).id) == Array("hello".utf8))
        #expect(throws: FSError.notFound) { try fs.lookup(parent: root, name: Array("small".utf8)) }
        #expect(throws: FSError.notFound) { try fs.lookup(parent: root, name: Array("late".utf8)) }
        // One version: a created file's first is its close's.
        let log = try fs.history(of: "early/big", in: store.workspace(named: "default"))
        #expect(log.map(\.cause) == ["close"] && log.first?.size == Int64(content.count))
        #expect(try store.check().isEmpty)
    }

    @Test func aJournalOfACommittedTransactionIsNotAppliedTwice() throws {
        let t = try TemporaryStore(commitDelay: 3600)
        try t.fs.writeFile(t.root, "once", Array("1".utf8))
        let journal = t.directory + "/store/journal"
        let saved = try Data(contentsOf: URL(fileURLWithPath: journal))
        #expect(!saved.isEmpty)
        try t.fs.syncMetadata()  // commits and empties the journal
        #expect(try Data(contentsOf: URL(fileURLWithPath: journal)).isEmpty)
        // As if the daemon died between its commit and emptying the journal.
        let copy = try t.crashCopy()
        try saved.write(to: URL(fileURLWithPath: copy + "/journal"))
        let (store, fs, root) = try reopen(copy)
        defer { store.close() }
        #expect(try fs.readFile(fs.lookup(parent: root, name: Array("once".utf8)).id) == Array("1".utf8))
        // Its one version, the close's, not a second one.
        let log = try fs.history(of: "once", in: store.workspace(named: "default"))
        #expect(log.map(\.cause) == ["close"])
        #expect(try store.check().isEmpty)
    }

    @Test func aRecordCutShortEndsTheJournal() throws {
        let t = try TemporaryStore(commitDelay: 3600)
        try t.fs.writeFile(t.root, "first", Array("a".utf8))
        let journal = t.directory + "/store/journal"
        let firstRecord = try Data(contentsOf: URL(fileURLWithPath: journal)).count
        try t.fs.writeFile(t.root, "second", Array("b".utf8))
        let copy = try t.crashCopy()
        // The second record loses its last byte, as a write cut off by the crash would.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: copy + "/journal"))
        #expect(bytes.count > firstRecord)
        try bytes.dropLast().write(to: URL(fileURLWithPath: copy + "/journal"))
        let (store, fs, root) = try reopen(copy)
        defer { store.close() }
        #expect(try fs.readFile(fs.lookup(parent: root, name: Array("first".utf8)).id) == Array("a".utf8))
        #expect(throws: FSError.notFound) { try fs.lookup(parent: root, name: Array("second".utf8)) }
        #expect(try store.check().isEmpty)
    }
}
