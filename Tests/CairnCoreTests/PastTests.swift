import CairnCore
import CairnTestSupport
import Foundation
import Glibc
import Testing

/// The namespace and contents as they were at a seq or a time.
@Suite struct PastTests {
    private func content(_ fs: FileSystem, _ inode: InodeID, at seq: Int64) throws -> String {
        let version = try fs.pastVersion(inode, at: seq)
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = try buffer.withUnsafeMutableBytes { try fs.read(version: version, offset: 0, into: $0) }
        return String(decoding: buffer.prefix(n), as: UTF8.self)
    }

    @Test func aPastSeqShowsThatMomentsNamesContentsAndModes() throws {
        let t = try TemporaryStore()
        let name = { (s: String) in Array(s.utf8) }
        try t.fs.writeFile(t.root, "a", name("one"))
        let first = try t.fs.currentSeq()
        let a = try t.fs.writeFile(t.root, "a", name("two"))
        _ = try t.fs.setattr(a.id, changes: AttributeChanges(mode: 0o600), handle: nil, caller: .tester)
        let d = try t.fs.mkdir(parent: t.root, name: name("d"), mode: 0o755, caller: .tester)
        try t.fs.writeFile(d.id, "x", name("inside"))
        try t.fs.rename(
            parent: t.root, name: name("a"), newParent: t.root, newName: name("b"), options: [], caller: .tester)
        let second = try t.fs.currentSeq()
        try t.fs.unlink(parent: t.root, name: name("b"), caller: .tester)
        try t.fs.writeFile(d.id, "x", name("changed later"))
        let third = try t.fs.currentSeq()

        let aThen = try t.fs.pastLookup(parent: t.root, name: name("a"), at: first)
        #expect(try content(t.fs, aThen.id, at: first) == "one")
        #expect(aThen.mode & 0o777 == 0o644)
        #expect(throws: FSError.notFound) { try t.fs.pastLookup(parent: t.root, name: name("d"), at: first) }

        #expect(throws: FSError.notFound) { try t.fs.pastLookup(parent: t.root, name: name("a"), at: second) }
        let bThen = try t.fs.pastLookup(parent: t.root, name: name("b"), at: second)
        #expect(bThen.id == a.id)
        #expect(try content(t.fs, bThen.id, at: second) == "two")
        #expect(bThen.mode & 0o777 == 0o600)
        let listing = try t.fs.pastListing(parent: t.root, at: second, afterCookie: 0, limit: 100)
        #expect(Set(listing.map { String(decoding: $0.name, as: UTF8.self) }) == ["b", "d"])
        let x = try t.fs.pastLookup(parent: d.id, name: name("x"), at: second)
        #expect(try content(t.fs, x.id, at: second) == "inside")

        #expect(throws: FSError.notFound) { try t.fs.pastLookup(parent: t.root, name: name("b"), at: third) }
        #expect(try content(t.fs, x.id, at: third) == "changed later")
        #expect(try t.fs.pastListing(parent: t.root, at: third, afterCookie: 0, limit: 100).count == 1)
    }

    /// A file open(O_CREAT) made gets its first version at its first close; before that it is
    /// an empty file to every view of the past, to fsck and to a store reopened after a crash.
    @Test func aCreatedFileIsEmptyUntilItsFirstClose() throws {
        let t = try TemporaryStore(commitDelay: 3600)
        let name = { (s: String) in Array(s.utf8) }
        let (file, handle) = try t.fs.create(
            parent: t.root, name: name("new"), mode: 0o640, flags: O_WRONLY, caller: .tester)
        _ = try Array("written".utf8).withUnsafeBytes { try t.fs.write(handle: handle, offset: 0, data: $0) }
        let open = try t.fs.currentSeq()
        #expect(try t.fs.history(of: "new", in: t.workspace).isEmpty)
        #expect(try t.store.check().isEmpty)
        let then = try t.fs.pastLookup(parent: t.root, name: name("new"), at: open)
        #expect(then.id == file.id && then.size == 0 && then.mode == S_IFREG | 0o640)
        #expect(try content(t.fs, file.id, at: open) == "")
        // Another file's close puts the create in the journal: a crash keeps it, empty.
        try t.fs.writeFile(t.root, "other", name("x"))
        let copy = try t.crashCopy()
        try t.fs.flush(handle: handle)
        try t.fs.release(handle: handle)
        let log = try t.fs.history(of: "new", in: t.workspace)
        #expect(log.map(\.cause) == ["close"] && log.first?.size == 7)
        #expect(try content(t.fs, file.id, at: open) == "", "the past stays empty")
        #expect(try content(t.fs, file.id, at: t.fs.currentSeq()) == "written")
        let store = try Store.open(at: copy)
        defer { store.close() }
        let fs = try FileSystem(store: store)
        let crashed = try fs.lookup(parent: t.root, name: name("new"))
        #expect(try crashed.size == 0 && fs.readFile(crashed.id).isEmpty)
        #expect(try store.check().isEmpty)
    }

