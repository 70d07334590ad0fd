import Foundation
import Synchronization

/// The SQL of file contents: blobs, manifests and versions.
enum ContentQueries {
    /// Records a chunk. A small one (`small`: its bytes) is appended to a pack first, unless the
    /// store has it already; a large one is a blob file already.
    static func recordBlob(
        _ db: Connection, _ digest: BlobDigest, size: Int, small: Data?, packs: PackFiles, time: Timestamp
    ) throws {
        let key = Data(digest.bytes)
        guard let small else {
            try db.run(
                "INSERT OR IGNORE INTO blobs(digest, size, stored_ns) VALUES (?, ?, ?)", [key, size, time.nanoseconds])
            return
        }
        guard try db.value(Int64.self, "SELECT 1 FROM blobs WHERE digest = ?", SQLArguments([.blob(key)])) == nil
        else { return }
        let (pack, offset) = try small.withUnsafeBytes { bytes throws(FSError) in try packs.append(bytes) }
        try db.run(
            "INSERT INTO blobs(digest, size, stored_ns, pack, pack_offset) VALUES (?, ?, ?, ?, ?)",
            SQLArguments([.blob(key), .int(size), .time(time), .int(pack), .int(offset)]))
    }

    /// Where the bytes of a chunk the database keeps (`ChunkRef.inline`) are.
    enum SmallChunk {
        /// In its row (stores from before packs).
        case row(Data)
        case packed(pack: Int64, offset: Int64, size: Int)
    }

    static func smallChunk(_ db: Connection, _ digest: BlobDigest) throws -> SmallChunk? {
        guard
            let row = try db.row(
                "SELECT \(smallChunkColumns) FROM blobs WHERE digest = ?", SQLArguments([.blob(Data(digest.bytes))]))
        else { return nil }
        return smallChunk(row, at: 0)
    }

    /// The columns `smallChunk(_:at:)` decodes, in its order.
    static let smallChunkColumns = "data, pack, pack_offset, size"

    /// The location in `row` from column `first` on (`smallChunkColumns`).
    static func smallChunk(_ row: SQLRow, at first: Int) -> SmallChunk? {
        if let data: Data = row[first] { return .row(data) }
        guard let pack: Int64 = row[first + 1], let offset: Int64 = row[first + 2] else { return nil }
        return .packed(pack: pack, offset: offset, size: row[first + 3])
    }

    static func insertManifest(_ db: Connection, _ manifest: Manifest) throws -> Int64 {
        try db.run("INSERT INTO manifests(data) VALUES (?)", SQLArguments([.blob(Data(manifest.encoded()))]))
        return db.lastInsertedRowID
    }

    static func manifest(_ db: Connection, id: Int64) throws -> Manifest {
        guard let data = try db.value(Data.self, "SELECT data FROM manifests WHERE id = ?", SQLArguments([.int(id)]))
        else {
            throw FSError.io("manifest \(id) is missing; run `cairn fsck`")
        }
        return try Manifest(encoded: [UInt8](data))
    }

    /// The manifest of an inode's current version (empty for a file never written).
    static func currentManifest(_ db: Connection, inode: InodeID) throws -> (version: Int64?, manifest: Manifest) {
        guard
            let row = try db.row(
                "SELECT v.id, v.manifest FROM inodes i JOIN versions v ON v.id = i.version WHERE i.id = ?",
                SQLArguments([.int(inode)]))
        else { return (nil, Manifest()) }
        let manifestID: Int64? = row[1]
        return (row[0], try manifestID.map { try manifest(db, id: $0) } ?? Manifest())
    }

    struct NewVersion {
        var inode: InodeID
        var seq: Int64
        var size: Int64
        var storedBytes: Int64
        var mode: UInt32
        var uid: UInt32
        var gid: UInt32
        var mtime: Timestamp
        var ctime: Timestamp
        var manifest: Int64?
        var xattrs: Data?
        var actor: String
        var cause: String
        var sealed: Bool
    }

