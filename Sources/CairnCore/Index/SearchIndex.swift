import Foundation
internal import GRDB
import Glibc

/// The full-text index of a store: `index.db` beside `cairn.db`, a database of its own so that
/// indexing never queues behind the namespace's writer. It holds, per file (inode), the version
/// whose text it indexed, and an FTS5 table of names and texts; and how far through the store's
/// changes it is (`events` seq and `versions` id), written in the same transaction as the
/// entries, so that after a crash the index is exactly as far as it says.
///
/// The index can always be thrown away and rebuilt from the store: it holds nothing else.
final class SearchIndex: Sendable {
    private let database: SideDatabase
    var path: String { database.path }

    /// Opens (and, for a writer, creates or migrates) `index.db` in the store at `storePath`.
    /// A read-only open of a store without one yet gives nil.
    static func open(storePath: String, readOnly: Bool) throws(FSError) -> SearchIndex? {
        let path = storePath + "/index.db"
        if readOnly, !FileManager.default.fileExists(atPath: path) { return nil }
        do {
            return try openPool(path: path, readOnly: readOnly)
        } catch  where !readOnly {
            // It holds nothing the store lacks: a damaged index is set aside and built again.
            let aside = path + ".damaged-\(Int(Date().timeIntervalSince1970))"
            for suffix in ["", "-wal", "-shm"] { rename(path + suffix, aside + suffix) }
            FileHandle.standardError.write(
                Data(
                    "cairn: the search index could not be opened (\(error)); moved to \(aside), building a new one\n"
                        .utf8))
            return try openPool(path: path, readOnly: readOnly)
        }
    }

    private static func openPool(path: String, readOnly: Bool) throws(FSError) -> SearchIndex {
        do {
            // The index can be rebuilt: its commits need not reach the disk before the next
            // (WAL with synchronous=NORMAL stays consistent, its cursor with its entries).
            return SearchIndex(
                database: try SideDatabase(path: path, readOnly: readOnly, readers: 4, migrator: migrator))
        } catch {
            throw FSError.io(
                "cannot open the search index \(path) (\(error)); it holds nothing the store lacks: "
                    + "remove it and run `cairn index rebuild`")
        }
    }

    private init(database: SideDatabase) {
        self.database = database
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE state (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
                    INSERT INTO state(key, value) VALUES ('events', 0), ('versions', 0);
                    -- One row per regular file seen: the version indexed (or judged not text).
                    CREATE TABLE docs (
                        inode INTEGER PRIMARY KEY,
                        workspace INTEGER NOT NULL,
                        version INTEGER NOT NULL,
                        format TEXT NOT NULL,
                        bytes INTEGER NOT NULL,
                        name TEXT NOT NULL
                    );
                    -- rowid = inode; `name` is one of the file's names when it was indexed.
                    CREATE VIRTUAL TABLE texts USING fts5(
                        name, body, tokenize = 'unicode61 remove_diacritics 2'
                    );
                    """)
        }
        migrator.registerMigration("v2-prefix-indexes") { db in
            // Prefix queries (`geo*`) read a prefix index instead of every term: the table is
            // made again, and the indexer takes everything in again from the first change.
            try db.execute(
                sql: """
                    DROP TABLE texts;
                    CREATE VIRTUAL TABLE texts USING fts5(
                        name, body, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4'
                    );
                    DELETE FROM docs;
                    UPDATE state SET value = 0;
                    """)
        }
        migrator.registerMigration("v3-no-prefix-indexes") { db in
            // Prefix indexes made indexing three times slower and queries no faster: back to
            // one index of terms (prefix queries scan the terms that begin so).
            try db.execute(
                sql: """
                    DROP TABLE texts;
                    CREATE VIRTUAL TABLE texts USING fts5(
                        name, body, tokenize = 'unicode61 remove_diacritics 2'
                    );
                    DELETE FROM docs;
                    UPDATE state SET value = 0;
                    """)
        }
        migrator.registerMigration("v4-manifests") { db in
            // The manifest indexed: a version still being written (fsynced, not closed) changes
            // in place, its manifest with it.
            try db.execute(sql: "ALTER TABLE docs ADD COLUMN manifest INTEGER")
        }
        return migrator
    }

    func close() { database.close() }

    /// Reads a consistent state of the index.
    func read<T>(_ work: (Connection) throws -> T) throws(FSError) -> T { try database.read(work) }

    /// Changes the index in one transaction.
    func write<T>(_ work: (Connection) throws -> T) throws(FSError) -> T { try database.write(work) }

    struct Cursor: Equatable {
        var events: Int64
        var versions: Int64
    }

    static func cursor(_ db: Connection) throws -> Cursor {
        let values = Dictionary(
            uniqueKeysWithValues: try db.rows("SELECT key, value FROM state").map { ($0[0] as String, $0[1] as Int64) })
        return Cursor(events: values["events"] ?? 0, versions: values["versions"] ?? 0)
    }

    static func setCursor(_ db: Connection, _ cursor: Cursor) throws {
        try db.run("UPDATE state SET value = ? WHERE key = 'events'", [cursor.events])
        try db.run("UPDATE state SET value = ? WHERE key = 'versions'", [cursor.versions])
    }

    /// Forgets everything: the indexer starts again from the first change.
    func reset() throws(FSError) {
        try write { db in
            try db.run("DELETE FROM docs")
            try db.run("DELETE FROM texts")
            try Self.setCursor(db, Cursor(events: 0, versions: 0))
        }
    }
}
