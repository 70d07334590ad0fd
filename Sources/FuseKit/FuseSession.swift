import CFuse3
import Glibc
import Synchronization

/// Errors of setting up a session.
public struct FuseSessionError: Error, CustomStringConvertible {
    public let description: String
}

/// One FUSE session: a connection to the kernel for one mountpoint, served by a multi-threaded
/// loop. Several sessions may share one `FuseOperations` object.
///
/// Lifecycle: `init` (options are validated by libfuse: an unknown `-o` option fails here),
/// `mount(at:)`, `run(maxThreads:)` (blocks until unmount or `stop()`), then the object may go.
public final class FuseSession: @unchecked Sendable {
    public let operations: any FuseOperations
    // SAFETY: `raw` is created in init and destroyed in deinit; libfuse's session functions used
    // from other threads (exit, unmount, notify) are documented as thread-safe.
    private let raw: OpaquePointer
    private let state = Mutex(State())

    private struct State {
        var mountpoint: String?
        var stopped = false
    }

    /// `pollMicroseconds`: how long a worker polls the device for the next request before it
    /// sleeps (see `DeviceReader`; 0: never).
    public init(operations: any FuseOperations, options: [String], pollMicroseconds: Int = 0) throws {
        self.operations = operations
        var args = fuse_args()
        _ = fuse_opt_add_arg(&args, "cairn")
        for option in options {
            _ = fuse_opt_add_arg(&args, "-o")
            _ = fuse_opt_add_arg(&args, option)
        }
        defer { fuse_opt_free_args(&args) }
        var ops = FuseTrampolines.table()
        // The userdata is a retained box of the operations, released after fuse_session_destroy,
        // so no callback can see a dangling reference.
        let box = Unmanaged.passRetained(
            OperationsBox(operations, reader: DeviceReader(window: Int64(pollMicroseconds) * 1000))
        ).toOpaque()
        guard let se = fuse_session_new(&args, &ops, MemoryLayout<fuse_lowlevel_ops>.size, box) else {
            Unmanaged<OperationsBox>.fromOpaque(box).release()
            throw FuseSessionError(description: "libfuse refused the mount options \(options)")
        }
        raw = se
        self.box = box
    }

    private let box: UnsafeMutableRawPointer

    deinit {
        unmount()
        fuse_session_destroy(raw)
        Unmanaged<OperationsBox>.fromOpaque(box).release()
    }

    /// Mounts the session; afterwards the kernel sends requests, served once `run` is called.
    public func mount(at mountpoint: String) throws {
        guard fuse_session_mount(raw, mountpoint) == 0 else {
            throw FuseSessionError(description: "could not mount on \(mountpoint)")
        }
        state.withLock { $0.mountpoint = mountpoint }
        var io = DeviceIO.io()
        guard fuse_session_custom_io(raw, &io, fuse_session_fd(raw)) == 0 else {
            throw FuseSessionError(description: "could not set up the session's device I/O")
        }
    }

    /// Serves requests on up to `maxThreads` worker threads until the filesystem is unmounted
    /// (by `stop()` or from outside) and its last user is gone. Returns libfuse's status.
    public func run(maxThreads: Int) -> Int32 {
        guard let config = fuse_loop_cfg_create() else { return -ENOMEM }
        defer { fuse_loop_cfg_destroy(config) }
        fuse_loop_cfg_set_max_threads(config, UInt32(maxThreads))
        fuse_loop_cfg_set_idle_threads(config, UInt32(max(1, maxThreads / 2)))
        fuse_loop_cfg_set_clone_fd(config, 0)
        let status = fuse_session_loop_mt(raw, config)
        Unmanaged<OperationsBox>.fromOpaque(box).takeUnretainedValue().reader.close()
        // The loop is over: now the device descriptor may be closed.
        unmount()
        return status
    }

    /// Detaches the mount from the namespace (lazily: programs still inside keep working); the
    /// loop ends when the kernel ends the connection, once the last user is gone. Safe from any
    /// thread and more than once. It does not touch the device descriptor, which workers and
    /// notifications may still be using (fuse_session_unmount would close it under them).
    public func stop() {
        guard let mountpoint = state.withLock({ $0.mountpoint }) else { return }
        if geteuid() == 0 {
            _ = umount2(mountpoint, Self.detachFlag)
        } else {
            var pid: pid_t = 0
            let args = ["fusermount3", "-u", "-z", "--", mountpoint]
            var cArgs = args.map { strdup($0) } + [nil]
            defer { for p in cArgs { free(p) } }
            if posix_spawnp(&pid, "fusermount3", nil, nil, &cArgs, environ) == 0 {
                var status: Int32 = 0
                waitpid(pid, &status, 0)
            }
        }
    }

    /// MNT_DETACH of umount2(2).
    private static let detachFlag: Int32 = 2

    private func unmount() {
        let mounted = state.withLock { s -> Bool in
            defer { s.mountpoint = nil }
            return s.mountpoint != nil
        }
        if mounted { fuse_session_unmount(raw) }
    }

    public var isMounted: Bool { state.withLock { $0.mountpoint != nil } }

    // MARK: kernel cache notifications (call from a thread that is not answering a request for
    // the same node, or the kernel may deadlock waiting for that answer).

    /// Drops the kernel's cached attributes and, for `length` != 0, the page-cache range.
    @discardableResult
    public func invalidateInode(_ ino: InodeNumber, offset: Int64 = 0, length: Int64 = 0) -> Int32 {
        fuse_lowlevel_notify_inval_inode(raw, ino, off_t(offset), off_t(length))
    }

    /// Drops the kernel's cached name `name` under `parent`.
    @discardableResult
    public func invalidateEntry(parent: InodeNumber, name: [UInt8]) -> Int32 {
        name.withUnsafeBufferPointer { buf in
            buf.withMemoryRebound(to: CChar.self) {
                fuse_lowlevel_notify_inval_entry(raw, parent, $0.baseAddress, $0.count)
            }
        }
    }

    /// As `invalidateEntry`, and raises IN_DELETE for inotify watchers of that directory.
    @discardableResult
    public func notifyDelete(parent: InodeNumber, child: InodeNumber, name: [UInt8]) -> Int32 {
        name.withUnsafeBufferPointer { buf in
            buf.withMemoryRebound(to: CChar.self) {
                fuse_lowlevel_notify_delete(raw, parent, child, $0.baseAddress, $0.count)
            }
        }
    }
}

/// Holds the operations for the C callbacks, which reach it through the session's userdata.
final class OperationsBox {
    let operations: any FuseOperations
    let initReplyFlags = InitReplyFlags.State()
    let reader: DeviceReader
    init(_ operations: any FuseOperations, reader: DeviceReader) {
        self.operations = operations
        self.reader = reader
    }
}
