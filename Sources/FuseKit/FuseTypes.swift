import CFuse3
import Glibc

/// A FUSE node id. `root` is FUSE_ROOT_ID; the filesystem chooses every other value.
public typealias InodeNumber = UInt64

public extension InodeNumber {
    static let fuseRoot: InodeNumber = 1
}

/// The attributes of one node, as `stat(2)` reports them.
public struct FileAttributes: Sendable, Equatable {
    public var ino: UInt64
    public var mode: mode_t
    public var nlink: UInt64
    public var uid: uid_t
    public var gid: gid_t
    public var rdev: UInt64
    public var size: Int64
    public var blocks: Int64
    public var blockSize: Int64
    public var atime: timespec
    public var mtime: timespec
    public var ctime: timespec

    public init(
        ino: UInt64, mode: mode_t, nlink: UInt64, uid: uid_t, gid: gid_t, rdev: UInt64, size: Int64,
        blocks: Int64, blockSize: Int64 = 4096, atime: timespec, mtime: timespec, ctime: timespec
    ) {
        self.ino = ino
        self.mode = mode
        self.nlink = nlink
        self.uid = uid
        self.gid = gid
        self.rdev = rdev
        self.size = size
        self.blocks = blocks
        self.blockSize = blockSize
        self.atime = atime
        self.mtime = mtime
        self.ctime = ctime
    }

    var statValue: stat {
        var st = stat()
        st.st_ino = UInt(ino)
        st.st_mode = mode
        st.st_nlink = numericCast(nlink)
        st.st_uid = uid
        st.st_gid = gid
        st.st_rdev = numericCast(rdev)
        st.st_size = off_t(size)
        st.st_blocks = blkcnt_t(blocks)
        st.st_blksize = blksize_t(blockSize)
        st.st_atim = atime
        st.st_mtim = mtime
        st.st_ctim = ctime
        return st
    }
}

extension timespec: @retroactive Equatable {
    public static func == (a: timespec, b: timespec) -> Bool {
        a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec
    }
}

/// The answer to lookup, mknod, mkdir, symlink, link and create: a node and how long the kernel
/// may cache its name (`entryTimeout`) and its attributes (`attrTimeout`). Each entry returned
/// adds one to the node's lookup count, which the kernel later gives back through `forget`.
public struct Entry: Sendable {
    public var ino: InodeNumber
    public var generation: UInt64
    public var attributes: FileAttributes
    public var attrTimeout: Double
    public var entryTimeout: Double

    public init(
        ino: InodeNumber, generation: UInt64, attributes: FileAttributes, attrTimeout: Double,
        entryTimeout: Double
    ) {
        self.ino = ino
        self.generation = generation
        self.attributes = attributes
        self.attrTimeout = attrTimeout
        self.entryTimeout = entryTimeout
    }

    /// A negative entry: the name does not exist, and the kernel may remember that for `timeout`.
    public static func negative(timeout: Double) -> Entry {
        Entry(
            ino: 0, generation: 0,
            attributes: FileAttributes(
                ino: 0, mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, size: 0, blocks: 0,
                atime: timespec(), mtime: timespec(), ctime: timespec()),
            attrTimeout: 0, entryTimeout: timeout)
    }

    var cValue: fuse_entry_param {
        var e = fuse_entry_param()
        e.ino = ino
        e.generation = generation
        e.attr = attributes.statValue
        e.attr_timeout = attrTimeout
        e.entry_timeout = entryTimeout
        return e
    }
}

/// What the filesystem answers to open, opendir and create.
public struct OpenReply: Sendable {
    public var handle: UInt64
    /// Keep the kernel's page cache of the file from an earlier open.
    public var keepCache: Bool
    /// Bypass the page cache (for regular files only where nothing maps them: shared mmap needs
    /// the cache).
    public var directIO: Bool
    public var nonSeekable: Bool

    public init(handle: UInt64, keepCache: Bool = false, directIO: Bool = false, nonSeekable: Bool = false) {
        self.handle = handle
        self.keepCache = keepCache
        self.directIO = directIO
        self.nonSeekable = nonSeekable
    }

    var fileInfo: fuse_file_info {
        var fi = fuse_file_info()
        fi.fh = handle
        fi.keep_cache = keepCache ? 1 : 0
        fi.direct_io = directIO ? 1 : 0
        fi.nonseekable = nonSeekable ? 1 : 0
        return fi
    }
}

