import CFuse3

/// The connection parameters offered by the kernel during `initialize`. Valid only inside that call.
public struct FuseConnection {
    // SAFETY: points into libfuse's session; only used during the init callback.
    let raw: UnsafeMutablePointer<fuse_conn_info>

    public struct Capability: Sendable {
        public let rawValue: UInt32
        init(_ value: Int32) { rawValue = UInt32(bitPattern: value) }
        public static let asyncRead = Capability(FUSE_CAP_ASYNC_READ)
        public static let posixLocks = Capability(FUSE_CAP_POSIX_LOCKS)
        public static let flockLocks = Capability(FUSE_CAP_FLOCK_LOCKS)
        public static let atomicOpenTrunc = Capability(FUSE_CAP_ATOMIC_O_TRUNC)
        public static let exportSupport = Capability(FUSE_CAP_EXPORT_SUPPORT)
        public static let dontMask = Capability(FUSE_CAP_DONT_MASK)
        public static let spliceWrite = Capability(FUSE_CAP_SPLICE_WRITE)
        public static let spliceRead = Capability(FUSE_CAP_SPLICE_READ)
        public static let readdirplus = Capability(FUSE_CAP_READDIRPLUS)
        public static let readdirplusAuto = Capability(FUSE_CAP_READDIRPLUS_AUTO)
        public static let asyncDIO = Capability(FUSE_CAP_ASYNC_DIO)
        public static let writebackCache = Capability(FUSE_CAP_WRITEBACK_CACHE)
        public static let parallelDirops = Capability(FUSE_CAP_PARALLEL_DIROPS)
        public static let handleKillpriv = Capability(FUSE_CAP_HANDLE_KILLPRIV)
        public static let autoInvalData = Capability(FUSE_CAP_AUTO_INVAL_DATA)
        public static let cacheSymlinks = Capability(FUSE_CAP_CACHE_SYMLINKS)
        public static let explicitInvalData = Capability(FUSE_CAP_EXPLICIT_INVAL_DATA)
    }

    public func isCapable(_ cap: Capability) -> Bool { raw.pointee.capable & cap.rawValue != 0 }

    /// Asks for a capability if the kernel offers it; returns whether it is on.
    @discardableResult
    public func enable(_ cap: Capability) -> Bool {
        guard isCapable(cap) else { return false }
        raw.pointee.want |= cap.rawValue
        return true
    }

    public func disable(_ cap: Capability) { raw.pointee.want &= ~cap.rawValue }

    public var maxWrite: UInt32 {
        get { raw.pointee.max_write }
        nonmutating set { raw.pointee.max_write = newValue }
    }

    public var maxReadahead: UInt32 {
        get { raw.pointee.max_readahead }
        nonmutating set { raw.pointee.max_readahead = newValue }
    }

    /// Timestamp granularity in nanoseconds (1 = full nanosecond precision).
    public var timeGranularity: UInt32 {
        get { raw.pointee.time_gran }
        nonmutating set { raw.pointee.time_gran = newValue }
    }

    public var maxBackground: UInt32 {
        get { raw.pointee.max_background }
        nonmutating set { raw.pointee.max_background = newValue }
    }
}
