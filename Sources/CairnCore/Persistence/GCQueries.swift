import Foundation

/// The SQL of retention and garbage collection.
enum GCQueries {
    static func retention(_ db: Connection, workspace: Int64) throws -> RetentionPolicy {
        guard let text = try db.value(String.self, "SELECT retention FROM workspaces WHERE id = ?", [workspace]) else {
            return .default
        }
        guard let policy = try? JSONDecoder().decode(RetentionPolicy.self, from: Data(text.utf8)) else {
            throw FSError.io("the retention policy of workspace \(workspace) is unreadable; set it again")
        }
        return policy
    }

    static func setRetention(_ db: Connection, workspace: Int64, _ policy: RetentionPolicy) throws {
        let text = String(decoding: try JSONEncoder().encode(policy), as: UTF8.self)
        try db.run("UPDATE workspaces SET retention = ? WHERE id = ?", [text, workspace])
    }

    /// Every version of the workspace's regular files, by inode then seq, with each inode's
    /// current version and link count.
    static func fileVersions(_ db: Connection, workspace: Int64) throws -> [SQLRow] {
        try db.rows(
            """
            SELECT v.id, v.inode, v.seq, coalesce(e.time_ns, v.ctime_ns), v.sealed, i.version, i.nlink
            FROM inodes i JOIN versions v ON v.inode = i.id LEFT JOIN events e ON e.seq = v.seq
            WHERE i.workspace = ? AND (i.mode & 61440) = 32768 ORDER BY v.inode, v.seq
            """, [workspace])
    }

    /// A table whose ids are never handed out twice (Schema, rule 5).
    enum NumberedTable: String {
        case inodes, dentries, manifests, versions, events

        var key: String { self == .events ? "seq" : "id" }

        /// A row no query of files, names or history finds, for the id `?1` (events: at the
        /// time `?2`, so that the seq a time names stays the same).
        var placeholder: String {
            switch self {
            case .inodes:
                "(id, mode, uid, gid, nlink, atime_ns, mtime_ns, ctime_ns, btime_ns) VALUES (?1, 0, 0, 0, 0, 0, 0, 0, 0)"
            case .dentries: "(id, parent, name, inode, created_seq, deleted_seq) VALUES (?1, 0, X'', 0, 0, 0)"
            case .manifests: "(id, data) VALUES (?1, X'01')"
            case .versions:
                """
                (id, inode, seq, size, mode, uid, gid, mtime_ns, ctime_ns, actor, cause)
                VALUES (?1, 0, 0, 0, 0, 0, 0, 0, 0, 'cairn', 'placeholder')
                """
            case .events: "(seq, time_ns, kind, actor) VALUES (?1, ?2, 'pruned', 'cairn')"
            }
        }

        /// True of a placeholder row (and of few others).
        var isPlaceholder: String {
            switch self {
            case .inodes: "mode = 0 AND nlink = 0 AND version IS NULL"
            case .dentries: "parent = 0"
            case .manifests: "data = X'01'"
            case .versions: "inode = 0"
            case .events: "kind = 'pruned'"
            }
        }
    }

    /// Deletes the rows of `table` that match `condition`. A new row takes the highest id plus
    /// one: when the row with the highest id goes, a placeholder keeps its id, which is never
    /// handed out again. Returns the number of rows deleted.
    static func delete(_ db: Connection, from table: NumberedTable, where condition: String, _ arguments: SQLArguments)
        throws -> Int
    {
        let name = table.rawValue
        let key = table.key
        let time = table == .events ? "time_ns" : "0"
        let top = try db.row("SELECT \(key), \(time), \(table.isPlaceholder) FROM \(name) ORDER BY \(key) DESC LIMIT 1")
        if let top, top[2] as Bool {
            // A placeholder on top already: it stays, and is not counted.
            try db.run(
                "DELETE FROM \(name) WHERE (\(condition)) AND \(key) <> ?",
                SQLArguments(arguments.values + [.integer(top[0])]))
            return db.changesCount
        }
        try db.run("DELETE FROM \(name) WHERE \(condition)", arguments)
        let deleted = db.changesCount
        if deleted > 0, let top, try db.value(Int64.self, "SELECT max(\(key)) FROM \(name)") ?? 0 < top[0] as Int64 {
            let values: [SQLValue] = table == .events ? [.integer(top[0]), .integer(top[1])] : [.integer(top[0])]
            try db.run("INSERT INTO \(name) \(table.placeholder)", SQLArguments(values))
        }
        return deleted
    }

