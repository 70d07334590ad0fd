import Foundation

/// The SQL of the namespace as it was at a seq: a dentry was live at `seq` when it was created at
/// or before it and not closed by then; an inode's state at `seq` is its last version by then.
enum PastQueries {
    static let liveAt = "created_seq <= ? AND (deleted_seq IS NULL OR deleted_seq > ?)"

    /// The last seq whose event happened at or before `time` (0: before anything).
    static func seq(at time: Timestamp, _ db: Connection) throws -> Int64 {
        try db.value(Int64.self, "SELECT max(seq) FROM events WHERE time_ns <= ?", [time.nanoseconds]) ?? 0
    }

    static func lookup(_ db: Connection, parent: InodeID, name: [UInt8], at seq: Int64) throws -> InodeID? {
        try db.value(
            InodeID.self,
            "SELECT inode FROM dentries WHERE parent = ? AND name = ? AND \(liveAt) ORDER BY created_seq DESC LIMIT 1",
            [parent, Data(name), seq, seq])
    }

    /// The entries of `parent` at `seq`, each with its version then and its device number.
    static func listing(_ db: Connection, parent: InodeID, at seq: Int64, afterCookie: Int64, limit: Int) throws
        -> [(cookie: Int64, name: [UInt8], version: VersionRecord, rdev: UInt64)]
    {
        try db.rows(
            """
            SELECT \(HistoryQueries.versionColumns), i.rdev, d.id, d.name
            FROM dentries d JOIN inodes i ON i.id = d.inode
            JOIN versions v ON v.id = (
                SELECT id FROM versions WHERE inode = d.inode AND seq <= ? ORDER BY seq DESC LIMIT 1)
            LEFT JOIN events e ON e.seq = v.seq
            WHERE d.parent = ? AND \(liveAt) AND d.id > ? ORDER BY d.id LIMIT ?
            """, [seq, parent, seq, seq, afterCookie, limit]
        ).map { row in (row[16], [UInt8](row[17] as Data), HistoryQueries.version(row), row[15]) }
    }

    /// The version of `inode` current at `seq`, with the node's device number.
    static func version(_ db: Connection, inode: InodeID, at seq: Int64) throws -> (VersionRecord, rdev: UInt64)? {
        try db.row(
            """
            SELECT \(HistoryQueries.versionColumns), i.rdev
            FROM versions v LEFT JOIN events e ON e.seq = v.seq JOIN inodes i ON i.id = v.inode
            WHERE v.inode = ? AND v.seq <= ? ORDER BY v.seq DESC LIMIT 1
            """, [inode, seq]
        ).map { row in (HistoryQueries.version(row), row[15]) }
    }
}
