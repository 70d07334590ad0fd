import CairnCore
import Foundation
import FuseKit
import Glibc
import Synchronization

/// The one process that owns a store: it holds the store's exclusive lock, the only writer and
/// the in-memory state, serves every FUSE session (mount) of the store, and answers the CLI on
/// the store's control socket. It ends when its last mount ends or on SIGTERM/SIGINT, after
/// committing every open file.
public final class Daemon: Sendable {
    public let store: Store
    public let fs: FileSystem
    /// Delivers events to webhooks while the daemon runs.
    let webhooks: WebhookDispatcher
    private let lockFD: Int32
    private let sessions = Mutex(Registry())
    private let coherence = SessionCoherence()
    private let done = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)

    private struct Registry {
        var mounts: [String: Mounted] = [:]
        /// Mountpoints being mounted right now (so two requests cannot stack two mounts).
        var reserved: Set<String> = []
        /// The last mount ended or a shutdown began: no new mount may join.
        var closing = false
    }

    private struct Mounted: @unchecked Sendable {
        var session: FuseSession
        var info: MountInfo
        var coherenceID: Int
    }

    /// Takes the store's daemon lock. Returns nil when another daemon holds it.
    public static func acquireLock(storePath: String) -> Int32? {
        let fd = open(storePath + "/daemon.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Opens the store as its owner. `lockFD` comes from `acquireLock`.
    public init(storePath: String, lockFD: Int32) throws {
        self.lockFD = lockFD
        // On one processor a polling worker would only keep the caller from running.
        pollMicroseconds =
            try Self.setting("CAIRN_POLL_US", in: 0...10_000, unit: "microseconds")
            ?? (sysconf(Int32(_SC_NPROCESSORS_ONLN)) > 1 ? 50 : 0)
        store = try Store.open(
            at: storePath,
            commitDelay: try Self.setting("CAIRN_COMMIT_DELAY_MS", in: 1...10_000, unit: "milliseconds").map {
                Double($0) / 1000
            } ?? Store.defaultCommitDelay)
        fs = try FileSystem(store: store)
        fs.startIndexing()
        webhooks = WebhookDispatcher(fs: fs)
    }

    /// How long a FUSE worker polls for the next request before it sleeps (`CAIRN_POLL_US`).
    let pollMicroseconds: Int

    /// A whole number from the daemon's environment, nil when unset. The daemon's settings:
    /// - `CAIRN_COMMIT_DELAY_MS` (1 to 10,000; default `Store.defaultCommitDelay`): how long
    ///   changes the daemon has answered for may wait for their group commit. Longer: fewer,
    ///   larger commits; other processes reading the database see changes later (the CLI asks
    ///   the daemon to commit first).
    /// - `CAIRN_POLL_US` (0 to 10,000; default 50, or 0 on a single processor): how long a
    ///   worker that has answered a request polls for the next one before it sleeps (see
    ///   FuseKit's `DeviceReader`); 0 never polls.
    static func setting(_ name: String, in range: ClosedRange<Int>, unit: String) throws -> Int? {
        guard let text = ProcessInfo.processInfo.environment[name], !text.isEmpty else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw MountError.daemon(
                "\(name) must be a whole number of \(unit) from \(range.lowerBound) to \(range.upperBound), not '\(text)'"
            )
        }
        return value
    }

    /// Mounts a workspace (or, with `workspace` nil, the whole store) on `mountpoint`.
    public func mount(mountpoint: String, workspace: String?, options: [String], actor: String?) throws -> MountInfo {
        let canonical = try Mountpoint.validate(mountpoint, storePath: store.path)
        let root: InodeID
        do {
            root = try workspace.map { try store.workspace(named: $0).root } ?? 1
        } catch {
            throw MountError.daemon("\(error)")
        }
        let fuseOptions = try Mountpoint.options(
            user: options, workspace: workspace ?? Mountpoint.allWorkspaces, isRoot: geteuid() == 0)
        try sessions.withLock { (r: inout Registry) throws(MountError) in
            if r.closing { throw MountError.daemonExiting }
            if r.mounts[canonical] != nil || r.reserved.contains(canonical) {
                throw MountError.alreadyMounted(canonical)
            }
            r.reserved.insert(canonical)
        }
        var registered = false
        defer { if !registered { sessions.withLock { _ = $0.reserved.remove(canonical) } } }
        let coherenceID = coherence.reserveID()
        let adapter = CairnFilesystem(
            fs: fs, root: root, actor: actor, coherence: coherence, sessionID: coherenceID, place: canonical)
        let session: FuseSession
        do {
            session = try FuseSession(operations: adapter, options: fuseOptions, pollMicroseconds: pollMicroseconds)
            try session.mount(at: canonical)
        } catch {
            throw MountError.notPermitted(canonical, detail: "\(error)")
        }
        let info = MountInfo(mountpoint: canonical, workspace: workspace, since: Date().timeIntervalSince1970)
        sessions.withLock { r in
            r.reserved.remove(canonical)
            r.mounts[canonical] = Mounted(session: session, info: info, coherenceID: coherenceID)
        }
        registered = true
        coherence.add(coherenceID, session: session, root: root)
        let thread = Thread { [self] in
            _ = session.run(maxThreads: 16)
            self.sessionEnded(canonical, session)
        }
        thread.name = "cairn-fuse \(canonical)"
        thread.start()
        return info
    }

    public func unmount(mountpoint: String) throws {
        let canonical = URL(fileURLWithPath: mountpoint).resolvingSymlinksInPath().path
        guard let mounted = sessions.withLock({ $0.mounts[canonical] ?? $0.mounts[mountpoint] }) else {
            throw MountError.notMounted(mountpoint)
        }
        fs.commitAll()
        mounted.session.stop()
    }

    /// A number for a lock owner outside the mounts (a `cairn lock` client), apart from every
    /// mount's session number.
    public func reserveSessionID() -> Int { coherence.reserveID() }

    /// Performs a CLI's action on the store, then tells every mount what it changed.
    public func perform(_ action: StoreAction, caller: Caller, progress: (GCProgress) -> Void = { _ in })
        throws(FSError)
        -> StoreActionResult
    {
        let (result, changes) = try fs.perform(action, caller: caller, progress: progress)
        for change in changes { coherence.changed(change, by: SessionCoherence.outside) }
        return result
    }

    public var status: DaemonStatus {
        DaemonStatus(
            pid: getpid(),
            mounts: sessions.withLock { $0.mounts.values.map(\.info) }.sorted { $0.mountpoint < $1.mountpoint },
            openHandles: fs.openHandleCount)
    }

    /// Ends every session after committing open files (SIGTERM, SIGINT, `shutdown`).
    public func shutdown() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        fs.commitAll()
        let all = sessions.withLock { r in
            r.closing = true
            return Array(r.mounts.values)
        }
        for mounted in all { mounted.session.stop() }
        if all.isEmpty { done.signal() }
    }

    /// A session's loop ended. Only that session is forgotten: the mountpoint may already carry
    /// a newer mount.
    private func sessionEnded(_ mountpoint: String, _ session: FuseSession) {
        let (ended, last) = sessions.withLock { r -> (Mounted?, Bool) in
            var ended: Mounted?
            if r.mounts[mountpoint]?.session === session { ended = r.mounts.removeValue(forKey: mountpoint) }
            let last = r.mounts.isEmpty && r.reserved.isEmpty
            if last { r.closing = true }
            return (ended, last)
        }
        if let ended {
            coherence.remove(ended.coherenceID)
            // A mount that ends (also by a crash of its clients' kernel side) holds no lock.
            fs.locks.endSession(ended.coherenceID)
        }
        if last { done.signal() }
    }

    /// How long a shutdown waits for programs to close files on lazily unmounted sessions
    /// before it ends them (their data is committed already).
    static let shutdownGrace: Double = 3

    /// Blocks until the last session ends (or, after a shutdown, until the grace period is
    /// over), then commits, closes the store and releases the lock.
    public func wait() {
        var stoppedAt: Date?
        while done.wait(timeout: .now() + 0.2) == .timedOut {
            guard stopping.load(ordering: .relaxed) else { continue }
            let since = stoppedAt ?? Date()
            stoppedAt = since
            if Date().timeIntervalSince(since) > Self.shutdownGrace { break }
        }
        // New clients find no socket and start a daemon of their own once the lock is free.
        unlink(store.path + "/daemon.sock")
        webhooks.stop()
        fs.commitAll()
        fs.closeAudit()
        store.close()
        close(lockFD)
    }
}
