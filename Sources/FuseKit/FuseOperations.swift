import Glibc

/// A filesystem served through the libfuse low-level API. One method per operation, named as
/// in `fuse_lowlevel.h`; every method that is not implemented answers `ENOSYS`, which the kernel
/// remembers for most operations and stops asking.
///
/// Contract, as libfuse states it:
/// - Methods run on libfuse's worker threads, several at once: implementations are thread-safe.
///   A method that must wait for something another request does (a lock, an event) parks the
///   request and answers it later from another thread; it never blocks the worker.
/// - Every `Entry` answered (lookup, create, mknod, mkdir, symlink, link, and each readdirplus
///   entry) adds one to that node's lookup count; `forget` gives counts back. A node id must stay
///   valid while its count is above zero.
/// - `name` arguments are raw bytes: any byte but `/` and NUL.
public protocol FuseOperations: AnyObject, Sendable {
    /// Capability negotiation, before the first request.
    func initialize(_ connection: FuseConnection)
    /// The session ends (unmount). No request follows.
    func destroy()

    func lookup(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8])
    /// No answer is sent for forget.
    func forget(_ ino: InodeNumber, lookups: UInt64)
    func getattr(_ req: consuming FuseRequest, ino: InodeNumber, handle: UInt64?)
    func setattr(_ req: consuming FuseRequest, ino: InodeNumber, changes: AttributeChanges, handle: UInt64?)
    func readlink(_ req: consuming FuseRequest, ino: InodeNumber)
    func mknod(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8], mode: mode_t, rdev: UInt64)
    func mkdir(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8], mode: mode_t)
    func unlink(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8])
    func rmdir(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8])
    func symlink(_ req: consuming FuseRequest, target: [UInt8], parent: InodeNumber, name: [UInt8])
    func rename(
        _ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8], newParent: InodeNumber,
        newName: [UInt8], flags: RenameFlags)
    func link(_ req: consuming FuseRequest, ino: InodeNumber, newParent: InodeNumber, newName: [UInt8])
    func open(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo)
    func read(_ req: consuming FuseRequest, ino: InodeNumber, size: Int, offset: Int64, info: FileInfo)
    /// `data` is valid only during the call.
    func write(
        _ req: consuming FuseRequest, ino: InodeNumber, data: UnsafeRawBufferPointer, offset: Int64,
        info: FileInfo)
    /// Sent by every `close(2)` of a descriptor, synchronously: `close` returns after the answer.
    func flush(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo)
    /// The last descriptor of an open is gone. Asynchronous: `close(2)` may have returned already.
    func release(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo)
    func fsync(_ req: consuming FuseRequest, ino: InodeNumber, dataOnly: Bool, info: FileInfo)
    func opendir(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo)
    func readdir(_ req: consuming FuseRequest, ino: InodeNumber, size: Int, offset: Int64, info: FileInfo)
    func readdirplus(_ req: consuming FuseRequest, ino: InodeNumber, size: Int, offset: Int64, info: FileInfo)
    func releasedir(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo)
    func fsyncdir(_ req: consuming FuseRequest, ino: InodeNumber, dataOnly: Bool, info: FileInfo)
    func statfs(_ req: consuming FuseRequest, ino: InodeNumber)
    func setxattr(
        _ req: consuming FuseRequest, ino: InodeNumber, name: [UInt8], value: UnsafeRawBufferPointer,
        flags: Int32)
    /// `size` 0 asks for the value's size only.
    func getxattr(_ req: consuming FuseRequest, ino: InodeNumber, name: [UInt8], size: Int)
    func listxattr(_ req: consuming FuseRequest, ino: InodeNumber, size: Int)
    func removexattr(_ req: consuming FuseRequest, ino: InodeNumber, name: [UInt8])
    /// F_GETLK: the first lock that would conflict with `lock`, or `lock` with type F_UNLCK.
    func getlk(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo, lock: FileLock)
    /// F_SETLK / F_SETLKW (`sleep`) and unlocks (F_UNLCK). A waiting request is parked, never
    /// held on the worker.
    func setlk(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo, lock: FileLock, sleep: Bool)
    /// flock(2): `operation` is LOCK_SH, LOCK_EX or LOCK_UN, with LOCK_NB when it must not wait.
    func flock(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo, operation: Int32)
    func create(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8], mode: mode_t, info: FileInfo)
    func fallocate(
        _ req: consuming FuseRequest, ino: InodeNumber, mode: FallocateMode, offset: Int64, length: Int64,
        info: FileInfo)
    func lseek(_ req: consuming FuseRequest, ino: InodeNumber, offset: Int64, whence: SeekWhence, info: FileInfo)
    func copyFileRange(
        _ req: consuming FuseRequest, from source: InodeNumber, offset sourceOffset: Int64, info sourceInfo: FileInfo,
        to destination: InodeNumber, offset destinationOffset: Int64, info destinationInfo: FileInfo,
        length: Int, flags: Int32)
}

