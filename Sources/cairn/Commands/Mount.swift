import ArgumentParser
import CairnCore
import CairnMount
import Dispatch
import Foundation
import Glibc

struct Mount: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mount a workspace on a directory.",
        discussion: """
            Returns once the mount is ready; a background daemon serves it until `cairn unmount`. \
            One daemon owns a store: mounting a second directory of the same store joins it.

            The daemon reads two settings from its environment when it starts: \
            CAIRN_COMMIT_DELAY_MS (1-10000, default 20): how long answered changes may wait for \
            their group commit; CAIRN_POLL_US (0-10000, default 50; 0 on one processor): how long a worker that has \
            answered a request polls for the next one before it sleeps (a program that makes one \
            call after another then waits for no wake-up; 0 turns it off, at the cost of speed).
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "An existing empty directory to mount on.") var mountpoint: String
    @Option(help: "The workspace to mount.") var workspace = "default"
    @Flag(help: "Mount the store root instead: every workspace is a directory in it.") var allWorkspaces = false
    @Flag(help: "Stay in the foreground and serve the mount from this process (Ctrl-C unmounts).") var foreground =
        false
    @Option(name: .customShort("o"), help: "Mount options, comma-separated (ro, allow_other, nosuid, ...).")
    var options: [String] = []
    @Option(help: "The actor recorded for changes from processes without CAIRN_AGENT (default: the user name).")
    var actor: String?
    @Option(help: .hidden) var readyFd: Int32?

    func run() throws {
        try reporting {
            let store = try storeOptions.openReadOnly()
            let wsName = allWorkspaces ? nil : workspace
            if let wsName {
                do {
                    _ = try store.workspace(named: wsName)
                } catch {
                    store.close()
                    throw CLIError(message: "\(error)")
                }
            }
            store.close()
            let request = ControlRequest(
                op: .mount, mountpoint: absolute(mountpoint), workspace: wsName, options: options, actor: actor)
            if try joinRunningDaemon(request) {
                report(joined: true)
                return
            }
            if foreground {
                try serve(request)
            } else {
                try startDaemon()
                report(joined: false)
            }
        }
    }

    /// Asks the store's daemon, if one runs, to add the mount. A daemon that is exiting (its last
    /// mount just ended) is waited out, so a new one can start.
    private func joinRunningDaemon(_ request: ControlRequest) throws -> Bool {
        for _ in 0..<100 {
            guard let response = DaemonClient.send(request, storePath: storeOptions.path) else { return false }
            if response.ok { return true }
            guard response.error == MountError.daemonExiting.description else {
                throw CLIError(message: response.error ?? "the daemon refused the mount")
            }
            usleep(50_000)
        }
        throw CLIError(
            message: "the store's daemon did not finish exiting; retry, or see \(storeOptions.path)/daemon.log")
    }

    private func report(joined: Bool) {
        let ws = allWorkspaces ? "every workspace" : "workspace '\(workspace)'"
        print("mounted \(ws) on \(absolute(mountpoint))\(joined ? " (joined the running daemon)" : "")")
        print("stop with: cairn unmount \(absolute(mountpoint))")
    }

    /// Becomes the store's daemon: mounts, says "ready" on --ready-fd, serves until the end.
    private func serve(_ request: ControlRequest) throws {
        guard let lock = Daemon.acquireLock(storePath: storeOptions.path) else {
            // Another daemon started at the same moment: join it instead.
            let joined: Bool
            do {
                joined = try joinRunningDaemon(request)
            } catch {
                signalReady("error: \(error)")
                throw error
            }
            guard joined else {
                let message = "another cairn daemon owns \(storeOptions.path) but does not answer; if it hangs, kill it"
                signalReady("error: " + message)
                throw CLIError(message: message)
            }
            signalReady("ok")
            return
        }
        let daemon: Daemon
        do {
            daemon = try Daemon(storePath: storeOptions.path, lockFD: lock)
        } catch {
            signalReady("error: \(error)")
            throw CLIError(message: "\(error)", code: .storeUnusable)
        }
        let server = try ControlServer(daemon: daemon)
        server.start()
        do {
            _ = try daemon.mount(
                mountpoint: request.mountpoint!, workspace: request.workspace, options: options, actor: actor)
        } catch {
            signalReady("error: \(error)")
            daemon.shutdown()
            daemon.wait()
            throw CLIError(message: "\(error)")
        }
        let signals = SignalHandling(daemon: daemon)
        signalReady("ok")
        if readyFd != nil {
            FileHandle.standardError.write(Data("cairn daemon \(getpid()) serving \(request.mountpoint!)\n".utf8))
        }
        daemon.wait()
        server.drain()
        withExtendedLifetime(signals) {}
    }

    private func signalReady(_ message: String) {
        guard let fd = readyFd else { return }
        let line = message + "\n"
        _ = line.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// Starts `cairn mount --foreground` as a detached child and waits until it is ready.
    private func startDaemon() throws {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw CLIError(message: "cannot create a pipe") }
        // Only the copy dup'ed to the child's fd 3 may outlive this process's use of the pipe.
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let log = storeOptions.path + "/daemon.log"
        var args = ["cairn", "--store", storeOptions.path, absolute(mountpoint), "--foreground", "--ready-fd", "3"]
        args.insert("mount", at: 1)
        // --name=value: a value starting with '-' must not be read as an option.
        if allWorkspaces { args.append("--all-workspaces") } else { args.append("--workspace=\(workspace)") }
        for o in options { args.append("-o=\(o)") }
        if let actor { args.append("--actor=\(actor)") }
        let pid = try Spawn.detached(executable: "/proc/self/exe", arguments: args, readyFD: pipeFDs[1], logPath: log)
        close(pipeFDs[1])
        var answer = [UInt8]()
        var byte: UInt8 = 0
        while read(pipeFDs[0], &byte, 1) == 1, byte != UInt8(ascii: "\n") { answer.append(byte) }
        close(pipeFDs[0])
        let text = String(decoding: answer, as: UTF8.self)
        guard text == "ok" else {
            var status: Int32 = 0
            waitpid(pid, &status, WNOHANG)
            let detail =
                text.hasPrefix("error: ")
                ? String(text.dropFirst(7)) : "the daemon exited before it was ready; see \(log)"
            throw CLIError(message: detail)
        }
    }

    private func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}

/// SIGTERM and SIGINT end the daemon cleanly: open files are committed, then every mount ends.
final class SignalHandling {
    private var sources: [DispatchSourceSignal] = []

    init(daemon: Daemon) {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { daemon.shutdown() }
            source.resume()
            sources.append(source)
        }
    }
}
