import Glibc
import Synchronization

/// Small chunks, appended one after another to large files. Inside the database each chunk cost
/// its pages three writes (the write-ahead log, the redo journal, the checkpoint); a file of its
/// own costs a create and a rename. Here it costs one `pwrite`, and the blobs row names the pack
/// and offset. A chunk no version needs any more is punched out of its pack (the pack keeps its
/// length, the disk gets the blocks back).
///
/// A crash can leave bytes at the end of a pack that no row names (appended, never committed):
/// they are skipped, never read.
final class PackFiles: Sendable {
    /// A pack takes appends until it is this long; then the next one begins.
    static let packLimit: Int64 = 64 << 20

    let root: String
    private let descriptors: DescriptorCache
    /// The pack appends go to and its length; nil until the first append looks.
    private let current = Mutex<(number: Int64, end: Int64)?>(nil)
    /// Packs appended to since the last `sync`.
    private let unsynced = Mutex<Set<Int64>>([])

    /// How packs are opened: read and write by the store's writer (the descriptor cache keeps
    /// one per path, for appends and reads alike), read-only elsewhere (a store that cannot be
    /// written, a read-only filesystem).
    private let openFlags: Int32

    init(root: String, descriptors: DescriptorCache, writable: Bool) {
        self.root = root
        self.descriptors = descriptors
        openFlags = writable ? O_RDWR : O_RDONLY
    }

    func path(_ pack: Int64) -> String { root + "/" + String(pack) + ".pack" }

    /// Writes `bytes` at the end of the current pack; returns where they are.
    func append(_ bytes: UnsafeRawBufferPointer) throws(FSError) -> (pack: Int64, offset: Int64) {
        try current.withLock { current throws(FSError) in
            var (number, end): (Int64, Int64)
            if let known = current { (number, end) = known } else { (number, end) = try lastPack() }
            if end > 0 && end + Int64(bytes.count) > Self.packLimit { (number, end) = (number + 1, 0) }
            try descriptors.with(path(number), flags: openFlags | O_CREAT) { fd throws(FSError) in
                try writeAll(fd, bytes, offset: Int(end))
            }
            current = (number, end + Int64(bytes.count))
            unsynced.withLock { _ = $0.insert(number) }
            return (number, end)
        }
    }

    /// The highest-numbered pack and its length (a new store: pack 1, empty).
    private func lastPack() throws(FSError) -> (Int64, Int64) {
        try makeDirectory(root)
        let numbers = try listDirectory(root).compactMap { name -> Int64? in
            guard name.hasSuffix(".pack") else { return nil }
            return Int64(name.dropLast(5))
        }
        guard let last = numbers.max() else { return (1, 0) }
        var st = stat()
        guard stat(path(last), &st) == 0 else { throw FSError.fromErrno(errno, "stat pack \(path(last))") }
        return (last, Int64(st.st_size))
    }

    /// Makes every append so far durable (fsync of the packs appended to since the last time).
    /// Runs before each sync of the database's log (a durable commit): rows that reach the disk
    /// never name bytes that did not.
    func sync() throws(FSError) {
        let packs = unsynced.withLock { packs in
            defer { packs.removeAll() }
            return packs
        }
        for (i, pack) in packs.sorted().enumerated() {
            do {
                try descriptors.with(path(pack), flags: openFlags) { fd throws(FSError) in
                    if fsync(fd) != 0 { throw FSError.fromErrno(errno, "fsync pack \(path(pack))") }
                }
            } catch {
                // Still to do next time.
                unsynced.withLock { $0.formUnion(packs.sorted()[i...]) }
                throw error
            }
        }
    }

    /// Fills `buffer` from `offset` of `pack`; returns the count read (short past its end).
    func read(pack: Int64, offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws(FSError) -> Int {
        try descriptors.with(path(pack), flags: openFlags) { fd throws(FSError) in
            try readFully(fd, buffer, offset: Int(offset))
        }
    }

    /// The length of `pack` (nil: it does not exist).
    func length(of pack: Int64) -> Int64? {
        var st = stat()
        return stat(path(pack), &st) == 0 ? Int64(st.st_size) : nil
    }

    /// Gives the disk back the blocks of a chunk no row names any more.
    func punch(pack: Int64, offset: Int64, length: Int64) throws(FSError) {
        try descriptors.with(path(pack), flags: openFlags) { fd throws(FSError) in
            let punchHoleKeepSize: Int32 = 0x02 | 0x01  // FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
            // A filesystem without hole punching keeps the bytes: nothing reads them again.
            if systemFallocate(fd, punchHoleKeepSize, off_t(offset), off_t(length)) != 0, errno != EOPNOTSUPP {
                throw FSError.fromErrno(errno, "free a chunk in pack \(path(pack))")
            }
        }
    }
}

/// fallocate(2) is a GNU extension the Glibc module does not export.
@_silgen_name("fallocate")
private func systemFallocate(_ fd: Int32, _ mode: Int32, _ offset: off_t, _ length: off_t) -> Int32
