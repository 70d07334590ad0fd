import Foundation
internal import GRDB
import Glibc
import Synchronization

/// The one writer of the store, with group commit by write-behind: every operation runs at once
/// in the writer's open transaction (so each sees all earlier ones, exactly and in order), and
/// the transaction commits at the latest `commitDelay` after it began, for all the operations
/// it holds at once.
///
/// An operation whose effect must survive a crash of the daemon once the caller has its answer
/// (close, rename, link) is `journaled`: the statements of the open transaction not yet in the
/// redo journal are appended to it, one `write(2)`, before the answer. After a crash the next
/// writer runs them again (`recover`). Operations that ask for less (create, mkdir, setattr,
/// xattrs: `deferred`) may be lost in a crash, as a kernel crash loses metadata nobody synced,
/// but never out of order: what the journal or a commit holds includes everything before it.
///
/// Commits are `synchronous=NORMAL` (WAL): they survive a crash of the process. A durable commit
/// (fsync) also fsyncs the WAL, so it survives a crash of the machine. Checkpoints run on their own
/// connection in the background, never on the commit path.
final class MetadataWriter: Sendable {
    enum Commit {
        /// Stays in the open transaction (committed within `commitDelay`).
        case deferred
        /// In the redo journal before returning: survives a crash of the daemon.
        case journaled
        /// Committed before returning: other processes' readers see it.
        case now
        /// Committed and the WAL fsynced before returning: survives power loss.
        case durable
    }

    /// How long an operation may wait in the open transaction before it is committed.
    let commitDelay: Double
    /// Checkpoint once the WAL holds this many pages not yet copied into the database.
    static let checkpointPages = 4000
    /// The meta key of the number of the last transaction committed (see `recover`).
    private static let committedKey = "journal_transaction"

    /// State used only during the writer's turn (`exclusively`).
    private final class Confined: @unchecked Sendable {
        /// The number of the open transaction, or of the last committed one.
        var transaction: Int64 = 0
        /// How much of the connection's statement log the journal holds.
        var journaled = 0
        /// Set by `stop`: the connection takes no more work.
        var stopped = false
    }

    /// The writer connection; touched only during the writer's turn (`exclusively`).
    private let connection: Connection
    private let journal: RedoJournal
    private let confined = Confined()
    private let walPath: String
    private let checkpointer: DatabaseQueue
    /// The WAL's length after the last commit, and how much of it the last checkpoint copied
    /// (touched only on the commit timer's thread). Once a checkpoint has copied everything, the
    /// next transaction starts the WAL over and its length drops below that mark.
    private let walFrames = WALFrames()
    private let copiedFrames = Mutex<Int>(0)
    private let openedAt = Atomic<Int64>(0)  // 0: no transaction open
    private let timerWake = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    private let timerDone = DispatchSemaphore(value: 0)

    /// Called before each commit; gives back the space reserve when the disk is nearly full, so
    /// the commit (which carries operations already answered) has room.
    private let beforeCommit: @Sendable () -> Void
    /// Called before the log's contents become durable (the log synced for a durable commit, or
    /// copied into the database by a checkpoint, which syncs it): what its rows name outside the
    /// database (pack files) must reach the disk first.
    private let beforeLogSync: @Sendable () throws(FSError) -> Void
    /// Told on the writer after each commit (true) and after a transaction SQLite rolled back
    /// (false): what the caller put in the transaction is in the store now, or gone.
    private let transactionObservers = Mutex<[@Sendable (Bool) -> Void]>([])

    /// Held while the writer connection is in use: by one operation, read or commit at a time.
    /// The connection is GRDB's writer, taken once; going through GRDB's queue at every
    /// operation cost a sixth of a getattr.
    private let turn = NSLock()

    private func exclusively<T>(_ body: () throws -> T) rethrows -> T {
        turn.lock()
        defer { turn.unlock() }
        return try body()
    }

    /// Opens the writer; first re-applies what a crashed writer answered for but did not commit.
    init(
        pool: DatabasePool, path: String, journalPath: String, commitDelay: Double,
        beforeCommit: @escaping @Sendable () -> Void, beforeLogSync: @escaping @Sendable () throws(FSError) -> Void
    ) throws {
        self.commitDelay = commitDelay
        self.beforeCommit = beforeCommit
        self.beforeLogSync = beforeLogSync
        self.walPath = path + "-wal"
        connection = pool.writeWithoutTransaction { db in
            let connection = Connection(db.sqliteConnection!)
            // Used outside GRDB's queue from here on: GRDB's hooks expect to run on it, and
            // nothing here observes transactions through GRDB.
            connection.removeTransactionHooks()
            return connection
        }
        journal = try RedoJournal(path: journalPath)
        var config = Configuration()
        config.busyMode = .timeout(1)
        checkpointer = try DatabaseQueue(path: path, configuration: config)
        try exclusively {
            confined.transaction = try lastCommitted()
            try recover()
            connection.log = StatementLog()
            connection.observeLogLength(walFrames)
        }
        let thread = Thread { [self] in self.timerLoop() }
        thread.name = "cairn-commit"
        thread.start()
    }

