import Foundation
internal import GRDB
import Glibc
import Synchronization

/// The one writer of the store, with group commit by write-behind: every operation runs at once
/// in the writer's open transaction (so each sees all earlier ones, exactly and in order), and
/// the transaction commits when an operation needs it to (close, fsync, rename, unlink: anything
/// whose effect must survive a crash of the daemon once the caller returns), or at the latest
/// `commitDelay` after it began. Operations that do not ask for a commit (create, mkdir,
/// setattr, xattrs) return without one; a crash may lose them, as a kernel crash loses metadata
/// nobody synced, but never out of order: a commit makes everything before it durable too.
///
/// Commits are `synchronous=NORMAL` (WAL): they survive a crash of the process. A durable commit
/// (fsync) also fsyncs the WAL, so it survives a crash of the machine. Checkpoints run on their own
/// connection in the background, never on the commit path.
final class MetadataWriter: Sendable {
    enum Commit {
        /// Stay in the open transaction (committed within `commitDelay`).
        case deferred
        /// Committed before returning: survives a crash of the daemon.
        case now
        /// Committed and the WAL fsynced before returning: survives power loss.
        case durable
    }

    static let commitDelay: Double = 0.005
    /// Checkpoint once the WAL holds this many pages.
    static let checkpointPages = 4000

    private let pool: DatabasePool
    private let walPath: String
    private let checkpointer: DatabaseQueue
    private let openedAt = Atomic<Int64>(0)  // 0: no transaction open
    private let framesSinceCheckpoint = Atomic<Int>(0)
    private let timerWake = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    private let timerDone = DispatchSemaphore(value: 0)

    /// Called before each commit; gives back the space reserve when the disk is nearly full, so
    /// the commit (which carries operations already answered) has room.
    private let beforeCommit: @Sendable () -> Void

    init(pool: DatabasePool, path: String, beforeCommit: @escaping @Sendable () -> Void) throws {
        self.pool = pool
        self.beforeCommit = beforeCommit
        self.walPath = path + "-wal"
        var config = Configuration()
        config.busyMode = .timeout(1)
        checkpointer = try DatabaseQueue(path: path, configuration: config)
        let thread = Thread { [self] in self.timerLoop() }
        thread.name = "cairn-commit"
        thread.start()
    }

    /// Runs `work` in its own savepoint of the open transaction; a throw undoes only its changes.
    func perform<T>(_ commit: Commit, _ work: (Database) throws -> T) throws(FSError) -> T {
        let value: T
        do {
            value = try pool.writeWithoutTransaction { db -> T in
                if !db.isInsideTransaction {
                    try db.beginTransaction(.immediate)
                    openedAt.store(Timestamp.monotonicNanoseconds(), ordering: .relaxed)
                    timerWake.signal()
                }
                // The savepoint statements are cached: this runs for every operation.
                try db.run("SAVEPOINT operation")
                let result: T
                do {
                    result = try work(db)
                } catch {
                    // Some errors (SQLITE_FULL, I/O) roll the whole transaction back: then there
                    // is no savepoint left, and the original error is the one to report.
                    if db.isInsideTransaction {
                        try? db.run("ROLLBACK TO SAVEPOINT operation")
                        try? db.run("RELEASE SAVEPOINT operation")
                    } else {
                        openedAt.store(0, ordering: .relaxed)
                    }
                    throw error
                }
                try db.run("RELEASE SAVEPOINT operation")
                if commit != .deferred { try commitOpen(db) }
                return result
            }
        } catch {
            throw FSError(database: error)
        }
        if commit == .durable { try syncLog() }
        return value
    }

    /// Reads through the writer's connection, so the reader sees the open transaction.
    func read<T>(_ work: (Database) throws -> T) throws(FSError) -> T {
        do {
            return try pool.writeWithoutTransaction(work)
        } catch {
            throw FSError(database: error)
        }
    }

    /// Commits the open transaction, if any (shutdown).
    func flush() throws(FSError) {
        do {
            try pool.writeWithoutTransaction { db in try commitOpen(db) }
        } catch {
            throw FSError(database: error)
        }
    }

    /// Commits, then ends the commit timer. Safe to call more than once.
    func stop() {
        guard !stopping.load(ordering: .relaxed) else { return }
        try? flush()
        stopping.store(true, ordering: .relaxed)
        timerWake.signal()
        timerDone.wait()
        try? checkpointer.close()
    }

    private func commitOpen(_ db: Database) throws {
        guard db.isInsideTransaction else {
            openedAt.store(0, ordering: .relaxed)
            return
        }
        beforeCommit()
        defer { if !db.isInsideTransaction { openedAt.store(0, ordering: .relaxed) } }
        try db.commit()
    }

    /// fsync of the WAL: every transaction committed so far reaches the disk.
    private func syncLog() throws(FSError) {
        let fd = Glibc.open(walPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }  // no WAL: everything is in the database file
        defer { Glibc.close(fd) }
        if Glibc.fsync(fd) != 0 { throw FSError.fromErrno(errno, "fsync the store's log") }
    }

    /// Commits a transaction left open for `commitDelay`, and checkpoints when the WAL is long.
    private func timerLoop() {
        while !stopping.load(ordering: .relaxed) {
            timerWake.wait()
            while !stopping.load(ordering: .relaxed) {
                let opened = openedAt.load(ordering: .relaxed)
                if opened == 0 { break }
                let delay = Int64(Self.commitDelay * 1e9)
                let due = opened + delay - Timestamp.monotonicNanoseconds()
                if due > 0 {
                    usleep(useconds_t(min(due, delay) / 1000 + 1))
                    continue
                }
                do {
                    try pool.writeWithoutTransaction { db in
                        // Commit only a transaction at least commitDelay old (not one begun since).
                        let at = openedAt.load(ordering: .relaxed)
                        if at != 0, Timestamp.monotonicNanoseconds() - at >= Int64(Self.commitDelay * 1e9) {
                            try commitOpen(db)
                        }
                    }
                } catch {
                    // Nobody waits on this commit: say it where the operator looks (daemon.log).
                    openedAt.store(0, ordering: .relaxed)
                    FileHandle.standardError.write(Data("cairn: background commit failed: \(error)\n".utf8))
                }
            }
            checkpointIfLong()
        }
        timerDone.signal()
    }

    private func checkpointIfLong() {
        var st = stat()
        guard stat(walPath, &st) == 0, st.st_size > Self.checkpointPages * 4096 else { return }
        _ = try? checkpointer.writeWithoutTransaction { db in try db.checkpoint(.passive) }
    }
}
