import CairnCore
import Foundation
import Synchronization
import Testing

/// The lock table's rules, without a mount: conflicts, ranges, waiters, deadlocks, sessions.
@Suite struct LockTableTests {
    final class Log: Sendable {
        let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
        var last: String? { lines.withLock { $0.last } }
    }

    private func table() -> (LockTable, Log) {
        let log = Log()
        let next = Atomic<Int64>(100)
        let table = LockTable(
            recordGrant: { spec in
                log.append("lock \(spec.owner.id)")
                return next.wrappingAdd(1, ordering: .relaxed).newValue
            },
            recordRelease: { lock in log.append("unlock \(lock.owner.id) \(lock.start)-\(lock.end)") })
        return (table, log)
    }

    private func spec(
        _ owner: UInt64, kind: LockKind = .posix, exclusive: Bool = true, _ start: Int64 = 0, _ end: Int64 = .max,
        session: Int = 1
    ) -> LockSpec {
        LockSpec(
            inode: 7, kind: kind, exclusive: exclusive, start: start, end: end,
            owner: LockOwner(session: session, id: owner), pid: Int32(owner), actor: "a\(owner)", place: "m")
    }

    /// A waiter that is always there.
    private func waiting(_ granted: @escaping LockTable.Grant) -> LockTable.Wait {
        LockTable.Wait(claim: { true }, alive: { true }, granted: granted)
    }

    private func granted(_ outcome: LockTable.Outcome) -> Int64? {
        if case .granted(let token) = outcome { return token }
        return nil
    }

    @Test func conflictsFollowKindsRangesAndModes() throws {
        let (t, _) = table()
        let first = try #require(granted(try t.lock(spec(1, exclusive: true, 0, 9))))
        #expect(granted(try t.lock(spec(2, exclusive: true, 10, 19))) != nil, "ranges apart")
        #expect(granted(try t.lock(spec(2, kind: .flock))) != nil, "flock and POSIX never meet")
        guard case .conflict(let holder) = try t.lock(spec(3, exclusive: false, 5, 5)) else {
            Issue.record("a shared lock inside an exclusive one must conflict")
            return
        }
        #expect(holder.owner.id == 1 && holder.token == first)
        #expect(granted(try t.lock(spec(1, exclusive: false, 0, 9))) != nil, "an owner converts its own lock")
        #expect(granted(try t.lock(spec(3, exclusive: false, 5, 5))) != nil, "shared locks share")
        #expect(t.conflict(spec(4, exclusive: true, 0, 0))?.owner.id == 1)
    }

    @Test func unlockingPartOfARangeSplitsIt() throws {
        let (t, log) = table()
        _ = try t.lock(spec(1, 0, 99))
        t.unlock(inode: 7, kind: .posix, owner: LockOwner(session: 1, id: 1), start: 40, end: 59)
        let held = t.held(7).map { ($0.start, $0.end) }.sorted { $0.0 < $1.0 }
        #expect(held.map(\.0) == [0, 60] && held.map(\.1) == [39, 99])
        #expect(log.last == "unlock 1 0-99")
        #expect(granted(try t.lock(spec(2, 40, 59))) != nil)
    }

    @Test func waitersAreServedInOrderAndInterruptedOnesSkipped() throws {
        let (t, _) = table()
        _ = try t.lock(spec(1))
        let order = Mutex<[UInt64]>([])
        let claims: [UInt64: Bool] = [2: true, 3: false, 4: true]  // 3 was interrupted
        for owner in [UInt64(2), 3, 4] {
            let outcome = try t.lock(
                spec(owner, exclusive: false),
                wait: LockTable.Wait(
                    claim: { claims[owner]! }, alive: { claims[owner]! },
                    granted: { _ in order.withLock { $0.append(owner) } }))
            guard case .parked = outcome else {
                Issue.record("owner \(owner) should wait")
                return
            }
        }
        t.unlock(inode: 7, kind: .posix, owner: LockOwner(session: 1, id: 1))
        #expect(order.withLock { $0 } == [2, 4], "both shared waiters at once, the interrupted one skipped")
        #expect(Set(t.held(7).map(\.owner.id)) == [2, 4])
    }

    @Test func aWaitThatClosesACycleIsRefusedAndEndingASessionFreesItsLocks() throws {
        let (t, _) = table()
        _ = try t.lock(spec(1, 0, 9))
        _ = try t.lock(spec(2, 10, 19, session: 2))
        let woke = Mutex<[String]>([])
        _ = try t.lock(spec(2, 0, 9, session: 2), wait: waiting { r in woke.withLock { $0.append("\(r)") } })
        #expect(throws: FSError.deadlock) {
            try t.lock(spec(1, 10, 19), wait: waiting { _ in })
        }
        #expect(throws: Never.self) {
            _ = try t.lock(spec(1, kind: .flock), wait: waiting { _ in })
        }
        t.endSession(1)
        #expect(woke.withLock { $0.count } == 1, "session 2's waiter gets the range session 1 held")
        #expect(t.all().allSatisfy { $0.owner.session == 2 })
        t.endSession(2)
        #expect(t.all().isEmpty)
    }

    @Test func flockConversionsDropTheOldLockFirstAndDowngradesWakeWaiters() throws {
        let (t, _) = table()
        _ = try t.lock(spec(1, kind: .flock, exclusive: false))
        _ = try t.lock(spec(2, kind: .flock, exclusive: false))
        // Both upgrade: the first waits for the second's shared lock, the second's upgrade
        // drops its shared lock first and then waits for nothing but the first's... which it
        // dropped too: it is granted, and the first follows when it unlocks.
        let woke = Mutex<[UInt64]>([])
        guard case .parked = try t.lock(spec(1, kind: .flock), wait: waiting { _ in woke.withLock { $0.append(1) } })
        else {
            Issue.record("the first upgrade waits for the other shared holder")
            return
        }
        #expect(granted(try t.lock(spec(2, kind: .flock))) != nil, "no deadlock between two upgrades")
        t.unlock(inode: 7, kind: .flock, owner: LockOwner(session: 1, id: 2))
        #expect(woke.withLock { $0 } == [1])
        // A downgrade lets shared waiters in at once.
        let shared = Mutex(false)
        _ = try t.lock(spec(3, kind: .flock, exclusive: false), wait: waiting { _ in shared.withLock { $0 = true } })
        #expect(!shared.withLock { $0 })
        _ = try t.lock(spec(1, kind: .flock, exclusive: false))
        #expect(shared.withLock { $0 }, "the downgrade woke the shared waiter")
    }
}