    /// A shell's `>` closes the descriptor it dup'ed before anything is written: that close
    /// makes no version; the write's close makes the first. A file nobody writes to gets its
    /// version when its last descriptor is released.
    @Test func aCreatedFilesFirstVersionHoldsWhatWasWritten() throws {
        let t = try TemporaryStore()
        let (file, first) = try t.fs.create(
            parent: t.root, name: Array("out".utf8), mode: 0o644, flags: O_WRONLY | O_TRUNC, caller: .tester)
        let second = try t.fs.open(file.id, flags: O_WRONLY, caller: .tester)
        try t.fs.flush(handle: first)
        try t.fs.release(handle: first)
        #expect(try t.fs.history(of: "out", in: t.workspace).isEmpty)
        _ = try Array("echoed\n".utf8).withUnsafeBytes { try t.fs.write(handle: second, offset: 0, data: $0) }
        try t.fs.flush(handle: second)
        try t.fs.release(handle: second)
        #expect(try t.fs.history(of: "out", in: t.workspace).map(\.size) == [7])
        let (touchedFile, touched) = try t.fs.create(
            parent: t.root, name: Array("touched".utf8), mode: 0o644, flags: O_WRONLY, caller: .tester)
        // touch(1): its utimensat waits for that version too.
        let stamp = Timestamp(seconds: 1_000_000, nanoseconds: 5)
        _ = try t.fs.setattr(
            touchedFile.id, changes: AttributeChanges(atime: .value(stamp), mtime: .value(stamp)), handle: nil,
            caller: .tester)
        try t.fs.flush(handle: touched)
        #expect(try t.fs.history(of: "touched", in: t.workspace).isEmpty)
        try t.fs.release(handle: touched)
        let log = try t.fs.history(of: "touched", in: t.workspace)
        #expect(log.map(\.size) == [0] && log.first?.mtime == stamp && log.first?.cause == "close")
    }

    /// An xattr set on a created file before its first close is in that close's version.
    @Test func aCreatedFilesFirstVersionHasTheXattrsSetBeforeItsClose() throws {
        let t = try TemporaryStore()
        let (file, handle) = try t.fs.create(
            parent: t.root, name: Array("tagged".utf8), mode: 0o644, flags: O_WRONLY, caller: .tester)
        try t.fs.setxattr(file.id, name: Array("user.tag".utf8), value: Array("blue".utf8), flags: [], caller: .tester)
        _ = try Array("body".utf8).withUnsafeBytes { try t.fs.write(handle: handle, offset: 0, data: $0) }
        try t.fs.flush(handle: handle)
        try t.fs.release(handle: handle)
        let closed = try t.fs.currentSeq()
        try t.fs.removexattr(file.id, name: Array("user.tag".utf8), caller: .tester)
        #expect(try t.fs.pastXattrs(file.id, at: closed).map(\.value) == [Array("blue".utf8)])
        #expect(try t.fs.pastXattrs(file.id, at: t.fs.currentSeq()).isEmpty)
    }

    @Test func aTimeNamesTheLastChangeMadeByThen() throws {
        let t = try TemporaryStore()
        try t.fs.writeFile(t.root, "early", Array("1".utf8))
        let seqEarly = try t.fs.currentSeq()
        usleep(20_000)
        let between = Timestamp.now()
        usleep(20_000)
        try t.fs.writeFile(t.root, "late", Array("2".utf8))
        #expect(try t.fs.seq(of: .time(between)) == seqEarly)
        #expect(try t.fs.seq(of: .time(Timestamp(nanoseconds: 0))) == 0)
        #expect(try t.fs.seq(of: .seq(7)) == 7)
    }

    @Test func pointsInTimeParseAsPeopleWriteThem() throws {
        let now = Timestamp(seconds: 1_790_000_000, nanoseconds: 0)
        #expect(try PointInTime("@1234") == .seq(1234))
        #expect(try PointInTime("-2h", now: now) == .time(Timestamp(seconds: 1_790_000_000 - 7200, nanoseconds: 0)))
        #expect(try PointInTime("-90s", now: now) == .time(Timestamp(seconds: 1_790_000_000 - 90, nanoseconds: 0)))
        #expect(try PointInTime("-1w", now: now) == .time(Timestamp(seconds: 1_790_000_000 - 604_800, nanoseconds: 0)))
        // 2026-11-26T10:00:00Z is 1,795,687,200 seconds after the epoch.
        let utc = Timestamp(seconds: 1_795_687_200, nanoseconds: 0)
        #expect(try PointInTime("2026-11-26T10:00:00Z") == .time(utc))
        #expect(try PointInTime("2026-11-26T12:00:00+02:00") == .time(utc))
        #expect(try PointInTime("2026-11-26T05:00-05:00") == .time(utc))
        #expect(
            try PointInTime("2026-11-26T10:00:00.25Z")
                == .time(Timestamp(seconds: 1_795_687_200, nanoseconds: 250_000_000)))
        var local = tm()
        local.tm_year = 126
        local.tm_mon = 10
        local.tm_mday = 26
        local.tm_hour = 10
        local.tm_isdst = -1
        #expect(try PointInTime("2026-11-26T10:00") == .time(Timestamp(seconds: mktime(&local), nanoseconds: 0)))
        for bad in ["", "@", "@-1", "-2x", "yesterday", "2026-13-01", "2026-11-26T25:00", "2026-11-26T10:00:00+2"] {
            #expect(throws: FSError.self) { try PointInTime(bad) }
        }
    }
}
