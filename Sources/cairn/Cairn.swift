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
            Every close(2) of a written file becomes an immutable version. The store (a SQLite
            database and content-addressed chunks) lives in $CAIRN_STORE, else ~/.local/share/cairn.
            Start with `cairn init`, then `cairn mount ~/cairn`.
            """,
        subcommands: [
            Init.self, WorkspaceCommand.self, Mount.self, Unmount.self, Status.self, Log.self, Cat.self, Fsck.self,
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

    /// Opens the store for reading (safe while a daemon owns it). When no daemon runs and a
    /// crashed one left operations in the journal, they are applied first, so what a reader sees
    /// is what the daemon had answered for.
    func openReadOnly() throws -> Store {
        if Store.hasJournal(at: path), let lock = Daemon.acquireLock(storePath: path) {
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

func isoTime(_ t: Timestamp) -> String {
    let date = Date(timeIntervalSince1970: Double(t.seconds) + Double(t.subsecondNanoseconds) / 1e9)
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.string(from: date)
}
