import Foundation
internal import GRDBSQLite
import Synchronization

/// One SQLite connection as the store's queries see it: statements compiled once and kept,
/// arguments bound and columns read straight through the C API. GRDB opens, configures and
/// migrates the connections and owns their threads; the per-operation path runs here because
/// a filesystem operation is several statements and each one must cost little more than SQLite
/// itself (decoding a row into a dictionary of column names, per row, does not).
///
/// Not thread-safe: used only on the queue of the GRDB connection it wraps.
final class Connection: @unchecked Sendable {
    private let handle: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]
    /// The same statements by the address of their text's bytes. Most statements are string
    /// constants, whose bytes never move: finding one by address skips hashing its whole text
    /// (a few percent of a file operation). The entry keeps its text alive, so no other text can
    /// take that address while it is here; text built at each call just misses.
    private var byAddress: [UInt: (sql: String, statement: OpaquePointer)] = [:]
    /// When set, every statement `run` executes is added to it (the writer's redo journal).
    var log: StatementLog?

    init(_ handle: OpaquePointer) {
        self.handle = handle
    }

    deinit { finalize() }

    /// Releases every compiled statement; required before the connection closes.
    func finalize() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements.removeAll()
        byAddress.removeAll()
    }

    var isInsideTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }
    var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var changesCount: Int { Int(sqlite3_changes(handle)) }
    /// Rows inserted, changed or deleted since the connection opened.
    var totalChanges: Int64 { sqlite3_total_changes64(handle) }

    /// Stores the number of frames in the write-ahead log in `frames` after each commit (nil:
    /// no more; `frames` must outlive the observation). It replaces SQLite's automatic
    /// checkpoints, which the store turns off anyway.
    func observeLogLength(_ frames: WALFrames?) {
        guard let frames else {
            sqlite3_wal_hook(handle, nil, nil)
            return
        }
        sqlite3_wal_hook(
            handle,
            { context, _, _, count in
                Unmanaged<WALFrames>.fromOpaque(context!).takeUnretainedValue().count.store(
                    Int(count), ordering: .relaxed)
                return SQLITE_OK
            }, Unmanaged.passUnretained(frames).toOpaque())
    }

    /// Removes the commit and rollback hooks someone else installed on the connection.
    func removeTransactionHooks() {
        sqlite3_commit_hook(handle, nil, nil)
        sqlite3_rollback_hook(handle, nil, nil)
    }

    /// Runs a statement that changes the database.
    func run(_ sql: String, _ arguments: SQLArguments = []) throws {
        try execute(sql, arguments) { statement in
            while try step(statement, sql) {}
            // A compiled statement stays for the connection's life: it names its text.
            log?.append(sql, key: UInt(bitPattern: statement), arguments)
        }
    }

    /// Runs a statement that is not part of the changes a transaction makes (BEGIN, ROLLBACK,
    /// COMMIT, bookkeeping of the journal itself): never logged.
    func control(_ sql: String, _ arguments: SQLArguments = []) throws {
        try execute(sql, arguments) { statement in
            while try step(statement, sql) {}
        }
    }

    func row(_ sql: String, _ arguments: SQLArguments = []) throws -> SQLRow? {
        try execute(sql, arguments) { statement in
            try step(statement, sql) ? SQLRow(statement) : nil
        }
    }

    func rows(_ sql: String, _ arguments: SQLArguments = []) throws -> [SQLRow] {
        try execute(sql, arguments) { statement in
            var rows: [SQLRow] = []
            while try step(statement, sql) { rows.append(SQLRow(statement)) }
            return rows
        }
    }

    /// The first column of the first row; nil when there is no row or it is NULL.
    func value<T: SQLColumn>(_ type: T.Type, _ sql: String, _ arguments: SQLArguments = []) throws -> T? {
        try execute(sql, arguments) { statement in
            guard try step(statement, sql), sqlite3_column_type(statement, 0) != SQLITE_NULL else { return nil }
            return T(column: SQLValue(statement, 0))
        }
    }

    func values<T: SQLColumn>(_ type: T.Type, _ sql: String, _ arguments: SQLArguments = []) throws -> [T] {
        try execute(sql, arguments) { statement in
            var values: [T] = []
            while try step(statement, sql) { values.append(T(column: SQLValue(statement, 0))) }
            return values
        }
    }

    private func execute<R>(_ sql: String, _ arguments: SQLArguments, _ body: (OpaquePointer) throws -> R) throws -> R {
        let statement = try prepared(sql)
        defer { sqlite3_reset(statement) }
        let expected = Int(sqlite3_bind_parameter_count(statement))
        guard arguments.values.count == expected else {
            throw SQLiteError(
                code: SQLITE_MISUSE, message: "\(arguments.values.count) arguments for \(expected)", sql: sql)
        }
        for (offset, value) in arguments.values.enumerated() {
            let index = Int32(offset + 1)
            let code = value.bind(to: statement, at: index)
            if code != SQLITE_OK { throw error(code, sql) }
        }
        return try body(statement)
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        // Texts of 15 bytes or fewer live inside the String value itself, at no fixed address.
        let address =
            sql.utf8.count > 15
            ? sql.utf8.withContiguousStorageIfAvailable { UInt(bitPattern: $0.baseAddress) } ?? 0 : 0
        if address != 0, let known = byAddress[address], known.sql == sql { return known.statement }
        let statement = try compiled(sql)
        if address != 0 {
            if byAddress.count >= 1024 { byAddress.removeAll(keepingCapacity: true) }
            byAddress[address] = (sql, statement)
        }
        return statement
    }

    private func compiled(_ sql: String) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        var statement: OpaquePointer?
        let code = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard code == SQLITE_OK, let statement else { throw error(code, sql) }
        statements[sql] = statement
        return statement
    }

    /// True while a row is ready.
    private func step(_ statement: OpaquePointer, _ sql: String) throws -> Bool {
        switch sqlite3_step(statement) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code: throw error(code, sql)
        }
    }

    private func error(_ code: Int32, _ sql: String) -> SQLiteError {
        SQLiteError(code: code, message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }
}

/// A failed statement, with SQLite's (extended) result code.
struct SQLiteError: Error, CustomStringConvertible {
    let code: Int32
    let message: String
    let sql: String

    /// The primary result code (SQLITE_FULL, SQLITE_CORRUPT, ...).
    var primaryCode: Int32 { code & 0xFF }
    var description: String { "SQLite error \(code): \(message) (in: \(sql))" }
}

/// The length of a connection's write-ahead log in frames (pages), as of its last commit.
final class WALFrames: Sendable {
    let count = Atomic<Int>(0)
}
