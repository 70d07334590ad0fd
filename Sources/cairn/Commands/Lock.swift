import ArgumentParser
import CairnCore
import CairnMount
import Foundation
import Glibc

struct Lock: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command while holding a lock on a file, for every mount of the store (like flock(1)).",
        discussion: """
            The lock is flock-style: it excludes flock(2) holders and other `cairn lock` commands \
            on every mount of the store, not fcntl (POSIX) locks, which are independent of flock \
            on Linux. The store's daemon holds it for the command and drops it when the command \
            ends or this process dies. Exit status: the command's, or 1 when the lock was not \
            taken (held by someone else past --wait; --wait 0 does not wait).
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The file: a path in a Cairn mount, or relative to the workspace root.") var path: String
    @Flag(help: "Take a shared lock (many holders) instead of an exclusive one.") var shared = false
    @Option(help: "Give up after this many seconds (default: wait as long as it takes).") var wait: Double?
    @Option(help: "The workspace (default: the mount's, else 'default').") var workspace: String?
    @Flag(help: "Say nothing on stderr about the lock.") var quiet = false
    @Argument(parsing: .postTerminator, help: "The command to run, after --.") var command: [String] = []

    func run() throws {
        try reporting {
            let argv = command
            guard !argv.isEmpty else { throw CLIError(message: "give the command to run after --", code: .usage) }
            let target = PathArgument(path, workspace: workspace)
            let request = ControlRequest(
                op: .lock, workspace: target.workspace, actor: Caller.commandLine.actor, path: target.relative,
                shared: shared, wait: wait, pid: getpid())
            guard let (fd, response) = DaemonClient.hold(request, storePath: storeOptions.path) else {
                throw CLIError(
                    message:
                        "no Cairn daemon runs for this store: locks are kept by the daemon of a mounted store; mount it first"
                )
            }
            defer { close(fd) }
            guard response.ok else { throw CLIError(message: response.error ?? "the lock was not granted") }
            if !quiet {
                FileHandle.standardError.write(
                    Data(
                        "cairn: holding an flock-style \(shared ? "shared" : "exclusive") lock on \(target.workspace):\(target.relative) (token \(response.token ?? 0))\n"
                            .utf8))
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = argv
            do {
                try process.run()
            } catch {
                throw CLIError(message: "cannot run \(argv[0]): \(error)")
            }
            process.waitUntilExit()
            throw ExitCode(process.terminationStatus)
        }
    }
}

struct Locks: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the locks held on the store's files: holder, pid, mount, kind, range, since, token.")

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "Only this workspace's locks.") var workspace: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try reporting {
            guard
                let response = DaemonClient.send(
                    ControlRequest(op: .locks, workspace: workspace), storePath: storeOptions.path)
            else {
                if json { return try printJSON([LockReport]()) }
                return print("no locks: no daemon runs for this store")
            }
            guard response.ok else { throw CLIError(message: response.error ?? "the daemon refused") }
            let locks = response.locks ?? []
            if json { return try printJSON(locks) }
            if locks.isEmpty { return print("no locks held") }
            print(FileSystem.lockTable(locks), terminator: "")
        }
    }
}
