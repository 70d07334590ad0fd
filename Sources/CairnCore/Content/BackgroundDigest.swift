import Dispatch
import Foundation

/// SHA-256 of a chunk computed on another core while the chunk is being written front to back,
/// so neither the write path nor the commit waits for the hash of a streaming write. Each append
/// copies the bytes (cheaper than hashing them) and hashes them on the chunk's own serial queue;
/// a process-wide budget bounds the bytes waiting, so a writer faster than the hash slows down
/// instead of filling memory.
final class BackgroundDigest: @unchecked Sendable {
    // Touched only on `queue`.
    private var builder: DigestBuilder? = DigestBuilder()
    private let queue = DispatchQueue(label: "cairn.digest")
    private static let budget = DispatchSemaphore(value: 32)  // appends of at most 1 MiB waiting

    func append(_ data: UnsafeRawBufferPointer) {
        let copy = PendingBytes(data)
        Self.budget.wait()
        queue.async { [self] in
            builder?.update(copy.bytes)
            copy.free()
            Self.budget.signal()
        }
    }

    /// The bytes will not be appended in order any more: no digest.
    func invalidate() { queue.async { [self] in builder = nil } }

    /// The digest of everything appended, once the queued work is done; nil if invalidated.
    func finish() -> BlobDigest? {
        queue.sync {
            defer { builder = nil }
            return builder?.finish()
        }
    }
}

/// A copy of bytes handed to the hashing queue, freed there.
private final class PendingBytes: @unchecked Sendable {
    // SAFETY: written once here, then read and freed only by the queue it is handed to.
    private let base: UnsafeMutableRawPointer
    private let count: Int

    init(_ data: UnsafeRawBufferPointer) {
        count = data.count
        base = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 16)
        if count > 0 { base.copyMemory(from: data.baseAddress!, byteCount: count) }
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
    func free() { base.deallocate() }
}
