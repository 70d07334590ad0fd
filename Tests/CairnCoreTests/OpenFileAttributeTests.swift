import CairnCore
import CairnTestSupport
import Foundation
import Glibc
import Testing

/// Mode, owner and times changed while a file has uncommitted writes (tar sets all three on every
/// file before closing it) are part of the version its close commits.
@Suite struct OpenFileAttributeTests {
    private static let later = Timestamp(nanoseconds: 1_700_000_000_123_456_789)

    /// Creates `name` and writes `text` through a handle left open.
    private func openWritten(_ t: TemporaryStore, _ name: String, _ text: String) throws -> (InodeAttributes, UInt64) {
        let (attrs, handle) = try t.fs.create(
            parent: t.root, name: Array(name.utf8), mode: 0o644, flags: O_WRONLY | O_CREAT | O_EXCL, caller: .tester)
        _ = try Array(text.utf8).withUnsafeBytes { try t.fs.write(handle: handle, offset: 0, data: $0) }
        return (attrs, handle)
    }

    /// A file closed with `committed`, then written `more` at `offset` and given mode 0600 while
    /// still open: the mode is held with those writes.
    private func heldAfterClose(
        _ t: TemporaryStore, _ name: String, committed: String, more: String, at offset: Int64
    ) throws -> (InodeAttributes, UInt64) {
        let (file, handle) = try openWritten(t, name, committed)
        try t.fs.flush(handle: handle)
        _ = try Array(more.utf8).withUnsafeBytes { try t.fs.write(handle: handle, offset: offset, data: $0) }
        _ = try t.fs.setattr(file.id, changes: AttributeChanges(mode: 0o600), handle: handle, caller: .tester)
        return (file, handle)
    }

    private func reopen(_ path: String) throws -> (Store, FileSystem, InodeID) {
        let store = try Store.open(at: path)
        return (store, try FileSystem(store: store), try store.workspace(named: "default").root)
    }

    @Test func changesWhileWritingAreSeenAtOnceAndCommittedWithTheClose() throws {
        let t = try TemporaryStore(commitDelay: 3600)
        let (file, handle) = try openWritten(t, "tool", "#!/bin/sh\n")
        _ = try t.fs.setattr(
            file.id, changes: AttributeChanges(mtime: .value(Self.later)), handle: handle, caller: .tester)
        _ = try t.fs.setattr(file.id, changes: AttributeChanges(uid: 1000, gid: 100), handle: handle, caller: .tester)
        let answered = try t.fs.setattr(
            file.id, changes: AttributeChanges(mode: 0o4755), handle: handle, caller: .tester)
        #expect(answered.mode == S_IFREG | 0o4755)
        #expect(answered.uid == 1000 && answered.gid == 100)
        #expect(answered.mtime == Self.later)
        #expect(answered.nlink == 1)
        let seen = try t.fs.getattr(file.id)
        #expect(seen.mode == answered.mode && seen.uid == 1000 && seen.gid == 100 && seen.mtime == Self.later)
        #expect(try t.fs.lookup(parent: t.root, name: Array("tool".utf8)).uid == 1000)
        #expect(try t.fs.list(directory: t.root, after: 0, limit: 10).first?.attributes.mode == answered.mode)

        try t.fs.flush(handle: handle)
        try t.fs.release(handle: handle)
        let log = try t.fs.history(of: "tool", in: t.workspace)
        // No version of their own: the close's version, the file's first, carries them.
        #expect(log.map(\.cause) == ["close"])
        let closed = try #require(log.first)
        #expect(closed.mode == S_IFREG | 0o4755 && closed.uid == 1000 && closed.gid == 100)
        #expect(closed.mtime == Self.later)

        // The journal holds them as it holds the close: a crash now loses neither.
        let (store, fs, root) = try reopen(try t.crashCopy())
        defer { store.close() }
        let recovered = try fs.lookup(parent: root, name: Array("tool".utf8))
        #expect(recovered.mode == S_IFREG | 0o4755 && recovered.uid == 1000 && recovered.gid == 100)
        #expect(recovered.mtime == Self.later)
        #expect(try fs.readFile(recovered.id) == Array("#!/bin/sh\n".utf8))
    }

