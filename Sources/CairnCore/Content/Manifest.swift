/// One stored chunk of a file: the first `length` bytes of the blob `digest`. Bytes of the chunk's
/// range beyond `length` read as zeros, so truncation and extension never rewrite data.
public struct ChunkRef: Sendable, Equatable {
    public var digest: BlobDigest
    public var length: Int
    /// Stored in the database (small chunks) rather than in the blob store.
    public var inline: Bool
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

    // MARK: encoding (format 1): count, then per chunk in index order:
    // index (8 bytes LE), length (4 bytes LE), flags (1 byte: bit 0 = inline), digest (32 bytes).

    static let entrySize = 8 + 4 + 1 + BlobDigest.byteCount

    func encoded() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(1 + chunks.count * Self.entrySize)
        out.append(1)
        for index in chunks.keys.sorted() {
            let ref = chunks[index]!
            withUnsafeBytes(of: UInt64(index).littleEndian) { out.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(ref.length).littleEndian) { out.append(contentsOf: $0) }
            out.append(ref.inline ? 1 : 0)
            out.append(contentsOf: ref.digest.bytes)
        }
        return out
    }

    init(encoded bytes: [UInt8]) throws(FSError) {
        guard bytes.first == 1, (bytes.count - 1) % Self.entrySize == 0 else {
            throw FSError.io("corrupt manifest (\(bytes.count) bytes)")
        }
        var chunks: [Int64: ChunkRef] = [:]
        chunks.reserveCapacity((bytes.count - 1) / Self.entrySize)
        bytes.withUnsafeBytes { raw in
            var at = 1
            while at < raw.count {
                let index = Int64(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)))
                let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self)))
                let inline = raw[at + 12] & 1 != 0
                let digest = BlobDigest(bytes: Array(raw[(at + 13)..<(at + Self.entrySize)]))!
                chunks[index] = ChunkRef(digest: digest, length: length, inline: inline)
                at += Self.entrySize
            }
        }
        self.chunks = chunks
    }
}
