import CairnCore
import Foundation
import FoundationNetworking
import Synchronization

/// Sends each webhook the events its filters keep, one at a time and in seq order, from its
/// durable cursor: at least once (a daemon killed after a POST and before moving the cursor sends
/// that event again), never out of order. A failed POST (no answer in 5 s, or a status outside
/// 2xx) is retried after 0.5 s, 1 s, 2 s, … (at most a minute apart; see `firstWait`); after
/// `maxAttempts` the event
/// goes to the dead-letter list (`cairn webhook deliveries`, `cairn webhook retry`) and the
/// webhook moves on, so one bad event never blocks it for ever.
final class WebhookDispatcher: Sendable {
    static let maxAttempts = 8
    /// The first wait after a failure (doubled after each): `CAIRN_WEBHOOK_RETRY_SECONDS` of the
    /// daemon's environment, else 0.5 s.
    private let firstWait: Int64 = {
        let seconds = ProcessInfo.processInfo.environment["CAIRN_WEBHOOK_RETRY_SECONDS"].flatMap(Double.init) ?? 0.5
        return Int64(max(0.001, seconds) * 1e9)
    }()
    private let fs: FileSystem
    private let stopping = Atomic<Bool>(false)
    /// Per webhook: the event it failed on, how many times, and when to try again (monotonic ns).
    private let retries = Mutex<[Int64: (seq: Int64, attempts: Int, next: Int64)]>([:])

    init(fs: FileSystem) {
        self.fs = fs
        let thread = Thread { [self] in self.loop() }
        thread.name = "cairn-webhooks"
        thread.start()
    }

    func stop() { stopping.store(true, ordering: .relaxed) }

    private func loop() {
        while !stopping.load(ordering: .relaxed) {
            var busy = false
            if let hooks = try? fs.webhooks() {
                for hook in hooks where serve(hook) { busy = true }
            }
            // Waits only when no webhook has anything to send now.
            if !busy { usleep(20_000) }
        }
    }

    /// Sends a webhook its next event, if one is due; true when one was sent (there may be more).
    private func serve(_ hook: Webhook) -> Bool {
        let now = Self.monotonic()
        if let retry = retries.withLock({ $0[hook.id] }), retry.next > now { return false }
        let workspace: Workspace?
        do throws(FSError) {
            workspace = try hook.workspace.map { name throws(FSError) in try fs.store.workspace(named: name) }
        } catch {
            return false  // its workspace is gone: nothing more to send
        }
        guard let events = try? fs.events(after: hook.cursor, in: workspace, limit: 200), let last = events.last
        else { return false }
        let filter = EventFilter(pattern: hook.pathGlob, kinds: hook.kinds)
        guard let event = events.first(where: filter.matches) else {
            try? fs.advanceWebhook(hook.id, to: last.seq)
            return false
        }
        // Published only once journaled: a daemon killed now re-sends it under the same seq.
        guard (try? fs.journalPending()) != nil else { return false }
        let (status, error) = send(hook, event)
        let earlier = retries.withLock { $0[hook.id] }
        let attempts = (earlier?.seq == event.seq ? earlier!.attempts : 0) + 1
        let delivered = status.map { (200..<300).contains($0) } ?? false
        if delivered || attempts >= Self.maxAttempts {
            retries.withLock { _ = $0.removeValue(forKey: hook.id) }
            try? fs.recordDelivery(
                webhook: hook.id, seq: event.seq, delivered: delivered, attempts: attempts, status: status,
                error: delivered ? nil : error ?? "HTTP \(status ?? 0)", moveCursor: true)
            return true
        }
        let wait = min(firstWait << (attempts - 1), 60_000_000_000)
        retries.withLock { $0[hook.id] = (event.seq, attempts, now + wait) }
        return false
    }

    /// POSTs one event; returns the HTTP status, or an error when no answer came.
    func send(_ hook: Webhook, _ event: ChangeRecord) -> (status: Int?, error: String?) {
        guard let url = URL(string: hook.url), let (body, headers) = try? fs.webhookRequest(hook, event: event) else {
            return (nil, "cannot build the request")
        }
        var request = URLRequest(url: url, timeoutInterval: 5)
        request.httpMethod = "POST"
        request.httpBody = body
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<(Int?, String?)>((nil, nil))
        let task = URLSession.shared.dataTask(with: request) { _, response, error in
            outcome.withLock {
                $0 = ((response as? HTTPURLResponse)?.statusCode, error.map { "\($0.localizedDescription)" })
            }
            done.signal()
        }
        task.resume()
        if done.wait(timeout: .now() + 6) == .timedOut {
            task.cancel()
            return (nil, "no answer within 5 s")
        }
        return outcome.withLock { $0 }
    }

    /// Sends a delivery from the dead-letter list again, now, and records the outcome.
    func retry(_ delivery: WebhookDelivery) throws(FSError) -> WebhookDelivery {
        let hook = try fs.webhook(delivery.webhook)
        guard let event = try fs.events(after: delivery.seq - 1, limit: 1).first, event.seq == delivery.seq else {
            throw FSError.invalidArgument("event @\(delivery.seq) is no longer in the store")
        }
        let (status, error) = send(hook, event)
        let delivered = status.map { (200..<300).contains($0) } ?? false
        try fs.recordDelivery(
            webhook: hook.id, seq: event.seq, delivered: delivered, attempts: 1, status: status,
            error: delivered ? nil : error ?? "HTTP \(status ?? 0)", moveCursor: false)
        guard let recorded = try fs.deliveries(webhook: hook.id, limit: 1).first else {
            throw FSError.io("the delivery was not recorded")
        }
        return recorded
    }

    /// A test event (kind `ping`) sent now; nothing is recorded.
    func ping(_ id: Int64) throws(FSError) -> (status: Int?, error: String?) {
        let hook = try fs.webhook(id)
        let ping = ChangeRecord(
            seq: 0, time: .now(), workspace: hook.workspace ?? "", kind: "ping", path: "", oldPath: nil,
            actor: "cairn", version: nil, cause: nil, size: nil)
        return send(hook, ping)
    }

    private static func monotonic() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
