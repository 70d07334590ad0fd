import Foundation
import Glibc

/// The SQL of workspaces.
enum WorkspaceQueries {
    static func all(_ db: Connection) throws -> [Workspace] {
        try db.rows("SELECT id, name, root, owner_uid, created_ns FROM workspaces ORDER BY name").map {
            Workspace(id: $0[0], name: $0[1], root: $0[2], owner: $0[3], created: Timestamp(nanoseconds: $0[4]))
        }
    }

    static func named(_ db: Connection, _ name: String) throws -> Workspace? {
        try all(db).first { $0.name == name }
    }

    static func insert(_ db: Connection, name: String, root: InodeID, owner: UInt32, time: Timestamp) throws -> Int64 {
        try db.run(
            "INSERT INTO workspaces(name, root, owner_uid, created_ns) VALUES (?, ?, ?, ?)",
            [name, root, owner, time.nanoseconds])
        return db.lastInsertedRowID
    }

    static func setWorkspace(_ db: Connection, inode: InodeID, workspace: Int64) throws {
        try db.run("UPDATE inodes SET workspace = ? WHERE id = ?", [workspace, inode])
    }
}
