import Foundation
import Glibc

extension FileSystem {
    /// chmod, chown, truncate and utimes in one call, as setattr delivers them.
    public func setattr(_ inode: InodeID, changes: AttributeChanges, handle: UInt64?, caller: Caller) throws(FSError)
        -> InodeAttributes
    {
        try authorize(caller, inode, needs: .writer)
        if let size = changes.size {
            let attrs = try getattr(inode)
            if attrs.isDirectory { throw FSError.isDirectory }
            guard attrs.isRegular else { throw FSError.invalidArgument("cannot truncate this kind of file") }
            try truncate(handle: handle, inode: inode, to: size, caller: caller)
        }
        var changesMetadata =
            changes.mode != nil || changes.uid != nil || changes.gid != nil || changes.atime != nil
            || changes.mtime != nil
        if changes.dropsSetID, !changesMetadata {
            // A truncate, or the kernel's request before a write (or for a chown to -1, -1,
            // which it did not check): a change only if a bit goes, and only by one who may
            // chown or write the file (as Linux: a chown that would drop it is EPERM otherwise).
            let attrs = try getattr(inode)
            guard !attrs.isDirectory, Self.modeDroppingSetID(attrs.mode, of: attrs.gid, by: caller) != attrs.mode
            else { return attrs }
            if caller.uid != 0, caller.uid != attrs.uid, !caller.mayWrite(attrs) { throw FSError.notPermitted }
            changesMetadata = true
        }
        guard changesMetadata else { return try getattr(inode) }
        let file = openFile(inode)
        let updated = try updateAttributes(inode, changes: changes, file: file, now: Timestamp.now(), caller: caller)
        audit(caller, "setattr", inode: inode)
        return live(updated)
    }

    /// The metadata part of setattr, under the open file's lock so a concurrent commit cannot
    /// write back the times this change replaces.
    private func updateAttributes(
        _ inode: InodeID, changes: AttributeChanges, file: OpenFile?, now: Timestamp, caller: Caller
    ) throws(FSError) -> InodeAttributes {
        file?.lock.lock()
        defer { file?.lock.unlock() }
        if let file, file.modified || file.unversioned {
            // The file gets its version at close (a created one at its first), with these
            // attributes: a version, an event or a row update of their own would only repeat what
            // that commit writes.
            let updated = Self.applying(changes, to: try currentAttributes(file), now: now, caller: caller)
            file.takeChangedAttributes(updated)
            file.attributesPending = true
            return updated
        }
        let updated = try store.write(.deferred) { db -> InodeAttributes in
            var current = try NamespaceQueries.requireInode(db, inode)
            if let file { current.mtime = file.mtime }
            let updated = Self.applying(changes, to: current, now: now, caller: caller)
            try NamespaceQueries.updateAttributes(db, inode, .init(updated))
            let cause =
                changes.mode != nil || updated.mode != current.mode
                ? "chmod" : (changes.uid != nil || changes.gid != nil) ? "chown" : "utimes"
            let seq = try NamespaceQueries.recordEvent(
                db, kind: "attr", inode: inode, actor: caller.actor, time: now)
            try ContentQueries.recordAttributeVersion(db, inode: inode, seq: seq, actor: caller.actor, cause: cause)
            return updated
        }
        if let file {
            file.takeChangedAttributes(updated)
            // An attribute version is now current; the write session continues in a new one.
            file.sessionVersion = nil
        }
        return updated
    }

    /// `current` as `changes`, made by `caller` at `now`, leave it (ctime: now).
    private static func applying(
        _ changes: AttributeChanges, to current: InodeAttributes, now: Timestamp, caller: Caller
    ) -> InodeAttributes {
        var updated = current
        if let mode = changes.mode { updated.mode = (current.mode & S_IFMT) | (mode & 0o7777) }
        if changes.dropsSetID, !current.isDirectory {
            updated.mode = modeDroppingSetID(updated.mode, of: current.gid, by: caller)
        }
        updated.uid = changes.uid ?? current.uid
        updated.gid = changes.gid ?? current.gid
        updated.atime = resolve(changes.atime, current.atime, now: now)
        updated.mtime = resolve(changes.mtime, current.mtime, now: now)
        updated.ctime = now
        return updated
    }

