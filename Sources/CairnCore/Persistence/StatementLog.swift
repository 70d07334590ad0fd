import Foundation

/// The write statements of a transaction, with their arguments, as bytes: what the redo journal
/// holds so that a transaction the daemon answered for but did not commit can be run again.
/// Re-running is exact because every statement's effect depends only on the database and its
/// arguments (no clocks or random numbers in SQL; a new row's id is the highest one plus one),
/// and the statements run again, in order, on the state their transaction began from.
///
/// Layout of one statement: its SQL, then u16 argument count, then per argument a tag (0 NULL,
/// 1 integer, 2 real, 3 text, 4 blob) and its value (8 bytes little-endian, or u32 length and
/// bytes). The SQL is a u32 length and the text (UTF-8) the first time the log holds it; after
/// that, u32 `reference` | offset: the text of the statement at that offset of the log. A log
/// decodes from its start only (a piece of it names texts it does not hold).
struct StatementLog {
    private(set) var bytes: [UInt8] = []
    /// The offsets of the statements that hold the texts, by the texts' keys (see `append`).
    private var texts: [UInt: UInt32] = [:]
    /// The keys of those texts, in the order they were written.
    private var introduced: [(key: UInt, at: Int)] = []

    private static let reference: UInt32 = 1 << 31

    var count: Int { bytes.count }

    /// Appends a statement. `key` names its text: statements with the same key have the same
    /// text (the connection's compiled statement for it).
    mutating func append(_ sql: String, key: UInt, _ arguments: SQLArguments) {
        if let at = texts[key] {
            append(Self.reference | at)
        } else {
            if bytes.count < Self.reference {
                texts[key] = UInt32(bytes.count)
                introduced.append((key, bytes.count))
            }
            appendBytes(sql.utf8)
        }
        append(UInt16(arguments.values.count))
        for argument in arguments.values {
            switch argument {
            case .null: bytes.append(0)
            case .integer(let v):
                bytes.append(1)
                append(UInt64(bitPattern: v))
            case .real(let v):
                bytes.append(2)
                append(v.bitPattern)
            case .text(let v):
                bytes.append(3)
                appendBytes(v.utf8)
            case .blob(let v):
                bytes.append(4)
                appendBytes(v)
            }
        }
    }

    /// Forgets everything after `count` bytes (an operation that failed).
    mutating func truncate(to count: Int) {
        bytes.removeSubrange(count...)
        while let last = introduced.last, last.at >= count {
            texts[last.key] = nil
            introduced.removeLast()
        }
    }

    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        texts.removeAll(keepingCapacity: true)
        introduced.removeAll(keepingCapacity: true)
    }

    private mutating func appendBytes<C: Collection<UInt8>>(_ value: C) {
        append(UInt32(value.count))
        bytes.append(contentsOf: value)
    }

    private mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// The statements in `bytes` (a log from its start); nil when they do not decode (a damaged
    /// record).
    static func decode(_ bytes: ArraySlice<UInt8>) -> [(sql: String, arguments: [SQLValue])]? {
        var reader = ByteReader(bytes)
        var statements: [(String, [SQLValue])] = []
        var texts: [Int: String] = [:]
        while !reader.atEnd {
            let start = reader.position
            guard let head = reader.integer(UInt32.self) else { return nil }
            let sql: String
            if head & reference != 0 {
                guard let text = texts[Int(head & ~reference)] else { return nil }
                sql = text
            } else {
                guard let text = reader.slice(Int(head)) else { return nil }
                sql = String(decoding: text, as: UTF8.self)
                texts[start] = sql
            }
            guard let count = reader.integer(UInt16.self) else { return nil }
            var arguments: [SQLValue] = []
            for _ in 0..<count {
                switch reader.integer(UInt8.self) {
                case 0: arguments.append(.null)
                case 1:
                    guard let v = reader.integer(UInt64.self) else { return nil }
                    arguments.append(.integer(Int64(bitPattern: v)))
                case 2:
                    guard let v = reader.integer(UInt64.self) else { return nil }
                    arguments.append(.real(Double(bitPattern: v)))
                case 3:
                    guard let v = reader.lengthPrefixed() else { return nil }
                    arguments.append(.text(String(decoding: v, as: UTF8.self)))
                case 4:
                    guard let v = reader.lengthPrefixed() else { return nil }
                    arguments.append(.blob(Data(v)))
                default: return nil
                }
            }
            statements.append((sql, arguments))
        }
        return statements
    }
}

/// Reads little-endian integers and length-prefixed byte strings; nil past the end.
struct ByteReader {
    private let bytes: ArraySlice<UInt8>
    private(set) var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    var atEnd: Bool { position == bytes.endIndex }

    mutating func integer<T: FixedWidthInteger>(_ type: T.Type) -> T? {
        let size = MemoryLayout<T>.size
        guard bytes.endIndex - position >= size else { return nil }
        var value = T.zero
        for i in 0..<size { value |= T(bytes[position + i]) << (8 * i) }
        position += size
        return value
    }

    mutating func lengthPrefixed() -> ArraySlice<UInt8>? {
        integer(UInt32.self).flatMap { slice(Int($0)) }
    }

    mutating func slice(_ count: Int) -> ArraySlice<UInt8>? {
        guard bytes.endIndex - position >= count else { return nil }
        defer { position += count }
        return bytes[position..<(position + count)]
    }
}
