import ArgumentParser
import CairnCore
import Foundation

struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "Create, list and delete named checkpoints of a workspace.",
        discussion: """
            A snapshot names the workspace as it is now; it copies nothing and takes the same time \
            whatever the workspace's size. Browse one in a mount under .cairn/snapshots/NAME/, \
            bring it back with `cairn rollback WS --to NAME`. Retention keeps what a snapshot needs.
            """,
        subcommands: [Create.self, List.self, Delete.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a snapshot of a workspace as it is now.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "The workspace.") var workspace: String
        @Argument(help: "The snapshot's name (a file name: no '/').") var name: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            try reporting {
                let result = try storeOptions.perform(.createSnapshot(workspace: workspace, name: name))
                guard let snapshot = result.snapshot else { throw CLIError(message: "the store did not answer") }
                if json { return try printJSON(SnapshotRow(snapshot)) }
                print("snapshot '\(snapshot.name)' of '\(snapshot.workspace)' at @\(snapshot.seq)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the snapshots of a workspace, oldest first.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "The workspace (default: every workspace).") var workspace: String?
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            try reporting {
                let store = try storeOptions.openReadOnly()
                defer { store.close() }
                let fs = try FileSystem(readOnly: store)
                let spaces = try workspace.map { [try store.workspace(named: $0)] } ?? store.workspaces()
                let rows = try spaces.flatMap { try fs.snapshots(of: $0) }.map(SnapshotRow.init)
                if json { return try printJSON(rows) }
                printTable(
                    ["WORKSPACE", "NAME", "SEQ", "CREATED", "ACTOR"],
                    rows.map { [$0.workspace, $0.name, "@\($0.seq)", $0.created, $0.actor] })
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a snapshot (its history stays until retention releases it).")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "The workspace.") var workspace: String
        @Argument(help: "The snapshot's name.") var name: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            try reporting {
                let result = try storeOptions.perform(.deleteSnapshot(workspace: workspace, name: name))
                guard let snapshot = result.snapshot else { throw CLIError(message: "the store did not answer") }
                if json { return try printJSON(SnapshotRow(snapshot)) }
                print("deleted snapshot '\(snapshot.name)' of '\(snapshot.workspace)' (it was @\(snapshot.seq))")
            }
        }
    }
}

struct SnapshotRow: Encodable {
    var workspace: String
    var name: String
    var seq: Int64
    var created: String
    var actor: String

    init(_ s: Snapshot) {
        workspace = s.workspace
        name = s.name
        seq = s.seq
        created = isoTime(s.created)
        actor = s.actor
    }
}
