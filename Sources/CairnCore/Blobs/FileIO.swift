import Glibc

// Small wrappers over the system calls the store uses, each retrying EINTR and turning errno
// into FSError. All data moves through raw buffers: no per-byte Swift loops on the data path.

func writeAll(_ fd: Int32, _ data: UnsafeRawBufferPointer, offset: Int) throws(FSError) {
    var done = 0
    while done < data.count {
        let n = pwrite(fd, data.baseAddress! + done, data.count - done, off_t(offset + done))
        if n < 0 {
            if errno == EINTR { continue }
            throw FSError.fromErrno(errno, "write")
        }
        done += n
    }
}

/// Reads until `buffer` is full or end of file; returns the count read.
func readFully(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, offset: Int) throws(FSError) -> Int {
    var done = 0
    while done < buffer.count {
        let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
        if n < 0 {
            if errno == EINTR { continue }
            throw FSError.fromErrno(errno, "read")
        }
        if n == 0 { break }
        done += n
    }
    return done
}

func makeDirectory(_ path: String) throws(FSError) {
    if mkdir(path, 0o700) != 0, errno != EEXIST { throw FSError.fromErrno(errno, "mkdir \(path)") }
}

func syncDirectory(_ path: String) throws(FSError) {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw FSError.fromErrno(errno, "open \(path)") }
    defer { close(fd) }
    if fsync(fd) != 0 { throw FSError.fromErrno(errno, "fsync \(path)") }
}

func listDirectory(_ path: String) throws(FSError) -> [String] {
    guard let dir = opendir(path) else {
        if errno == ENOENT { return [] }
        throw FSError.fromErrno(errno, "list \(path)")
    }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// Whether every byte of `data` is zero (such chunks are stored as holes).
func isAllZero(_ data: UnsafeRawBufferPointer) -> Bool {
    guard data.count > 0 else { return true }
    let words = data.count / 8
    let base = data.baseAddress!
    for i in 0..<words where base.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) != 0 { return false }
    for i in (words * 8)..<data.count where data[i] != 0 { return false }
    return true
}
