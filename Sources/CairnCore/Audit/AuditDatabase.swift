import Foundation
internal import GRDB

/// The audit log's rows: `audit.db` beside `cairn.db`, a database of its own so that writing
/// them never takes a turn of the namespace's writer (every turn taken there is one a file
/// operation waits for). The audit thread commits each batch on its own; nothing else writes.
///
/// Unlike the search index it holds what the store has nowhere else: a database that cannot be
/// opened stops the daemon with a message, it is never set aside on its own.
enum AuditDatabase {
    static let fileName = "audit.db"

    /// Opens (and, for a writer, creates) `audit.db` in the store at `storePath`. A read-only
    /// open of a store without one yet gives nil: the store has no audit rows.
    static func open(storePath: String, readOnly: Bool) throws(FSError) -> SideDatabase? {
        let path = storePath + "/" + fileName
        if readOnly, !FileManager.default.fileExists(atPath: path) { return nil }
        do {
            return try SideDatabase(path: path, readOnly: readOnly, readers: 2, migrator: migrator)
        } catch {
            throw FSError.io(
                "cannot open the audit log \(path) (\(error)); it holds the only copy of the audit rows: "
                    + "restore it from a backup, or move it aside with its -wal file to start a new log, "
                    + "which `cairn audit verify` then reports as cut short")
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            // The table the store had in cairn.db before (schema v9), without AUTOINCREMENT:
            // rows are never deleted, and a log cut short and written on reuses ids with other
            // hashes, which `verify` finds through the head outside the store.
            try db.execute(
                sql: """
                    CREATE TABLE audit (
                        id INTEGER PRIMARY KEY, time_ns INTEGER NOT NULL, actor TEXT NOT NULL, uid INTEGER NOT NULL,
                        pid INTEGER NOT NULL, process TEXT NOT NULL, op TEXT NOT NULL, workspace TEXT, path TEXT,
                        version INTEGER, bytes INTEGER, result TEXT NOT NULL, hash BLOB NOT NULL
                    )
                    """)
        }
        return migrator
    }

    /// Copies the rows of the store's own audit table (stores made before the log had a
    /// database of its own) into the log at `storePath`, keeping their ids: run again after a
    /// crash, it copies nothing twice. `store`: the store's connection, in its migration.
    static func adoptRows(of store: Database, storePath: String) throws {
        let copied = "id, time_ns, actor, uid, pid, process, op, workspace, path, version, bytes, result, hash"
        let copiedValues = Array(repeating: "?", count: 13).joined(separator: ", ")
        guard let log = try open(storePath: storePath, readOnly: false) else { return }
        defer { log.close() }
        var after: Int64 = 0
        while true {
            let rows = try Row.fetchAll(
                store, sql: "SELECT \(copied) FROM audit WHERE id > ? ORDER BY id LIMIT 5000", arguments: [after])
            guard let last = rows.last else { return }
            try log.pool.write { db in
                for row in rows {
                    try db.execute(
                        sql: "INSERT OR IGNORE INTO audit(\(copied)) VALUES (\(copiedValues))",
                        arguments: StatementArguments(row.databaseValues.map { $0 as (any DatabaseValueConvertible)? }))
                }
            }
            after = last["id"]
        }
    }
}
