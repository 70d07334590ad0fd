import Foundation
import Synchronization

/// flock(2) and fcntl(2) locks are independent, as on Linux: they never conflict with each other.
public enum LockKind: String, Sendable, Codable {
    case posix, flock
}

/// Who holds or wants a lock: the kernel's lock owner in one session (a process's open-file table
/// for POSIX locks, an open file for flock), or a CLI client (its own session number).
public struct LockOwner: Hashable, Sendable, Codable {
    public var session: Int
    public var id: UInt64

    public init(session: Int, id: UInt64) {
        self.session = session
        self.id = id
    }
}

/// A lock asked for: a byte range (`end` inclusive; `Int64.max` runs to the end of the file,
/// however it grows) of one inode, shared or exclusive.
public struct LockSpec: Sendable, Equatable {
    public var inode: InodeID
    public var kind: LockKind
    public var exclusive: Bool
    public var start: Int64
    public var end: Int64
    public var owner: LockOwner
    public var pid: Int32
    public var actor: String
    /// Where the owner is (a mountpoint, or "cli").
    public var place: String

    public init(
        inode: InodeID, kind: LockKind, exclusive: Bool, start: Int64 = 0, end: Int64 = .max, owner: LockOwner,
        pid: Int32, actor: String, place: String
    ) {
        self.inode = inode
        self.kind = kind
        self.exclusive = exclusive
        self.start = start
        self.end = end
        self.owner = owner
        self.pid = pid
        self.actor = actor
        self.place = place
    }

    func overlaps(_ other: HeldLock) -> Bool { start <= other.end && other.start <= end }

    func conflicts(with held: HeldLock) -> Bool {
        held.kind == kind && held.owner != owner && overlaps(held) && (exclusive || held.exclusive)
    }
}

/// A lock granted, with its fencing token: a number that only grows (the seq of its event).
public struct HeldLock: Sendable, Codable, Equatable {
    public var inode: InodeID
    public var kind: LockKind
    public var exclusive: Bool
    public var start: Int64
    public var end: Int64
    public var owner: LockOwner
    public var pid: Int32
    public var actor: String
    public var place: String
    public var since: Timestamp
    public var token: Int64

    init(_ spec: LockSpec, token: Int64, since: Timestamp) {
        inode = spec.inode
        kind = spec.kind
        exclusive = spec.exclusive
        start = spec.start
        end = spec.end
        owner = spec.owner
        pid = spec.pid
        actor = spec.actor
        place = spec.place
        self.since = since
        self.token = token
    }
}

/// The store's locks, kept by its one daemon for every mount and the CLI. A request that must
/// wait is queued with two callbacks: `claim` (false when the waiter is gone: interrupted) and
/// `granted` (called after the table's lock is released). Waiters are served in order, as locks
/// are released. POSIX waits that would close a cycle of owners waiting on each other fail with
/// `EDEADLK`, as Linux's do.
public final class LockTable: Sendable {
    public typealias Grant = @Sendable (Result<Int64, FSError>) -> Void

    struct Waiter {
        var id: Int
        var spec: LockSpec
        var wait: Wait
    }

    /// How a queued request is told of its grant. `claim` takes the right to answer (false: the
    /// request is gone, interrupted); `alive` asks without taking it.
    public struct Wait: Sendable {
        public var claim: @Sendable () -> Bool
        public var alive: @Sendable () -> Bool
        public var granted: Grant

        public init(
            claim: @escaping @Sendable () -> Bool, alive: @escaping @Sendable () -> Bool,
            granted: @escaping Grant
        ) {
            self.claim = claim
            self.alive = alive
            self.granted = granted
        }
    }

    private struct State {
        var held: [InodeID: [HeldLock]] = [:]
        var waiting: [InodeID: [Waiter]] = [:]
        var nextWaiter = 1
    }

    public enum Outcome: Sendable {
        case granted(token: Int64)
        case conflict(HeldLock)
        case parked(waiter: Int)
    }

    private let state = Mutex(State())
    /// Records a grant's event and returns its seq: the fencing token.
    private let recordGrant: @Sendable (LockSpec) throws(FSError) -> Int64
    private let recordRelease: @Sendable (HeldLock) -> Void

