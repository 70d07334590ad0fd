import Foundation
internal import GRDBSQLite

/// SQLite's own destructor marker: copy the bytes before the bind call returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// A Swift value that can fill a `?` of a statement.
protocol SQLBindable {
    var sqlValue: SQLValue { get }
}

/// The arguments of one statement, in `?` order; `nil` binds NULL.
struct SQLArguments: ExpressibleByArrayLiteral {
    /// Converted once here: binding and the statement log then switch over plain values.
    let values: [SQLValue]
    init(arrayLiteral elements: (any SQLBindable)?...) { values = elements.map { $0?.sqlValue ?? .null } }
    init(_ values: [SQLValue]) { self.values = values }
}

/// Builders for the arguments of the statements every file operation runs, given as
/// `SQLArguments([...])` of values: `[a, b]` of mixed types boxes each one as `SQLBindable`
/// first, which took a tenth of a create.
extension SQLValue {
    static func int(_ value: some BinaryInteger) -> SQLValue { .integer(Int64(truncatingIfNeeded: value)) }
    static func int(_ value: (some BinaryInteger)?) -> SQLValue { value.map(int) ?? .null }
    static func time(_ value: Timestamp) -> SQLValue { .integer(value.nanoseconds) }
    static func bytes(_ value: [UInt8]?) -> SQLValue { value.map { .blob(Data($0)) } ?? .null }
    static func data(_ value: Data?) -> SQLValue { value.map(SQLValue.blob) ?? .null }
}

extension Int64: SQLBindable {
    var sqlValue: SQLValue { .integer(self) }
}

extension Int: SQLBindable {
    var sqlValue: SQLValue { .integer(Int64(self)) }
}

extension Int32: SQLBindable {
    var sqlValue: SQLValue { .integer(Int64(self)) }
}

extension UInt32: SQLBindable {
    var sqlValue: SQLValue { .integer(Int64(self)) }
}

extension UInt64: SQLBindable {
    /// Stored as the same 64 bits (device numbers): read back with UInt64 they round-trip.
    var sqlValue: SQLValue { .integer(Int64(bitPattern: self)) }
}

extension Bool: SQLBindable {
    var sqlValue: SQLValue { .integer(self ? 1 : 0) }
}

extension Double: SQLBindable {
    var sqlValue: SQLValue { .real(self) }
}

extension String: SQLBindable {
    var sqlValue: SQLValue { .text(self) }
}

extension Data: SQLBindable {
    var sqlValue: SQLValue { .blob(self) }
}

extension SQLValue: SQLBindable {
    var sqlValue: SQLValue { self }

    func bind(to statement: OpaquePointer, at index: Int32) -> Int32 {
        switch self {
        case .null: return sqlite3_bind_null(statement, index)
        case .integer(let v): return sqlite3_bind_int64(statement, index, v)
        case .real(let v): return sqlite3_bind_double(statement, index, v)
        case .text(var text):
            return text.withUTF8 { bytes in
                // An empty buffer may have no address; "" must still be TEXT, not NULL.
                guard let base = bytes.baseAddress, !bytes.isEmpty else {
                    return sqlite3_bind_text(statement, index, "", 0, transient)
                }
                return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                    sqlite3_bind_text(statement, index, $0, Int32(bytes.count), transient)
                }
            }
        case .blob(let data):
            return data.withUnsafeBytes { bytes in
                // An empty blob is a zero-length BLOB (names, empty chunks), never NULL.
                guard let base = bytes.baseAddress, !bytes.isEmpty else {
                    return sqlite3_bind_zeroblob(statement, index, 0)
                }
                return sqlite3_bind_blob(statement, index, base, Int32(bytes.count), transient)
            }
        }
    }
}

/// One column of a result row, copied out of the statement.
enum SQLValue {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)

    init(_ statement: OpaquePointer, _ column: Int32) {
        switch sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER: self = .integer(sqlite3_column_int64(statement, column))
        case SQLITE_FLOAT: self = .real(sqlite3_column_double(statement, column))
        case SQLITE_TEXT:
            let count = Int(sqlite3_column_bytes(statement, column))
            self = .text(
                sqlite3_column_text(statement, column).map {
                    String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self)
                } ?? "")
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(statement, column))
            self = .blob(sqlite3_column_blob(statement, column).map { Data(bytes: $0, count: count) } ?? Data())
        default: self = .null
        }
    }
}

/// A result row: its columns by position, decoded to the type the caller asks for.
struct SQLRow {
    private let columns: [SQLValue]

    init(_ statement: OpaquePointer) {
        columns = (0..<sqlite3_column_count(statement)).map { SQLValue(statement, $0) }
    }

    subscript<T: SQLColumn>(index: Int) -> T { T(column: columns[index]) }
}

/// A Swift type a column decodes to. A column that cannot be one (NULL for a non-optional, text
/// for a number) is a schema bug, not an input error: it stops the process with the reason, as an
/// out-of-bounds index would.
protocol SQLColumn {
    init(column: SQLValue)
}

extension SQLColumn {
    static func mismatch(_ value: SQLValue) -> Never {
        fatalError("store column \(value) cannot be read as \(Self.self)")
    }
}

extension Optional: SQLColumn where Wrapped: SQLColumn {
    init(column: SQLValue) {
        if case .null = column { self = nil } else { self = Wrapped(column: column) }
    }
}

extension Int64: SQLColumn {
    init(column: SQLValue) {
        switch column {
        case .integer(let v): self = v
        case .real(let v) where Int64(exactly: v) != nil: self = Int64(v)
        default: Self.mismatch(column)
        }
    }
}

extension Int: SQLColumn {
    init(column: SQLValue) { self = Int(Int64(column: column)) }
}

extension Int32: SQLColumn {
    init(column: SQLValue) {
        guard let v = Int32(exactly: Int64(column: column)) else { Self.mismatch(column) }
        self = v
    }
}

extension UInt32: SQLColumn {
    init(column: SQLValue) {
        guard let v = UInt32(exactly: Int64(column: column)) else { Self.mismatch(column) }
        self = v
    }
}

extension UInt64: SQLColumn {
    init(column: SQLValue) { self = UInt64(bitPattern: Int64(column: column)) }
}

extension Bool: SQLColumn {
    init(column: SQLValue) { self = Int64(column: column) != 0 }
}

extension Double: SQLColumn {
    init(column: SQLValue) {
        switch column {
        case .integer(let v): self = Double(v)
        case .real(let v): self = v
        default: Self.mismatch(column)
        }
    }
}

extension String: SQLColumn {
    init(column: SQLValue) {
        switch column {
        case .text(let v): self = v
        case .blob(let v): self = String(decoding: v, as: UTF8.self)
        default: Self.mismatch(column)
        }
    }
}

extension Data: SQLColumn {
    init(column: SQLValue) {
        switch column {
        case .blob(let v): self = v
        case .text(let v): self = Data(v.utf8)
        default: Self.mismatch(column)
        }
    }
}
