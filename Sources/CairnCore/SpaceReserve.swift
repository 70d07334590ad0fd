import Glibc

/// Room kept for the database on a filling disk. New file data is refused (ENOSPC) once less
/// than `reserveBytes` is free, so metadata commits (which also carry the creates and renames
/// already answered) still fit; and a reserve file of the same size is given back when even
/// they fail, so unlink, rmdir and rename (the way out of a full disk) keep working.
extension Store {
    static let reserveBytes = 16 << 20
    static let spaceCheckInterval: Int64 = 50_000_000  // ns

    /// Whether new file data may be written: at least `reserveBytes` free on the store's disk.
    /// The answer is cached for `spaceCheckInterval` (a statvfs per write would cost too much).
    func hasRoomForData() -> Bool {
        let now = Timestamp.now().nanoseconds
        if let cached = spaceCheck.withLock({ c in now - c.at < Self.spaceCheckInterval ? c.room : nil }) {
            return cached
        }
        var vfs = statvfs()
        let room = statvfs(path, &vfs) != 0 || UInt64(vfs.f_bavail) * UInt64(vfs.f_frsize) >= UInt64(Self.reserveBytes)
        spaceCheck.withLock { $0 = (now, room) }
        return room
    }

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

    /// Gives the reserve back when less than `reserveBytes` is free, so a commit about to run
    /// cannot fail for lack of space (that would undo operations already answered).
    static func releaseReserveIfFull(storePath: String, reservePath: String) {
        var vfs = statvfs()
        guard statvfs(storePath, &vfs) == 0,
            UInt64(vfs.f_bavail) * UInt64(vfs.f_frsize) < UInt64(reserveBytes)
        else { return }
        unlink(reservePath)
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