    /// Runs `work` in the open transaction; a throw undoes only its changes.
    ///
    /// No savepoint per operation: SQLite copies every page an operation touches into the
    /// savepoint's journal first, which cost a tenth of a file's extraction. Undoing is rare
    /// instead: an operation that throws after some of its statements ran has the transaction
    /// rolled back and every statement before its own run again (`undoFailedOperation`).
    func perform<T>(_ commit: Commit, _ work: (Connection) throws -> T) throws(FSError) -> T {
        let value: T
        do {
            value = try exclusively { () -> T in
                // After `stop` the connection is finalized: a late caller gets an error, not a
                // transaction nobody commits.
                guard !confined.stopped else { throw FSError.readOnly }
                let db = connection
                if !db.isInsideTransaction {
                    try db.control("BEGIN IMMEDIATE")
                    confined.transaction += 1
                    openedAt.store(Timestamp.monotonicNanoseconds(), ordering: .relaxed)
                    timerWake.signal()
                }
                let logCount = db.log?.count ?? 0
                let changes = db.totalChanges
                let result: T
                do {
                    result = try work(db)
                } catch {
                    db.log?.truncate(to: logCount)
                    // Some errors (SQLITE_FULL, I/O) roll the whole transaction back; the
                    // original error is the one to report either way.
                    if !db.isInsideTransaction {
                        lostTransaction()
                    } else if db.totalChanges != changes {
                        // Rows changed (a statement that changed none, such as a DELETE of
                        // nothing, needs no undoing).
                        undoFailedOperation()
                    }
                    throw error
                }
                switch commit {
                case .deferred: break
                case .journaled: try journalOpen()
                case .now, .durable: try commitOpen()
                }
                return result
            }
        } catch {
            throw FSError(database: error)
        }
        if commit == .durable { try syncLog() }
        return value
    }

    /// Registers `observer` (see `transactionObservers`). It runs on the writer: it must not
    /// use the store.
    func observeTransactions(_ observer: @escaping @Sendable (_ committed: Bool) -> Void) {
        transactionObservers.withLock { $0.append(observer) }
    }

    private func notifyObservers(committed: Bool) {
        for observer in transactionObservers.withLock({ $0 }) { observer(committed) }
    }

    /// Reads through the writer's connection, so the reader sees the open transaction.
    func read<T>(_ work: (Connection) throws -> T) throws(FSError) -> T {
        do {
            return try exclusively {
                guard !confined.stopped else { throw FSError.readOnly }
                return try work(connection)
            }
        } catch {
            throw FSError(database: error)
        }
    }

    /// Commits the open transaction, if any (shutdown).
    func flush() throws(FSError) {
        do {
            try exclusively { if !confined.stopped { try commitOpen() } }
        } catch {
            throw FSError(database: error)
        }
    }

