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
                _ = try storeOptions.perform(.createWorkspace(name: name))
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