/// A time to set: the caller's clock (`UTIME_NOW`) or a given value.
public enum TimeChange: Sendable, Equatable {
    case now
    case value(timespec)
}

/// The fields of a setattr request that are to change; `nil` means leave as is (`UTIME_OMIT`).
public struct AttributeChanges: Sendable {
    public var mode: mode_t?
    public var uid: uid_t?
    public var gid: gid_t?
    public var size: Int64?
    public var atime: TimeChange?
    public var mtime: TimeChange?
    public var ctime: timespec?

    public init(
        mode: mode_t? = nil, uid: uid_t? = nil, gid: gid_t? = nil, size: Int64? = nil,
        atime: TimeChange? = nil, mtime: TimeChange? = nil, ctime: timespec? = nil
    ) {
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.atime = atime
        self.mtime = mtime
        self.ctime = ctime
    }

    init(stat st: stat, toSet: Int32) {
        func has(_ flag: Int32) -> Bool { toSet & flag != 0 }
        mode = has(FUSE_SET_ATTR_MODE) ? st.st_mode : nil
        uid = has(FUSE_SET_ATTR_UID) ? st.st_uid : nil
        gid = has(FUSE_SET_ATTR_GID) ? st.st_gid : nil
        size = has(FUSE_SET_ATTR_SIZE) ? Int64(st.st_size) : nil
        atime = has(FUSE_SET_ATTR_ATIME_NOW) ? .now : has(FUSE_SET_ATTR_ATIME) ? .value(st.st_atim) : nil
        mtime = has(FUSE_SET_ATTR_MTIME_NOW) ? .now : has(FUSE_SET_ATTR_MTIME) ? .value(st.st_mtim) : nil
        ctime = has(FUSE_SET_ATTR_CTIME) ? st.st_ctim : nil
    }
}

/// The parts of `struct fuse_file_info` a filesystem reads on a request.
public struct FileInfo: Sendable {
    public var handle: UInt64
    public var flags: Int32
    public var lockOwner: UInt64
    /// Set on release when the kernel wants the owner's flock locks dropped.
    public var flockRelease: Bool
    public var writePage: Bool

    init(_ fi: UnsafeMutablePointer<fuse_file_info>?) {
        guard let fi else {
            handle = 0
            flags = 0
            lockOwner = 0
            flockRelease = false
            writePage = false
            return
        }
        handle = fi.pointee.fh
        flags = fi.pointee.flags
        lockOwner = fi.pointee.lock_owner
        flockRelease = fi.pointee.flock_release != 0
        writePage = fi.pointee.writepage != 0
    }
}

/// Flags of rename (renameat2).
public struct RenameFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let noReplace = RenameFlags(rawValue: CFUSE3_RENAME_NOREPLACE)
    public static let exchange = RenameFlags(rawValue: CFUSE3_RENAME_EXCHANGE)
}

/// Modes of fallocate(2).
public struct FallocateMode: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let keepSize = FallocateMode(rawValue: CFUSE3_FALLOC_FL_KEEP_SIZE)
    public static let punchHole = FallocateMode(rawValue: CFUSE3_FALLOC_FL_PUNCH_HOLE)
    public static let zeroRange = FallocateMode(rawValue: CFUSE3_FALLOC_FL_ZERO_RANGE)
}

/// `whence` of lseek for the two values the kernel forwards to the filesystem.
public enum SeekWhence: Sendable {
    case data
    case hole

    init?(_ raw: Int32) {
        switch raw {
        case CFUSE3_SEEK_DATA: self = .data
        case CFUSE3_SEEK_HOLE: self = .hole
        default: return nil
        }
    }
}

/// A POSIX record lock as fcntl(2) describes it: F_RDLCK, F_WRLCK or F_UNLCK over `length` bytes
/// from `start` (length 0: to the end of the file, however it grows), held by `pid`.
public struct FileLock: Sendable, Equatable {
    public var type: Int32
    public var start: Int64
    public var length: Int64
    public var pid: Int32

    public init(type: Int32, start: Int64, length: Int64, pid: Int32) {
        self.type = type
        self.start = start
        self.length = length
        self.pid = pid
    }

    init(_ lock: flock) {
        self.init(type: Int32(lock.l_type), start: Int64(lock.l_start), length: Int64(lock.l_len), pid: lock.l_pid)
    }

    var cValue: flock {
        var lock = flock()
        lock.l_type = Int16(type)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = off_t(start)
        lock.l_len = off_t(length)
        lock.l_pid = pid
        return lock
    }
}
