import Foundation
import Glibc

/// An append-only file of the statements of the writer's open transaction that the daemon has
/// already answered for (a close, a rename). One `write(2)` per answer makes it survive a crash
/// of the daemon, at a fraction of the cost of a SQLite commit; the commit follows within
/// `MetadataWriter.commitDelay` for many operations at once, and empties the file. After a crash,
/// the next writer runs the journal's statements again (`MetadataWriter.recover`).
///
/// A record: u32 payload length, u64 checksum (of transaction number and payload), u64
/// transaction number, payload (a `StatementLog`). A record cut short or damaged ends the journal.
///
/// Not thread-safe: used only on the writer's queue.
final class RedoJournal: @unchecked Sendable {
    struct Record {
        var transaction: Int64
        var payload: ArraySlice<UInt8>
    }

    let path: String
    private let descriptor: Int32
    private var end: off_t = 0

    init(path: String) throws(FSError) {
        self.path = path
        descriptor = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw FSError.fromErrno(errno, "open the store's journal \(path)") }
        end = lseek(descriptor, 0, SEEK_END)
    }

    deinit { Glibc.close(descriptor) }

    var isEmpty: Bool { end == 0 }

    /// The valid records, in order.
    func records() throws(FSError) -> [Record] {
        var bytes = [UInt8](repeating: 0, count: Int(end))
        let got = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard got == bytes.count else { throw FSError.fromErrno(errno, "read the store's journal \(path)") }
        var reader = ByteReader(bytes[...])
        var records: [Record] = []
        while let length = reader.integer(UInt32.self), let sum = reader.integer(UInt64.self),
            let transaction = reader.integer(UInt64.self)
        {
            guard let payload = reader.slice(Int(length)) else { break }
            guard Self.checksum(transaction: transaction, payload) == sum else { break }
            records.append(Record(transaction: Int64(bitPattern: transaction), payload: payload))
        }
        return records
    }

    /// Appends one record; when this returns, a crash of the process no longer loses it.
    func append(transaction: Int64, _ payload: ArraySlice<UInt8>) throws(FSError) {
        let number = UInt64(bitPattern: transaction)
        var record: [UInt8] = []
        record.reserveCapacity(payload.count + 20)
        withUnsafeBytes(of: UInt32(payload.count).littleEndian) { record.append(contentsOf: $0) }
        withUnsafeBytes(of: Self.checksum(transaction: number, payload).littleEndian) { record.append(contentsOf: $0) }
        withUnsafeBytes(of: number.littleEndian) { record.append(contentsOf: $0) }
        record.append(contentsOf: payload)
        var done = 0
        while done < record.count {
            let n = record.withUnsafeBytes {
                pwrite(descriptor, $0.baseAddress! + done, $0.count - done, end + off_t(done))
            }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                // A partial record would end the journal early; cut it off.
                _ = ftruncate(descriptor, end)
                throw FSError.fromErrno(code, "write the store's journal \(path)")
            }
            done += n
        }
        end += off_t(record.count)
    }

    /// Empties the journal (its transaction is committed).
    func reset() throws(FSError) {
        guard end > 0 else { return }
        guard ftruncate(descriptor, 0) == 0 else { throw FSError.fromErrno(errno, "empty the store's journal \(path)") }
        end = 0
    }

    /// Detects records cut short or overwritten by garbage, not tampering.
    static func checksum(transaction: UInt64, _ payload: ArraySlice<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ transaction
        let prime: UInt64 = 0x0000_0100_0000_01b3
        payload.withUnsafeBytes { bytes in
            var i = 0
            while i + 8 <= bytes.count {
                hash = (hash ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* prime
                hash ^= hash >> 29
                i += 8
            }
            while i < bytes.count {
                hash = (hash ^ UInt64(bytes[i])) &* prime
                i += 1
            }
        }
        return hash ^ UInt64(payload.count)
    }
}
