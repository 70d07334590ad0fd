import Glibc
import Synchronization

/// Bytes written to one chunk of an open file and not yet committed. Small chunks stay in
/// memory (most files are small, and a file per write would cost more than the write); a chunk
/// that grows past `memoryLimit`, or any chunk once the process-wide memory budget is spent, lives
/// in a staging file. Bytes between `length` and the end of the chunk read as zeros.
final class StagedChunk {
    private(set) var length = 0
    private var memory: UnsafeMutableRawPointer?
    private var capacity = 0
    private(set) var filePath: String?
    private let staging: StagingArea
    /// Bytes [0, length) were all written in order (the common case: streaming writes).
    private var sequential = true
    /// The digest of a chunk in a file, hashed while it is written in order, so a commit need
    /// not read the chunk back to hash it. Small chunks in memory are hashed at commit instead.
    private var digest: BackgroundDigest?
    /// Every byte written so far was zero: the chunk is a hole.
    private(set) var onlyZeros = true

    init(staging: StagingArea) { self.staging = staging }

    deinit { discard() }

    /// Drops the staged bytes (after commit, or when the range is punched or truncated away).
    func discard() {
        if let memory {
            memory.deallocate()
            staging.releaseMemory(capacity)
        }
        memory = nil
        capacity = 0
        if let filePath {
            staging.descriptors.forget(filePath)
            unlink(filePath)
        }
        filePath = nil
        length = 0
        digest = nil
    }

    /// The digest of the staged bytes, if it was computed while they were written.
    func takeDigest() -> BlobDigest? {
        defer { digest = nil }
        return sequential ? digest?.finish() : nil
    }

    func write(_ data: UnsafeRawBufferPointer, at offset: Int) throws(FSError) {
        if onlyZeros && !isAllZero(data) { onlyZeros = false }
        if offset != length && sequential {
            sequential = false
            digest?.invalidate()
        }
        let end = offset + data.count
        if filePath == nil, end <= staging.memoryLimit, growMemory(to: end) {
            let base = memory!
            if offset > length { memset(base + length, 0, offset - length) }
            memcpy(base + offset, data.baseAddress!, data.count)
            length = max(length, end)
            return
        }
        let path = try spill()
        try staging.descriptors.with(path, flags: O_RDWR) { fd throws(FSError) in
            try writeAll(fd, data, offset: offset)
        }
        if sequential { digest?.append(data) }
        length = max(length, end)
    }

    /// Fills `buffer` with the bytes at `offset`, zeros beyond `length`.
    func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(FSError) {
        let available = max(0, min(buffer.count, length - offset))
        if available > 0 {
            if let memory {
                memcpy(buffer.baseAddress!, memory + offset, available)
            } else if let filePath {
                let got = try staging.descriptors.with(filePath, flags: O_RDWR) { fd throws(FSError) in
                    try readFully(fd, UnsafeMutableRawBufferPointer(rebasing: buffer[0..<available]), offset: offset)
                }
                if got < available { memset(buffer.baseAddress! + got, 0, available - got) }
            }
        }
        if available < buffer.count { memset(buffer.baseAddress! + available, 0, buffer.count - available) }
    }

    func truncate(to newLength: Int) throws(FSError) {
        guard newLength < length else { return }
        sequential = false
        digest = nil
        if let filePath {
            try staging.descriptors.with(filePath, flags: O_RDWR) { fd throws(FSError) in
                if ftruncate(fd, off_t(newLength)) != 0 { throw FSError.fromErrno(errno, "truncate staging") }
            }
        }
        length = newLength
    }

    /// The staged bytes in memory, if they are there.
    func withMemory<T>(_ body: (UnsafeRawBufferPointer) throws(FSError) -> T) throws(FSError) -> T? {
        guard let memory else { return nil }
        return try body(UnsafeRawBufferPointer(start: memory, count: length))
    }

    /// Gives up ownership of the staging file (it has been moved into the blob store).
    func releaseFile() {
        if let filePath { staging.descriptors.forget(filePath) }
        filePath = nil
        length = 0
    }

    private func growMemory(to needed: Int) -> Bool {
        if needed <= capacity { return true }
        let newCapacity = min(staging.memoryLimit, max(needed, capacity * 2, 4096))
        guard staging.reserveMemory(newCapacity - capacity) else { return false }
        let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        if let memory {
            memcpy(grown, memory, length)
            memory.deallocate()
        }
        memory = grown
        capacity = newCapacity
        return true
    }

    private func spill() throws(FSError) -> String {
        if let filePath { return filePath }
        let path = staging.newFilePath()
        try staging.descriptors.with(path, flags: O_RDWR | O_CREAT | O_EXCL) { fd throws(FSError) in
            if let memory, length > 0 {
                try writeAll(fd, UnsafeRawBufferPointer(start: memory, count: length), offset: 0)
            }
        }
        if sequential {
            let d = BackgroundDigest()
            if let memory, length > 0 { d.append(UnsafeRawBufferPointer(start: memory, count: length)) }
            digest = d
        }
        if let memory {
            memory.deallocate()
            staging.releaseMemory(capacity)
        }
        memory = nil
        capacity = 0
        filePath = path
        return path
    }
}

/// The staging directory and the process-wide budget for staged bytes kept in memory.
final class StagingArea: Sendable {
    let directory: String
    let memoryLimit: Int
    let descriptors: DescriptorCache
    private let budget: Int
    private let used = Atomic<Int>(0)
    private let counter = Atomic<UInt64>(0)
    private let prefix: String

    init(directory: String, memoryLimit: Int, budget: Int, descriptors: DescriptorCache) {
        self.directory = directory
        self.memoryLimit = memoryLimit
        self.budget = budget
        self.descriptors = descriptors
        self.prefix = "\(getpid())-\(Timestamp.now().nanoseconds)-"
    }

    func newFilePath() -> String {
        directory + "/" + prefix + String(counter.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    func reserveMemory(_ bytes: Int) -> Bool {
        let after = used.wrappingAdd(bytes, ordering: .relaxed).newValue
        if after > budget {
            used.wrappingSubtract(bytes, ordering: .relaxed)
            return false
        }
        return true
    }

    func releaseMemory(_ bytes: Int) { used.wrappingSubtract(bytes, ordering: .relaxed) }

    var memoryInUse: Int { used.load(ordering: .relaxed) }

    /// Removes staging files left by a process that is gone (a crash): nothing refers to them.
    func removeLeftovers() throws(FSError) {
        for name in try listDirectory(directory) { unlink(directory + "/" + name) }
    }
}
