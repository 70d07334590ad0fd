import Foundation

extension FileSystem {
    /// The lock table, recording each grant and release as an event. A grant's event is
    /// journaled before the grant is answered, so its seq (the fencing token) is never given out
    /// twice, even across a crash.
    static func lockTable(_ store: Store) -> LockTable {
        LockTable(
            recordGrant: { spec throws(FSError) in
                try store.write(.journaled) { db in
                    try NamespaceQueries.recordEvent(
                        db, kind: "lock", inode: spec.inode, actor: spec.actor, time: .now())
                }
            },
            recordRelease: { lock in
                _ = try? store.write(.deferred) { db in
                    try NamespaceQueries.recordEvent(
                        db, kind: "unlock", inode: lock.inode, actor: lock.actor, time: .now())
                }
            })
    }

    /// Remembers the lock granted through `handle`, with its token (see `checkFence`).
    public func noteLock(handle id: UInt64, lock: LockSpec, token: Int64) {
        updateHandle(id) { $0.lock = HeldLock(lock, token: token, since: .now()) }
    }

    /// An owner gave its locks on `inode` up of its own accord: writing without a lock after
    /// that is its right (advisory locks), not a lost lock.
    public func forgetLock(owner: LockOwner, inode: InodeID) {
        updateHandles { h in
            if h.inode == inode, h.lock?.owner == owner { h.lock = nil }
        }
    }

    /// Refuses a change through a handle whose owner lost its lock without giving it up (a
    /// process that closes any descriptor of a file loses its POSIX locks on it, and may go on
    /// writing through another) while another owner took an overlapping exclusive lock of the
    /// same kind since: that lock's fencing token is larger.
    func checkFence(_ handle: Handle) throws(FSError) {
        guard let mine = handle.lock else { return }
        let held = locks.held(handle.inode)
        if held.contains(where: { $0.owner == mine.owner && $0.kind == mine.kind }) { return }
        let superseded = held.contains {
            $0.kind == mine.kind && $0.exclusive && $0.owner != mine.owner && $0.token > mine.token
                && $0.start <= mine.end && mine.start <= $0.end
        }
        if superseded { throw FSError.lockLost }
    }

    /// Makes the changes the writer holds open survive a crash of the daemon (journaled) before
    /// they are shown outside: an event once published keeps its seq.
    public func journalPending() throws(FSError) {
        try store.write(.journaled) { _ in }
    }

    /// The `user.cairn.lock` attribute: each holder of a lock on the file, one per line.
    public func lockDescription(_ inode: InodeID) -> [UInt8]? {
        let held = locks.held(inode)
        guard !held.isEmpty else { return nil }
        return Array(held.map(Self.describe).joined(separator: "\n").utf8) + [0x0A]
    }

    static func describe(_ l: HeldLock) -> String {
        let range = l.end == .max ? "\(l.start)-" : "\(l.start)-\(l.end)"
        return "holder=\(l.actor) pid=\(l.pid) token=\(l.token) kind=\(l.kind.rawValue) "
            + "mode=\(l.exclusive ? "exclusive" : "shared") range=\(range) place=\(l.place) since=\(l.since.iso8601())"
    }

    /// Commits what an owner wrote before its lock goes (a lock is a cache barrier).
    public func commitBeforeUnlock(_ inode: InodeID, actor: String) throws(FSError) {
        try commitIfModified(inode, cause: "unlock", actor: actor)
    }
}

/// A lock as `cairn locks` and `.cairn/locks` show it: where it is and who holds it.
public struct LockReport: Sendable, Codable, Equatable {
    public var workspace: String
    public var path: String
    public var kind: LockKind
    public var mode: String
    public var start: Int64
    /// nil: to the end of the file.
    public var end: Int64?
    public var holder: String
    public var pid: Int32
    public var place: String
    public var since: String
    public var token: Int64
}

extension FileSystem {
    /// Every lock held, with the path of its file now (`workspace` only: those of that workspace).
    public func lockReports(workspace: Workspace? = nil) throws(FSError) -> [LockReport] {
        let held = locks.all()
        guard !held.isEmpty else { return [] }
        return try store.read { db in
            let spaces = try WorkspaceQueries.all(db)
            let now = try db.value(Int64.self, "SELECT max(seq) FROM events") ?? 0
            return try held.compactMap { l -> LockReport? in
                guard let id = try NamespaceQueries.workspace(ofInode: l.inode, db),
                    let ws = spaces.first(where: { $0.id == id }), workspace == nil || workspace?.id == id
                else { return nil }
                return LockReport(
                    workspace: ws.name, path: try Self.path(db, l.inode, in: ws, at: now), kind: l.kind,
                    mode: l.exclusive ? "exclusive" : "shared", start: l.start, end: l.end == .max ? nil : l.end,
                    holder: l.actor, pid: l.pid, place: l.place, since: l.since.iso8601(), token: l.token)
            }
        }
    }

    /// The text of `cairn locks` and `.cairn/locks`: one line per lock.
    public static func lockTable(_ reports: [LockReport]) -> String {
        reports.map { r in
            let range = r.end.map { "\(r.start)-\($0)" } ?? "\(r.start)-"
            return "\(r.workspace):\(r.path)\t\(r.kind.rawValue) \(r.mode) \(range)\tholder \(r.holder) pid \(r.pid) "
                + "on \(r.place) since \(r.since) token \(r.token)\n"
        }.joined()
    }
}
