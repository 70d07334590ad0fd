import Glibc
import Synchronization

/// Which worker reads the session's device, and how. A program that makes one call after
/// another (tar, a compiler, git) sends its next request a few microseconds after the answer
/// to the last one. Two things would make it wait for more than the request's own work:
///
/// - a worker asleep in read(2) must be woken, and on a virtual machine, where an idle
///   processor halts, waking it can take longer than serving the request; and
/// - every request wakes one of the workers asleep in read(2) (the kernel's queue wakes one per
///   request), a context switch and often a wasted one, on the processor the caller needs next.
///
/// So one worker at a time is the reader: it polls the device for `window` nanoseconds after
/// each request and takes the next one without sleeping, and only then blocks in read(2). The
/// other workers wait here, not in the kernel, so a request wakes nobody. The reader keeps the
/// role while it serves the request it read, unless another request is already waiting then
/// and the machine has processors to spare (`handsOffWhenWaiting`: callers in parallel, the
/// next worker reads while it works), or its request takes longer than `handOffAfter` (a
/// watcher hands the role on, so one slow request never holds up the others for long). An
/// idle session costs nothing.
final class DeviceReader: @unchecked Sendable {
    let window: Int64
    /// More than two processors: with two, the callers and one worker fill the machine, and a
    /// second worker would only take turns with them (two create loops at once took 0.73 s
    /// with it, 0.63 s without).
    let handsOffWhenWaiting = sysconf(Int32(_SC_NPROCESSORS_ONLN)) > 2
    /// How long the reader may serve a request before another worker reads in its place.
    static let handOffAfter: Int64 = 1_000_000

    private struct State {
        /// The reader (a pthread_self value), 0 when the role is free.
        var reader: UInt = 0
        /// When the reader began to serve its request; 0 while it reads.
        var servingSince: Int64 = 0
        /// The reader sleeps in read(2): the watcher sleeps too (`watcherAsleep`), until the
        /// reader has a request.
        var blocked = false
        var watcherAsleep = false
        var waiting = 0
        /// The device is gone (unmounted): nobody waits for the role any more.
        var closed = false
        var watching = false
    }

    private let state = Mutex(State())
    /// Workers waiting for the role. POSIX semaphores: sem_wait is a cancellation point, and
    /// libfuse cancels its workers when the session ends.
    private let turn: UnsafeMutablePointer<sem_t>
    private let watcherWake: UnsafeMutablePointer<sem_t>
    /// Marks the workers that have read: libfuse ends surplus idle workers, and one that ends
    /// as the reader gives the role up on its way out.
    private var workerKey = pthread_key_t()

    /// `window`: nanoseconds; 0 turns polling off. The reader lives until the session's loop
    /// is over and its workers are gone.
    init(window: Int64) {
        self.window = max(0, window)
        turn = .allocate(capacity: 1)
        watcherWake = .allocate(capacity: 1)
        sem_init(turn, 0, 0)
        sem_init(watcherWake, 0, 0)
        pthread_key_create(&workerKey) { reader in
            Unmanaged<DeviceReader>.fromOpaque(reader!).takeUnretainedValue().handOff(from: UInt(pthread_self()))
        }
    }

    deinit {
        pthread_key_delete(workerKey)
        sem_destroy(turn)
        sem_destroy(watcherWake)
        turn.deallocate()
        watcherWake.deallocate()
    }