    /// Commits, then ends the commit timer. Safe to call more than once.
    func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        // The last commit and the end of work happen in one turn of the writer: no operation
        // can slip in between and leave a transaction open.
        exclusively {
            try? commitOpen()
            confined.stopped = true
        }
        timerWake.signal()
        timerDone.wait()
        exclusively {
            connection.observeLogLength(nil)
            connection.finalize()
        }
        try? checkpointer.close()
        // Closing the last connection checkpoints the log into the database.
        try? beforeLogSync()
    }

    /// Makes the operations of the open transaction survive a crash of the daemon: appends the
    /// statements the journal does not hold yet. If the journal cannot take them (a full disk),
    /// commits instead.
    private func journalOpen() throws {
        guard let log = connection.log, log.count > confined.journaled else { return }
        do {
            try journal.append(transaction: confined.transaction, log.bytes[confined.journaled...])
            confined.journaled = log.count
        } catch {
            try commitOpen()
        }
    }

    private func commitOpen() throws {
        let db = connection
        guard db.isInsideTransaction else {
            openedAt.store(0, ordering: .relaxed)
            return
        }
        beforeCommit()
        defer { if !db.isInsideTransaction { openedAt.store(0, ordering: .relaxed) } }
        try db.control(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", [Self.committedKey, String(confined.transaction)])
        do {
            try db.control("COMMIT")
        } catch {
            if !db.isInsideTransaction { lostTransaction() }
            throw error
        }
        db.log?.removeAll()
        confined.journaled = 0
        notifyObservers(committed: true)
        try journal.reset()
    }

    private func lastCommitted() throws -> Int64 {
        try connection.value(String.self, "SELECT value FROM meta WHERE key = ?", [Self.committedKey])
            .flatMap { Int64($0) } ?? 0
    }

    /// Runs the journal's statements again, in one transaction, if they belong to the transaction
    /// after the last one committed. A journal from any other transaction is stale: committed
    /// already (a crash between commit and emptying the journal), or written after one the
    /// database lost (power failure before the WAL reached the disk), which cannot be re-applied
    /// on an older state; it is dropped either way.
    private func recover() throws {
        let db = connection
        // The log holds the statements of a transaction that is gone (or none, when the
        // writer opens); what runs here commits at once.
        defer { if db.log != nil { db.log = StatementLog() } }
        guard !journal.isEmpty else { return }
        let next = confined.transaction + 1
        // The records of one transaction are consecutive pieces of its statement log.
        let log = try journal.records().filter { $0.transaction == next }.flatMap(\.payload)
        guard let statements = StatementLog.decode(log[...]) else {
            throw FSError.io("the store's journal \(journal.path) has a damaged record")
        }
        if !statements.isEmpty {
            try db.control("BEGIN IMMEDIATE")
            do {
                try Self.replay(statements, on: db)
                try db.control(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", [Self.committedKey, String(next)])
                try db.control("COMMIT")
            } catch {
                if db.isInsideTransaction { try? db.control("ROLLBACK") }
                throw error
            }
            confined.transaction = next
        }
        try journal.reset()
    }

    /// SQLite rolled the whole open transaction back (a full disk, an I/O error): operations
    /// answered as journaled are in the journal, so they are applied again at once; anything
    /// deferred since is lost, as in a crash.
    private func lostTransaction() {
        openedAt.store(0, ordering: .relaxed)
        confined.transaction -= 1
        confined.journaled = 0
        notifyObservers(committed: false)
        do {
            try recover()
        } catch {
            // Those operations are lost (the database goes on without them): the journal must
            // not bring them back after a crash, under a transaction number used again.
            try? journal.reset()
            FileHandle.standardError.write(
                Data("cairn: re-applying the journal after a failed transaction failed: \(error)\n".utf8))
        }
    }

    /// Undoes what a failed operation wrote: rolls the transaction back and runs every
    /// statement of the operations before it again, in order (the journal holds a prefix of
    /// them; the transaction keeps its number). If that fails too, as `lostTransaction`.
    private func undoFailedOperation() {
        let db = connection
        // The replay needs the room the transaction had (the disk may be what failed).
        beforeCommit()
        do {
            try db.control("ROLLBACK")
            try db.control("BEGIN IMMEDIATE")
            if let log = db.log {
                guard let statements = StatementLog.decode(log.bytes[...]) else {
                    throw FSError.io("the writer's statement log does not decode")
                }
                try Self.replay(statements, on: db)
            }
        } catch {
            if db.isInsideTransaction { try? db.control("ROLLBACK") }
            lostTransaction()
        }
    }

    /// Runs statements taken from a log (none of them logged again).
    private static func replay(_ statements: some Sequence<(sql: String, arguments: [SQLValue])>, on db: Connection)
        throws
    {
        for statement in statements { try db.control(statement.sql, SQLArguments(statement.arguments)) }
    }

    /// fsync of the WAL: every transaction committed so far reaches the disk.
    private func syncLog() throws(FSError) {
        try beforeLogSync()
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
                let delay = Int64(commitDelay * 1e9)
                let due = opened + delay - Timestamp.monotonicNanoseconds()
                if due > 0 {
                    // Woken early by stop() or by a new transaction; either way, look again.
                    _ = timerWake.wait(timeout: .now() + .nanoseconds(Int(min(due, delay))))
                    continue
                }
                do {
                    try exclusively {
                        // Commit only a transaction at least commitDelay old (not one begun since).
                        let at = openedAt.load(ordering: .relaxed)
                        if at != 0, Timestamp.monotonicNanoseconds() - at >= Int64(commitDelay * 1e9) {
                            try commitOpen()
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

    /// The file's size would not do: a WAL that has been started over keeps its length on disk,
    /// and a checkpoint after every commit costs two fsyncs each.
    private func checkpointIfLong() {
        let frames = walFrames.count.load(ordering: .relaxed)
        let copied = copiedFrames.withLock { copied in
            if frames < copied { copied = 0 }
            return copied
        }
        guard frames - copied > Self.checkpointPages else { return }
        do {
            try beforeLogSync()
        } catch {
            FileHandle.standardError.write(Data("cairn: checkpoint put off, syncing packs failed: \(error)\n".utf8))
            return
        }
        guard let result = try? checkpointer.writeWithoutTransaction({ db in try db.checkpoint(.passive) }) else {
            return
        }
        copiedFrames.withLock { $0 = result.checkpointedFrameCount }
    }
}
