import CFuse3
import Glibc
import Synchronization

/// libfuse 3.14 lets a filesystem ask for `FUSE_CAP_HANDLE_KILLPRIV` (the connection reports it
/// offered and wanted) but leaves `FUSE_HANDLE_KILLPRIV` out of its answer to the kernel's INIT,
/// so the kernel keeps fetching a file's attributes before every chown to drop set-ID bits
/// itself. The session's device I/O (`DeviceIO`) shows every request read and every answer
/// written to these functions, which note the INIT request and add the flag to its answer when
/// the filesystem enabled the capability in `initialize` (libfuse's own default for it is turned
/// off first: see the init callback). Every other message passes through unchanged.
enum InitReplyFlags {
    /// What the session's I/O remembers: kept in the session's `OperationsBox`.
    final class State: Sendable {
        /// The INIT request's unique id while its answer is pending (0: none).
        let initRequest = Atomic<UInt64>(0)
        /// Whether the filesystem asked for `FUSE_CAP_HANDLE_KILLPRIV` during `initialize`.
        let handleKillPrivilege = Atomic<Bool>(false)
    }

    // From the kernel's protocol (include/uapi/linux/fuse.h).
    private static let initOpcode: UInt32 = 26
    private static let handleKillPrivilegeFlag: UInt32 = 1 << 19
    private static let headerLength = 16  // fuse_out_header; fuse_in_header begins the same way
    private static let flagsOffset = 12  // fuse_init_out.flags

    /// Notes the INIT request among the `count` bytes read into `buffer`.
    static func noteRead(_ buffer: UnsafeMutableRawPointer, count: Int, _ state: State) {
        guard count >= headerLength, buffer.loadUnaligned(fromByteOffset: 4, as: UInt32.self) == initOpcode else {
            return
        }
        state.initRequest.store(buffer.loadUnaligned(fromByteOffset: 8, as: UInt64.self), ordering: .relaxed)
    }

    /// Adds the flag to a successful answer to the INIT request, if the filesystem wants it.
    static func patch(_ vectors: UnsafeMutablePointer<iovec>, _ state: State) {
        let pending = state.initRequest.load(ordering: .relaxed)
        guard pending != 0, vectors[0].iov_len >= headerLength, let header = vectors[0].iov_base,
            header.loadUnaligned(fromByteOffset: 8, as: UInt64.self) == pending
        else { return }
        state.initRequest.store(0, ordering: .relaxed)
        guard header.loadUnaligned(fromByteOffset: 4, as: Int32.self) == 0,
            state.handleKillPrivilege.load(ordering: .relaxed),
            vectors[1].iov_len >= flagsOffset + 4, let body = vectors[1].iov_base
        else { return }
        let flags = body.loadUnaligned(fromByteOffset: flagsOffset, as: UInt32.self)
        body.storeBytes(of: flags | handleKillPrivilegeFlag, toByteOffset: flagsOffset, as: UInt32.self)
    }
}
