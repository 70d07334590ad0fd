import Crypto

/// The SHA-256 digest that names a chunk. The store records the algorithm (`sha256`) so a later
/// store can change it without misreading old digests.
public struct BlobDigest: Hashable, Sendable, CustomStringConvertible {
    public static let algorithm = "sha256"
    public static let byteCount = 32

    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    public init?(hex: String) {
        guard hex.utf8.count == Self.byteCount * 2 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(Self.byteCount)
        var iterator = hex.utf8.makeIterator()
        while let hi = iterator.next(), let lo = iterator.next() {
            guard let h = Self.nibble(hi), let l = Self.nibble(lo) else { return nil }
            out.append(h << 4 | l)
        }
        bytes = out
    }

    public static func of(_ data: UnsafeRawBufferPointer) -> BlobDigest {
        BlobDigest(bytes: Array(SHA256.hash(data: data)))!
    }

    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { hex }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}

/// Incremental SHA-256 over a chunk read in pieces.
struct DigestBuilder {
    private var hasher = SHA256()
    mutating func update(_ data: UnsafeRawBufferPointer) { hasher.update(bufferPointer: data) }
    consuming func finish() -> BlobDigest { BlobDigest(bytes: Array(hasher.finalize()))! }
}
