import CairnCore
import CairnTestSupport
import Foundation
import Glibc
import Testing

@Suite struct VersionTests {
    @Test func everyCloseWithChangesIsAVersionAndOldOnesStayReadable() throws {
        let t = try TemporaryStore()
        try t.fs.writeFile(t.root, "doc", Array("one".utf8))
        try t.fs.writeFile(t.root, "doc", Array("two!".utf8))
        let log = try t.fs.history(of: "doc", in: t.workspace)
        let contents = try log.filter { $0.cause == "close" }.map { v -> String in
            var buf = [UInt8](repeating: 0, count: 64)
            let n = try buf.withUnsafeMutableBytes { try t.fs.read(version: v, offset: 0, into: $0) }
            return String(decoding: buf.prefix(n), as: UTF8.self)
        }
        #expect(contents.first == "two!")
        #expect(contents.contains("one"))
        #expect(log.allSatisfy { $0.actor == "tester" })
    }

    /// The kernel sends RELEASE after close(2) returns, in the background: it may come after
    /// the next open of the file. What that open changed belongs to its own close (and actor),
    /// not to the old handle's.
    @Test func aLateReleaseLeavesWhatAnotherHandleChangedToThatHandle() throws {
        let t = try TemporaryStore()
        let (file, first) = try t.fs.create(
            parent: t.root, name: Array("notes".utf8), mode: 0o644, flags: O_WRONLY | O_CREAT | O_TRUNC,
            caller: .tester)
        _ = try Array("alpha\nbeta\n".utf8).withUnsafeBytes { try t.fs.write(handle: first, offset: 0, data: $0) }
        try t.fs.flush(handle: first)
        let second = try t.fs.open(file.id, flags: O_WRONLY | O_TRUNC, caller: Self.editor)
        try t.fs.release(handle: first)
        func closes() throws -> [Int64] {
            try t.fs.history(of: "notes", in: t.workspace).filter { $0.cause == "close" }.map(\.size)
        }
        #expect(try closes() == [11], "the truncation is the second handle's, not yet closed")
        _ = try Array("BETA\n".utf8).withUnsafeBytes { try t.fs.write(handle: second, offset: 0, data: $0) }
        try t.fs.flush(handle: second)
        try t.fs.release(handle: second)
        let log = try t.fs.history(of: "notes", in: t.workspace).filter { $0.cause == "close" }
        #expect(log.map(\.size) == [5, 11])
        #expect(log.first?.actor == Self.editor.actor)
    }

    private static let editor = Caller(uid: 0, gid: 0, pid: 2, actor: "editor")

    @Test func fsyncsOfOneSessionMakeOneVersion() throws {
        let t = try TemporaryStore()
        let (attrs, h) = try t.fs.create(
            parent: t.root, name: Array("db".utf8), mode: 0o644, flags: O_RDWR, caller: .tester)
        for i in 0..<20 {
            _ = try [UInt8(i)].withUnsafeBytes { try t.fs.write(handle: h, offset: Int64(i), data: $0) }
            try t.fs.fsync(handle: h)
        }
        try t.fs.flush(handle: h)
        try t.fs.release(handle: h)
        let writes = try t.fs.history(of: "db", in: t.workspace).filter { $0.cause != "create" }
        #expect(writes.count == 1)
        #expect(writes.first?.size == 20)
        #expect(writes.first?.sealed == true)
        #expect(try t.fs.readFile(attrs.id) == (0..<20).map(UInt8.init))
    }

    @Test func aFileOpenForLongGetsCheckpointVersions() throws {
        let t = try TemporaryStore(checkpointInterval: 0.2)
        let (_, h) = try t.fs.create(
            parent: t.root, name: Array("log".utf8), mode: 0o644, flags: O_RDWR, caller: .tester)
        for round in 0..<3 {
            for i in 0..<5 {
                _ = try [UInt8(round)].withUnsafeBytes {
                    try t.fs.write(handle: h, offset: Int64(round * 5 + i), data: $0)
                }
                try t.fs.fsync(handle: h)
            }
            usleep(300_000)
        }
        try t.fs.flush(handle: h)
        try t.fs.release(handle: h)
        let writes = try t.fs.history(of: "log", in: t.workspace).filter { $0.cause != "create" }
        // One version per checkpoint period, not one per fsync (15), nor a single one.
        #expect(writes.count == 3)
        #expect(writes.allSatisfy { $0.sealed })
        #expect(writes.map(\.size).sorted() == [5, 10, 15])
    }

    @Test func historyFollowsANameAcrossSaveByRename() throws {
        let t = try TemporaryStore()
        try t.fs.writeFile(t.root, "report.md", Array("draft 1".utf8))
        try t.fs.writeFile(t.root, ".report.md.tmp", Array("draft 2".utf8))
        try t.fs.rename(
            parent: t.root, name: Array(".report.md.tmp".utf8), newParent: t.root, newName: Array("report.md".utf8),
            options: [], caller: .tester)
        let sizes = try t.fs.history(of: "report.md", in: t.workspace).filter { $0.cause == "close" }.map(\.size)
        #expect(sizes == [7, 7])
        let inodes = Set(try t.fs.history(of: "report.md", in: t.workspace).map(\.inode))
        #expect(inodes.count == 2)
    }

    @Test func deletedFilesKeepTheirHistory() throws {
        let t = try TemporaryStore()
        try t.fs.writeFile(t.root, "gone", Array("bytes".utf8))
        try t.fs.unlink(parent: t.root, name: Array("gone".utf8), caller: .tester)
        #expect(throws: FSError.notFound) { try t.fs.lookup(parent: t.root, name: Array("gone".utf8)) }
        #expect(try t.fs.history(of: "gone", in: t.workspace).contains { $0.size == 5 })
    }
}