    static func insertVersion(_ db: Connection, _ v: NewVersion) throws -> Int64 {
        try db.run(
            """
            INSERT INTO versions(inode, seq, size, mode, uid, gid, mtime_ns, ctime_ns, manifest, xattrs, actor, cause, sealed)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            SQLArguments([
                .int(v.inode), .int(v.seq), .int(v.size), .int(v.mode), .int(v.uid), .int(v.gid), .time(v.mtime),
                .time(v.ctime), .int(v.manifest), .data(v.xattrs), .text(v.actor), .text(v.cause),
                .int(v.sealed ? 1 : 0),
            ]))
        return db.lastInsertedRowID
    }

    /// An unsealed version of an open write session takes the session's newest content.
    static func replaceVersion(_ db: Connection, id: Int64, _ v: NewVersion) throws {
        try db.run(
            """
            UPDATE versions SET seq = ?, size = ?, mode = ?, uid = ?, gid = ?, mtime_ns = ?, ctime_ns = ?,
                manifest = ?, xattrs = ?, actor = ?, cause = ?, sealed = ? WHERE id = ? AND sealed = 0
            """,
            [
                v.seq, v.size, v.mode, v.uid, v.gid, v.mtime.nanoseconds, v.ctime.nanoseconds, v.manifest, v.xattrs,
                v.actor, v.cause, v.sealed, id,
            ])
    }

    static func sealVersion(_ db: Connection, id: Int64) throws {
        try db.run("UPDATE versions SET sealed = 1 WHERE id = ?", SQLArguments([.int(id)]))
    }

    /// Points the inode at its new current version and content attributes (and `ownership`,
    /// changed with the content: see `OpenFile.attributesPending`).
    static func setCurrentContent(
        _ db: Connection, inode: InodeID, version: Int64, size: Int64, storedBytes: Int64, mtime: Timestamp,
        ctime: Timestamp, ownership: NamespaceQueries.Ownership? = nil
    ) throws {
        guard let o = ownership else {
            try db.run(
                "UPDATE inodes SET version = ?, size = ?, stored_bytes = ?, mtime_ns = ?, ctime_ns = ? WHERE id = ?",
                SQLArguments([.int(version), .int(size), .int(storedBytes), .time(mtime), .time(ctime), .int(inode)]))
            return
        }
        try db.run(
            """
            UPDATE inodes SET version = ?, size = ?, stored_bytes = ?, mtime_ns = ?, ctime_ns = ?,
                mode = ?, uid = ?, gid = ?, atime_ns = ? WHERE id = ?
            """,
            SQLArguments([
                .int(version), .int(size), .int(storedBytes), .time(mtime), .time(ctime), .int(o.mode), .int(o.uid),
                .int(o.gid), .time(o.atime), .int(inode),
            ]))
    }

    /// Records the xattrs snapshot and returns its digest (nil when there are none).
    static func snapshotXattrs(_ db: Connection, inode: InodeID) throws -> Data? {
        let rows = try db.rows(
            "SELECT name, value FROM xattrs WHERE inode = ? ORDER BY name", SQLArguments([.int(inode)]))
        guard !rows.isEmpty else { return nil }
        let encoded = XattrSet.encode(rows.map { ($0[0], $0[1]) })
        let digest = encoded.withUnsafeBytes { Data(BlobDigest.of($0).bytes) }
        try db.run("INSERT OR IGNORE INTO xattr_sets(digest, data) VALUES (?, ?)", [digest, encoded])
        return digest
    }
}

/// The SQL of extended attributes.
enum XattrQueries {
    /// Counts the writes below, in any store of the process (they run in writer turns). A file
    /// created after the count was last moved has no xattrs yet: its first version needs no
    /// look at the table (see `OpenFile.noXattrsSince`).
    static let writes = Atomic<Int>(0)

    static func value(_ db: Connection, inode: InodeID, name: [UInt8]) throws -> Data? {
        try db.value(
            Data.self, "SELECT value FROM xattrs WHERE inode = ? AND name = ?",
            SQLArguments([.int(inode), .bytes(name)]))
    }

    static func names(_ db: Connection, inode: InodeID) throws -> [[UInt8]] {
        try db.values(Data.self, "SELECT name FROM xattrs WHERE inode = ? ORDER BY name", SQLArguments([.int(inode)]))
            .map { [UInt8]($0) }
    }

    static func set(_ db: Connection, inode: InodeID, name: [UInt8], value: Data) throws {
        writes.wrappingAdd(1, ordering: .relaxed)
        try db.run(
            "INSERT OR REPLACE INTO xattrs(inode, name, value) VALUES (?, ?, ?)",
            SQLArguments([.int(inode), .bytes(name), .blob(value)]))
    }

    static func remove(_ db: Connection, inode: InodeID, name: [UInt8]) throws -> Bool {
        writes.wrappingAdd(1, ordering: .relaxed)
        try db.run("DELETE FROM xattrs WHERE inode = ? AND name = ?", SQLArguments([.int(inode), .bytes(name)]))
        return db.changesCount > 0
    }

    /// Bytes of names and values on an inode, leaving out `name` (about to be replaced).
    static func totalSize(_ db: Connection, inode: InodeID, excluding name: [UInt8]) throws -> Int {
        try db.value(
            Int.self, "SELECT coalesce(sum(length(name) + length(value)), 0) FROM xattrs WHERE inode = ? AND name != ?",
            [inode, Data(name)]) ?? 0
    }

    /// The xattrs a version recorded (`versions.xattrs` names the set).
    static func recordedSet(_ db: Connection, digest: Data?) throws -> [(name: Data, value: Data)] {
        guard let digest else { return [] }
        guard let data = try db.value(Data.self, "SELECT data FROM xattr_sets WHERE digest = ?", [digest]),
            let entries = XattrSet.decode(data)
        else { throw FSError.io("a recorded set of extended attributes is missing or damaged; run `cairn fsck`") }
        return entries
    }

    /// Gives an inode exactly the xattrs of a recorded set.
    static func replaceAll(_ db: Connection, inode: InodeID, with entries: [(name: Data, value: Data)]) throws {
        writes.wrappingAdd(1, ordering: .relaxed)
        try db.run("DELETE FROM xattrs WHERE inode = ?", [inode])
        for entry in entries {
            try db.run("INSERT INTO xattrs(inode, name, value) VALUES (?, ?, ?)", [inode, entry.name, entry.value])
        }
    }

    static func inodesWith(_ db: Connection, name: [UInt8]) throws -> [InodeID] {
        try db.values(InodeID.self, "SELECT inode FROM xattrs WHERE name = ?", [Data(name)])
    }
}

extension ContentQueries {
    /// Records a version that carries the inode's current attributes and shares the content of
    /// its current version (chmod, chown, utimes, xattr changes, creation). Returns its id.
    @discardableResult
    static func recordAttributeVersion(_ db: Connection, inode: InodeID, seq: Int64, actor: String, cause: String)
        throws
        -> Int64
    {
        guard
            let row = try db.row(
                """
                SELECT i.mode, i.uid, i.gid, i.size, i.mtime_ns, i.ctime_ns, v.manifest
                FROM inodes i LEFT JOIN versions v ON v.id = i.version WHERE i.id = ?
                """, SQLArguments([.int(inode)]))
        else { throw FSError.notFound }
        let id = try insertVersion(
            db,
            NewVersion(
                inode: inode, seq: seq, size: row[3], storedBytes: 0, mode: row[0], uid: row[1], gid: row[2],
                mtime: Timestamp(nanoseconds: row[4]), ctime: Timestamp(nanoseconds: row[5]), manifest: row[6],
                xattrs: try snapshotXattrs(db, inode: inode), actor: actor, cause: cause, sealed: true))
        try db.run("UPDATE inodes SET version = ? WHERE id = ?", SQLArguments([.int(id), .int(inode)]))
        return id
    }
}

/// The encoding of a set of xattrs in `xattr_sets`: for each attribute in name order, the name
/// and the value, each as a little-endian u32 length and its bytes.
enum XattrSet {
    static func encode(_ entries: [(name: Data, value: Data)]) -> Data {
        var encoded = Data()
        for entry in entries {
            for part in [entry.name, entry.value] {
                withUnsafeBytes(of: UInt32(part.count).littleEndian) { encoded.append(contentsOf: $0) }
                encoded.append(part)
            }
        }
        return encoded
    }

    /// nil when `data` is not a well-formed set.
    static func decode(_ data: Data) -> [(name: Data, value: Data)]? {
        let bytes = [UInt8](data)
        var at = 0
        func part() -> Data? {
            guard bytes.count - at >= 4 else { return nil }
            let length = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
            at += 4
            guard bytes.count - at >= length else { return nil }
            defer { at += length }
            return Data(bytes[at..<at + length])
        }
        var entries: [(name: Data, value: Data)] = []
        while at < bytes.count {
            guard let name = part(), let value = part() else { return nil }
            entries.append((name, value))
        }
        return entries
    }
}