    /// Runs `work`, a change that records a version from the inode's row (extended attributes),
    /// as one operation that first writes into the row the attribute changes an open file holds
    /// for its next commit: the version has them, and if `work` fails, the row is as it was.
    private func writeWithHeldAttributes(_ inode: InodeID, _ work: (Connection) throws -> Void) throws(FSError) {
        let file = openFile(inode)
        file?.lock.lock()
        defer { file?.lock.unlock() }
        let held = file.flatMap { $0.attributesPending ? $0.ownership : nil }
        try store.write(.deferred) { db in
            if let held { try NamespaceQueries.setOwnership(db, inode, held) }
            try work(db)
        }
        if held != nil { file?.attributesPending = false }
    }

    /// The mode and owner an open file holds for its next commit, if it holds any (a caller
    /// reading the row must not hold the store's writer: the file's lock comes first).
    func heldOwnership(of inode: InodeID) -> NamespaceQueries.Ownership? {
        guard let file = openFile(inode) else { return nil }
        file.lock.lock()
        defer { file.lock.unlock() }
        return file.attributesPending ? file.ownership : nil
    }

    /// A write by a process without CAP_FSETID (here: anyone but root) drops the set-user-ID bit,
    /// and the set-group-ID bit of a file that is group-executable or whose group the writer is
    /// not in, as Linux does. Through the page cache the kernel has asked for that already (a
    /// setattr before the write); through a write-only descriptor, which bypasses the page
    /// cache, it leaves it to the filesystem.
    func dropSetIDBits(_ file: OpenFile, caller: Caller) throws(FSError) {
        guard caller.uid != 0 else { return }
        file.lock.lock()
        let (mode, gid) = (file.ownership.mode, file.ownership.gid)
        file.lock.unlock()
        guard mode & S_IFMT == S_IFREG else { return }
        let kept = Self.modeDroppingSetID(mode, of: gid, by: caller)
        guard kept != mode else { return }
        _ = try updateAttributes(
            file.inode, changes: AttributeChanges(mode: kept & 0o7777), file: file, now: Timestamp.now(), caller: caller
        )
        audit(caller, "setattr", inode: file.inode)
    }

    /// `mode` without the bits Linux drops on a chown, and on a truncate or write by a user
    /// without CAP_FSETID: set-user-ID always; set-group-ID if the file is group-executable, or
    /// if `caller` (root aside) is not in the file's group `gid`.
    static func modeDroppingSetID(_ mode: UInt32, of gid: UInt32, by caller: Caller) -> UInt32 {
        var kept = mode & ~S_ISUID
        if mode & S_ISGID != 0, mode & S_IXGRP != 0 || (caller.uid != 0 && !caller.isMember(of: gid)) {
            kept &= ~S_ISGID
        }
        return kept
    }

    private static func resolve(_ change: TimeChange?, _ current: Timestamp, now: Timestamp) -> Timestamp {
        switch change {
        case .none: current
        case .now: now
        case .value(let t): t
        }
    }

    // MARK: extended attributes

    private static let namespaces: [[UInt8]] = ["user.", "trusted.", "security."].map { Array($0.utf8) }
    /// Limit of names and values together on one inode (Cairn's own; ext4's is one block).
    static let maxXattrTotal = 1 << 20

    private static func validateXattr(name: [UInt8]) throws(FSError) {
        guard name.count <= Limits.maxXattrName else { throw FSError.bufferTooSmall }
        guard let prefix = namespaces.first(where: { name.starts(with: $0) }) else { throw FSError.notSupported }
        guard name.count > prefix.count else { throw FSError.invalidArgument("empty attribute name") }
    }

    public func getxattr(_ inode: InodeID, name: [UInt8]) throws(FSError) -> [UInt8] {
        if name == Self.capabilityName, !capabilityHolders.withLock({ $0.contains(inode) }) {
            throw FSError.noAttribute
        }
        try Self.validateXattr(name: name)
        guard let value = try store.read({ db in try XattrQueries.value(db, inode: inode, name: name) }) else {
            throw FSError.noAttribute
        }
        return [UInt8](value)
    }

    public func listxattr(_ inode: InodeID) throws(FSError) -> [[UInt8]] {
        try store.read { db in try XattrQueries.names(db, inode: inode) }
    }

