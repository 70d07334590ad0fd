import CairnCore
import CairnTestSupport
import Foundation
import GRDB
import Glibc
import Testing

/// Small chunks live in pack files: one append each, named by their row; identical ones are
/// stored once; gc gives their blocks back; fsck sees a pack cut short or altered.
@Suite struct PackTests {
    private static let day: Int64 = 86_400_000_000_000

    private func name(_ s: String) -> [UInt8] { Array(s.utf8) }

    private func packBytes(_ t: TemporaryStore) throws -> (length: Int64, blocks: Int64) {
        let root = t.store.path + "/packs"
        var length: Int64 = 0
        var blocks: Int64 = 0
        for file in try FileManager.default.contentsOfDirectory(atPath: root) where file.hasSuffix(".pack") {
            var st = stat()
            #expect(stat(root + "/" + file, &st) == 0)
            length += Int64(st.st_size)
            blocks += Int64(st.st_blocks)
        }
        return (length, blocks)
    }

    @Test func smallFilesGoToAPackOnceEachAndReadBackBetweenAppends() throws {
        let t = try TemporaryStore()
        let first = pseudoRandomBytes(30_000, seed: 1)
        let a = try t.fs.writeFile(t.root, "a", first)
        // A read opens the pack before the next append writes to it.
        #expect(try t.fs.readFile(a.id) == first)
        let second = pseudoRandomBytes(40_000, seed: 2)
        let b = try t.fs.writeFile(t.root, "b", second)
        let c = try t.fs.writeFile(t.root, "c", first)  // the same bytes as a: stored once
        #expect(try t.fs.readFile(b.id) == second)
        #expect(try t.fs.readFile(c.id) == first)
        #expect(try t.fs.readFile(a.id) == first)
        #expect(try packBytes(t).length == Int64(first.count + second.count))
        t.fs.closeAudit()
        t.store.close()
        let db = try DatabaseQueue(path: t.store.path + "/cairn.db")
        let rows = try db.read {
            try Int.fetchAll($0, sql: "SELECT count(*) FROM blobs UNION ALL SELECT count(data) FROM blobs")
        }
        #expect(rows == [2, 0], "no bytes in the database")
        try db.close()
    }

    @Test func gcPunchesChunksNoVersionNeedsOutOfTheirPack() throws {
        let t = try TemporaryStore()
        try t.fs.writeFile(t.root, "kept", pseudoRandomBytes(60_000, seed: 3))
        try t.fs.writeFile(t.root, "gone", pseudoRandomBytes(60_000, seed: 4))
        try t.fs.unlink(parent: t.root, name: name("gone"), caller: .tester)
        try t.fs.syncMetadata()
        let before = try packBytes(t)
        let summary = try t.fs.collectGarbage(
            dryRun: false, now: Timestamp(nanoseconds: Timestamp.now().nanoseconds + 40 * Self.day))
        #expect(summary.chunksDeleted == 1 && summary.bytesFreed == 60_000)
        let after = try packBytes(t)
        #expect(after.length == before.length, "a pack keeps its length: offsets stay valid")
        // 60,000 bytes span at least 13 whole 4 KiB blocks of the pack (512-byte units here).
        #expect(before.blocks - after.blocks >= 13 * 8)
        #expect(
            try t.fs.readFile(t.fs.lookup(parent: t.root, name: name("kept")).id) == pseudoRandomBytes(60_000, seed: 3))
        #expect(try t.store.check().isEmpty)
    }

    @Test func fsckFindsAPackCutShortAndABitFlippedInOne() throws {
        let t = try TemporaryStore()
        try t.fs.writeFile(t.root, "first", pseudoRandomBytes(10_000, seed: 5))
        try t.fs.writeFile(t.root, "second", pseudoRandomBytes(10_000, seed: 6))
        try t.fs.syncMetadata()
        let pack = t.store.path + "/packs/1.pack"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: pack))
        #expect(bytes.count == 20_000)
        bytes[100] ^= 0xFF
        try bytes.prefix(15_000).write(to: URL(fileURLWithPath: pack))
        let problems = try t.store.check()
        #expect(problems.filter { $0.kind == .corruptChunk }.count == 1)
        let missing = problems.filter { $0.kind == .missingChunk }
        #expect(missing.count == 1 && missing[0].paths.contains { $0.hasSuffix("second") })
        // Read, the lost bytes are an error, not zeros.
        #expect { _ = try t.fs.readFile(t.fs.lookup(parent: t.root, name: name("second")).id) } throws: {
            "\($0)".contains("cut short")
        }
    }

    /// After a power loss a pack can be shorter than rows on disk say: a new process never
    /// appends where those rows point, it begins a pack of its own.
    @Test func eachProcessThatWritesBeginsAPackOfItsOwn() throws {
        let t = try TemporaryStore()
        try t.fs.writeFile(t.root, "first", pseudoRandomBytes(1_000, seed: 10))
        t.fs.closeAudit()
        t.store.close()
        let store = try Store.open(at: t.store.path)
        defer { store.close() }
        let fs = try FileSystem(store: store)
        try fs.writeFile(try store.workspace(named: "default").root, "second", pseudoRandomBytes(1_000, seed: 20))
        let packs = try FileManager.default.contentsOfDirectory(atPath: t.store.path + "/packs").sorted()
        #expect(packs == ["1.pack", "2.pack"])
        fs.closeAudit()
    }

    @Test func aMissingPackIsAnErrorThatSaysWhatToRun() throws {
        let t = try TemporaryStore()
        let file = try t.fs.writeFile(t.root, "small", pseudoRandomBytes(5_000, seed: 7))
        t.fs.closeAudit()
        t.store.close()  // and its descriptors, which would still read the file removed next
        try FileManager.default.removeItem(atPath: t.store.path + "/packs/1.pack")
        let store = try Store.open(at: t.store.path)
        defer { store.close() }
        let fs = try FileSystem(store: store)
        #expect { _ = try fs.readFile(file.id) } throws: { "\($0)".contains("cairn fsck") }
        #expect(try store.check().contains { $0.kind == .missingChunk })
    }
}
