import Foundation

/// The SQL of forks: workspaces that start as another's state at a seq, copied lazily.
enum ForkQueries {
    static func setParent(_ db: Connection, workspace: Int64, parent: Int64, baseSeq: Int64) throws {
        try db.run("UPDATE workspaces SET parent = ?, base_seq = ? WHERE id = ?", [parent, baseSeq, workspace])
    }

    /// The parent and base seq of a fork (nil: not a fork).
    static func parent(_ db: Connection, workspace: Int64) throws -> (parent: Int64, baseSeq: Int64)? {
        try db.row("SELECT parent, base_seq FROM workspaces WHERE id = ? AND parent IS NOT NULL", [workspace])
            .map { ($0[0], $0[1]) }
    }

    /// The base seqs of the forks of `workspace`: its state there must stay readable.
    static func baseSeqs(_ db: Connection, parent workspace: Int64) throws -> [Int64] {
        try db.values(Int64.self, "SELECT base_seq FROM workspaces WHERE parent = ?", [workspace])
    }

    static func markPending(_ db: Connection, directory: InodeID, origin: InodeID, seq: Int64) throws {
        try db.run(
            "UPDATE inodes SET origin = ?, origin_seq = ?, pending_entries = 1 WHERE id = ?", [origin, seq, directory])
    }

    /// The origin and seq of a directory whose entries are not copied yet.
    static func pending(_ db: Connection, directory: InodeID) throws -> (origin: InodeID, seq: Int64)? {
        try db.row("SELECT origin, origin_seq FROM inodes WHERE id = ? AND pending_entries = 1", [directory])
            .map { ($0[0], $0[1]) }
    }

    static func allPending(_ db: Connection) throws -> [InodeID] {
        try db.values(InodeID.self, "SELECT id FROM inodes WHERE pending_entries = 1")
    }

    static func hasPending(_ db: Connection, workspace: Int64) throws -> Bool {
        try db.value(Int.self, "SELECT 1 FROM inodes WHERE pending_entries = 1 AND workspace = ? LIMIT 1", [workspace])
            != nil
    }

    static func clearPending(_ db: Connection, directory: InodeID) throws {
        try db.run("UPDATE inodes SET pending_entries = 0 WHERE id = ?", [directory])
    }

    static func copy(_ db: Connection, workspace: Int64, origin: InodeID) throws -> InodeID? {
        try db.value(
            InodeID.self, "SELECT inode FROM fork_origins WHERE workspace = ? AND origin = ?", [workspace, origin])
    }

    static func recordCopy(_ db: Connection, workspace: Int64, origin: InodeID, inode: InodeID) throws {
        try db.run("INSERT INTO fork_origins(workspace, origin, inode) VALUES (?, ?, ?)", [workspace, origin, inode])
    }

    /// Subdirectories `directory` had at `seq` (for its link count). A fork's directory still
    /// waiting for its entries has had no change since the fork: it has its origin's.
    static func subdirectories(_ db: Connection, of directory: InodeID, at seq: Int64) throws -> Int64 {
        if let (origin, originSeq) = try pending(db, directory: directory) {
            return try subdirectories(db, of: origin, at: originSeq)
        }
        return try db.value(
            Int64.self,
            """
            SELECT count(*) FROM dentries d JOIN inodes i ON i.id = d.inode
            WHERE d.parent = ? AND \(PastQueries.liveAt) AND (i.mode & 61440) = 16384
            """, [directory, seq, seq]) ?? 0
    }

    /// The names `inode` had at `seq` (its link count then). When none was added or removed
    /// since, that is its link count now, which also counts names in directories of a fork not
    /// copied in yet.
    static func names(_ db: Connection, of inode: InodeID, at seq: Int64) throws -> Int64 {
        let changed = try db.value(
            Int.self, "SELECT 1 FROM dentries WHERE inode = ? AND (created_seq > ? OR deleted_seq > ?) LIMIT 1",
            [inode, seq, seq])
        if changed == nil, let now = try db.value(Int64.self, "SELECT nlink FROM inodes WHERE id = ?", [inode]) {
            return max(now, 1)
        }
        return try db.value(
            Int64.self, "SELECT count(*) FROM dentries WHERE inode = ? AND \(PastQueries.liveAt)", [inode, seq, seq])
            ?? 1
    }

    /// A file's link count never falls below its live names (a count made when some names were
    /// still in directories not copied in can be short).
    static func countLiveNames(_ db: Connection, inode: InodeID) throws {
        try db.run(
            """
            UPDATE inodes SET nlink = max(nlink, (SELECT count(*) FROM dentries WHERE inode = ?1 AND deleted_seq IS NULL))
            WHERE id = ?1
            """, [inode])
    }

    /// The seq a fork was made at: its root's first version.
    static func forkSeq(_ db: Connection, root: InodeID) throws -> Int64 {
        try db.value(Int64.self, "SELECT min(seq) FROM versions WHERE inode = ?", [root]) ?? 0
    }
}
