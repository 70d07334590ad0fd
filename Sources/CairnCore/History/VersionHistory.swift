import Foundation
import Glibc

/// One version of a file: its content and attributes when it was committed.
public struct VersionRecord: Sendable, Equatable {
    public var id: Int64
    public var inode: InodeID
    public var seq: Int64
    public var time: Timestamp
    public var size: Int64
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var actor: String
    public var cause: String
    public var sealed: Bool
    /// The file's own times as of this version (`time` is when the version was committed).
    public var mtime: Timestamp
    public var ctime: Timestamp
    var manifestID: Int64?
    /// The digest of the version's xattrs in `xattr_sets` (nil: none).
    var xattrsDigest: Data?
}

extension FileSystem {
    /// Splits a workspace-relative path into its names ("" and "/" are the workspace root).
    static func components(_ path: String) -> [[UInt8]] {
        Array(path.utf8).split(separator: UInt8(ascii: "/")).map(Array.init).filter { $0 != [UInt8(ascii: ".")] }
    }

    /// The live inode at `path` below `root`.
    public func resolve(_ path: String, from root: InodeID) throws(FSError) -> InodeAttributes {
        var current = try getattr(root)
        for name in Self.components(path) {
            guard current.isDirectory else { throw FSError.notDirectory }
            current = try lookup(parent: current.id, name: name)
        }
        return current
    }

    /// The versions of `path`, newest first, across every inode that held the name (editors and
    /// agents save by writing a new file and renaming it over the old one). Fails with `notFound`
    /// when the name holds nothing and never had a version.
    public func history(of path: String, in workspace: Workspace) throws(FSError) -> [VersionRecord] {
        let names = Self.components(path)
        guard let last = names.last else {
            return try store.read { db in try HistoryQueries.versions(db, inode: workspace.root, from: 0, until: nil) }
                .reversed()
        }
        var parent = try getattr(workspace.root)
        for name in names.dropLast() {
            guard parent.isDirectory else { throw FSError.notDirectory }
            parent = try lookup(parent: parent.id, name: name)
        }
        let records = try history(parent: parent.id, name: last)
        // A name that holds a file not closed since its creation has no version yet.
        if records.isEmpty { _ = try lookup(parent: parent.id, name: last) }
        return records
    }

    /// The versions of the name `name` in the directory `parent`, newest first (empty: the name
    /// never held anything).
    public func history(parent: InodeID, name: [UInt8]) throws(FSError) -> [VersionRecord] {
        try ensureEntries(parent)
        return try store.read { db -> [VersionRecord] in
            var seen = Set<Int64>()
            var out: [VersionRecord] = []
            for binding in try HistoryQueries.bindings(db, parent: parent, name: name) {
                for v in try HistoryQueries.versions(db, inode: binding.inode, from: binding.from, until: binding.until)
                where seen.insert(v.id).inserted {
                    out.append(v)
                }
            }
            return out
        }.sorted { $0.seq > $1.seq }
    }

    public func version(_ id: Int64) throws(FSError) -> VersionRecord {
        guard let v = try store.read({ db in try HistoryQueries.version(db, id: id) }) else { throw FSError.notFound }
        return v
    }

    /// Reads a version's content at `offset`.
    public func read(version: VersionRecord, offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws(FSError)
        -> Int
    {
        guard version.mode & S_IFMT == S_IFREG else {
            throw FSError.invalidArgument("version \(version.id) is not of a regular file")
        }
        guard let manifestID = version.manifestID else { return 0 }  // created empty, never written
        let manifest = try store.read { db in try ContentQueries.manifest(db, id: manifestID) }
        return try content.read(manifest, size: version.size, offset: offset, into: buffer)
    }
}
