import Foundation
internal import GRDBSQLite
import Glibc

/// The SQL of the namespace: inodes, dentries and events. Every function runs inside a
/// transaction its caller owns.
enum NamespaceQueries {
    static let inodeColumns =
        "i.id, i.mode, i.uid, i.gid, i.nlink, i.size, i.stored_bytes, i.atime_ns, i.mtime_ns, i.ctime_ns, i.rdev, i.generation"

    // The statements of every file operation, put together once (not at each call).
    private static let inodeSQL = "SELECT \(inodeColumns) FROM inodes i WHERE i.id = ?"
    private static let inodeAndWorkspaceSQL = "SELECT \(inodeColumns), i.workspace FROM inodes i WHERE i.id = ?"
    private static let lookupSQL = """
        SELECT d.id, \(inodeColumns) FROM dentries d JOIN inodes i ON i.id = d.inode
        WHERE d.parent = ? AND d.name = ? AND d.deleted_seq IS NULL
        """
    private static let entrySQL = """
        SELECT d.id, d.inode, i.mode, i.nlink FROM dentries d JOIN inodes i ON i.id = d.inode
        WHERE d.parent = ? AND d.name = ? AND d.deleted_seq IS NULL
        """
    private static let listingSQL = """
        SELECT d.id, d.name, \(inodeColumns) FROM dentries d JOIN inodes i ON i.id = d.inode
        WHERE d.parent = ? AND d.deleted_seq IS NULL AND d.id > ? ORDER BY d.id LIMIT ?
        """

    static func attributes(_ row: SQLRow, offset: Int = 0) -> InodeAttributes {
        let stored: Int64 = row[offset + 6]
        return InodeAttributes(
            id: row[offset], mode: row[offset + 1], nlink: row[offset + 4], uid: row[offset + 2], gid: row[offset + 3],
            rdev: row[offset + 10], size: row[offset + 5],
            atime: Timestamp(nanoseconds: row[offset + 7]), mtime: Timestamp(nanoseconds: row[offset + 8]),
            ctime: Timestamp(nanoseconds: row[offset + 9]), generation: row[offset + 11],
            blocks: (stored + 511) / 512)
    }

    static func inode(_ db: Connection, _ id: InodeID) throws -> InodeAttributes? {
        try db.row(inodeSQL, SQLArguments([.int(id)])).map { attributes($0) }
    }

    static func requireInode(_ db: Connection, _ id: InodeID) throws -> InodeAttributes {
        guard let attrs = try inode(db, id) else { throw FSError.notFound }
        return attrs
    }

    static func inodeAndWorkspace(_ db: Connection, _ id: InodeID) throws -> (InodeAttributes, Int64?)? {
        try db.row(inodeAndWorkspaceSQL, SQLArguments([.int(id)])).map { (attributes($0), $0[12]) }
    }

    static func setVersion(_ db: Connection, _ id: InodeID, _ version: Int64) throws {
        try db.run("UPDATE inodes SET version = ? WHERE id = ?", SQLArguments([.int(version), .int(id)]))
    }

    static func workspace(ofInode id: InodeID, _ db: Connection) throws -> Int64? {
        try db.value(Int64.self, "SELECT workspace FROM inodes WHERE id = ?", SQLArguments([.int(id)]))
    }

    /// The live entry `name` in `parent`, with its dentry id.
    static func lookup(_ db: Connection, parent: InodeID, name: [UInt8]) throws -> (
        dentry: Int64, attributes: InodeAttributes
    )? {
        guard let row = try db.row(lookupSQL, SQLArguments([.int(parent), .bytes(name)])) else { return nil }
        return (row[0], attributes(row, offset: 1))
    }