extension FuseOperations {
    public func initialize(_ connection: FuseConnection) {}
    public func destroy() {}
    public func lookup(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8]) { req.reply(error: ENOSYS) }
    public func forget(_ ino: InodeNumber, lookups: UInt64) {}
    public func getattr(_ req: consuming FuseRequest, ino: InodeNumber, handle: UInt64?) { req.reply(error: ENOSYS) }
    public func setattr(_ req: consuming FuseRequest, ino: InodeNumber, changes: AttributeChanges, handle: UInt64?) {
        req.reply(error: ENOSYS)
    }
    public func readlink(_ req: consuming FuseRequest, ino: InodeNumber) { req.reply(error: ENOSYS) }
    public func mknod(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8], mode: mode_t, rdev: UInt64) {
        req.reply(error: ENOSYS)
    }
    public func mkdir(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8], mode: mode_t) {
        req.reply(error: ENOSYS)
    }
    public func unlink(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8]) { req.reply(error: ENOSYS) }
    public func rmdir(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8]) { req.reply(error: ENOSYS) }
    public func symlink(_ req: consuming FuseRequest, target: [UInt8], parent: InodeNumber, name: [UInt8]) {
        req.reply(error: ENOSYS)
    }
    public func rename(
        _ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8], newParent: InodeNumber,
        newName: [UInt8], flags: RenameFlags
    ) { req.reply(error: ENOSYS) }
    public func link(_ req: consuming FuseRequest, ino: InodeNumber, newParent: InodeNumber, newName: [UInt8]) {
        req.reply(error: ENOSYS)
    }
    public func open(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo) { req.reply(error: ENOSYS) }
    public func read(_ req: consuming FuseRequest, ino: InodeNumber, size: Int, offset: Int64, info: FileInfo) {
        req.reply(error: ENOSYS)
    }
    public func write(
        _ req: consuming FuseRequest, ino: InodeNumber, data: UnsafeRawBufferPointer, offset: Int64, info: FileInfo
    ) { req.reply(error: ENOSYS) }
    public func flush(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo) { req.reply(error: ENOSYS) }
    public func release(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo) { req.replyOK() }
    public func fsync(_ req: consuming FuseRequest, ino: InodeNumber, dataOnly: Bool, info: FileInfo) {
        req.reply(error: ENOSYS)
    }
    public func opendir(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo) { req.reply(error: ENOSYS) }
    public func readdir(_ req: consuming FuseRequest, ino: InodeNumber, size: Int, offset: Int64, info: FileInfo) {
        req.reply(error: ENOSYS)
    }
    public func readdirplus(_ req: consuming FuseRequest, ino: InodeNumber, size: Int, offset: Int64, info: FileInfo) {
        req.reply(error: ENOSYS)
    }
    public func releasedir(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo) { req.replyOK() }
    public func fsyncdir(_ req: consuming FuseRequest, ino: InodeNumber, dataOnly: Bool, info: FileInfo) {
        req.reply(error: ENOSYS)
    }
    public func statfs(_ req: consuming FuseRequest, ino: InodeNumber) { req.reply(error: ENOSYS) }
    public func setxattr(
        _ req: consuming FuseRequest, ino: InodeNumber, name: [UInt8], value: UnsafeRawBufferPointer, flags: Int32
    ) { req.reply(error: ENOSYS) }
    public func getxattr(_ req: consuming FuseRequest, ino: InodeNumber, name: [UInt8], size: Int) {
        req.reply(error: ENOSYS)
    }
    public func listxattr(_ req: consuming FuseRequest, ino: InodeNumber, size: Int) { req.reply(error: ENOSYS) }
    public func removexattr(_ req: consuming FuseRequest, ino: InodeNumber, name: [UInt8]) { req.reply(error: ENOSYS) }
    public func create(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8], mode: mode_t, info: FileInfo) {
        req.reply(error: ENOSYS)
    }
    public func getlk(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo, lock: FileLock) {
        req.reply(error: ENOSYS)
    }
    public func setlk(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo, lock: FileLock, sleep: Bool) {
        req.reply(error: ENOSYS)
    }
    public func flock(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo, operation: Int32) {
        req.reply(error: ENOSYS)
    }
    public func fallocate(
        _ req: consuming FuseRequest, ino: InodeNumber, mode: FallocateMode, offset: Int64, length: Int64,
        info: FileInfo
    ) { req.reply(error: ENOSYS) }
    public func lseek(_ req: consuming FuseRequest, ino: InodeNumber, offset: Int64, whence: SeekWhence, info: FileInfo)
    {
        req.reply(error: ENOSYS)
    }
    public func copyFileRange(
        _ req: consuming FuseRequest, from source: InodeNumber, offset sourceOffset: Int64, info sourceInfo: FileInfo,
        to destination: InodeNumber, offset destinationOffset: Int64, info destinationInfo: FileInfo,
        length: Int, flags: Int32
    ) { req.reply(error: ENOSYS) }
}
