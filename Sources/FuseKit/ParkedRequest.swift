import CFuse3
import Dispatch
import Glibc
import Synchronization

/// A request that waits for something (a lock, an event) without holding a libfuse worker: it
/// is kept here and answered later from any thread. Exactly one party answers it: whoever first
/// `claim`s it (the code that grants what it waits for, or an interrupt from the kernel, which
/// answers `EINTR` when the waiting process is signalled).
///
/// The answer is always sent outside libfuse's interrupt callback, after unregistering that
/// callback: libfuse calls it with the request's lock held, and a request answered there could be
/// freed while another interrupt is delivered.
public final class ParkedRequest: @unchecked Sendable {
    // SAFETY: `raw` is only passed to libfuse functions that take the request's own locks;
    // the request itself lives in the mutex.
    private struct State: ~Copyable {
        var request: FuseRequest?
        var claimed = false
    }

    private let state: Mutex<State>
    private let raw: fuse_req_t
    private let onInterrupt: @Sendable () -> Void

    /// Parks `request`. `onInterrupt` runs when the kernel interrupts the wait (before `EINTR`
    /// is answered): forget the waiter there.
    public init(_ request: consuming FuseRequest, onInterrupt: @escaping @Sendable () -> Void) {
        raw = request.raw
        self.onInterrupt = onInterrupt
        state = Mutex(State(request: request))
        // libfuse keeps a reference until the callback is unregistered (in `finish`).
        fuse_req_interrupt_func(raw, parkedRequestInterrupted, Unmanaged.passRetained(self).toOpaque())
    }

    /// Whether someone took the right to answer (an interrupt, or the thing waited for).
    public var isClaimed: Bool { state.withLock { $0.claimed } }

    /// Whether this party may answer: false when someone else did, or will.
    public func claim() -> Bool {
        state.withLock { s in
            guard !s.claimed else { return false }
            s.claimed = true
            return true
        }
    }

    /// Answers a claimed request (call once, after `claim` returned true, from any thread that
    /// is not libfuse's interrupt callback).
    public func finish(_ answer: (consuming FuseRequest) -> Void) {
        fuse_req_interrupt_func(raw, nil, nil)  // waits for a callback in progress to return
        let request = state.withLock { s in s.request.take() }
        Unmanaged.passUnretained(self).release()
        if let request { answer(request) }
    }

    fileprivate func interrupted() {
        guard claim() else { return }
        DispatchQueue.global().async { [self] in
            onInterrupt()
            finish { $0.reply(error: EINTR) }
        }
    }
}

/// libfuse's interrupt callback (a C function pointer cannot capture context).
private func parkedRequestInterrupted(_ req: fuse_req_t?, _ data: UnsafeMutableRawPointer?) {
    guard let data else { return }
    Unmanaged<ParkedRequest>.fromOpaque(data).takeUnretainedValue().interrupted()
}