    /// The live entry `name` of `parent`: its dentry, and its inode's id, kind and link count
    /// (what removing it needs; `lookup` reads the whole row).
    static func entry(_ db: Connection, parent: InodeID, name: [UInt8]) throws -> (
        dentry: Int64, inode: InodeID, mode: UInt32, nlink: UInt64
    )? {
        try db.row(entrySQL, SQLArguments([.int(parent), .bytes(name)])).map { ($0[0], $0[1], $0[2], $0[3]) }
    }

    static func listing(_ db: Connection, parent: InodeID, afterCookie: Int64, limit: Int) throws -> [DirectoryEntry] {
        try db.rows(listingSQL, SQLArguments([.int(parent), .int(afterCookie), .int(limit)])).map { row in
            DirectoryEntry(cookie: row[0], name: [UInt8](row[1] as Data), attributes: attributes(row, offset: 2))
        }
    }

    static func hasLiveChildren(_ db: Connection, _ parent: InodeID) throws -> Bool {
        try db.value(
            Bool.self, "SELECT 1 FROM dentries WHERE parent = ? AND deleted_seq IS NULL LIMIT 1", [parent]
        ) ?? false
    }

    /// The live parent of a directory (directories have exactly one live name).
    static func parent(ofDirectory id: InodeID, _ db: Connection) throws -> InodeID? {
        try db.value(InodeID.self, "SELECT parent FROM dentries WHERE inode = ? AND deleted_seq IS NULL LIMIT 1", [id])
    }

    struct NewInode {
        var mode: UInt32
        var uid: UInt32
        var gid: UInt32
        var nlink: UInt64
        var rdev: UInt64 = 0
        var target: [UInt8]? = nil
        var size: Int64 = 0
        var time: Timestamp
        var workspace: Int64?
    }

