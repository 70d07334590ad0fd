import CairnCore
import CairnTestSupport
import Foundation
import Glibc
import Testing

/// Snapshots, restores and rollbacks: the past brought back as new versions.
@Suite struct RestoreTests {
    private func name(_ s: String) -> [UInt8] { Array(s.utf8) }

    private func removeTree(_ fs: FileSystem, parent: InodeID, _ n: String) throws {
        let a = try fs.lookup(parent: parent, name: name(n))
        if a.isDirectory {
            for e in try fs.list(directory: a.id, after: 0, limit: 100_000) {
                try removeTree(fs, parent: a.id, String(decoding: e.name, as: UTF8.self))
            }
            try fs.rmdir(parent: parent, name: name(n), caller: .tester)
        } else {
            try fs.unlink(parent: parent, name: name(n), caller: .tester)
        }
    }

    private func populate(_ t: TemporaryStore) throws -> InodeID {
        let fs = t.fs
        let d = try fs.mkdir(parent: t.root, name: name("proj"), mode: 0o750, caller: .tester)
        let sub = try fs.mkdir(parent: d.id, name: name("src"), mode: 0o755, caller: .tester)
        try fs.writeFile(d.id, "README", name("read me"))
        let main = try fs.writeFile(sub.id, "main.c", name("int main() { return 0; }"))
        try fs.writeFile(sub.id, "big.bin", pseudoRandomBytes(3 << 20, seed: 7))
        _ = try fs.link(inode: main.id, newParent: d.id, newName: name("main-link.c"), caller: .tester)
        _ = try fs.symlink(parent: d.id, name: name("latest"), target: name("src/main.c"), caller: .tester)
        try fs.setxattr(main.id, name: name("user.tag"), value: name("v1"), flags: [], caller: .tester)
        return d.id
    }