    public init(
        recordGrant: @escaping @Sendable (LockSpec) throws(FSError) -> Int64,
        recordRelease: @escaping @Sendable (HeldLock) -> Void
    ) {
        self.recordGrant = recordGrant
        self.recordRelease = recordRelease
    }

    /// Takes a lock now, or reports the conflict; with `wait`, queues the request instead
    /// (`parked`), unless waiting would deadlock. An flock conversion drops the owner's lock
    /// first, as Linux does (so two holders upgrading at once do not wait on each other, and a
    /// failed LOCK_NB upgrade leaves no lock); whatever the change releases wakes its waiters.
    public func lock(_ spec: LockSpec, wait: Wait? = nil) throws(FSError) -> Outcome {
        var released: [HeldLock] = []
        var wake: [(Waiter, Result<Int64, FSError>)] = []
        defer {
            for lock in released { recordRelease(lock) }
            for (waiter, result) in wake { waiter.wait.granted(result) }
        }
        return try state.withLock { (s: inout State) throws(FSError) -> Outcome in
            if spec.kind == .flock {
                released = Self.remove(inode: spec.inode, kind: .flock, owner: spec.owner, start: 0, end: .max, &s)
            }
            if let conflict = s.held[spec.inode]?.first(where: { spec.conflicts(with: $0) }) {
                if !released.isEmpty { wake = serveWaiters(spec.inode, &s) }
                guard let wait else { return .conflict(conflict) }
                if spec.kind == .posix, Self.wouldDeadlock(spec, s) { throw FSError.deadlock }
                let id = s.nextWaiter
                s.nextWaiter += 1
                s.waiting[spec.inode, default: []].append(Waiter(id: id, spec: spec, wait: wait))
                return .parked(waiter: id)
            }
            let (token, replaced) = try grant(spec, &s)
            // A downgrade (or a lock over part of an owner's range) may let waiters in.
            if !replaced.isEmpty || !released.isEmpty { wake = serveWaiters(spec.inode, &s) }
            return .granted(token: token)
        }
    }

    /// The first lock that conflicts with `spec` (F_GETLK), if any.
    public func conflict(_ spec: LockSpec) -> HeldLock? {
        state.withLock { s in s.held[spec.inode]?.first { spec.conflicts(with: $0) } }
    }

    /// Releases `owner`'s locks of `kind` on `inode` over `start...end` (all of them by default).
    public func unlock(
        inode: InodeID, kind: LockKind, owner: LockOwner, start: Int64 = 0, end: Int64 = .max
    ) {
        let (released, wake) = state.withLock { s in
            let released = Self.remove(inode: inode, kind: kind, owner: owner, start: start, end: end, &s)
            return (released, released.isEmpty ? [] : serveWaiters(inode, &s))
        }
        for lock in released { recordRelease(lock) }
        for (waiter, result) in wake { waiter.wait.granted(result) }
    }

    /// Ends a session: its locks are released, its waiters are returned (to be answered).
    public func endSession(_ session: Int) {
        let (released, wake) = state.withLock { s in
            var released: [HeldLock] = []
            var wake: [(Waiter, Result<Int64, FSError>)] = []
            for inode in Array(s.held.keys) {
                let mine = s.held[inode]!.filter { $0.owner.session == session }
                for kind in Set(mine.map(\.kind)) {
                    for owner in Set(mine.filter { $0.kind == kind }.map(\.owner)) {
                        released += Self.remove(inode: inode, kind: kind, owner: owner, start: 0, end: .max, &s)
                    }
                }
            }
            for inode in Array(s.waiting.keys) {
                for w in s.waiting[inode]! where w.spec.owner.session == session && w.wait.claim() {
                    wake.append((w, .failure(FSError.interrupted)))
                }
                s.waiting[inode]!.removeAll { $0.spec.owner.session == session }
            }
            for inode in Set(released.map(\.inode)) { wake += serveWaiters(inode, &s) }
            return (released, wake)
        }
        for lock in released { recordRelease(lock) }
        for (waiter, result) in wake { waiter.wait.granted(result) }
    }