    @Test func aCrashBeforeTheCloseLosesThemWithTheWrites() throws {
        let t = try TemporaryStore(commitDelay: 3600)
        let (_, handle) = try heldAfterClose(t, "draft", committed: "unsaved", more: " more", at: 7)
        let (store, fs, root) = try reopen(try t.crashCopy())
        defer { store.close() }
        let recovered = try fs.lookup(parent: root, name: Array("draft".utf8))
        // The last close's content and mode, together.
        #expect(recovered.mode == S_IFREG | 0o644)
        #expect(try fs.readFile(recovered.id) == Array("unsaved".utf8))
        #expect(try store.check().isEmpty)
        try t.fs.release(handle: handle)
    }

    @Test func anXattrVersionOfAFileBeingWrittenHasItsNewMode() throws {
        let t = try TemporaryStore()
        let (file, handle) = try openWritten(t, "labelled", "x")
        _ = try t.fs.setattr(file.id, changes: AttributeChanges(mode: 0o600), handle: handle, caller: .tester)
        try t.fs.setxattr(file.id, name: Array("user.tag".utf8), value: Array("a".utf8), flags: [], caller: .tester)
        let tagged = try #require(try t.fs.history(of: "labelled", in: t.workspace).first)
        #expect(tagged.cause == "xattr")
        #expect(tagged.mode == S_IFREG | 0o600)
        try t.fs.flush(handle: handle)
        try t.fs.release(handle: handle)
        #expect(try t.fs.getattr(file.id).mode == S_IFREG | 0o600)
    }

    /// The open file remembers the row it last read; another operation on the inode in between
    /// (an unlink of one of its names) must be seen by the next change.
    @Test func aChangeAfterAnotherOperationSeesThatOperation() throws {
        let t = try TemporaryStore()
        let (file, handle) = try openWritten(t, "a", "1")
        // link commits the open content; the next write starts new uncommitted changes.
        _ = try t.fs.link(inode: file.id, newParent: t.root, newName: Array("b".utf8), caller: .tester)
        _ = try Array("2".utf8).withUnsafeBytes { try t.fs.write(handle: handle, offset: 1, data: $0) }
        #expect(
            try t.fs.setattr(file.id, changes: AttributeChanges(mode: 0o640), handle: handle, caller: .tester).nlink
                == 2)
        _ = try t.fs.unlink(parent: t.root, name: Array("b".utf8), caller: .tester)
        let after = try t.fs.setattr(
            file.id, changes: AttributeChanges(atime: .value(Self.later)), handle: handle, caller: .tester)
        #expect(after.nlink == 1)
        #expect(after.mode == S_IFREG | 0o640)
        #expect(after.atime == Self.later)
        try t.fs.flush(handle: handle)
        try t.fs.release(handle: handle)
        let committed = try t.fs.getattr(file.id)
        #expect(committed.nlink == 1 && committed.mode == S_IFREG | 0o640 && committed.atime == Self.later)
        #expect(try t.fs.readFile(file.id) == Array("12".utf8))
    }

    /// The change that writes held attributes into the row is the xattr change itself: when it
    /// fails, they stay held, and a crash then keeps the last version's content and mode together.
    @Test func aFailedXattrChangeLeavesThemHeldWithTheWrites() throws {
        let t = try TemporaryStore(commitDelay: 3600)
        let (file, handle) = try heldAfterClose(t, "kept", committed: "first", more: "second", at: 0)
        #expect(throws: FSError.noAttribute) {
            try t.fs.removexattr(file.id, name: Array("user.missing".utf8), caller: .tester)
        }
        #expect(try t.fs.getattr(file.id).mode == S_IFREG | 0o600)
        try t.fs.writeFile(t.root, "other", Array("journaled".utf8))
        let (store, fs, root) = try reopen(try t.crashCopy())
        defer { store.close() }
        let recovered = try fs.lookup(parent: root, name: Array("kept".utf8))
        #expect(recovered.mode == S_IFREG | 0o644)
        #expect(try fs.readFile(recovered.id) == Array("first".utf8))
        try t.fs.flush(handle: handle)
        try t.fs.release(handle: handle)
        let closed = try #require(try t.fs.history(of: "kept", in: t.workspace).first)
        #expect(closed.mode == S_IFREG | 0o600 && closed.size == 6)
    }
}
