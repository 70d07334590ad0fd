import CairnCore
import Foundation
import Glibc
import Synchronization

/// Names the actor behind a request: the `CAIRN_AGENT` variable of the calling process, else the
/// mount's `--actor`, else the user name of the uid. The environment is read once per process
/// (keyed by pid and start time, so a reused pid is not mistaken for its predecessor), and only
/// that one variable is kept: the rest of an environment holds secrets and is never stored.
final class ActorResolver: Sendable {
    private struct Known {
        var startTime: UInt64
        var actor: String?
        var process: String
        /// When the start time was last confirmed; within `trust` it is not read again.
        var checked: Int64
    }

    /// A pid seen less than this long ago is taken to be the same process (a pid is not reused
    /// that fast), which spares a read of /proc per request.
    private static let trust: Int64 = 1_000_000_000

    private let mountActor: String?
    private let cache = Mutex<[Int32: Known]>([:])
    private let userNames = Mutex<[UInt32: String]>([:])

    init(mountActor: String?) { self.mountActor = mountActor }

    /// The actor and the program name (/proc/PID/comm) of a request's process.
    func identify(pid: Int32, uid: UInt32) -> (actor: String, process: String) {
        let known = pid > 0 ? process(pid) : nil
        return (known?.actor ?? mountActor ?? userName(uid), known?.process ?? "")
    }

    private func process(_ pid: Int32) -> Known {
        let now = Timestamp.now().nanoseconds
        let known = cache.withLock { $0[pid] }
        if let known, now - known.checked < Self.trust { return known }
        let start = Self.startTime(pid)
        var fresh: Known
        if let known, known.startTime == start {
            fresh = known
        } else {
            let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? ""
            fresh = Known(
                startTime: start, actor: Self.readAgent(pid),
                process: comm.trimmingCharacters(in: .newlines), checked: now)
        }
        fresh.checked = now
        cache.withLock { c in
            if c.count > 4096 { c.removeAll() }
            c[pid] = fresh
        }
        return fresh
    }

    /// Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot.
    private static func startTime(_ pid: Int32) -> UInt64 {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command name: field 3 is at index 0, so field 22 is at index 19.
        return fields.count > 19 ? UInt64(fields[19]) ?? 0 : 0
    }

    private static func readAgent(_ pid: Int32) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return nil }
        let key = Array("CAIRN_AGENT=".utf8)
        for entry in data.split(separator: 0) where entry.starts(with: key) {
            let value = String(decoding: entry.dropFirst(key.count), as: UTF8.self)
            return value.isEmpty ? nil : String(value.prefix(128))
        }
        return nil
    }

    private func userName(_ uid: UInt32) -> String {
        if let name = userNames.withLock({ $0[uid] }) { return name }
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        let name: String
        if getpwuid_r(uid, &pwd, &buffer, buffer.count, &result) == 0, result != nil {
            name = String(cString: pwd.pw_name)
        } else {
            name = "uid\(uid)"
        }
        userNames.withLock { $0[uid] = name }
        return name
    }
}
