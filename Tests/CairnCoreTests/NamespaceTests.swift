import CairnCore
import CairnTestSupport
import Foundation
import Glibc
import Testing

@Suite struct NamespaceTests {
    func name(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func inodeIdsAreNeverReused() throws {
        let t = try TemporaryStore()
        let a = try t.fs.writeFile(t.root, "x", [1])
        try t.fs.unlink(parent: t.root, name: name("x"), caller: .tester)
        let b = try t.fs.writeFile(t.root, "x", [1])
        #expect(b.id > a.id)
    }

    /// The kernel asks for a directory's attributes after each change of its entries: the
    /// answer is its row as that change left it, and any later change of it shows at once.
    @Test func aDirectorysAttributesFollowEveryChange() throws {
        let t = try TemporaryStore()
        let dir = try t.fs.mkdir(parent: t.root, name: name("d"), mode: 0o755, caller: .tester)
        let before = try t.fs.getattr(dir.id)
        _ = try t.fs.mkdir(parent: dir.id, name: name("sub"), mode: 0o755, caller: .tester)
        let made = try t.fs.getattr(dir.id)
        #expect(made.nlink == before.nlink + 1 && made.mtime >= before.mtime && made.ctime == made.mtime)
        _ = try t.fs.setattr(dir.id, changes: AttributeChanges(mode: 0o700), handle: nil, caller: .tester)
        #expect(try t.fs.getattr(dir.id).mode & 0o7777 == 0o700)
        try t.fs.rmdir(parent: dir.id, name: name("sub"), caller: .tester)
        let removed = try t.fs.getattr(dir.id)
        #expect(removed.nlink == before.nlink && removed.mode & 0o7777 == 0o700)
        #expect(throws: FSError.notFound) { try t.fs.unlink(parent: dir.id, name: name("sub"), caller: .tester) }
        _ = try t.fs.setattr(
            dir.id, changes: AttributeChanges(mtime: .value(Timestamp(seconds: 5, nanoseconds: 0))), handle: nil,
            caller: .tester)
        #expect(try t.fs.getattr(dir.id).mtime == Timestamp(seconds: 5, nanoseconds: 0))
    }

    @Test func namesAreBytesUpTo255() throws {
        let t = try TemporaryStore()
        let odd: [UInt8] = [0xFF, 0xFE, 0x20, 0x01, 0x80]
        _ = try t.fs.mkdir(parent: t.root, name: odd, mode: 0o755, caller: .tester)
        #expect(try t.fs.list(directory: t.root, after: 0, limit: 10).map(\.name) == [odd])
        let long = [UInt8](repeating: UInt8(ascii: "a"), count: 255)
        _ = try t.fs.mknod(parent: t.root, name: long, mode: S_IFREG | 0o644, rdev: 0, caller: .tester)
        #expect(throws: FSError.nameTooLong) {
            try t.fs.mknod(
                parent: t.root, name: long + [UInt8(ascii: "a")], mode: S_IFREG | 0o644, rdev: 0, caller: .tester)
        }
    }

