import Foundation

/// The SQL of the namespace as it was at a seq: a dentry was live at `seq` when it was created at
/// or before it and not closed by then; an inode's state at `seq` is its last version by then. A
/// regular file made by `create` has no version until its first close: until then it was empty,
/// with the mode and owner it has (`stateColumns`). A file with no version by then that lost
/// versions to retention (`versions_released`) may have had one: it is left out, as before.
enum PastQueries {
    static let liveAt = "created_seq <= ? AND (deleted_seq IS NULL OR deleted_seq > ?)"

    /// `HistoryQueries.versionColumns` of `v` (with `e` its event), or of the empty file `i` was
    /// before its first version, made at `made` (a seq): a version numbered 0.
    private static func stateColumns(made: String) -> String {
        """
        coalesce(v.id, 0), i.id, coalesce(v.seq, \(made)), coalesce(e.time_ns, v.ctime_ns, i.btime_ns),
        coalesce(v.size, 0), coalesce(v.mode, i.mode), coalesce(v.uid, i.uid), coalesce(v.gid, i.gid),
        coalesce(v.actor, ''), coalesce(v.cause, 'create'), coalesce(v.sealed, 1), v.manifest,
        coalesce(v.mtime_ns, i.btime_ns), coalesce(v.ctime_ns, i.btime_ns), v.xattrs
        """
    }

    /// The last version of `i` at the seq `?` (the first argument it takes).
    private static let versionThen =
        "LEFT JOIN versions v ON v.id = (SELECT id FROM versions WHERE inode = i.id AND seq <= ? ORDER BY seq DESC LIMIT 1)"

    /// Keeps an inode with no version then only if it is a regular file that was empty then
    /// (none of its versions was released).
    private static let hadState = "(v.id IS NOT NULL OR ((i.mode & 61440) = 32768 AND i.versions_released = 0))"

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
            SELECT \(stateColumns(made: "d.created_seq")), i.rdev, d.id, d.name
            FROM dentries d JOIN inodes i ON i.id = d.inode \(versionThen)
            LEFT JOIN events e ON e.seq = v.seq
            WHERE d.parent = ? AND \(liveAt) AND d.id > ? AND \(hadState) ORDER BY d.id LIMIT ?
            """, [seq, parent, seq, seq, afterCookie, limit]
        ).map { row in (row[16], [UInt8](row[17] as Data), HistoryQueries.version(row), row[15]) }
    }

    /// The version of `inode` current at `seq`, with the node's device number.
    static func version(_ db: Connection, inode: InodeID, at seq: Int64) throws -> (VersionRecord, rdev: UInt64)? {
        try db.row(
            """
            SELECT \(stateColumns(made: "made.seq")), i.rdev
            FROM inodes i \(versionThen) LEFT JOIN events e ON e.seq = v.seq
            JOIN (SELECT min(created_seq) AS seq FROM dentries WHERE inode = ?) made
            WHERE i.id = ? AND \(hadState) AND (v.id IS NOT NULL OR made.seq <= ?)
            """, [seq, inode, inode, seq]
        ).map { row in (HistoryQueries.version(row), row[15]) }
    }
}
