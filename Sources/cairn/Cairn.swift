import ArgumentParser
import CairnCore
import CairnMount
import Foundation
import Glibc

@main
struct Cairn: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn",
        abstract: "Persistent, versioned, shared workspaces as a FUSE filesystem.",
        discussion: """
            Every close(2) of a written file becomes an immutable version. The store (a SQLite \
            database and content-addressed chunks) lives in $CAIRN_STORE, else ~/.local/share/cairn. \
            Start with `cairn init`, then `cairn mount ~/cairn`.
            """,
        subcommands: [
            Init.self, WorkspaceCommand.self, Mount.self, Unmount.self, Status.self, Log.self, Cat.self, Diff.self,
            Restore.self, Trash.self,
            Rollback.self, SnapshotCommand.self, GC.self, Fsck.self, Lock.self, Locks.self, Watch.self,
            WebhookCommand.self, Quota.self, GrantCommand.self, Revoke.self, Access.self, Audit.self, Search.self,
            IndexCommand.self,
        ])
}

/// Options every command that uses a store takes.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: "The store directory (default: $CAIRN_STORE, else ~/.local/share/cairn).")
    var store: String?

    var path: String {
        let raw = store ?? Store.defaultPath
        return URL(fileURLWithPath: raw).standardizedFileURL.path
    }

    /// Opens the store for reading (safe while a daemon owns it). A running daemon first commits
    /// what it has answered for (so a command right after a write sees it; one busy for more
    /// than two seconds, in a long sweep say, is not waited for); when no daemon runs,
    /// the store is first opened for writing, which applies a journal a crashed daemon left (so
    /// what a reader sees is what the daemon had answered for) and the schema migrations of this
    /// version of Cairn.
    func openReadOnly() throws -> Store {
        let daemonCommitted = DaemonClient.send(ControlRequest(op: .commit), storePath: path, timeout: 2)?.ok == true
        if !daemonCommitted, FileManager.default.fileExists(atPath: path + "/cairn.db"),
            let lock = Daemon.acquireLock(storePath: path)
        {
            defer { close(lock) }
            try? Store.open(at: path).close()
        }
        do {
            return try Store.open(at: path, readOnly: true)
        } catch {
            throw CLIError(message: "\(error)", code: .storeUnusable)
        }
    }
}

extension StoreOptions {
    /// Performs a change on the store: through its daemon when one runs, else as the store's one
    /// writer (holding the daemon lock, so no daemon starts meanwhile).
    func perform(_ action: StoreAction, progress: (GCProgress) -> Void = { _ in }) throws -> StoreActionResult {
        let caller = Caller.commandLine
        if let response = DaemonClient.send(
            ControlRequest(op: .perform, actor: caller.actor, action: action), storePath: path, progress: progress)
        {
            guard response.ok, let result = response.result else {
                throw CLIError(message: response.error ?? "the daemon refused")
            }
            return result
        }
        try openReadOnly().close()  // a missing or unusable store says so first
        guard let lock = Daemon.acquireLock(storePath: path) else {
            throw CLIError(message: "the store's daemon is starting or not answering; retry")
        }
        defer { close(lock) }
        let store: Store
        do {
            store = try Store.open(at: path)
        } catch {
            throw CLIError(message: "\(error)", code: .storeUnusable)
        }
        defer { store.close() }
        let fs = try FileSystem(store: store)
        defer { fs.closeAudit() }
        return try fs.perform(action, caller: caller, progress: progress).0
    }
}

extension Caller {
    /// The person or agent running this command: the ids the kernel gives it, and the actor
    /// `CAIRN_AGENT` names, else the user name.
    static var commandLine: Caller {
        let env = ProcessInfo.processInfo.environment
        var actor = env["CAIRN_AGENT"].flatMap { $0.isEmpty ? nil : $0 }
        if actor == nil, let pw = getpwuid(getuid()) { actor = String(cString: pw.pointee.pw_name) }
        return Caller(uid: getuid(), gid: getgid(), pid: getpid(), actor: actor ?? "uid \(getuid())")
    }
}

/// An error the CLI reports as one line on stderr, with a named exit status.
struct CLIError: Error, CustomStringConvertible {
    enum Code: Int32 {
        case failure = 1
        case usage = 2
        case storeUnusable = 3
        case problemsFound = 4
    }

    var message: String
    var code: Code = .failure
    var description: String { message }
}

extension ParsableCommand {
    /// Runs `body`, turning Cairn's errors into one line on stderr and a named exit status.
    func reporting(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as CLIError {
            FileHandle.standardError.write(Data("cairn: \(error.message)\n".utf8))
            throw ExitCode(error.code.rawValue)
        } catch let error as ExitCode {
            throw error
        } catch {
            FileHandle.standardError.write(Data("cairn: \(error)\n".utf8))
            throw ExitCode(CLIError.Code.failure.rawValue)
        }
    }
}

/// Writes a value as one JSON document on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

func isoTime(_ t: Timestamp) -> String { t.iso8601() }

/// Prints rows under a header, each column as wide as its widest cell (the last one unpadded).
func printTable(_ header: [String], _ rows: [[String]]) {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    for row in all {
        let cells = row.indices.map { column in
            column == row.count - 1
                ? row[column] : row[column].padding(toLength: widths[column], withPad: " ", startingAt: 0)
        }
        print(cells.joined(separator: "  "))
    }
}
