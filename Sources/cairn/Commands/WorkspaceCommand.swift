import ArgumentParser
import CairnCore
import CairnMount
import Foundation
import Glibc

struct WorkspaceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workspace", abstract: "Create and list workspaces.",
        subcommands: [Create.self, List.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a workspace owned by you.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "The workspace's name.") var name: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            try reporting {
                if let response = DaemonClient.send(
                    ControlRequest(op: .createWorkspace, workspace: name),
                    storePath: storeOptions.path)
                {
                    guard response.ok else { throw CLIError(message: response.error ?? "the daemon refused") }
                } else {
                    // No daemon answers: become the store's one writer for this change.
                    try storeOptions.openReadOnly().close()  // a missing store says so first
                    guard let lock = Daemon.acquireLock(storePath: storeOptions.path) else {
                        throw CLIError(message: "the store's daemon is starting or not answering; retry")
                    }
                    defer { close(lock) }
                    let store: Store
                    do {
                        store = try Store.open(at: storeOptions.path)
                    } catch {
                        throw CLIError(message: "\(error)", code: .storeUnusable)
                    }
                    defer { store.close() }
                    do {
                        _ = try store.createWorkspace(name: name, owner: (getuid(), getgid()), caller: .system)
                    } catch FSError.exists {
                        throw CLIError(message: "a workspace named '\(name)' exists already")
                    } catch {
                        throw CLIError(message: "\(error)")
                    }
                }
                if json { try printJSON(["workspace": name]) } else { print("created workspace '\(name)'") }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the store's workspaces.")
        @OptionGroup var storeOptions: StoreOptions
        @Flag(help: "Print the result as JSON.") var json = false

        struct Row: Encodable {
            var name: String
            var owner_uid: UInt32
            var created: String
        }

        func run() throws {
            try reporting {
                let store = try storeOptions.openReadOnly()
                defer { store.close() }
                let rows = try store.workspaces().map {
                    Row(name: $0.name, owner_uid: $0.owner, created: isoTime($0.created))
                }
                if json {
                    try printJSON(rows)
                } else {
                    for r in rows { print("\(r.name)\towner uid \(r.owner_uid)\tcreated \(r.created)") }
                }
            }
        }
    }
}
