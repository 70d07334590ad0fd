import Glibc
import Synchronization

/// A bounded set of open file descriptors, reused by path. The process may hold at most 20,000
/// descriptors, so nothing keeps one per inode or per blob: the least recently used idle
/// descriptor is closed when the cache is full. A descriptor in use is never closed under its user.
final class DescriptorCache: Sendable {
    private struct Slot {
        var fd: Int32
        var users: Int
        var lastUse: UInt64
        var evicted: Bool
    }

    private struct State {
        var slots: [String: Slot] = [:]
        var clock: UInt64 = 0
    }

    private let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = capacity }

    /// Runs `body` with a descriptor for `path` opened with `flags` (O_CREAT implies mode 0600).
    func with<T>(
        _ path: String, flags: Int32, _ body: (Int32) throws(FSError) -> T
    ) throws(FSError) -> T {
        let fd = try acquire(path, flags: flags)
        defer { release(path, fd: fd) }
        return try body(fd)
    }

    /// Closes the cached descriptor of `path`, if any (before it is renamed or removed).
    func forget(_ path: String) {
        let toClose: Int32? = state.withLock { s in
            guard var slot = s.slots.removeValue(forKey: path) else { return nil }
            if slot.users == 0 { return slot.fd }
            slot.evicted = true
            s.slots[path + "\u{0}evicted\(slot.fd)"] = slot
            return nil
        }
        if let toClose { close(toClose) }
    }

    private func acquire(_ path: String, flags: Int32) throws(FSError) -> Int32 {
        let cached: Int32? = state.withLock { s in
            s.clock += 1
            guard var slot = s.slots[path], !slot.evicted else { return nil }
            slot.users += 1
            slot.lastUse = s.clock
            s.slots[path] = slot
            return slot.fd
        }
        if let cached { return cached }
        let fd = open(path, flags | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FSError.fromErrno(errno, "open \(path)") }
        var toClose: [Int32] = []
        let winner: Int32 = state.withLock { s in
            if var existing = s.slots[path], !existing.evicted {
                // Another thread opened it meanwhile: use theirs, close ours.
                existing.users += 1
                s.slots[path] = existing
                toClose.append(fd)
                return existing.fd
            }
            s.slots[path] = Slot(fd: fd, users: 1, lastUse: s.clock, evicted: false)
            if s.slots.count > capacity { toClose.append(contentsOf: Self.evictIdle(&s, keep: capacity)) }
            return fd
        }
        for fd in toClose { close(fd) }
        return winner
    }

    private func release(_ path: String, fd: Int32) {
        let toClose: Int32? = state.withLock { s in
            if var slot = s.slots[path], slot.fd == fd, !slot.evicted {
                slot.users -= 1
                s.slots[path] = slot
                return nil
            }
            let evictedKey = path + "\u{0}evicted\(fd)"
            guard var slot = s.slots[evictedKey] else { return nil }
            slot.users -= 1
            if slot.users == 0 {
                s.slots.removeValue(forKey: evictedKey)
                return fd
            }
            s.slots[evictedKey] = slot
            return nil
        }
        if let toClose { close(toClose) }
    }

    private static func evictIdle(_ s: inout State, keep: Int) -> [Int32] {
        let idle = s.slots.filter { $0.value.users == 0 && !$0.value.evicted }
            .sorted { $0.value.lastUse < $1.value.lastUse }
        let excess = s.slots.count - keep
        guard excess > 0 else { return [] }
        var closed: [Int32] = []
        for (key, slot) in idle.prefix(max(excess, keep / 8)) {
            s.slots.removeValue(forKey: key)
            closed.append(slot.fd)
        }
        return closed
    }

    var openCount: Int { state.withLock { $0.slots.count } }
}
