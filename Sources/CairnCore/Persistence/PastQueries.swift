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

    static func listing(_ db: Connection, parent: InodeID, at seq: Int64, afterCookie: Int64, limit: Int) throws
        -> [(cookie: Int64, name: [UInt8], inode: InodeID)]
    {
        try db.rows(
            "SELECT id, name, inode FROM dentries WHERE parent = ? AND \(liveAt) AND id > ? ORDER BY id LIMIT ?",
            [parent, seq, seq, afterCookie, limit]
        ).map { ($0[0], [UInt8]($0[1] as Data), $0[2]) }
    }

    /// The version of `inode` current at `seq`, with the node's device number.
    static func version(_ db: Connection, inode: InodeID, at seq: Int64) throws -> (VersionRecord, rdev: UInt64)? {
        try db.row(
            """
            SELECT \(HistoryQueries.versionColumns), i.rdev
            FROM versions v LEFT JOIN events e ON e.seq = v.seq JOIN inodes i ON i.id = v.inode
            WHERE v.inode = ? AND v.seq <= ? ORDER BY v.seq DESC LIMIT 1
            """, [inode, seq]
        ).map { row in (HistoryQueries.version(row), row[14]) }
    }
}
