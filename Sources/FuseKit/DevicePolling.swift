import Glibc
import Synchronization

/// Busy polling of a session's device between requests. A program that makes one call after
/// another (tar, a compiler, git) sends its next request a few microseconds after the answer to
/// the last one; a worker asleep in read(2) must then be woken, and on a virtual machine, where
/// an idle processor halts, waking it can take longer than serving the request. So, before it
/// sleeps, one worker at a time (the others sleep at once) polls the device for `window`
/// nanoseconds and takes a request that arrives meanwhile without sleeping at all. The cost is
/// at most `window` of processor time after a request; an idle session costs nothing.
final class DevicePolling: Sendable {
    let window: Int64
    private let someonePolls = Atomic<Bool>(false)

    /// `window`: nanoseconds; 0 turns polling off.
    init(window: Int64) { self.window = max(0, window) }

    /// Returns once `fd` has a request to read (or an error to report), or the window has passed.
    func awaitRequest(on fd: Int32) {
        guard window > 0, !someonePolls.exchange(true, ordering: .acquiring) else { return }
        defer { someonePolls.store(false, ordering: .releasing) }
        var device = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = Self.now() + window
        while poll(&device, 1, 0) == 0, Self.now() < deadline {}
    }

    private static func now() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
    }
}
