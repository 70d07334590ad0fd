import Foundation
internal import GRDB

/// A database of its own beside cairn.db (the search index, the audit log), so that its
/// writes never take a turn of the store's writer. WAL; commits are synchronous=NORMAL, so
/// they survive a crash of the daemon; a few readers.
final class SideDatabase: Sendable {
    let path: String
    let pool: DatabasePool

    /// Opens the database at `path`; a writer creates it and runs `migrator` first.
    init(path: String, readOnly: Bool, readers: Int, migrator: DatabaseMigrator) throws {
        var config = Configuration()
        config.readonly = readOnly
        config.busyMode = .timeout(10)
        config.maximumReaderCount = readers
        config.prepareDatabase { db in
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        }
        pool = try DatabasePool(path: path, configuration: config)
        if !readOnly { try migrator.migrate(pool) }
        self.path = path
    }

    func close() { try? pool.close() }

    /// Reads a consistent state.
    func read<T>(_ work: (Connection) throws -> T) throws(FSError) -> T {
        do {
            return try pool.read { db in try work(Connection(db.sqliteConnection!)) }
        } catch {
            throw FSError(database: error)
        }
    }

    /// Changes it in one transaction: all of `work`'s changes commit, or none.
    func write<T>(_ work: (Connection) throws -> T) throws(FSError) -> T {
        do {
            return try pool.write { db in try work(Connection(db.sqliteConnection!)) }
        } catch {
            throw FSError(database: error)
        }
    }
}