    /// Deletes a version unless it is (still) the current one of a live file or unsealed; its
    /// inode is marked as having lost versions (see `PastQueries`).
    static func deleteVersion(_ db: Connection, id: Int64) throws -> Bool {
        guard let inode = try db.value(InodeID.self, "SELECT inode FROM versions WHERE id = ?", [id]) else {
            return false
        }
        let deleted =
            try delete(
                db, from: .versions,
                where: """
                    id = ? AND sealed = 1 AND NOT EXISTS (
                        SELECT 1 FROM inodes i WHERE i.id = versions.inode AND i.nlink > 0 AND i.version = versions.id)
                    """, [id]) > 0
        if deleted { try db.run("UPDATE inodes SET versions_released = 1 WHERE id = ?", [inode]) }
        return deleted
    }

    /// A file with no name left whose versions were released: it points at its newest version
    /// left, or, with none, it is forgotten with its old names and xattrs. Returns true then.
    static func settleUnlinked(_ db: Connection, inode: InodeID) throws -> Bool {
        guard
            let newest = try db.value(
                Int64.self, "SELECT id FROM versions WHERE inode = ? ORDER BY seq DESC LIMIT 1", [inode])
        else {
            _ = try delete(db, from: .dentries, where: "inode = ? AND deleted_seq IS NOT NULL", [inode])
            try db.run("DELETE FROM xattrs WHERE inode = ?", [inode])
            _ = try delete(db, from: .inodes, where: "id = ? AND nlink = 0", [inode])
            return true
        }
        try db.run("UPDATE inodes SET version = ? WHERE id = ? AND nlink = 0", [newest, inode])
        return false
    }

    /// Manifests no version uses (released versions', and those replaced within a write session).
    static func deleteUnusedManifests(_ db: Connection) throws -> Int {
        try delete(
            db, from: .manifests, where: "NOT EXISTS (SELECT 1 FROM versions v WHERE v.manifest = manifests.id)", [])
    }

    static func maxManifest(_ db: Connection) throws -> Int64 {
        try db.value(Int64.self, "SELECT max(id) FROM manifests") ?? 0
    }

    /// Manifests after `id`, in id order, at most `limit`.
    static func manifests(_ db: Connection, after id: Int64, limit: Int) throws -> [(id: Int64, data: Data)] {
        try db.rows("SELECT id, data FROM manifests WHERE id > ? ORDER BY id LIMIT ?", [id, limit]).map {
            ($0[0], $0[1])
        }
    }

    /// Manifest ids versions use, but for those of `excluded` versions (a dry run's releases).
    static func usedManifests(_ db: Connection) throws -> [(version: Int64, manifest: Int64)] {
        try db.rows("SELECT id, manifest FROM versions WHERE manifest IS NOT NULL").map { ($0[0], $0[1]) }
    }

    /// Every chunk: `inline` when the database keeps it (in its row or a pack), `pack` and
    /// `offset` when a pack has it.
    static func blobs(_ db: Connection) throws -> [(
        digest: BlobDigest, size: Int64, inline: Bool, pack: Int64?, offset: Int64?
    )] {
        try db.rows("SELECT digest, size, data IS NOT NULL OR pack IS NOT NULL, pack, pack_offset FROM blobs")
            .compactMap { row in BlobDigest(bytes: [UInt8](row[0] as Data)).map { ($0, row[1], row[2], row[3], row[4]) }
            }
    }

    static func deleteBlob(_ db: Connection, _ digest: BlobDigest) throws {
        try db.run("DELETE FROM blobs WHERE digest = ?", [Data(digest.bytes)])
    }

    static func hasBlob(_ db: Connection, _ digest: BlobDigest) throws -> Bool {
        try db.value(Int.self, "SELECT 1 FROM blobs WHERE digest = ?", [Data(digest.bytes)]) != nil
    }

    /// The seqs whose state must stay readable: the workspace's snapshots, and the base seqs of
    /// its forks (whose directories copy their entries from it lazily).
    static func pinnedSeqs(_ db: Connection, workspace: Int64) throws -> [Int64] {
        (try db.values(Int64.self, "SELECT seq FROM snapshots WHERE workspace = ?", [workspace])
            + (try ForkQueries.baseSeqs(db, parent: workspace))).sorted()
    }
}
