import Foundation

/// The SQL of a workspace's change feed, its trash, and the paths names had at a seq.
enum ChangeQueries {
    private static let eventColumns = """
        e.seq, e.time_ns, e.kind, e.inode, e.parent, e.name, e.old_parent, e.old_name, e.actor,
        v.id, v.cause, v.size, i.workspace
        """

    /// Events of inodes of `workspace` before `seq`, newest first, each with the version it made.
    static func events(_ db: Connection, workspace: Int64, before seq: Int64, limit: Int) throws -> [SQLRow] {
        try db.rows(
            """
            SELECT \(eventColumns)
            FROM events e JOIN inodes i ON i.id = e.inode
            LEFT JOIN versions v ON v.inode = e.inode AND v.seq = e.seq
            WHERE i.workspace = ? AND e.seq < ? ORDER BY e.seq DESC LIMIT ?
            """, [workspace, seq, limit])
    }

    /// Events after `seq` and up to `through`, oldest first, of `workspace` (nil: all).
    static func events(_ db: Connection, workspace: Int64?, after seq: Int64, through: Int64, limit: Int) throws
        -> [SQLRow]
    {
        try db.rows(
            """
            SELECT \(eventColumns)
            FROM events e JOIN inodes i ON i.id = e.inode
            LEFT JOIN versions v ON v.inode = e.inode AND v.seq = e.seq
            WHERE e.seq > ? AND e.seq <= ? AND (? IS NULL OR i.workspace = ?) ORDER BY e.seq LIMIT ?
            """, [seq, through, workspace, workspace, limit])
    }

    /// The name `inode` had at `seq`: its parent and name (nil: it had none then).
    static func binding(_ db: Connection, inode: InodeID, at seq: Int64) throws -> (parent: InodeID, name: [UInt8])? {
        try db.row(
            """
            SELECT parent, name FROM dentries WHERE inode = ? AND \(PastQueries.liveAt)
            ORDER BY created_seq DESC LIMIT 1
            """, SQLArguments([.int(inode), .int(seq), .int(seq)])
        ).map { ($0[0], [UInt8]($0[1] as Data)) }
    }

    /// The last removal of each name of `workspace` that has no live entry now, whose file has
    /// no name left, and whose directory is live (a tree removed at once shows as its top).
    static func trash(_ db: Connection, workspace: Int64) throws -> [SQLRow] {
        try db.rows(
            """
            SELECT d.parent, d.name, d.inode, max(d.deleted_seq), e.time_ns, e.actor, i.mode, i.size
            FROM dentries d JOIN inodes i ON i.id = d.inode JOIN events e ON e.seq = d.deleted_seq
            JOIN inodes p ON p.id = d.parent
            WHERE i.workspace = ? AND d.deleted_seq IS NOT NULL AND i.nlink = 0 AND p.nlink > 0
              AND NOT EXISTS (
                  SELECT 1 FROM dentries l WHERE l.parent = d.parent AND l.name = d.name AND l.deleted_seq IS NULL)
            GROUP BY d.parent, d.name ORDER BY max(d.deleted_seq) DESC
            """, [workspace])
    }

    /// Where the removal of the directory `inode` at `seq` began: removing a tree (`rm -rf`)
    /// deletes the entries below it first, one event each, so the tree was whole just before
    /// the first of the run of deletions inside it that ends with its own.
    static func removalStart(_ db: Connection, directory inode: InodeID, workspace: Int64, deletedAt seq: Int64)
        throws -> Int64
    {
        var inside: Set<InodeID> = [inode]
        var start = seq
        while true {
            let batch = try db.rows(
                """
                SELECT e.seq, e.kind, e.inode, e.parent FROM events e JOIN inodes i ON i.id = e.inode
                WHERE i.workspace = ? AND e.seq < ? ORDER BY e.seq DESC LIMIT 1000
                """, [workspace, start])
            for row in batch {
                let kind: String = row[1]
                let parent: InodeID? = row[3]
                guard kind == "delete", let parent, inside.contains(parent) else { return start }
                inside.insert(row[2])
                start = row[0]
            }
            if batch.count < 1000 { return start }
        }
    }
}
