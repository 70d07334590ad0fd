import CairnCore
import Foundation
import FuseKit
import Synchronization

/// Where one reader of `.cairn/events` is: the last seq it was given, and the part of a line
/// that did not fit its last read. `serially` orders everything done with it: a read answered
/// at once and a parked read answered by the feed never interleave, so lines come in order, once.
final class EventCursor: @unchecked Sendable {
    // SAFETY: `seq` and `pending` are touched only inside `serially`, under `lock`.
    let root: InodeID
    private let lock = NSLock()
    private var seq: Int64
    private var pending: [UInt8] = []

    init(root: InodeID, after seq: Int64) {
        self.root = root
        self.seq = seq
    }

    func serially<T>(_ body: () throws(FSError) -> T) throws(FSError) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// Up to `size` bytes of the next lines, or nil when no change happened since (call inside
    /// `serially`). The changes are journaled first: a line once read keeps its seq.
    func next(_ size: Int, from fs: FileSystem) throws(FSError) -> [UInt8]? {
        if pending.isEmpty {
            // Read the clock first: when nothing of this workspace came up to it, the cursor may
            // move there (past other workspaces' changes), and later changes are after it.
            let now = try fs.currentSeq()
            let events = try fs.events(after: seq, through: now, in: fs.store.workspace(root: root), limit: 256)
            guard let last = events.last else {
                seq = max(seq, now)
                return nil
            }
            try fs.journalPending()
            pending = Array(events.map { EventLine($0).json }.joined().utf8)
            seq = last.seq
        }
        let taken = Array(pending.prefix(size))
        pending.removeFirst(taken.count)
        return taken
    }

    /// Gives back bytes `next` returned that no reader took (call inside `serially`).
    func unread(_ bytes: [UInt8]) { pending = bytes + pending }
}

/// Reads of `.cairn/events` that wait for the next change: parked (no worker is held), and
/// answered by a thread that looks for new events every few milliseconds while anyone waits.
final class EventFeed: Sendable {
    private struct Waiting {
        var cursor: EventCursor
        var size: Int
        var request: ParkedRequest
    }

    private struct State {
        var waiting: [Int: Waiting] = [:]
        var nextID = 1
        var closed = false
    }

    private let fs: FileSystem
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)

    init(fs: FileSystem) {
        self.fs = fs
        let thread = Thread { [self] in self.loop() }
        thread.name = "cairn-events"
        thread.start()
    }

    /// Parks a read until its cursor has something.
    func park(_ req: consuming FuseRequest, cursor: EventCursor, size: Int) {
        let id = state.withLock { s in
            defer { s.nextID += 1 }
            return s.nextID
        }
        // Registered before the interrupt callback can fire, so an interrupt always finds it.
        let parked = ParkedRequest(req) { [self] in _ = state.withLock { $0.waiting.removeValue(forKey: id) } }
        let (closed, first) = state.withLock { s -> (Bool, Bool) in
            if s.closed { return (true, false) }
            s.waiting[id] = Waiting(cursor: cursor, size: size, request: parked)
            return (false, s.waiting.count == 1)
        }
        if closed, parked.claim() { parked.finish { $0.reply(error: EIO) } }
        if first { wake.signal() }
    }

    /// The session ends: every parked read is answered, and the feed stops.
    func close() {
        let all = state.withLock { s -> [Waiting] in
            s.closed = true
            defer { s.waiting.removeAll() }
            return Array(s.waiting.values)
        }
        for w in all where w.request.claim() { w.request.finish { $0.reply(error: EIO) } }
        wake.signal()
    }

    private func loop() {
        while true {
            let (closed, waiting) = state.withLock { s in (s.closed, Array(s.waiting)) }
            if closed { return }
            if waiting.isEmpty {
                wake.wait()
                continue
            }
            for (id, w) in waiting { serve(id, w) }
            usleep(10_000)
        }
    }

    private func serve(_ id: Int, _ w: Waiting) {
        let forget = { [self] in _ = state.withLock { $0.waiting.removeValue(forKey: id) } }
        do {
            try w.cursor.serially { () throws(FSError) in
                guard let bytes = try w.cursor.next(w.size, from: fs) else {
                    if w.request.isClaimed { forget() }  // interrupted meanwhile
                    return
                }
                guard w.request.claim() else {
                    w.cursor.unread(bytes)
                    forget()
                    return
                }
                forget()
                w.request.finish { $0.reply(bytes: bytes) }
            }
        } catch {
            forget()
            if w.request.claim() { w.request.finish { $0.reply(error: error.errno) } }
        }
    }
}
