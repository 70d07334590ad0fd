import CairnCore
import Foundation
import FuseKit
import Synchronization

/// Where one reader of `.cairn/events` is: the last seq it was given, and the part of a line
/// that did not fit its last read.
final class EventCursor: Sendable {
    let root: InodeID
    private let state: Mutex<(seq: Int64, pending: [UInt8])>

    init(root: InodeID, after seq: Int64) {
        self.root = root
        state = Mutex((seq, []))
    }

    /// Up to `size` bytes of the next lines, or nil when no change happened since.
    func next(_ size: Int, from fs: FileSystem) throws(FSError) -> [UInt8]? {
        let (seq, pending) = state.withLock { ($0.seq, $0.pending) }
        var bytes = pending
        var last = seq
        if bytes.isEmpty {
            // Read the clock first: when nothing of this workspace came up to it, the cursor may
            // move there (past other workspaces' changes), and later changes are after it.
            let now = try fs.currentSeq()
            let events = try fs.events(after: seq, through: now, in: fs.store.workspace(root: root), limit: 256)
            guard !events.isEmpty else {
                if now > seq { state.withLock { if $0.seq == seq { $0.seq = now } } }
                return nil
            }
            bytes = Array(events.map { EventLine($0).json }.joined().utf8)
            last = events.last!.seq
        }
        let taken = Array(bytes.prefix(size))
        state.withLock { s in
            s.seq = last
            s.pending = Array(bytes.dropFirst(size))
        }
        return taken
    }

    /// Gives back bytes `next` returned that no reader took (its read was interrupted).
    func unread(_ bytes: [UInt8]) {
        state.withLock { $0.pending = bytes + $0.pending }
    }
}

/// Reads of `.cairn/events` that wait for the next change: parked (no worker is held), and
/// answered by a thread that looks for new events every few milliseconds while anyone waits.
final class EventFeed: Sendable {
    private struct Waiting {
        var cursor: EventCursor
        var size: Int
        var request: ParkedRequest
    }

    private let fs: FileSystem
    private let waiting = Mutex<[Int: Waiting]>([:])
    private let nextID = Atomic<Int>(1)
    private let wake = DispatchSemaphore(value: 0)

    init(fs: FileSystem) {
        self.fs = fs
        let thread = Thread { [self] in self.loop() }
        thread.name = "cairn-events"
        thread.start()
    }

    /// Parks a read until its cursor has something.
    func park(_ req: consuming FuseRequest, cursor: EventCursor, size: Int) {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        let parked = ParkedRequest(req) { [self] in _ = waiting.withLock { $0.removeValue(forKey: id) } }
        let first = waiting.withLock { w in
            w[id] = Waiting(cursor: cursor, size: size, request: parked)
            return w.count == 1
        }
        if first { wake.signal() }
    }

    private func loop() {
        while true {
            if waiting.withLock({ $0.isEmpty }) {
                wake.wait()
                continue
            }
            for (id, w) in waiting.withLock({ Array($0) }) {
                let bytes: [UInt8]?
                do {
                    bytes = try w.cursor.next(w.size, from: fs)
                } catch {
                    if w.request.claim() {
                        waiting.withLock { _ = $0.removeValue(forKey: id) }
                        w.request.finish { $0.reply(error: error.errno) }
                    }
                    continue
                }
                guard let bytes else { continue }
                guard w.request.claim() else {
                    w.cursor.unread(bytes)
                    continue
                }
                waiting.withLock { _ = $0.removeValue(forKey: id) }
                w.request.finish { $0.reply(bytes: bytes) }
            }
            usleep(10_000)
        }
    }
}
