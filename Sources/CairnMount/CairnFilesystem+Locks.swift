import CairnCore
import FuseKit
import Glibc
import Synchronization

/// flock(2) and fcntl(2) locks, kept in the store's one lock table so that every mount of the
/// store (and the CLI) sees the same locks. A request that must wait is parked: it holds no
/// worker thread, and an interrupt (a signal to the waiting process) ends it with `EINTR`.
/// Granting is a cache barrier: the mount's cached pages of the file are dropped before the
/// grant is answered; releasing an exclusive lock commits what was written first.
///
/// Owners: a POSIX lock belongs to the kernel's lock owner (the process's open-file table); an
/// flock lock to the open file, known here by its handle (unique until its release is handled:
/// the kernel's id for it may be reused once the file is freed).
extension CairnFilesystem {
    static let lockAttribute = Array("user.cairn.lock".utf8)

    func posixOwner(_ info: FileInfo) -> LockOwner { LockOwner(session: sessionID, id: info.lockOwner) }
    func flockOwner(_ info: FileInfo) -> LockOwner { LockOwner(session: sessionID, id: info.handle) }

    /// `start`, `end` (inclusive; Int64.max: to the end of the file) of an fcntl lock.
    private static func range(_ lock: FileLock) -> (Int64, Int64) {
        let start = max(0, lock.start)
        guard lock.length > 0 else { return (start, .max) }
        let (end, overflow) = start.addingReportingOverflow(lock.length - 1)
        return (start, overflow ? .max : end)
    }

    private func spec(
        _ req: borrowing FuseRequest, ino: InodeNumber, kind: LockKind, exclusive: Bool, range: (Int64, Int64),
        owner: LockOwner, pid: Int32?
    ) -> LockSpec {
        let who = caller(req)
        return LockSpec(
            inode: inode(ino), kind: kind, exclusive: exclusive, start: range.0, end: range.1, owner: owner,
            pid: pid ?? who.pid, actor: who.actor, place: place)
    }

    func getlk(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo, lock: FileLock) {
        var answer = lock
        answer.type = F_UNLCK
        guard !HistoryNodes.contains(ino) else { return req.reply(lock: answer) }
        let wanted = spec(
            req, ino: ino, kind: .posix, exclusive: lock.type == F_WRLCK, range: Self.range(lock),
            owner: posixOwner(info), pid: lock.pid)
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
            unlock(inode(ino), kind: .posix, owner: posixOwner(info), start: start, end: end, actor: caller(req).actor)
            return req.replyOK()
        }
        // l_pid is the process (thread group) the kernel names; the request's is a thread.
        let wanted = spec(
            req, ino: ino, kind: .posix, exclusive: lock.type == F_WRLCK, range: (start, end),
            owner: posixOwner(info), pid: lock.pid > 0 ? lock.pid : nil)
        acquire(req, wanted, wait: sleep, handle: info.handle)
    }

    func flock(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo, operation: Int32) {
        guard !HistoryNodes.contains(ino) else { return req.replyOK() }
        guard operation & LOCK_UN == 0 else {
            unlock(inode(ino), kind: .flock, owner: flockOwner(info), start: 0, end: .max, actor: caller(req).actor)
            return req.replyOK()
        }
        let wanted = spec(
            req, ino: ino, kind: .flock, exclusive: operation & LOCK_EX != 0, range: (0, .max),
            owner: flockOwner(info), pid: nil)
        acquire(req, wanted, wait: operation & LOCK_NB == 0, handle: info.handle)
    }

    /// Releases an owner's locks. When it held an exclusive one, what was written is committed
    /// first, so the next holder reads it. An unlock itself never fails.
    func unlock(_ inode: InodeID, kind: LockKind, owner: LockOwner, start: Int64, end: Int64, actor: String) {
        let heldExclusive = fs.locks.held(inode).contains {
            $0.owner == owner && $0.kind == kind && $0.exclusive && $0.start <= end && start <= $0.end
        }
        guard heldExclusive || fs.locks.held(inode).contains(where: { $0.owner == owner && $0.kind == kind }) else {
            return
        }
        if heldExclusive {
            do {
                try fs.commitBeforeUnlock(inode, actor: actor)
            } catch {
                FuseLog.write("committing inode \(inode) before an unlock failed: \(error)")
            }
        }
        fs.locks.unlock(inode: inode, kind: kind, owner: owner, start: start, end: end)
        fs.forgetLock(owner: owner, inode: inode)
        changed(.inode(inode))
    }

    /// Takes a lock, or parks the request until it can be taken (`wait`).
    private func acquire(_ req: consuming FuseRequest, _ wanted: LockSpec, wait: Bool, handle: UInt64) {
        let waiter = Mutex<Int?>(nil)
        let locks = fs.locks
        let parked = ParkedRequest(req) {
            // Interrupted: the waiter leaves the queue (the table skips it anyway: it is claimed).
            if let id = waiter.withLock({ $0 }) { locks.cancel(waiter: id) }
        }
        do {
            let outcome = try locks.lock(
                wanted,
                wait: wait
                    ? LockTable.Wait(
                        claim: { parked.claim() }, alive: { !parked.isClaimed },
                        granted: { [self] result in answer(parked, result, wanted, handle) }) : nil)
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
            fs.noteLock(handle: handle, lock: wanted, token: token)
            coherence.invalidatePages(of: wanted.inode, in: sessionID) { parked.finish { $0.replyOK() } }
        case .failure(let error):
            parked.finish { $0.reply(error: error.errno) }
        }
    }

    func destroy() {
        fs.locks.endSession(sessionID)
        feed.close()
        // Grants answered on the coherence queue go out before the session is freed.
        coherence.drain()
    }
}