    @Test func renameFlagsAndDirectoryRules() throws {
        let t = try TemporaryStore()
        let a = try t.fs.writeFile(t.root, "a", [1])
        let b = try t.fs.writeFile(t.root, "b", [2])
        #expect(throws: FSError.exists) {
            try t.fs.rename(
                parent: t.root, name: name("a"), newParent: t.root, newName: name("b"), options: .noReplace,
                caller: .tester)
        }
        try t.fs.rename(
            parent: t.root, name: name("a"), newParent: t.root, newName: name("b"), options: .exchange, caller: .tester)
        #expect(try t.fs.lookup(parent: t.root, name: name("a")).id == b.id)
        #expect(try t.fs.lookup(parent: t.root, name: name("b")).id == a.id)
        let d = try t.fs.mkdir(parent: t.root, name: name("d"), mode: 0o755, caller: .tester)
        let sub = try t.fs.mkdir(parent: d.id, name: name("sub"), mode: 0o755, caller: .tester)
        #expect(throws: FSError.invalidArgument("cannot move a directory into itself")) {
            try t.fs.rename(
                parent: t.root, name: name("d"), newParent: sub.id, newName: name("d"), options: [], caller: .tester)
        }
        #expect(throws: FSError.notEmpty) { try t.fs.rmdir(parent: t.root, name: name("d"), caller: .tester) }
        #expect(throws: FSError.isDirectory) {
            try t.fs.rename(
                parent: t.root, name: name("a"), newParent: t.root, newName: name("d"), options: [], caller: .tester)
        }
        #expect(try t.fs.getattr(d.id).nlink == 3)
        try t.fs.rename(
            parent: d.id, name: name("sub"), newParent: t.root, newName: name("sub"), options: [], caller: .tester)
        #expect(try t.fs.getattr(d.id).nlink == 2)
        #expect(try t.fs.getattr(t.root).nlink == 4)
    }

    @Test func hardLinksShareContentAndCount() throws {
        let t = try TemporaryStore()
        let a = try t.fs.writeFile(t.root, "a", Array("shared".utf8))
        let linked = try t.fs.link(inode: a.id, newParent: t.root, newName: name("b"), caller: .tester)
        #expect(linked.nlink == 2)
        try t.fs.unlink(parent: t.root, name: name("a"), caller: .tester)
        let b = try t.fs.lookup(parent: t.root, name: name("b"))
        #expect(b.nlink == 1)
        #expect(try t.fs.readFile(b.id) == Array("shared".utf8))
    }

    @Test func openThenUnlinkedFileStaysUsable() throws {
        let t = try TemporaryStore()
        let a = try t.fs.writeFile(t.root, "tmp", Array("abc".utf8))
        let h = try t.fs.open(a.id, flags: O_RDWR, caller: .tester)
        try t.fs.unlink(parent: t.root, name: name("tmp"), caller: .tester)
        _ = try Array("XYZ".utf8).withUnsafeBytes { try t.fs.write(handle: h, offset: 3, data: $0) }
        var buf = [UInt8](repeating: 0, count: 6)
        _ = try buf.withUnsafeMutableBytes { try t.fs.read(handle: h, offset: 0, into: $0) }
        #expect(buf == Array("abcXYZ".utf8))
        try t.fs.flush(handle: h)
        try t.fs.release(handle: h)
    }

    @Test func xattrLimitsAndFlags() throws {
        let t = try TemporaryStore()
        let f = try t.fs.writeFile(t.root, "x", [])
        try t.fs.setxattr(
            f.id, name: name("user.k"), value: [UInt8](repeating: 7, count: Limits.maxXattrValue), flags: [],
            caller: .tester)
        #expect(throws: FSError.attributeTooLarge) {
            try t.fs.setxattr(
                f.id, name: name("user.k"), value: [UInt8](repeating: 7, count: Limits.maxXattrValue + 1), flags: [],
                caller: .tester)
        }
        #expect(throws: FSError.exists) {
            try t.fs.setxattr(f.id, name: name("user.k"), value: [1], flags: .create, caller: .tester)
        }
        #expect(throws: FSError.noAttribute) {
            try t.fs.setxattr(f.id, name: name("user.n"), value: [1], flags: .replace, caller: .tester)
        }
        #expect(throws: FSError.notSupported) {
            try t.fs.setxattr(f.id, name: name("system.x"), value: [1], flags: [], caller: .tester)
        }
        #expect(throws: FSError.noAttribute) { try t.fs.getxattr(f.id, name: name("security.capability")) }
        #expect(try t.fs.listxattr(f.id) == [name("user.k")])
    }
}

@Suite struct ListingTests {
    @Test func cookiesStayValidWhileTheDirectoryChanges() throws {
        let t = try TemporaryStore()
        for i in 0..<100 {
            _ = try t.fs.mknod(
                parent: t.root, name: Array("f\(i)".utf8), mode: S_IFREG | 0o644, rdev: 0, caller: .tester)
        }
        let first = try t.fs.list(directory: t.root, after: 0, limit: 40)
        // Between two pages: remove names already listed and not yet listed, add new ones.
        for i in [0, 10, 50, 60] { try t.fs.unlink(parent: t.root, name: Array("f\(i)".utf8), caller: .tester) }
        for i in 100..<105 {
            _ = try t.fs.mknod(
                parent: t.root, name: Array("f\(i)".utf8), mode: S_IFREG | 0o644, rdev: 0, caller: .tester)
        }
        var rest: [DirectoryEntry] = []
        var cookie = first.last!.cookie
        while true {
            let page = try t.fs.list(directory: t.root, after: cookie, limit: 7)
            guard let last = page.last else { break }
            rest += page
            cookie = last.cookie
        }
        let names = (first + rest).map { String(decoding: $0.name, as: UTF8.self) }
        #expect(Set(names).count == names.count, "no entry is listed twice")
        let untouched = (0..<100).filter { ![0, 10, 50, 60].contains($0) }.map { "f\($0)" }
        #expect(Set(untouched).isSubset(of: Set(names)), "every entry present throughout is listed")
        #expect(!names.contains("f50") && !names.contains("f60"), "entries removed before they were reached are not")
        #expect(Set((100..<105).map { "f\($0)" }).isSubset(of: Set(names)))
    }
}

@Suite struct TimeTests {
    @Test func timesBeyondSixtyFourBitNanosecondsAreClampedNotFatal() throws {
        let t = try TemporaryStore()
        let f = try t.fs.writeFile(t.root, "t", [])
        for seconds in [Int.max, Int.min, 10_000_000_000, -1_000_000_000_000] {
            let a = try t.fs.setattr(
                f.id, changes: AttributeChanges(mtime: .value(Timestamp(seconds: seconds, nanoseconds: 999_999_999))),
                handle: nil, caller: .tester)
            #expect((0..<1_000_000_000).contains(a.mtime.subsecondNanoseconds))
            #expect((a.mtime.seconds > 0) == (seconds > 0))
        }
        let exact = Timestamp(seconds: -5, nanoseconds: 250)
        #expect(exact.seconds == -5 && exact.subsecondNanoseconds == 250)
    }
}
