import Glibc

/// A file of reserved space in the store. When the disk fills, operations that must still work
/// (unlink, rmdir, rename: the way out of a full disk) give the reserve back and retry, so the
/// database has room for their transaction. It is recreated once space is free again.
extension Store {
    static let reserveBytes = 16 << 20
    var reservePath: String { path + "/reserve" }

    /// Makes sure the reserve exists (best effort: on a full disk it stays absent).
    func ensureReserve() {
        if access(reservePath, F_OK) == 0 { return }
        let fd = Glibc.open(reservePath + ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let ok = posix_fallocate(fd, 0, off_t(Self.reserveBytes)) == 0
        Glibc.close(fd)
        if ok { rename(reservePath + ".tmp", reservePath) } else { unlink(reservePath + ".tmp") }
    }

    /// Runs `body`; if it fails for lack of space, frees the reserve and runs it once more.
    func usingReserve<T>(_ body: () throws(FSError) -> T) throws(FSError) -> T {
        do {
            return try body()
        } catch .noSpace {
            guard unlink(reservePath) == 0 else { throw FSError.noSpace }
            return try body()
        }
    }
}
