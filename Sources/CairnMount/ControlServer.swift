import CairnCore
import Foundation
import Glibc
import Synchronization

/// Serves the control protocol on `<store>/daemon.sock`, one thread per connection (the CLI opens
/// one connection per command, so there are few).
public final class ControlServer: Sendable {
    private let daemon: Daemon
    private let fd: Int32
    /// Requests being answered: the daemon must not exit before an unmount's answer is sent.
    private let inFlight = Atomic<Int>(0)

    public init(daemon: Daemon) throws {
        self.daemon = daemon
        let path = daemon.store.path + "/daemon.sock"
        unlink(path)
        fd = try UnixSocket.listen(path: path)
    }

    public func start() {
        let thread = Thread { [self] in self.acceptLoop() }
        thread.name = "cairn-control"
        thread.start()
    }

    /// Waits (up to 2 s) until every request received has been answered.
    public func drain() {
        for _ in 0..<200 where inFlight.load(ordering: .relaxed) > 0 { usleep(10_000) }
    }

    private func acceptLoop() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            // Not inherited by the fusermount3 that libfuse may start.
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            inFlight.wrappingAdd(1, ordering: .relaxed)
            let thread = Thread { [self] in
                defer {
                    close(client)
                    inFlight.wrappingSubtract(1, ordering: .relaxed)
                }
                guard let line = UnixSocket.readLine(client) else { return }
                if let request = try? JSONDecoder().decode(ControlRequest.self, from: line), request.op == .lock {
                    return self.holdLock(request, client: client, peer: UnixSocket.peer(client))
                }
                let response = self.handle(line, peer: UnixSocket.peer(client)) { progress in
                    if let data = try? JSONEncoder().encode(ControlResponse.progress(progress)) {
                        UnixSocket.writeLine(client, data)
                    }
                }
                let data = (try? JSONEncoder().encode(response)) ?? Data("{\"ok\":false}".utf8)
                UnixSocket.writeLine(client, data)
            }
            thread.start()
        }
    }

    /// `peer` is the connecting process's uid and gid as the kernel reports them (SO_PEERCRED).
    private func handle(
        _ line: Data, peer: (uid: UInt32, gid: UInt32), progress: (GCProgress) -> Void
    ) -> ControlResponse {
        guard let request = try? JSONDecoder().decode(ControlRequest.self, from: line) else {
            return .failure("malformed control request")
        }
        do {
            switch request.op {
            case .mount:
                guard let mountpoint = request.mountpoint else { return .failure("mount needs a mountpoint") }
                _ = try daemon.mount(
                    mountpoint: mountpoint, workspace: request.workspace, options: request.options ?? [],
                    actor: request.actor)
            case .unmount:
                guard let mountpoint = request.mountpoint else { return .failure("unmount needs a mountpoint") }
                try daemon.unmount(mountpoint: mountpoint)
            case .perform:
                guard let action = request.action else { return .failure("perform needs an action") }
                let caller = Caller(uid: peer.uid, gid: peer.gid, pid: 0, actor: request.actor ?? "cli")
                var response = ControlResponse(ok: true, error: nil, status: nil)
                response.result = try daemon.perform(action, caller: caller, progress: progress)
                return response
            case .locks:
                var response = ControlResponse(ok: true, error: nil, status: nil)
                response.locks = try daemon.fs.lockReports(
                    workspace: try request.workspace.map { try daemon.store.workspace(named: $0) })
                return response
            case .lock:
                return .failure("lock is served on a connection of its own")
            case .webhookTest:
                guard let id = request.id else { return .failure("webhookTest needs an id") }
                let (status, error) = try daemon.webhooks.ping(id)
                var response = ControlResponse(ok: true, error: nil, status: nil)
                response.httpStatus = status
                response.detail = error
                return response
            case .webhookRetry:
                guard let id = request.id else { return .failure("webhookRetry needs a delivery id") }
                guard let dead = try daemon.fs.deliveries(limit: Int.max).first(where: { $0.id == id }) else {
                    return .failure("no delivery \(id) (see `cairn webhook deliveries`)")
                }
                var response = ControlResponse(ok: true, error: nil, status: nil)
                response.delivery = try daemon.webhooks.retry(dead)
                return response
            case .commit:
                try daemon.fs.commitAnswered()
                return ControlResponse(ok: true, error: nil, status: nil)
            case .status:
                break
            case .shutdown:
                daemon.shutdown()
            }
            return ControlResponse(ok: true, error: nil, status: daemon.status)
        } catch {
            return .failure("\(error)")
        }
    }
}