    /// Forgets a waiter whose request was interrupted.
    public func cancel(waiter id: Int) {
        state.withLock { s in
            for inode in Array(s.waiting.keys) { s.waiting[inode]!.removeAll { $0.id == id } }
        }
    }

    /// Every lock held, by inode and start.
    public func all() -> [HeldLock] {
        state.withLock { s in s.held.values.flatMap { $0 } }.sorted {
            ($0.inode, $0.start, $0.token) < ($1.inode, $1.start, $1.token)
        }
    }

    public func held(_ inode: InodeID) -> [HeldLock] { state.withLock { s in s.held[inode] ?? [] } }

    // MARK: inside the table's lock

    /// Adds a granted lock: the owner's own locks of that kind over the range are replaced (a
    /// POSIX lock over part of an owner's range splits it; an flock converts).
    /// Returns the token and the owner's locks the new one replaced.
    private func grant(_ spec: LockSpec, _ s: inout State) throws(FSError) -> (Int64, [HeldLock]) {
        let token = try recordGrant(spec)
        let replaced = Self.remove(
            inode: spec.inode, kind: spec.kind, owner: spec.owner, start: spec.start, end: spec.end, &s)
        s.held[spec.inode, default: []].append(HeldLock(spec, token: token, since: .now()))
        return (token, replaced)
    }

    /// Grants, in order, the waiters of `inode` that no longer conflict.
    private func serveWaiters(_ inode: InodeID, _ s: inout State) -> [(Waiter, Result<Int64, FSError>)] {
        var served: [(Waiter, Result<Int64, FSError>)] = []
        var remaining: [Waiter] = []
        for w in s.waiting[inode] ?? [] where w.wait.alive() {
            guard !(s.held[inode] ?? []).contains(where: { w.spec.conflicts(with: $0) }) else {
                remaining.append(w)
                continue
            }
            guard w.wait.claim() else { continue }  // interrupted meanwhile
            do {
                served.append((w, .success(try grant(w.spec, &s).0)))
            } catch {
                served.append((w, .failure(error)))
            }
        }
        s.waiting[inode] = remaining.isEmpty ? nil : remaining
        return served
    }

    /// Takes `start...end` out of `owner`'s locks of `kind` on `inode`; returns what was removed.
    private static func remove(
        inode: InodeID, kind: LockKind, owner: LockOwner, start: Int64, end: Int64, _ s: inout State
    ) -> [HeldLock] {
        guard let locks = s.held[inode] else { return [] }
        var kept: [HeldLock] = []
        var removed: [HeldLock] = []
        for lock in locks {
            guard lock.kind == kind, lock.owner == owner, lock.start <= end, start <= lock.end else {
                kept.append(lock)
                continue
            }
            removed.append(lock)
            if lock.start < start {
                var left = lock
                left.end = start - 1
                kept.append(left)
            }
            if lock.end > end {
                var right = lock
                right.start = end + 1
                kept.append(right)
            }
        }
        s.held[inode] = kept.isEmpty ? nil : kept
        return removed
    }

    /// Whether `spec`'s owner waiting would close a cycle: an owner it would wait for is itself
    /// waiting, directly or through others, for a lock `spec`'s owner holds.
    private static func wouldDeadlock(_ spec: LockSpec, _ s: State) -> Bool {
        func blockers(of wanted: LockSpec) -> Set<LockOwner> {
            Set((s.held[wanted.inode] ?? []).filter { wanted.conflicts(with: $0) }.map(\.owner))
        }
        // Waiters already interrupted wait for nothing.
        let waitingOwners = s.waiting.values.flatMap { $0 }.filter { $0.spec.kind == .posix && $0.wait.alive() }
        var seen = Set<LockOwner>()
        var frontier = blockers(of: spec)
        while let owner = frontier.popFirst() {
            if owner == spec.owner { return true }
            guard seen.insert(owner).inserted else { continue }
            for w in waitingOwners where w.spec.owner == owner { frontier.formUnion(blockers(of: w.spec)) }
        }
        return false
    }
}
