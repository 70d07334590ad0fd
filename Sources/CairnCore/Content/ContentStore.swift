import Foundation
import Glibc

/// Reads and writes chunk contents: inline chunks through the database, the others through the
/// blob store. The namespace code sees only `ChunkRef`s.
final class ContentStore: Sendable {
    let store: Store
    var chunkSize: Int { store.chunkSize }

    init(store: Store) { self.store = store }

    /// Reads `[offset, offset + buffer.count)` of a file of `size` bytes, chunk by chunk through
    /// `chunk(index, offsetInChunk, piece)`. Returns the count read (short at end of file).
    func readRange(
        size: Int64, offset: Int64, into buffer: UnsafeMutableRawBufferPointer,
        chunk: (Int64, Int, UnsafeMutableRawBufferPointer) throws(FSError) -> Void
    ) throws(FSError) -> Int {
        guard offset >= 0 else { throw FSError.invalidArgument("negative offset") }
        guard offset < size else { return 0 }
        let total = Int(min(Int64(buffer.count), size - offset))
        let cs = Int64(chunkSize)
        var done = 0
        while done < total {
            let position = offset + Int64(done)
            let within = Int(position % cs)
            let n = min(chunkSize - within, total - done)
            try chunk(position / cs, within, UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + n)]))
            done += n
        }
        return total
    }

    /// Reads a committed file content (a version). Inline chunks come from `inlineFrom` when
    /// given (a reader of committed state), else from the store's reader.
    func read(
        _ manifest: Manifest, size: Int64, offset: Int64, into buffer: UnsafeMutableRawBufferPointer,
        inlineFrom db: Connection? = nil
    ) throws(FSError) -> Int {
        try readRange(size: size, offset: offset, into: buffer) { index, within, piece throws(FSError) in
            try read(manifest.chunks[index], at: within, into: piece, inlineFrom: db)
        }
    }

    /// Fills `buffer` with the chunk's bytes from `offset`; zeros beyond the chunk's length and
    /// for a hole (`ref` nil).
    func read(
        _ ref: ChunkRef?, at offset: Int, into buffer: UnsafeMutableRawBufferPointer, inlineFrom db: Connection? = nil
    ) throws(FSError) {
        guard let ref else {
            memset(buffer.baseAddress!, 0, buffer.count)
            return
        }
        let available = max(0, min(buffer.count, ref.length - offset))
        var got = 0
        if available > 0 {
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<available])
            switch ref.storage {
            case .embedded(let bytes):
                got = max(0, min(available, bytes.count - offset))
                if got > 0 { bytes.withUnsafeBytes { _ = memcpy(target.baseAddress!, $0.baseAddress! + offset, got) } }
            case .inline(let digest):
                got = try readSmall(digest, at: offset, into: target, available: available, inlineFrom: db)
            case .blob(let digest):
                do {
                    got = try store.blobs.read(digest, offset: offset, into: target)
                } catch .notFound {
                    throw FSError.io("chunk \(digest) is missing from the blob store; run `cairn fsck`")
                }
            }
        }
        if got < buffer.count { memset(buffer.baseAddress! + got, 0, buffer.count - got) }
    }

    /// Reads a chunk the database keeps (in its row or a pack); returns the count read.
    private func readSmall(
        _ digest: BlobDigest, at offset: Int, into target: UnsafeMutableRawBufferPointer, available: Int,
        inlineFrom db: Connection?
    ) throws(FSError) -> Int {
        let location: ContentQueries.SmallChunk?
        if let db {
            do { location = try ContentQueries.smallChunk(db, digest) } catch { throw FSError(database: error) }
        } else {
            location = try store.read { db in try ContentQueries.smallChunk(db, digest) }
        }
        switch location {
        case .none:
            throw FSError.io("chunk \(digest) is missing from the store; run `cairn fsck`")
        case .row(let data):
            return data.withUnsafeBytes { raw in
                let n = max(0, min(available, raw.count - offset))
                if n > 0 { memcpy(target.baseAddress!, raw.baseAddress! + offset, n) }
                return n
            }
        case .packed(let pack, let at, let size):
            let n = max(0, min(available, size - offset))
            let got: Int
            do {
                got =
                    n > 0
                    ? try store.packs.read(
                        pack: pack, offset: at + Int64(offset),
                        into: UnsafeMutableRawBufferPointer(rebasing: target[0..<n]))
                    : 0
            } catch .notFound {
                throw FSError.io("pack \(pack) holding chunk \(digest) is missing; run `cairn fsck`")
            }
            // A pack shorter than its rows say lost bytes (a power loss): not zeros.
            if got < n { throw FSError.io("pack \(pack) is cut short in chunk \(digest); run `cairn fsck`") }
            return got
        }
    }

    /// A chunk about to be committed: its reference, and its bytes when they go to a pack.
    struct StoredChunk {
        var ref: ChunkRef
        var inlineData: Data?
    }

    /// Moves a staged chunk into permanent storage. Returns nil for a chunk of zeros (a hole).
    func store(_ chunk: StagedChunk, durable: Bool) throws(FSError) -> StoredChunk? {
        let length = chunk.length
        guard length > 0 else { return nil }
        if let result = try chunk.withMemory({ bytes throws(FSError) in try storeBytes(bytes, durable: durable) }) {
            return result
        }
        guard let path = chunk.filePath, !chunk.onlyZeros else { return nil }
        if length > store.inlineThreshold, let digest = chunk.takeDigest() {
            // Hashed while it was written: move the file into the blob store without reading it.
            store.descriptors.forget(path)
            try store.blobs.adopt(digest, file: path, durable: durable)
            chunk.releaseFile()
            return StoredChunk(ref: ChunkRef(storage: .blob(digest), length: length), inlineData: nil)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 16)
        defer { buffer.deallocate() }
        let got = try store.descriptors.with(path, flags: O_RDWR) { fd throws(FSError) in
            try readFully(fd, buffer, offset: 0)
        }
        if got < length { memset(buffer.baseAddress! + got, 0, length - got) }
        let bytes = UnsafeRawBufferPointer(buffer)
        if length > store.inlineThreshold, !isAllZero(bytes) {
            let digest = BlobDigest.of(bytes)
            store.descriptors.forget(path)
            try store.blobs.adopt(digest, file: path, durable: durable)
            chunk.releaseFile()
            return StoredChunk(ref: ChunkRef(storage: .blob(digest), length: length), inlineData: nil)
        }
        return try storeBytes(bytes, durable: durable)
    }

    private func storeBytes(_ bytes: UnsafeRawBufferPointer, durable: Bool) throws(FSError) -> StoredChunk? {
        if isAllZero(bytes) { return nil }
        if bytes.count <= Manifest.embeddedLimit {
            return StoredChunk(ref: ChunkRef(storage: .embedded(Array(bytes)), length: bytes.count), inlineData: nil)
        }
        let digest = BlobDigest.of(bytes)
        if bytes.count <= store.inlineThreshold {
            return StoredChunk(ref: ChunkRef(storage: .inline(digest), length: bytes.count), inlineData: Data(bytes))
        }
        try store.blobs.put(digest, data: bytes, durable: durable)
        return StoredChunk(ref: ChunkRef(storage: .blob(digest), length: bytes.count), inlineData: nil)
    }
}