extension ControlServer {
    /// `cairn lock`: takes an flock-style lock for the client and holds it while the connection
    /// stays open (the client runs its command meanwhile); it goes when the client closes the
    /// connection or dies. Waiting blocks this connection's thread only.
    private func holdLock(_ request: ControlRequest, client: Int32, peer: (uid: UInt32, gid: UInt32)) {
        func answer(_ response: ControlResponse) {
            UnixSocket.writeLine(client, (try? JSONEncoder().encode(response)) ?? Data("{\"ok\":false}".utf8))
        }
        let fs = daemon.fs
        let session = daemon.reserveSessionID()
        defer { fs.locks.endSession(session) }
        let spec: LockSpec
        do throws(FSError) {
            let ws = try daemon.store.workspace(named: request.workspace ?? "default")
            let file = try fs.resolve(request.path ?? "", from: ws.root)
            spec = LockSpec(
                inode: file.id, kind: .flock, exclusive: !(request.shared ?? false),
                owner: LockOwner(session: session, id: 1), pid: request.pid ?? 0, actor: request.actor ?? "cli",
                place: "cli")
        } catch {
            return answer(.failure("\(error)"))
        }
        let done = DispatchSemaphore(value: 0)
        let claimed = Mutex(false)
        let outcome = Mutex<Result<Int64, FSError>?>(nil)
        let claim: @Sendable () -> Bool = {
            claimed.withLock { c in
                defer { c = true }
                return !c
            }
        }
        do throws(FSError) {
            let wait = LockTable.Wait(
                claim: claim, alive: { !claimed.withLock { $0 } },
                granted: { result in
                    outcome.withLock { $0 = result }
                    done.signal()
                })
            switch try fs.locks.lock(spec, wait: request.wait == 0 ? nil : wait) {
            case .granted(let token): outcome.withLock { $0 = .success(token) }
            case .conflict(let holder):
                return answer(.failure("locked by \(holder.actor) (pid \(holder.pid) on \(holder.place))"))
            case .parked(let waiter):
                // Waits in slices, watching the client: one that went away (Ctrl-C) leaves the queue.
                let deadline = request.wait.map { Date().addingTimeInterval($0) }
                while done.wait(timeout: .now() + 0.1) == .timedOut {
                    let expired = deadline.map { Date() >= $0 } ?? false
                    guard expired || UnixSocket.hungUp(client) else { continue }
                    if claim() {
                        fs.locks.cancel(waiter: waiter)
                        return answer(.failure("still locked after \(request.wait ?? 0) seconds"))
                    }
                    done.wait()  // granted just now
                    break
                }
            }
        } catch {
            return answer(.failure("\(error)"))
        }
        switch outcome.withLock({ $0 }) {
        case .success(let token)?:
            var response = ControlResponse(ok: true, error: nil, status: nil)
            response.token = token
            answer(response)
            // Held until the client closes the connection (or says anything).
            _ = UnixSocket.readLine(client)
        case .failure(let error)?: answer(.failure("\(error)"))
        case nil: answer(.failure("the lock was not granted"))
        }
    }
}

/// Minimal unix-domain stream sockets for the control protocol.
public enum UnixSocket {
    static func address(_ path: String) -> sockaddr_un? {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return addr
    }

    static func listen(path: String) throws -> Int32 {
        guard var addr = address(path) else { throw MountError.daemon("socket path too long: \(path)") }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw MountError.daemon("cannot create the control socket") }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, Glibc.listen(fd, 16) == 0 else {
            close(fd)
            throw MountError.daemon("cannot listen on \(path): \(String(cString: strerror(errno)))")
        }
        chmod(path, 0o600)
        return fd
    }

    /// Connects to a daemon's socket; nil when no daemon listens there.
    public static func connect(path: String) -> Int32? {
        guard var addr = address(path) else { return nil }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard ok == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    static func peer(_ fd: Int32) -> (uid: UInt32, gid: UInt32) {
        var cred = PeerCredentials()
        var length = socklen_t(MemoryLayout<PeerCredentials>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0 else { return (UInt32.max, UInt32.max) }
        return (cred.uid, cred.gid)
    }

    static func readLine(_ fd: Int32) -> Data? {
        var data = Data()
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1 {
            if byte == UInt8(ascii: "\n") { return data }
            data.append(byte)
            if data.count > 1 << 20 { return nil }
        }
        return data.isEmpty ? nil : data
    }

    /// Whether the other end closed the connection.
    static func hungUp(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 0) > 0 else { return false }
        if p.revents & Int16(POLLHUP | POLLERR) != 0 { return true }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) == 0
    }

    static func writeLine(_ fd: Int32, _ data: Data) {
        var line = data
        line.append(UInt8(ascii: "\n"))
        line.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n <= 0 { return }
                done += n
            }
        }
    }
}

/// The CLI's side of the control protocol.
public enum DaemonClient {
    /// Sends a request to the store's daemon; nil when no daemon runs.
    /// `progress` hears the progress lines of a long action before its answer.
    /// `timeout`: the longest to wait for each line of the answer (nil: as long as it takes).
    public static func send(
        _ request: ControlRequest, storePath: String, timeout: Double? = nil,
        progress: (GCProgress) -> Void = { _ in }
    ) -> ControlResponse? {
        guard let fd = UnixSocket.connect(path: storePath + "/daemon.sock") else { return nil }
        defer { close(fd) }
        if let timeout {
            var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1e6))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        }
        guard let body = try? JSONEncoder().encode(request) else { return nil }
        UnixSocket.writeLine(fd, body)
        while true {
            guard let line = UnixSocket.readLine(fd) else {
                return .failure("the daemon closed the connection without answering")
            }
            guard let response = try? JSONDecoder().decode(ControlResponse.self, from: line) else {
                return .failure("unreadable daemon answer")
            }
            guard let step = response.progress else { return response }
            progress(step)
        }
    }
}

extension DaemonClient {
    /// Sends a request and keeps the connection open after its answer (`cairn lock` holds its
    /// lock while the connection lives). nil when no daemon runs.
    public static func hold(_ request: ControlRequest, storePath: String) -> (fd: Int32, response: ControlResponse)? {
        guard let fd = UnixSocket.connect(path: storePath + "/daemon.sock") else { return nil }
        guard let body = try? JSONEncoder().encode(request) else {
            close(fd)
            return nil
        }
        UnixSocket.writeLine(fd, body)
        guard let line = UnixSocket.readLine(fd),
            let response = try? JSONDecoder().decode(ControlResponse.self, from: line)
        else { return (fd, .failure("the daemon closed the connection without answering")) }
        return (fd, response)
    }
}

/// Linux's `struct ucred` (hidden behind _GNU_SOURCE in the Glibc module): pid, uid, gid.
private struct PeerCredentials {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
