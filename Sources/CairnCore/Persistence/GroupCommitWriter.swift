import Foundation
internal import GRDB
import Synchronization

/// The one writer of the store. Callers hand it work; a dedicated thread runs every piece of work
/// that is waiting in one transaction (each in its own savepoint, so one failure does not undo
/// the others), commits, and only then wakes the callers. Under concurrency this turns many small
/// transactions into few large ones; a lone caller pays one transaction.
///
/// A batch that contains durable work commits with `synchronous=FULL`, so it reaches the disk
/// before its callers return (fsync); other batches survive a crash of the process, not of the
/// machine (SQLite WAL with `synchronous=NORMAL`).
final class GroupCommitWriter: Sendable {
    private final class Job: @unchecked Sendable {
        let work: (Database) throws -> Void
        let durable: Bool
        // protected by `done`'s lock
        var error: (any Error)?
        let done = DispatchSemaphore(value: 0)
        init(work: @escaping (Database) throws -> Void, durable: Bool) {
            self.work = work
            self.durable = durable
        }
    }

    private struct Queue {
        var jobs: [Job] = []
        var stopped = false
    }

    private let pool: DatabasePool
    private let queue = Mutex(Queue())
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init(pool: DatabasePool) {
        self.pool = pool
        let thread = Thread { [self] in self.loop() }
        thread.name = "cairn-writer"
        thread.start()
    }

    /// Runs `work` inside the next batch and returns its result once the batch is committed.
    func perform<T>(durable: Bool = false, _ work: @escaping (Database) throws -> T) throws(FSError) -> T {
        nonisolated(unsafe) var result: T?
        let job = Job(work: { db in result = try work(db) }, durable: durable)
        let accepted = queue.withLock { q -> Bool in
            guard !q.stopped else { return false }
            q.jobs.append(job)
            return true
        }
        guard accepted else { throw FSError.io("the store is closing") }
        wake.signal()
        job.done.wait()
        if let error = job.error { throw FSError(database: error) }
        return result!
    }

    /// Finishes the work already queued, then stops the thread.
    func stop() {
        let wasRunning = queue.withLock { q -> Bool in
            defer { q.stopped = true }
            return !q.stopped
        }
        guard wasRunning else { return }
        wake.signal()
        finished.wait()
    }

    private func loop() {
        while true {
            wake.wait()
            let (batch, stopped) = queue.withLock { q in
                defer { q.jobs.removeAll(keepingCapacity: true) }
                return (q.jobs, q.stopped)
            }
            if !batch.isEmpty { run(batch) }
            if stopped && queue.withLock({ $0.jobs.isEmpty }) {
                finished.signal()
                return
            }
        }
    }

    private func run(_ batch: [Job]) {
        let durable = batch.contains { $0.durable }
        do {
            try pool.writeWithoutTransaction { db in
                if durable { try db.execute(sql: "PRAGMA synchronous = FULL") }
                defer { if durable { try? db.execute(sql: "PRAGMA synchronous = NORMAL") } }
                try db.inTransaction(.immediate) {
                    for job in batch {
                        do {
                            try db.inSavepoint {
                                try job.work(db)
                                return .commit
                            }
                        } catch {
                            job.error = error
                        }
                    }
                    return .commit
                }
            }
        } catch {
            for job in batch where job.error == nil { job.error = error }
        }
        for job in batch { job.done.signal() }
    }
}