    static func insertInode(_ db: Connection, _ n: NewInode) throws -> InodeID {
        try db.run(
            """
            INSERT INTO inodes(mode, uid, gid, nlink, size, atime_ns, mtime_ns, ctime_ns, btime_ns, rdev, target, workspace)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            SQLArguments([
                .int(n.mode), .int(n.uid), .int(n.gid), .int(n.nlink), .int(n.size), .time(n.time), .time(n.time),
                .time(n.time), .time(n.time), .int(n.rdev), .bytes(n.target), .int(n.workspace),
            ]))
        return db.lastInsertedRowID
    }

    /// Binds `name`; a name taken already (`dentries_live`) fails with `exists`.
    static func insertDentry(_ db: Connection, parent: InodeID, name: [UInt8], inode: InodeID, seq: Int64) throws {
        do {
            try db.run(
                "INSERT INTO dentries(parent, name, inode, created_seq) VALUES (?, ?, ?, ?)",
                SQLArguments([.int(parent), .bytes(name), .int(inode), .int(seq)]))
        } catch let error as SQLiteError where error.code == SQLITE_CONSTRAINT | (8 << 8) {  // _UNIQUE
            throw FSError.exists
        }
    }

    static func closeDentry(_ db: Connection, id: Int64, seq: Int64) throws {
        try db.run("UPDATE dentries SET deleted_seq = ? WHERE id = ?", SQLArguments([.int(seq), .int(id)]))
    }

    static func adjustLinks(_ db: Connection, _ id: InodeID, by delta: Int, ctime: Timestamp) throws {
        try db.run(
            "UPDATE inodes SET nlink = nlink + ?, ctime_ns = ? WHERE id = ?",
            SQLArguments([.int(delta), .time(ctime), .int(id)]))
    }

    /// A directory's entries changed: mtime and ctime move, and its link count by `linkDelta`
    /// (a subdirectory's `..` counts as a link to the parent). `touched` says what this makes
    /// of a row.
    static func touchDirectory(_ db: Connection, _ id: InodeID, at time: Timestamp, linkDelta: Int = 0) throws {
        try db.run(
            "UPDATE inodes SET mtime_ns = ?, ctime_ns = ?, nlink = nlink + ? WHERE id = ?",
            SQLArguments([.time(time), .time(time), .int(linkDelta), .int(id)]))
    }

    static func target(_ db: Connection, _ id: InodeID) throws -> [UInt8]? {
        try db.value(Data.self, "SELECT target FROM inodes WHERE id = ?", SQLArguments([.int(id)])).map { [UInt8]($0) }
    }

    struct AttributeUpdate {
        var mode: UInt32
        var uid: UInt32
        var gid: UInt32
        var atime: Timestamp
        var mtime: Timestamp
        var ctime: Timestamp

        init(mode: UInt32, uid: UInt32, gid: UInt32, atime: Timestamp, mtime: Timestamp, ctime: Timestamp) {
            (self.mode, self.uid, self.gid, self.atime, self.mtime, self.ctime) = (mode, uid, gid, atime, mtime, ctime)
        }

        /// `a`'s mode, owner and times.
        init(_ a: InodeAttributes) {
            self.init(mode: a.mode, uid: a.uid, gid: a.gid, atime: a.atime, mtime: a.mtime, ctime: a.ctime)
        }
    }

    /// What an open file's commit may write besides its content (see `OpenFile.attributesPending`).
    struct Ownership {
        var mode: UInt32
        var uid: UInt32
        var gid: UInt32
        var atime: Timestamp
    }

    static func setOwnership(_ db: Connection, _ id: InodeID, _ o: Ownership) throws {
        try db.run(
            "UPDATE inodes SET mode = ?, uid = ?, gid = ?, atime_ns = ? WHERE id = ?",
            SQLArguments([.int(o.mode), .int(o.uid), .int(o.gid), .time(o.atime), .int(id)]))
    }

    static func updateAttributes(_ db: Connection, _ id: InodeID, _ u: AttributeUpdate) throws {
        try db.run(
            "UPDATE inodes SET mode = ?, uid = ?, gid = ?, atime_ns = ?, mtime_ns = ?, ctime_ns = ? WHERE id = ?",
            SQLArguments([
                .int(u.mode), .int(u.uid), .int(u.gid), .time(u.atime), .time(u.mtime), .time(u.ctime), .int(id),
            ]))
    }

    /// Records one committed change and returns its seq, the store's clock.
    static func recordEvent(
        _ db: Connection, kind: String, inode: InodeID?, parent: InodeID? = nil, name: [UInt8]? = nil,
        oldParent: InodeID? = nil, oldName: [UInt8]? = nil, version: Int64? = nil, actor: String, time: Timestamp
    ) throws -> Int64 {
        try db.run(
            """
            INSERT INTO events(time_ns, kind, inode, parent, name, old_parent, old_name, version, actor)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            SQLArguments([
                .time(time), .text(kind), .int(inode), .int(parent), .bytes(name), .int(oldParent), .bytes(oldName),
                .int(version), .text(actor),
            ]))
        return db.lastInsertedRowID
    }

    static func counts(_ db: Connection) throws -> (inodes: Int64, liveInodes: Int64) {
        let row = try db.row("SELECT (SELECT count(*) FROM inodes), (SELECT count(*) FROM inodes WHERE nlink > 0)")!
        return (row[0], row[1])
    }
}

extension InodeAttributes {
    /// The row after `NamespaceQueries.touchDirectory(at: time, linkDelta:)`.
    func touched(at time: Timestamp, linkDelta: Int) -> InodeAttributes {
        var row = self
        row.mtime = time
        row.ctime = time
        row.nlink = UInt64(Int64(nlink) + Int64(linkDelta))
        return row
    }

    var ownership: NamespaceQueries.Ownership { .init(mode: mode, uid: uid, gid: gid, atime: atime) }

    /// These attributes with `ownership` (an open file's, held for its next commit) in place.
    func holding(_ ownership: NamespaceQueries.Ownership?) -> InodeAttributes {
        guard let o = ownership else { return self }
        var a = self
        a.mode = o.mode
        a.uid = o.uid
        a.gid = o.gid
        a.atime = o.atime
        return a
    }
}
