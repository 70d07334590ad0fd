import Glibc

/// An inode id. Never reused within a store (Schema, rule 5).
public typealias InodeID = Int64

/// A point in time in nanoseconds since the Unix epoch.
public struct Timestamp: Sendable, Equatable, Comparable, Hashable, Codable {
    public var nanoseconds: Int64
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    /// Times are kept in 64-bit nanoseconds (years 1677 to 2262); a time set outside that range
    /// (utimensat takes any 64-bit seconds) is clamped to it, as ext4 clamps to its own range.
    public init(seconds: Int, nanoseconds: Int) {
        let (whole, overflow) = Int64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let (sum, overflow2) = whole.addingReportingOverflow(Int64(nanoseconds))
        if overflow || overflow2 {
            self.nanoseconds = seconds < 0 ? Int64.min : Int64.max
        } else {
            self.nanoseconds = sum
        }
    }

    /// Nanoseconds of a clock that never steps (for timers, not for timestamps).
    public static func monotonicNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    public static func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(seconds: ts.tv_sec, nanoseconds: ts.tv_nsec)
    }

    /// Whole seconds, rounded down (so subsecondNanoseconds is never negative, as in timespec).
    public var seconds: Int { Int(nanoseconds.floorDiv(1_000_000_000)) }
    public var subsecondNanoseconds: Int {
        let r = nanoseconds % 1_000_000_000
        return Int(r < 0 ? r + 1_000_000_000 : r)
    }
    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.nanoseconds < b.nanoseconds }
}

extension Int64 {
    func floorDiv(_ d: Int64) -> Int64 {
        let q = self / d
        return (self % d != 0 && (self < 0) != (d < 0)) ? q - 1 : q
    }
}

/// A time to set: the caller's clock or a given value.
public enum TimeChange: Sendable, Equatable {
    case now
    case value(Timestamp)
}

/// The attributes to change in setattr; `nil` leaves a field as it is.
public struct AttributeChanges: Sendable {
    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    public var size: Int64?
    public var atime: TimeChange?
    public var mtime: TimeChange?
    /// Drop the set-user-ID bit, and the set-group-ID bit where Linux does (see
    /// `FileSystem.modeDroppingSetID`), from a file that is not a directory: a chown, or a
    /// truncate or write by a user without CAP_FSETID, as the kernel asks.
    public var dropsSetID: Bool

    public init(
        mode: UInt32? = nil, uid: UInt32? = nil, gid: UInt32? = nil, size: Int64? = nil, atime: TimeChange? = nil,
        mtime: TimeChange? = nil, dropsSetID: Bool = false
    ) {
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.atime = atime
        self.mtime = mtime
        self.dropsSetID = dropsSetID
    }
}

/// The attributes of one inode as `stat(2)` shows them.
public struct InodeAttributes: Sendable, Equatable {
    public var id: InodeID
    /// Type and permission bits, as `st_mode`.
    public var mode: UInt32
    public var nlink: UInt64
    public var uid: UInt32
    public var gid: UInt32
    public var rdev: UInt64
    public var size: Int64
    public var atime: Timestamp
    public var mtime: Timestamp
    public var ctime: Timestamp
    public var generation: UInt64
    /// 512-byte blocks of distinct data (holes and zero chunks cost none).
    public var blocks: Int64

    public var isDirectory: Bool { mode & S_IFMT == S_IFDIR }
    public var isRegular: Bool { mode & S_IFMT == S_IFREG }
    public var isSymlink: Bool { mode & S_IFMT == S_IFLNK }
}

/// Who performs an operation: the kernel-vouched ids and the actor label of the calling process.
public struct Caller: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32
    public var groups: [UInt32]
    public var actor: String
    /// The calling program's name (/proc/PID/comm), for the audit log.
    public var process: String

    public init(uid: UInt32, gid: UInt32, pid: Int32, groups: [UInt32] = [], actor: String, process: String = "") {
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.groups = groups
        self.actor = actor
        self.process = process
    }

    public func isMember(of group: UInt32) -> Bool { gid == group || groups.contains(group) }

    /// Whether the mode bits let this caller write a file with `attrs` (root aside: the
    /// kernel checks those; this is for what it leaves to the daemon unchecked).
    func mayWrite(_ attrs: InodeAttributes) -> Bool {
        let bit = uid == attrs.uid ? S_IWUSR : isMember(of: attrs.gid) ? S_IWGRP : S_IWOTH
        return attrs.mode & bit != 0
    }

    /// The store itself (maintenance, the CLI as root).
    public static let system = Caller(uid: 0, gid: 0, pid: 0, actor: "system")
}

/// One live entry of a directory listing. `cookie` is stable under concurrent change.
public struct DirectoryEntry: Sendable {
    public var cookie: Int64
    public var name: [UInt8]
    public var attributes: InodeAttributes

    public init(cookie: Int64, name: [UInt8], attributes: InodeAttributes) {
        self.cookie = cookie
        self.name = name
        self.attributes = attributes
    }
}

/// What statfs reports.
public struct FilesystemStats: Sendable {
    public var blockSize: UInt64
    public var totalBlocks: UInt64
    public var freeBlocks: UInt64
    public var availableBlocks: UInt64
    public var totalInodes: UInt64
    public var freeInodes: UInt64
    public var maxNameLength: UInt64
}
