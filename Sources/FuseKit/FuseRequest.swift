import CFuse3
import Glibc

/// One request from the kernel. It must be answered exactly once: every `reply` is `consuming`,
/// so the compiler rejects a second answer, and a request dropped without an answer replies `EIO`
/// from `deinit` (and says so on stderr) instead of leaving the calling process hung forever.
///
/// A request may be answered on any thread (libfuse allows it), so one that must wait can be
/// parked and answered later without holding a libfuse worker thread.
public struct FuseRequest: ~Copyable, @unchecked Sendable {
    // SAFETY: a fuse_req_t stays valid until it is replied to; libfuse allows replies from any
    // thread, so handing the pointer to another thread is sound as long as it is answered once.
    let raw: fuse_req_t

    init(_ raw: fuse_req_t) { self.raw = raw }

    deinit {
        FuseLog.write("request dropped without an answer; replying EIO")
        fuse_reply_err(raw, EIO)
    }

    /// Who sent the request, as the kernel vouches for it.
    public var context: RequestContext {
        let ctx = fuse_req_ctx(raw)!.pointee
        return RequestContext(uid: ctx.uid, gid: ctx.gid, pid: ctx.pid, umask: ctx.umask)
    }

    /// The caller's supplementary groups (read from /proc by libfuse); empty if unknown.
    public var supplementaryGroups: [gid_t] {
        var groups = [gid_t](repeating: 0, count: 64)
        let n = groups.withUnsafeMutableBufferPointer { fuse_req_getgroups(raw, 64, $0.baseAddress) }
        guard n > 0 else { return [] }
        return Array(groups.prefix(Int(min(n, 64))))
    }

    public consuming func reply(error: Int32) {
        fuse_reply_err(raw, error)
        discard self
    }

    /// Success with no payload (unlink, rmdir, rename, flush, release, fsync, setxattr, ...).
    public consuming func replyOK() {
        fuse_reply_err(raw, 0)
        discard self
    }

    public consuming func reply(entry: Entry) {
        var e = entry.cValue
        fuse_reply_entry(raw, &e)
        discard self
    }

    public consuming func reply(attributes: FileAttributes, timeout: Double) {
        var st = attributes.statValue
        fuse_reply_attr(raw, &st, timeout)
        discard self
    }

    public consuming func reply(readlink target: [UInt8]) {
        var bytes = target
        bytes.append(0)
        bytes.withUnsafeBufferPointer { buf in
            buf.withMemoryRebound(to: CChar.self) { _ = fuse_reply_readlink(raw, $0.baseAddress) }
        }
        discard self
    }

    /// Returns false when the kernel refused the answer (the caller was interrupted and is
    /// gone): no RELEASE will follow, so the filesystem must close the handle itself.
    @discardableResult
    public consuming func reply(open: OpenReply) -> Bool {
        var fi = open.fileInfo
        let status = fuse_reply_open(raw, &fi)
        discard self
        return status == 0
    }

    /// As `reply(open:)`: false means the handle will never be released by the kernel.
    @discardableResult
    public consuming func reply(create entry: Entry, open: OpenReply) -> Bool {
        var e = entry.cValue
        var fi = open.fileInfo
        let status = fuse_reply_create(raw, &e, &fi)
        discard self
        return status == 0
    }

    public consuming func reply(written count: Int) {
        fuse_reply_write(raw, count)
        discard self
    }

    public consuming func reply(data: UnsafeRawBufferPointer) {
        fuse_reply_buf(raw, data.baseAddress?.assumingMemoryBound(to: CChar.self), data.count)
        discard self
    }

    public consuming func reply(bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buf in
            _ = fuse_reply_buf(raw, UnsafeRawPointer(buf.baseAddress)?.assumingMemoryBound(to: CChar.self), buf.count)
        }
        discard self
    }

    public consuming func reply(statfs: statvfs) {
        var s = statfs
        fuse_reply_statfs(raw, &s)
        discard self
    }

    /// The answer to a getxattr/listxattr probe with size 0: how large the value or list is.
    public consuming func reply(xattrSize: Int) {
        fuse_reply_xattr(raw, xattrSize)
        discard self
    }

    public consuming func reply(offset: Int64) {
        fuse_reply_lseek(raw, off_t(offset))
        discard self
    }

    public consuming func reply(directory: consuming DirectoryBuffer) {
        fuse_reply_buf(raw, directory.base.assumingMemoryBound(to: CChar.self), directory.used)
        discard self
    }

    public consuming func reply(lock: FileLock) {
        var l = lock.cValue
        fuse_reply_lock(raw, &l)
        discard self
    }

    /// A buffer for readdir/readdirplus answers of at most `capacity` bytes.
    public func makeDirectoryBuffer(capacity: Int) -> DirectoryBuffer {
        DirectoryBuffer(request: raw, capacity: capacity)
    }
}

/// The identity the kernel attached to a request.
public struct RequestContext: Sendable, Equatable {
    public var uid: uid_t
    public var gid: gid_t
    public var pid: pid_t
    public var umask: mode_t
    public init(uid: uid_t, gid: gid_t, pid: pid_t, umask: mode_t) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.umask = umask
    }
}
