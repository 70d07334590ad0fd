/// One stored chunk of a file: its first `length` bytes. Bytes of the chunk's range beyond
/// `length` read as zeros, so truncation and extension never rewrite data.
public struct ChunkRef: Sendable, Equatable {
    /// Where a chunk's bytes are.
    public enum Storage: Sendable, Equatable {
        /// A file of the blob store, named by its digest.
        case blob(BlobDigest)
        /// The database's (a pack, or the chunk's row in older stores), named by its digest.
        case inline(BlobDigest)
        /// In the manifest itself (chunks of at most `Manifest.embeddedLimit` bytes): no row,
        /// no pack, and no sharing; bytes beyond `length` are not part of the chunk.
        case embedded([UInt8])
    }

    public var storage: Storage
    public var length: Int

    /// The chunk's address in the store (nil: embedded, it has none).
    public var digest: BlobDigest? {
        switch storage {
        case .blob(let digest), .inline(let digest): digest
        case .embedded: nil
        }
    }
}

/// A file's content: fixed-size chunks at chunk-aligned offsets. Absent chunks are holes (or
/// zeros), so a sparse file of any size is as many entries as it has data chunks, and truncate,
/// SEEK_DATA and SEEK_HOLE never walk holes.
public struct Manifest: Sendable, Equatable {
    public var chunks: [Int64: ChunkRef] = [:]

    public init(chunks: [Int64: ChunkRef] = [:]) { self.chunks = chunks }

    /// Drops everything at or beyond `size`, clipping the chunk that straddles it.
    mutating func truncate(to size: Int64, chunkSize: Int) {
        let cs = Int64(chunkSize)
        let lastKept = size == 0 ? -1 : (size - 1) / cs
        for index in chunks.keys where index > lastKept { chunks.removeValue(forKey: index) }
        if lastKept >= 0, var ref = chunks[lastKept] {
            let keep = Int(size - lastKept * cs)
            if ref.length > keep {
                ref.length = keep
                chunks[lastKept] = ref
            }
        }
    }

    /// Distinct stored bytes, for st_blocks.
    var storedBytes: Int64 { chunks.values.reduce(0) { $0 + Int64($1.length) } }

    /// The largest chunk kept in the manifest itself (`ChunkRef.Storage.embedded`). Up to about
    /// this size, the bytes cost less room than what names a shared chunk (its digest here, its
    /// row and index entry in `blobs`, its place in a pack), and a commit writes one row less
    /// and no pack; such chunks are not shared between files.
    static let embeddedLimit = 256

    // MARK: encoding (format 1): 1, then per chunk in index order: index (8 bytes LE), length
    // (4 bytes LE), flags (1 byte: bit 0 inline, bit 1 embedded), then the digest (32 bytes) or,
    // embedded, the `length` bytes of the chunk.

    private static let headerSize = 8 + 4 + 1

    func encoded() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(1 + chunks.count * (Self.headerSize + BlobDigest.byteCount))
        out.append(1)
        for index in chunks.keys.sorted() {
            let ref = chunks[index]!
            withUnsafeBytes(of: UInt64(index).littleEndian) { out.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(ref.length).littleEndian) { out.append(contentsOf: $0) }
            switch ref.storage {
            case .blob(let digest):
                out.append(0)
                out.append(contentsOf: digest.bytes)
            case .inline(let digest):
                out.append(1)
                out.append(contentsOf: digest.bytes)
            case .embedded(let bytes):
                out.append(2)
                out.append(contentsOf: bytes.prefix(ref.length))
                if bytes.count < ref.length {
                    out.append(contentsOf: repeatElement(0, count: ref.length - bytes.count))
                }
            }
        }
        return out
    }

    init(encoded bytes: [UInt8]) throws(FSError) {
        guard bytes.first == 1 else { throw FSError.io("corrupt manifest (\(bytes.count) bytes)") }
        var chunks: [Int64: ChunkRef] = [:]
        var at = 1
        while at < bytes.count {
            guard bytes.count - at >= Self.headerSize else { throw FSError.io("corrupt manifest (cut short)") }
            let (index, length, flags) = bytes.withUnsafeBytes { raw in
                (
                    Int64(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))),
                    Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self))),
                    raw[at + 12]
                )
            }
            at += Self.headerSize
            let size = flags & 2 != 0 ? length : BlobDigest.byteCount
            guard bytes.count - at >= size else { throw FSError.io("corrupt manifest (cut short)") }
            let body = Array(bytes[at..<(at + size)])
            at += size
            let storage: ChunkRef.Storage
            if flags & 2 != 0 {
                storage = .embedded(body)
            } else {
                let digest = BlobDigest(bytes: body)!
                storage = flags & 1 != 0 ? .inline(digest) : .blob(digest)
            }
            chunks[index] = ChunkRef(storage: storage, length: length)
        }
        self.chunks = chunks
    }
}