    /// read(2) of the next request, by the reader (the calling worker waits for the role).
    func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ length: Int) -> Int {
        let me = UInt(pthread_self())
        if pthread_getspecific(workerKey) == nil {
            pthread_setspecific(workerKey, Unmanaged.passUnretained(self).toOpaque())
        }
        guard takeRole(me) else { return Glibc.read(fd, buffer, length) }
        startWatcherOnce()
        let ready = awaitRequest(on: fd)
        if !ready { state.withLock { if $0.reader == me { $0.blocked = true } } }
        let count = Glibc.read(fd, buffer, length)
        let error = errno
        // libfuse reads errno after this returns.
        defer { errno = error }
        if count < 0, error != EINTR, error != EAGAIN, error != ENOENT {
            // The session is over: every worker goes to read(2), which tells it so.
            close()
            return count
        }
        let wakeWatcher = state.withLock { s -> Bool in
            guard s.reader == me else { return false }
            s.blocked = false
            s.servingSince = Self.now()
            defer { s.watcherAsleep = false }
            return s.watcherAsleep
        }
        if wakeWatcher { sem_post(watcherWake) }
        // Callers in parallel: another request waits already, so another worker reads it.
        if count > 0, handsOffWhenWaiting, hasRequest(fd) { handOff(from: me) }
        return count
    }

    /// Waits until the calling worker is the reader; false: the session is closed.
    private func takeRole(_ me: UInt) -> Bool {
        while true {
            let mine = state.withLock { s -> Bool? in
                if s.closed { return nil }
                if s.reader == me || s.reader == 0 {
                    s.reader = me
                    s.servingSince = 0
                    return true
                }
                s.waiting += 1
                return false
            }
            guard let mine else { return false }
            if mine { return true }
            while sem_wait(turn) != 0, errno == EINTR {}
            state.withLock { $0.waiting -= 1 }
        }
    }

    /// Gives the role up (if `from` still has it and, for `onlyIfLate`, has served one request
    /// for longer than `handOffAfter`), waking a waiting worker to take it.
    private func handOff(from: UInt, onlyIfLate: Bool = false) {
        let wake = state.withLock { s -> Bool in
            guard s.reader == from else { return false }
            if onlyIfLate, s.servingSince == 0 || Self.now() - s.servingSince <= Self.handOffAfter { return false }
            s.reader = 0
            s.servingSince = 0
            return s.waiting > 0
        }
        if wake { sem_post(turn) }
    }

    /// Polls for up to `window`; true once a request (or an error) is there to read.
    private func awaitRequest(on fd: Int32) -> Bool {
        guard window > 0 else { return false }
        let deadline = Self.now() + window
        while !hasRequest(fd) {
            if Self.now() >= deadline { return false }
        }
        return true
    }

    private func hasRequest(_ fd: Int32) -> Bool {
        var device = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&device, 1, 0) != 0
    }

    /// The watcher: while the reader serves a request, it looks every `handOffAfter / 2`
    /// whether it has served it for longer than `handOffAfter`, and hands the role on if so.
    /// It sleeps while the reader sleeps in read(2), and ends with the session.
    private func startWatcherOnce() {
        let start = state.withLock { s -> Bool in
            defer { s.watching = true }
            return !s.watching
        }
        guard start else { return }
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let made = pthread_create(
            &thread, nil,
            { context in
                let reader = Unmanaged<DeviceReader>.fromOpaque(context!).takeRetainedValue()
                reader.watch()
                return nil
            }, context)
        if made == 0 {
            pthread_detach(thread)
        } else {
            // The next read tries again: without a watcher a slow request holds the device.
            Unmanaged<DeviceReader>.fromOpaque(context).release()
            state.withLock { $0.watching = false }
        }
    }

    private func watch() {
        while true {
            let (closed, blocked, late) = state.withLock { s in
                s.watcherAsleep = s.blocked
                return (
                    s.closed, s.blocked,
                    s.reader != 0 && s.servingSince != 0 && Self.now() - s.servingSince > Self.handOffAfter
                        ? s.reader : 0
                )
            }
            if closed { return }
            if late != 0 { handOff(from: late, onlyIfLate: true) }
            if blocked {
                while sem_wait(watcherWake) != 0, errno == EINTR {}
            } else {
                usleep(UInt32(Self.handOffAfter / 2_000))
            }
        }
    }

    private static func now() -> Int64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Int64(t.tv_sec) * 1_000_000_000 + Int64(t.tv_nsec)
    }

    /// Ends the watcher and lets waiting workers go (the session's loop is over).
    func close() {
        let waiting = state.withLock { s -> Int in
            s.closed = true
            return s.waiting
        }
        for _ in 0..<waiting { sem_post(turn) }
        sem_post(watcherWake)
    }
}
