import Glibc
import Synchronization

/// Small chunks, appended one after another to large files. Inside the database each chunk cost
/// its pages three writes (the write-ahead log, the redo journal, the checkpoint); a file of its
/// own costs a create and a rename. Here it costs one `pwrite`, and the blobs row names the pack
/// and offset. A chunk no version needs any more is punched out of its pack (the pack keeps its
/// length, the disk gets the blocks back).
///
/// Each process that writes begins a pack of its own: after a power loss a pack may be shorter
/// than rows that reached the disk say (the kernel writes the log and the packs back in no
/// particular order), and appending at its end again would give those offsets new bytes. A
/// crash can leave bytes at the end of a pack that no row names (appended, never committed):
/// they are never read.
final class PackFiles: Sendable {
    /// A pack takes appends until it is this long; then the next one begins.
    static let packLimit: Int64 = 64 << 20

    let root: String
    private let descriptors: DescriptorCache
    /// The pack appends go to and its length; nil until the first append.
    private let current = Mutex<(number: Int64, end: Int64)?>(nil)
    /// Packs appended to since the last `sync`, and whether a pack was made since (the
    /// directory's entry for it must reach the disk too).
    private let unsynced = Mutex(Unsynced())
    private struct Unsynced {
        var packs: Set<Int64> = []
        var directory = false
    }
    /// Held through a whole `sync`: a sync that returns has every earlier append on disk, even
    /// when another sync took those packs out of `unsynced` first.
    private let syncing = Mutex(0)

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
            if let known = current { (number, end) = known } else { (number, end) = (try numbers().max() ?? 0, 0) }
            if end == 0 || end + Int64(bytes.count) > Self.packLimit {
                (number, end) = (number + 1, 0)
                unsynced.withLock { $0.directory = true }
            }
            try descriptors.with(path(number), flags: openFlags | O_CREAT) { fd throws(FSError) in
                try writeAll(fd, bytes, offset: Int(end))
            }
            current = (number, end + Int64(bytes.count))
            unsynced.withLock { _ = $0.packs.insert(number) }
            return (number, end)
        }
    }

    /// The numbers of the packs there are.
    private func numbers() throws(FSError) -> [Int64] {
        try makeDirectory(root)
        return try listDirectory(root).compactMap { name -> Int64? in
            guard name.hasSuffix(".pack") else { return nil }
            return Int64(name.dropLast(5))
        }
    }

    /// Makes every append so far durable (fsync of the packs appended to since the last time, and
    /// of the directory when a pack was made). Runs before each sync of the database's log and
    /// each checkpoint: rows that reach the disk never name bytes that did not.
    func sync() throws(FSError) {
        try syncing.withLock { _ throws(FSError) in
            let taken = unsynced.withLock { state in
                defer { state = Unsynced() }
                return state
            }
            do throws(FSError) {
                for pack in taken.packs.sorted() { try syncFile(path(pack)) }
                if taken.directory { try syncDirectory(root) }
            } catch {
                // Still to do next time.
                unsynced.withLock { state in
                    state.packs.formUnion(taken.packs)
                    state.directory = state.directory || taken.directory
                }
                throw error
            }
        }
    }

    /// When the store opens for writing: what an earlier process appended may still be only in
    /// the page cache (it was killed), while the rows its redo journal replays name it.
    func syncAll() throws(FSError) {
        let all = try numbers()
        unsynced.withLock { state in
            state.packs.formUnion(all)
            state.directory = state.directory || !all.isEmpty
        }
        try sync()
    }

    private func syncFile(_ file: String) throws(FSError) {
        try descriptors.with(file, flags: openFlags) { fd throws(FSError) in
            if fsync(fd) != 0 { throw FSError.fromErrno(errno, "fsync pack \(file)") }
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
