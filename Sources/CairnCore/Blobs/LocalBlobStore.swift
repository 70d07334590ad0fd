import Glibc

/// Blobs as files under `<store>/blobs/<first two hex digits>/<hex digest>`, written by rename
/// so a reader never sees a partial blob.
public final class LocalBlobStore: BlobStore {
    let root: String
    private let descriptors: DescriptorCache

    init(root: String, descriptors: DescriptorCache) {
        self.root = root
        self.descriptors = descriptors
    }

    /// Creates the fan-out directories (once, at store creation).
    static func prepare(root: String) throws(FSError) {
        try makeDirectory(root)
        for i in 0..<256 { try makeDirectory(root + "/" + hexByte(UInt8(i))) }
        try makeDirectory(root + "/incoming")
    }

    func path(_ digest: BlobDigest) -> String {
        root + "/" + hexByte(digest.bytes[0]) + "/" + digest.hex
    }

    public func contains(_ digest: BlobDigest) -> Bool { access(path(digest), F_OK) == 0 }

    public func put(_ digest: BlobDigest, data: UnsafeRawBufferPointer, durable: Bool) throws(FSError) {
        if contains(digest) {
            // Present, but perhaps written by a commit that was not durable.
            if durable { try syncFile(path(digest)) }
            return
        }
        let temp = root + "/incoming/" + digest.hex + ".\(getpid()).\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444)
        guard fd >= 0 else { throw FSError.fromErrno(errno, "create blob") }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(temp) }
        }
        try writeAll(fd, data, offset: 0)
        if durable, fsync(fd) != 0 { throw FSError.fromErrno(errno, "fsync blob") }
        ok = true
        try adopt(digest, file: temp, durable: durable)
    }

    public func adopt(_ digest: BlobDigest, file: String, durable: Bool) throws(FSError) {
        let target = path(digest)
        if access(target, F_OK) == 0 {
            unlink(file)
            // Present, but perhaps written by a commit that was not durable.
            if durable { try syncFile(target) }
            return
        }
        if durable { try syncFile(file) }
        chmod(file, 0o444)
        guard rename(file, target) == 0 else { throw FSError.fromErrno(errno, "store blob") }
        if durable { try syncDirectory(root + "/" + hexByte(digest.bytes[0])) }
    }

    private func syncFile(_ path: String) throws(FSError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FSError.fromErrno(errno, "open blob for fsync") }
        defer { close(fd) }
        if fsync(fd) != 0 { throw FSError.fromErrno(errno, "fsync blob") }
    }

    public func read(
        _ digest: BlobDigest, offset: Int, into buffer: UnsafeMutableRawBufferPointer
    ) throws(FSError) -> Int {
        try descriptors.with(path(digest), flags: O_RDONLY) { fd throws(FSError) in
            try readFully(fd, buffer, offset: offset)
        }
    }

    public func delete(_ digest: BlobDigest) throws(FSError) {
        let p = path(digest)
        descriptors.forget(p)
        if unlink(p) != 0, errno != ENOENT { throw FSError.fromErrno(errno, "delete blob") }
    }

    public func allDigests() throws(FSError) -> [BlobDigest] {
        var out: [BlobDigest] = []
        for i in 0..<256 {
            for name in try listDirectory(root + "/" + hexByte(UInt8(i))) {
                if let d = BlobDigest(hex: name) { out.append(d) }
            }
        }
        return out
    }
}

func hexByte(_ b: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(b >> 4)], digits[Int(b & 0xF)]])
}