    @Test func restoringADeletedTreeBringsBackEveryFileWithItsHistory() throws {
        let t = try TemporaryStore()
        let d = try populate(t)
        let before = try t.fs.describeTree(d)
        let historyBefore = try t.fs.history(of: "proj/src/main.c", in: t.workspace)
        let seq = try t.fs.currentSeq()
        try removeTree(t.fs, parent: t.root, "proj")
        #expect(throws: FSError.notFound) { try t.fs.lookup(parent: t.root, name: name("proj")) }

        let (summary, changes) = try t.fs.restore("proj", in: t.workspace, from: .at("@\(seq)"), caller: .tester)
        let restored = try t.fs.lookup(parent: t.root, name: name("proj"))
        #expect(restored.id == d, "the directory's inode has its name back")
        #expect(try t.fs.describeTree(restored.id) == before)
        #expect(summary.restored == 7 && summary.removed == 0 && summary.bytes > 3 << 20)
        #expect(changes.contains(.entry(parent: t.root, name: name("proj"))))
        let historyAfter = try t.fs.history(of: "proj/src/main.c", in: t.workspace)
        #expect(
            Array(historyAfter.suffix(historyBefore.count)) == historyBefore, "the old versions are still its history")
        let src = try t.fs.lookup(parent: restored.id, name: name("src"))
        let main = try t.fs.lookup(parent: src.id, name: name("main.c"))
        #expect(try t.fs.getxattr(main.id, name: name("user.tag")) == name("v1"))
        #expect(try t.store.check().isEmpty)
    }

    @Test func aFileRestoredToAVersionIsANewVersionAndCanBeUndone() throws {
        let t = try TemporaryStore()
        try t.fs.writeFile(t.root, "notes", name("first"))
        try t.fs.writeFile(t.root, "notes", name("second, longer"))
        let a = try t.fs.writeFile(t.root, "notes", name("third"))
        let versions = try t.fs.history(of: "notes", in: t.workspace)
        // Newest first: third, second, first, and the empty file `create` made.
        let first = versions[2]
        let (summary, _) = try t.fs.restore("notes", in: t.workspace, from: .version(first.id), caller: .tester)
        #expect(summary.restored == 1 && summary.bytes == 5)
        #expect(try t.fs.readFile(a.id) == name("first"))
        let after = try t.fs.history(of: "notes", in: t.workspace)
        #expect(after.count == versions.count + 1 && after[0].cause == "restore")
        // The restore replaced "third": that is one more version to restore.
        _ = try t.fs.restore("notes", in: t.workspace, from: .version(versions[0].id), caller: .tester)
        #expect(try t.fs.readFile(a.id) == name("third"))
        // Restoring what is already there changes nothing.
        let (same, _) = try t.fs.restore("notes", in: t.workspace, from: .version(versions[0].id), caller: .tester)
        #expect(same.unchanged == 1 && same.restored == 0)
        #expect(throws: FSError.self) {
            try t.fs.restore("notes", in: t.workspace, from: .version(999_999), caller: .tester)
        }
    }

    @Test func rollbackToASnapshotTakesASafetySnapshotAndIsUndoable() throws {
        let t = try TemporaryStore()
        let d = try populate(t)
        let good = try t.fs.describeTree(t.root)
        let snapshot = try t.fs.createSnapshot(of: t.workspace, name: "good", caller: .tester)
        #expect(throws: FSError.self) { try t.fs.createSnapshot(of: t.workspace, name: "good", caller: .tester) }
        #expect(throws: FSError.self) { try t.fs.createSnapshot(of: t.workspace, name: "a/b", caller: .tester) }

        // A bad afternoon: files changed, renamed, deleted, added.
        try t.fs.writeFile(d, "README", name("overwritten"))
        try t.fs.rename(
            parent: d, name: name("src"), newParent: t.root, newName: name("moved"), options: [], caller: .tester)
        try t.fs.unlink(parent: d, name: name("latest"), caller: .tester)
        try t.fs.writeFile(t.root, "junk", name("junk"))
        let bad = try t.fs.describeTree(t.root)

        let (result, _) = try t.fs.perform(.rollback(workspace: "default", source: .snapshot("good")), caller: .tester)
        let summary = try #require(result.restore)
        #expect(summary.sourceSeq == snapshot.seq)
        let restored = try t.fs.describeTree(t.root)
        #expect(
            restored == good,
            "\(restored.filter { good[$0.key] != $0.value }) \(good.filter { restored[$0.key] != $0.value })")
        #expect(try t.fs.lookup(parent: d, name: name("src")).isDirectory, "the moved directory came back")
        let safety = try #require(summary.safetySnapshot)
        #expect(safety.hasPrefix("before-rollback-"))
        #expect(try t.fs.snapshots(of: t.workspace).map(\.name) == ["good", safety])

        _ = try t.fs.perform(.rollback(workspace: "default", source: .snapshot(safety)), caller: .tester)
        #expect(try t.fs.describeTree(t.root) == bad, "the rollback is undone")
        #expect(try t.store.check().isEmpty)

        _ = try t.fs.deleteSnapshot(of: t.workspace, name: "good", caller: .tester)
        #expect(try t.fs.snapshots(of: t.workspace).map(\.name).count == 2, "undoing took a snapshot too")
    }

    @Test func aRestoreOfAFileOpenWithUnsavedChangesIsRefused() throws {
        let t = try TemporaryStore()
        try t.fs.writeFile(t.root, "f", name("old"))
        let seq = try t.fs.currentSeq()
        let a = try t.fs.writeFile(t.root, "f", name("new"))
        let handle = try t.fs.open(a.id, flags: O_RDWR, caller: .tester)
        defer { try? t.fs.release(handle: handle) }
        // Open but unchanged: the handle reads the restored content.
        _ = try t.fs.restore("f", in: t.workspace, from: .at("@\(seq)"), caller: .tester)
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = try buffer.withUnsafeMutableBytes { try t.fs.read(handle: handle, offset: 0, into: $0) }
        #expect(Array(buffer.prefix(n)) == name("old"))
        _ = try name("dirty").withUnsafeBytes { try t.fs.write(handle: handle, offset: 0, data: $0) }
        #expect(throws: FSError.self) {
            try t.fs.restore(
                "f", in: t.workspace, from: .version(t.fs.history(of: "f", in: t.workspace)[1].id), caller: .tester)
        }
    }

    @Test func aFileRestoredWhileOpenChecksItsRestoredModeOnTheNextWrite() throws {
        let t = try TemporaryStore()
        let a = try t.fs.writeFile(t.root, "tool", name("v1"))
        _ = try t.fs.setattr(a.id, changes: AttributeChanges(mode: 0o4755), handle: nil, caller: .tester)
        let setUID = try t.fs.history(of: "tool", in: t.workspace)[0]
        _ = try t.fs.setattr(a.id, changes: AttributeChanges(mode: 0o755), handle: nil, caller: .tester)
        let user = Caller(uid: 1000, gid: 1000, pid: 2, actor: "user")
        let handle = try t.fs.open(a.id, flags: O_WRONLY, caller: user)
        defer { try? t.fs.release(handle: handle) }
        _ = try t.fs.restore("tool", in: t.workspace, from: .version(setUID.id), caller: .tester)
        #expect(try t.fs.getattr(a.id).mode & 0o7777 == 0o4755)
        // As Linux: a write by a user without CAP_FSETID drops the set-user-ID bit.
        _ = try name("v2").withUnsafeBytes { try t.fs.write(handle: handle, offset: 0, data: $0) }
        #expect(try t.fs.getattr(a.id).mode & 0o7777 == 0o755)
    }

    @Test func pastXattrsAreThoseOfThen() throws {
        let t = try TemporaryStore()
        let a = try t.fs.writeFile(t.root, "x", name("data"))
        try t.fs.setxattr(a.id, name: name("user.k"), value: name("old"), flags: [], caller: .tester)
        let seq = try t.fs.currentSeq()
        try t.fs.setxattr(a.id, name: name("user.k"), value: name("new"), flags: [], caller: .tester)
        try t.fs.setxattr(a.id, name: name("user.other"), value: name("1"), flags: [], caller: .tester)
        let then = try t.fs.pastXattrs(a.id, at: seq)
        #expect(then.map(\.name) == [name("user.k")] && then.map(\.value) == [name("old")])
        #expect(try t.fs.pastXattrs(a.id, at: t.fs.currentSeq()).count == 2)
    }

    @Test func aRestoredTreeNeverLinksToFilesOutsideIt() throws {
        let t = try TemporaryStore()
        let d = try t.fs.mkdir(parent: t.root, name: name("d"), mode: 0o755, caller: .tester)
        let sub = try t.fs.mkdir(parent: d.id, name: name("sub"), mode: 0o755, caller: .tester)
        try t.fs.writeFile(sub.id, "f", name("then"))
        let seq = try t.fs.currentSeq()
        try t.fs.rename(
            parent: t.root, name: name("d"), newParent: t.root, newName: name("d.old"), options: [], caller: .tester)
        let old = try t.fs.lookup(parent: t.root, name: name("d.old"))
        let oldSub = try t.fs.lookup(parent: old.id, name: name("sub"))
        let f = try t.fs.writeFile(oldSub.id, "f", name("changed in d.old"))
        _ = try t.fs.mkdir(parent: t.root, name: name("d"), mode: 0o755, caller: .tester)
        _ = try t.fs.restore("d", in: t.workspace, from: .at("@\(seq)"), caller: .tester)
        #expect(try t.fs.readFile(f.id) == name("changed in d.old"), "the moved tree is not touched")
        let nd = try t.fs.lookup(parent: t.root, name: name("d"))
        let restored = try t.fs.lookup(parent: try t.fs.lookup(parent: nd.id, name: name("sub")).id, name: name("f"))
        #expect(restored.id != f.id && restored.nlink == 1)
        #expect(try t.fs.readFile(restored.id) == name("then"))
        // Rolling back removes nested directories; every link count stays right.
        _ = try t.fs.perform(.rollback(workspace: "default", source: .at("@\(seq)")), caller: .tester)
        #expect(throws: FSError.notFound) { try t.fs.lookup(parent: t.root, name: name("d.old")) }
        #expect(try t.store.check().isEmpty)
    }

    @Test func aSnapshotKeepsWhatAnOpenWriteSessionHadFsynced() throws {
        let t = try TemporaryStore()
        let (a, handle) = try t.fs.create(
            parent: t.root, name: name("db"), mode: 0o644, flags: O_RDWR | O_CREAT, caller: .tester)
        _ = try name("first").withUnsafeBytes { try t.fs.write(handle: handle, offset: 0, data: $0) }
        try t.fs.fsync(handle: handle)
        let snapshot = try t.fs.createSnapshot(of: t.workspace, name: "s", caller: .tester)
        _ = try name("second").withUnsafeBytes { try t.fs.write(handle: handle, offset: 0, data: $0) }
        try t.fs.fsync(handle: handle)
        try t.fs.flush(handle: handle)
        try t.fs.release(handle: handle)
        let then = try t.fs.pastVersion(a.id, at: snapshot.seq)
        var bytes = [UInt8](repeating: 0, count: 16)
        let n = try bytes.withUnsafeMutableBytes { try t.fs.read(version: then, offset: 0, into: $0) }
        #expect(Array(bytes.prefix(n)) == name("first"))
    }
}
