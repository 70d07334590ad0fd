import CairnCore
import CairnTestSupport
import Foundation
import Glibc
import Testing

/// Forks: copy-on-write workspaces, isolated both ways.
@Suite struct ForkTests {
    private func name(_ s: String) -> [UInt8] { Array(s.utf8) }

    private func populate(_ t: TemporaryStore) throws {
        let fs = t.fs
        let d = try fs.mkdir(parent: t.root, name: name("src"), mode: 0o755, caller: .tester)
        let deep = try fs.mkdir(parent: d.id, name: name("deep"), mode: 0o700, caller: .tester)
        let a = try fs.writeFile(d.id, "a.txt", name("alpha"))
        try fs.writeFile(deep.id, "big.bin", pseudoRandomBytes(2 << 20, seed: 9))
        try fs.writeFile(t.root, "top.txt", name("top"))
        _ = try fs.link(inode: a.id, newParent: deep.id, newName: name("a-link"), caller: .tester)
        _ = try fs.symlink(parent: t.root, name: name("ln"), target: name("src/a.txt"), caller: .tester)
        try fs.setxattr(a.id, name: name("user.k"), value: name("v"), flags: [], caller: .tester)
    }

    @Test func aForkStartsAsItsParentAndTheyNeverSeeEachOthersChanges() throws {
        let t = try TemporaryStore()
        try populate(t)
        let before = try t.fs.describeTree(t.root)
        let fork = try t.fs.fork(t.workspace, as: "experiment", at: nil, caller: .tester)
        #expect(try t.fs.usage().first { $0.workspace == "experiment" }?.pendingDirectories == 1, "nothing copied yet")
        let forked = try t.fs.describeTree(fork.root)
        #expect(
            forked == before,
            "\(forked.filter { before[$0.key] != $0.value }) vs \(before.filter { forked[$0.key] != $0.value })")

        // The parent changes: the fork does not see it.
        let src = try t.fs.lookup(parent: t.root, name: name("src"))
        try t.fs.writeFile(src.id, "a.txt", name("parent's edit"))
        try t.fs.unlink(parent: t.root, name: name("top.txt"), caller: .tester)
        try t.fs.writeFile(t.root, "new-in-parent", name("p"))
        #expect(try t.fs.describeTree(fork.root) == before)
        let parentAfter = try t.fs.describeTree(t.root)

        // The fork changes: the parent does not see it.
        let fsrc = try t.fs.lookup(parent: fork.root, name: name("src"))
        let fdeep = try t.fs.lookup(parent: fsrc.id, name: name("deep"))
        try t.fs.writeFile(fdeep.id, "big.bin", name("fork's rewrite"))
        try t.fs.rename(
            parent: fsrc.id, name: name("a.txt"), newParent: fork.root, newName: name("moved.txt"), options: [],
            caller: .tester)
        _ = try t.fs.mkdir(parent: fdeep.id, name: name("more"), mode: 0o755, caller: .tester)
        #expect(try t.fs.describeTree(t.root) == parentAfter)
        let forkTree = try t.fs.describeTree(fork.root)
        #expect(forkTree["moved.txt"] == "100644 links 2 alpha [\"user.k\"]", "the hard link and xattr came along")
        #expect(forkTree["src/deep/more/"] != nil && forkTree["src/a.txt"] == nil)
        #expect(try t.store.check().isEmpty)
    }

    @Test func aForkAtAPastPointStartsFromThen() throws {
        let t = try TemporaryStore()
        try t.fs.writeFile(t.root, "f", name("old"))
        let seq = try t.fs.currentSeq()
        try t.fs.writeFile(t.root, "f", name("new"))
        try t.fs.writeFile(t.root, "later", name("x"))
        let fork = try t.fs.fork(t.workspace, as: "then", at: .seq(seq), caller: .tester)
        let f = try t.fs.lookup(parent: fork.root, name: name("f"))
        #expect(try t.fs.readFile(f.id) == name("old"))
        #expect(throws: FSError.notFound) { try t.fs.lookup(parent: fork.root, name: name("later")) }
        #expect(throws: FSError.self) { try t.fs.fork(t.workspace, as: "then", at: nil, caller: .tester) }
    }

    @Test func gcKeepsWhatAnUnopenedForkStillShowsOfItsParent() throws {
        let t = try TemporaryStore()
        let d = try t.fs.mkdir(parent: t.root, name: name("d"), mode: 0o755, caller: .tester)
        try t.fs.writeFile(d.id, "data", pseudoRandomBytes(1 << 20, seed: 1))
        let fork = try t.fs.fork(t.workspace, as: "f", at: nil, caller: .tester)
        try t.fs.writeFile(d.id, "data", pseudoRandomBytes(1 << 20, seed: 2))
        try t.fs.setRetention(of: t.workspace, to: RetentionPolicy(keepAll: 0, hourly: 0, daily: 0))
        _ = try t.fs.collectGarbage(
            dryRun: false, now: Timestamp(nanoseconds: Timestamp.now().nanoseconds + 1_000_000_000_000))
        let fd = try t.fs.lookup(parent: fork.root, name: name("d"))
        let data = try t.fs.lookup(parent: fd.id, name: name("data"))
        #expect(try t.fs.readFile(data.id) == pseudoRandomBytes(1 << 20, seed: 1))
        #expect(try t.store.check().isEmpty)
        let usage = try t.fs.usage()
        #expect(usage.first { $0.workspace == "f" }?.parent == "default")
        #expect(
            usage.first { $0.workspace == "f" }?.privateBytes == 1 << 20, "the fork keeps the old content alone now")
    }

    @Test func aForkOfAnUnopenedForkAndAFailedRmdirStillShowEverything() throws {
        let t = try TemporaryStore()
        try populate(t)
        let before = try t.fs.describeTree(t.root)
        let b = try t.fs.fork(t.workspace, as: "b", at: nil, caller: .tester)
        let c = try t.fs.fork(t.store.workspace(named: "b"), as: "c", at: nil, caller: .tester)
        let cTree = try t.fs.describeTree(c.root)
        #expect(
            cTree == before,
            "a fork of a fork nobody opened yet: \(cTree.filter { before[$0.key] != $0.value }) vs \(before.filter { cTree[$0.key] != $0.value })"
        )
        // rmdir of a directory never listed: not empty, and it stays full.
        #expect(throws: FSError.notEmpty) { try t.fs.rmdir(parent: b.root, name: name("src"), caller: .tester) }
        #expect(try t.fs.describeTree(b.root) == before)
        #expect(throws: FSError.notEmpty) { try t.fs.rmdir(parent: b.root, name: name("src"), caller: .tester) }
        #expect(try t.store.check().isEmpty)
    }

    @Test func aRestoreInAForkNobodyOpenedFindsItsFiles() throws {
        let t = try TemporaryStore()
        try populate(t)
        let fork = try t.fs.fork(t.workspace, as: "f", at: nil, caller: .tester)
        let before = try t.fs.describeTree(fork.root)
        let seq = try t.fs.currentSeq()
        let src = try t.fs.lookup(parent: fork.root, name: name("src"))
        try t.fs.writeFile(src.id, "a.txt", name("changed in the fork"))
        _ = try t.fs.restore("src/a.txt", in: fork, from: .at("@\(seq)"), caller: .tester)
        #expect(try t.fs.describeTree(fork.root) == before)
        #expect(try t.store.check().isEmpty)
    }
}