    public struct XattrFlags: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let create = XattrFlags(rawValue: 1)
        public static let replace = XattrFlags(rawValue: 2)
    }

    public func setxattr(_ inode: InodeID, name: [UInt8], value: [UInt8], flags: XattrFlags, caller: Caller)
        throws(FSError)
    {
        try Self.validateXattr(name: name)
        try authorize(caller, inode, needs: .writer)
        guard value.count <= Limits.maxXattrValue else { throw FSError.attributeTooLarge }
        try writeWithHeldAttributes(inode) { db in
            let attrs = try NamespaceQueries.requireInode(db, inode)
            // As ext4: user attributes only on regular files and directories.
            if name.starts(with: Array("user.".utf8)), !attrs.isRegular, !attrs.isDirectory {
                throw FSError.notPermitted
            }
            let existing = try XattrQueries.value(db, inode: inode, name: name)
            if flags.contains(.create), existing != nil { throw FSError.exists }
            if flags.contains(.replace), existing == nil { throw FSError.noAttribute }
            let total = try XattrQueries.totalSize(db, inode: inode, excluding: name)
            guard total + name.count + value.count <= Self.maxXattrTotal else { throw FSError.noSpace }
            try XattrQueries.set(db, inode: inode, name: name, value: Data(value))
            try Self.recordXattrChange(db, inode: inode, caller: caller)
        }
        audit(
            caller, "setxattr", inode: inode, bytes: Int64(value.count),
            result: "ok: " + String(decoding: name, as: UTF8.self))
        if name == Self.capabilityName { _ = capabilityHolders.withLock { $0.insert(inode) } }
    }

    public func removexattr(_ inode: InodeID, name: [UInt8], caller: Caller) throws(FSError) {
        try Self.validateXattr(name: name)
        try authorize(caller, inode, needs: .writer)
        try writeWithHeldAttributes(inode) { db in
            guard try XattrQueries.remove(db, inode: inode, name: name) else { throw FSError.noAttribute }
            try Self.recordXattrChange(db, inode: inode, caller: caller)
        }
        audit(caller, "removexattr", inode: inode, result: "ok: " + String(decoding: name, as: UTF8.self))
        if name == Self.capabilityName { _ = capabilityHolders.withLock { $0.remove(inode) } }
    }

    private static func recordXattrChange(_ db: Connection, inode: InodeID, caller: Caller) throws {
        let now = Timestamp.now()
        try NamespaceQueries.adjustLinks(db, inode, by: 0, ctime: now)
        let seq = try NamespaceQueries.recordEvent(db, kind: "xattr", inode: inode, actor: caller.actor, time: now)
        try ContentQueries.recordAttributeVersion(db, inode: inode, seq: seq, actor: caller.actor, cause: "xattr")
    }

    // MARK: statfs

    /// `root` (a workspace's root) makes a workspace with a quota report its quota: its limit
    /// as the size, what is left of it as free (as `df` on a quota'd directory tree shows).
    public func statfs(root: InodeID? = nil) throws(FSError) -> FilesystemStats {
        var stats = try statfs()
        guard quotas.withLock({ $0.any }), let root, let ws = try? store.workspace(root: root) else { return stats }
        let quota = try quotaReport(of: ws)
        if let limit = quota.limitBytes {
            let block = Int64(max(stats.blockSize, 1))
            stats.totalBlocks = UInt64(limit / block)
            let free = UInt64(max(0, limit - quota.usedBytes) / block)
            stats.freeBlocks = min(stats.freeBlocks, free)
            stats.availableBlocks = min(stats.availableBlocks, free)
        }
        if let limit = quota.limitFiles {
            stats.totalInodes = UInt64(limit)
            stats.freeInodes = UInt64(max(0, limit - quota.usedFiles))
        }
        return stats
    }

    public func statfs() throws(FSError) -> FilesystemStats {
        var vfs = statvfs()
        guard statvfs(store.path, &vfs) == 0 else { throw FSError.fromErrno(errno, "statvfs") }
        let counts = try store.read { db in try NamespaceQueries.counts(db) }
        let reserve = UInt64(Store.reserveBytes) / UInt64(max(vfs.f_frsize, 1))
        let freeInodes = UInt64(vfs.f_ffree) + UInt64(vfs.f_favail) > 0 ? UInt64(vfs.f_ffree) : 1 << 20
        return FilesystemStats(
            blockSize: UInt64(vfs.f_frsize), totalBlocks: UInt64(vfs.f_blocks),
            freeBlocks: UInt64(vfs.f_bfree) > reserve ? UInt64(vfs.f_bfree) - reserve : 0,
            availableBlocks: UInt64(vfs.f_bavail) > reserve ? UInt64(vfs.f_bavail) - reserve : 0,
            totalInodes: UInt64(counts.liveInodes) + freeInodes, freeInodes: freeInodes,
            maxNameLength: UInt64(Limits.maxNameLength))
    }
}
