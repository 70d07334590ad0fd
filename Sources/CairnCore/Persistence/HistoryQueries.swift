import Foundation

/// The SQL of history: versions of a path across the inodes that held its name.
enum HistoryQueries {
    /// Every dentry that ever bound `name` in `parent`, oldest first.
    static func bindings(_ db: Connection, parent: InodeID, name: [UInt8]) throws -> [(
        inode: InodeID, from: Int64, until: Int64?
    )] {
        try db.rows(
            "SELECT inode, created_seq, deleted_seq FROM dentries WHERE parent = ? AND name = ? ORDER BY created_seq",
            [parent, Data(name)]
        ).map { ($0[0], $0[1], $0[2]) }
    }

    /// The columns `version(_:)` reads, in its order (15).
    static let versionColumns =
        "v.id, v.inode, v.seq, coalesce(e.time_ns, v.ctime_ns), v.size, v.mode, v.uid, v.gid, v.actor, v.cause, v.sealed, v.manifest, v.mtime_ns, v.ctime_ns, v.xattrs"

    static func version(_ row: SQLRow) -> VersionRecord {
        VersionRecord(
            id: row[0], inode: row[1], seq: row[2], time: Timestamp(nanoseconds: row[3]), size: row[4], mode: row[5],
            uid: row[6], gid: row[7], actor: row[8], cause: row[9], sealed: row[10],
            mtime: Timestamp(nanoseconds: row[12]), ctime: Timestamp(nanoseconds: row[13]), manifestID: row[11],
            xattrsDigest: row[14])
    }

    /// Versions of `inode` while it was bound to a name from seq `from` until `until`, with the
    /// version it already had when the name was bound.
    static func versions(_ db: Connection, inode: InodeID, from: Int64, until: Int64?) throws -> [VersionRecord] {
        let end = until ?? Int64.max
        return try db.rows(
            """
            SELECT \(versionColumns) FROM versions v LEFT JOIN events e ON e.seq = v.seq
            WHERE v.inode = ? AND v.seq < ? AND v.seq >= coalesce(
                (SELECT max(seq) FROM versions WHERE inode = ? AND seq <= ?), ?)
            ORDER BY v.seq
            """, [inode, end, inode, from, from]
        ).map(version)
    }

    static func version(_ db: Connection, id: Int64) throws -> VersionRecord? {
        try db.row(
            "SELECT \(versionColumns) FROM versions v LEFT JOIN events e ON e.seq = v.seq WHERE v.id = ?", [id]
        ).map(version)
    }
}

extension HistoryQueries {
    /// The version an inode points at now.
    static func current(_ db: Connection, inode: InodeID) throws -> VersionRecord? {
        try db.row(
            """
            SELECT \(versionColumns) FROM inodes i JOIN versions v ON v.id = i.version
            LEFT JOIN events e ON e.seq = v.seq WHERE i.id = ?
            """, [inode]
        ).map(version)
    }
}
