import Foundation
import Glibc

/// The namespace as it was at a seq: names, kinds, modes, owners, times, sizes and contents of
/// the past, read-only. Directories report one link (an unknown count, as btrfs does), so tools
/// never prune a walk by link counts.
extension FileSystem {
    /// The seq `point` names (a time names the last change made by then).
    public func seq(of point: PointInTime) throws(FSError) -> Int64 {
        switch point {
        case .seq(let seq): return seq
        case .time(let time): return try store.read { db in try PastQueries.seq(at: time, db) }
        }
    }

    /// The last seq of the store so far.
    public func currentSeq() throws(FSError) -> Int64 {
        try store.read { db in try db.value(Int64.self, "SELECT max(seq) FROM events") ?? 0 }
    }

    /// The state of `inode` at `seq` (not found if it did not exist yet).
    public func pastVersion(_ inode: InodeID, at seq: Int64) throws(FSError) -> VersionRecord {
        guard let (version, _) = try store.read({ db in try PastQueries.version(db, inode: inode, at: seq) }) else {
            throw FSError.notFound
        }
        return version
    }

    public func pastAttributes(_ inode: InodeID, at seq: Int64) throws(FSError) -> InodeAttributes {
        guard let (version, rdev) = try store.read({ db in try PastQueries.version(db, inode: inode, at: seq) }) else {
            throw FSError.notFound
        }
        return Self.attributes(of: version, rdev: rdev)
    }

    /// The xattrs `inode` had at `seq`, in name order.
    public func pastXattrs(_ inode: InodeID, at seq: Int64) throws(FSError) -> [(name: [UInt8], value: [UInt8])] {
        let version = try pastVersion(inode, at: seq)
        return try store.read { db in try XattrQueries.recordedSet(db, digest: version.xattrsDigest) }
            .map { ([UInt8]($0.name), [UInt8]($0.value)) }
    }

    public func pastLookup(parent: InodeID, name: [UInt8], at seq: Int64) throws(FSError) -> InodeAttributes {
        try ensureEntries(parent)  // a fork's entries are dated from the fork once copied in
        guard let inode = try store.read({ db in try PastQueries.lookup(db, parent: parent, name: name, at: seq) })
        else { throw FSError.notFound }
        return try pastAttributes(inode, at: seq)
    }

    public func pastListing(parent: InodeID, at seq: Int64, afterCookie: Int64, limit: Int) throws(FSError)
        -> [DirectoryEntry]
    {
        try ensureEntries(parent)
        return try store.read { db in
            try PastQueries.listing(db, parent: parent, at: seq, afterCookie: afterCookie, limit: limit)
        }.map {
            DirectoryEntry(cookie: $0.cookie, name: $0.name, attributes: Self.attributes(of: $0.version, rdev: $0.rdev))
        }
    }

    /// A version shown as a file of its own: its attributes then, read-only.
    public func attributes(of version: VersionRecord) -> InodeAttributes {
        var a = Self.attributes(of: version, rdev: 0)
        a.mode &= ~0o222
        a.mtime = version.time
        return a
    }

    private static func attributes(of v: VersionRecord, rdev: UInt64) -> InodeAttributes {
        InodeAttributes(
            id: v.inode, mode: v.mode, nlink: 1, uid: v.uid, gid: v.gid, rdev: rdev, size: v.size, atime: v.mtime,
            mtime: v.mtime, ctime: v.ctime, generation: 1, blocks: (v.size + 511) / 512)
    }
}

extension Caller {
    /// Whether the mode bits and owner in `attrs` let this caller read (root always may).
    public func mayRead(_ attrs: InodeAttributes) -> Bool {
        if uid == 0 { return true }
        if uid == attrs.uid { return attrs.mode & 0o400 != 0 }
        if isMember(of: attrs.gid) { return attrs.mode & 0o040 != 0 }
        return attrs.mode & 0o004 != 0
    }
}
