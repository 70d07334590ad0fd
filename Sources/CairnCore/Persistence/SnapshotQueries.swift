import Foundation

/// The SQL of snapshots (named seqs of a workspace).
enum SnapshotQueries {
    private static let columns = "s.id, s.name, s.seq, s.created_ns, s.actor, w.name"

    private static func snapshot(_ row: SQLRow) -> Snapshot {
        Snapshot(
            id: row[0], name: row[1], seq: row[2], created: Timestamp(nanoseconds: row[3]), actor: row[4],
            workspace: row[5])
    }

    static func all(_ db: Connection, workspace: Int64) throws -> [Snapshot] {
        try db.rows(
            """
            SELECT \(columns) FROM snapshots s JOIN workspaces w ON w.id = s.workspace
            WHERE s.workspace = ? ORDER BY s.seq, s.id
            """, [workspace]
        ).map(snapshot)
    }

    static func named(_ db: Connection, workspace: Int64, name: String) throws -> Snapshot? {
        try db.row(
            """
            SELECT \(columns) FROM snapshots s JOIN workspaces w ON w.id = s.workspace
            WHERE s.workspace = ? AND s.name = ?
            """, [workspace, name]
        ).map(snapshot)
    }

    static func insert(_ db: Connection, workspace: Int64, name: String, seq: Int64, time: Timestamp, actor: String)
        throws -> Int64
    {
        try db.run(
            "INSERT INTO snapshots(workspace, name, seq, created_ns, actor) VALUES (?, ?, ?, ?, ?)",
            [workspace, name, seq, time.nanoseconds, actor])
        return db.lastInsertedRowID
    }

    static func delete(_ db: Connection, id: Int64) throws {
        try db.run("DELETE FROM snapshots WHERE id = ?", [id])
    }
}
