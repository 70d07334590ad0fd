import CairnCore
import FuseKit
import Glibc
import Synchronization

/// flock(2) and fcntl(2) locks, kept in the store's one lock table so that every mount of the
/// store (and the CLI) sees the same locks. A request that must wait is parked: it holds no
/// worker thread, and an interrupt (a signal to the waiting process) ends it with `EINTR`.
/// Granting is a cache barrier: the mount's cached pages of the file are dropped before the
/// grant is answered; releasing commits what the holder wrote first.
extension CairnFilesystem {
    static let lockAttribute = Array("user.cairn.lock".utf8)

    func lockOwner(_ info: FileInfo) -> LockOwner { LockOwner(session: sessionID, id: info.lockOwner) }

    /// `start`, `end` (inclusive; Int64.max: to the end of the file) of an fcntl lock.
    private static func range(_ lock: FileLock) -> (Int64, Int64) {
        let start = max(0, lock.start)
        guard lock.length > 0 else { return (start, .max) }
        let (end, overflow) = start.addingReportingOverflow(lock.length - 1)
        return (start, overflow ? .max : end)
    }

    private func spec(
        _ req: borrowing FuseRequest, ino: InodeNumber, kind: LockKind, exclusive: Bool, range: (Int64, Int64),
        info: FileInfo
    ) -> LockSpec {
        let who = caller(req)
        return LockSpec(
            inode: inode(ino), kind: kind, exclusive: exclusive, start: range.0, end: range.1, owner: lockOwner(info),
            pid: who.pid, actor: who.actor, place: place)
    }

    func getlk(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo, lock: FileLock) {
        var answer = lock
        answer.type = F_UNLCK
        guard !HistoryNodes.contains(ino) else { return req.reply(lock: answer) }
        let wanted = spec(
            req, ino: ino, kind: .posix, exclusive: lock.type == F_WRLCK, range: Self.range(lock), info: info)
        if let holder = fs.locks.conflict(wanted) {
            answer = FileLock(
                type: holder.exclusive ? F_WRLCK : F_RDLCK, start: holder.start,
                length: holder.end == .max ? 0 : holder.end - holder.start + 1, pid: holder.pid)
        }
        req.reply(lock: answer)
    }

    func setlk(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo, lock: FileLock, sleep: Bool) {
        // Views of the past never change: a lock on them guards nothing, and is granted.
        guard !HistoryNodes.contains(ino) else { return req.replyOK() }
        let (start, end) = Self.range(lock)
        guard lock.type != F_UNLCK else {
            return release(req, ino: ino, kind: .posix, owner: lockOwner(info), start: start, end: end)
        }
        let wanted = spec(req, ino: ino, kind: .posix, exclusive: lock.type == F_WRLCK, range: (start, end), info: info)
        acquire(req, wanted, wait: sleep, handle: info.handle)
    }

    func flock(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo, operation: Int32) {
        guard !HistoryNodes.contains(ino) else { return req.replyOK() }
        guard operation & LOCK_UN == 0 else {
            return release(req, ino: ino, kind: .flock, owner: lockOwner(info), start: 0, end: .max)
        }
        let wanted = spec(
            req, ino: ino, kind: .flock, exclusive: operation & LOCK_EX != 0, range: (0, .max), info: info)
        acquire(req, wanted, wait: operation & LOCK_NB == 0, handle: info.handle)
    }

    /// An unlock: what the owner wrote is committed first, so the next holder reads it.
    private func release(
        _ req: consuming FuseRequest, ino: InodeNumber, kind: LockKind, owner: LockOwner, start: Int64, end: Int64
    ) {
        do {
            try fs.commitBeforeUnlock(inode(ino), actor: caller(req).actor)
        } catch {
            fs.locks.unlock(inode: inode(ino), kind: kind, owner: owner, start: start, end: end)
            return req.reply(error: error.errno)
        }
        fs.locks.unlock(inode: inode(ino), kind: kind, owner: owner, start: start, end: end)
        changed(.inode(inode(ino)))
        req.replyOK()
    }

    /// Takes a lock, or parks the request until it can be taken (`wait`).
    private func acquire(_ req: consuming FuseRequest, _ wanted: LockSpec, wait: Bool, handle: UInt64) {
        let waiter = Mutex<Int?>(nil)
        let locks = fs.locks
        let parked = ParkedRequest(req) {
            // Interrupted: the waiter leaves the queue (it could not be granted any more anyway:
            // its claim fails).
            if let id = waiter.withLock({ $0 }) { locks.cancel(waiter: id) }
        }
        do {
            let outcome = try locks.lock(
                wanted,
                wait: wait
                    ? (claim: { parked.claim() }, granted: { [self] result in answer(parked, result, wanted, handle) })
                    : nil)
            switch outcome {
            case .granted(let token):
                if parked.claim() {
                    answer(parked, .success(token), wanted, handle)
                } else {  // interrupted as it was granted
                    locks.unlock(
                        inode: wanted.inode, kind: wanted.kind, owner: wanted.owner, start: wanted.start,
                        end: wanted.end)
                }
            case .conflict:
                if parked.claim() { parked.finish { $0.reply(error: EAGAIN) } }
            case .parked(let id):
                waiter.withLock { $0 = id }
            }
        } catch {
            if parked.claim() { parked.finish { $0.reply(error: error.errno) } }
        }
    }

    /// Answers a claimed lock request: on a grant, after this mount's cached pages are dropped.
    private func answer(_ parked: ParkedRequest, _ result: Result<Int64, FSError>, _ wanted: LockSpec, _ handle: UInt64)
    {
        switch result {
        case .success(let token):
            fs.noteLock(handle: handle, owner: wanted.owner, token: token)
            coherence.invalidatePages(of: wanted.inode, in: sessionID) { parked.finish { $0.replyOK() } }
        case .failure(let error):
            parked.finish { $0.reply(error: error.errno) }
        }
    }

    func destroy() {
        fs.locks.endSession(sessionID)
    }
}
