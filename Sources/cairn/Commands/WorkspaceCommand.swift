import ArgumentParser
import CairnCore
import CairnMount
import Foundation
import Glibc

struct WorkspaceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workspace", abstract: "Create and list workspaces; show or set their retention of history.",
        subcommands: [Create.self, List.self, Fork.self, Transfer.self, Retention.self])

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

    struct Fork: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a new workspace that starts as another one is now, or was at a point in time.",
            discussion: """
                Copy-on-write: nothing is copied when the fork is made (it takes the same time \
                whatever the workspace's size); each directory takes its entries from the parent \
                when first used, and file contents stay shared until rewritten. Later changes on \
                either side never show in the other. `cairn status` shows each workspace's private \
                and shared bytes.
                """)
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "The workspace to fork.") var source: String
        @Argument(help: "The new workspace's name.") var name: String
        @Option(
            parsing: .unconditional, help: "Fork the state at this point: @SEQ, an ISO-8601 time, or -30m, -2h, -3d.")
        var at: String?
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            try reporting {
                let result = try storeOptions.perform(.fork(source: source, name: name, at: at))
                if json { return try printJSON(["workspace": result.workspace ?? name, "parent": source]) }
                print(
                    "forked '\(source)'\(at.map { " as of \($0)" } ?? "") as '\(name)'; mount it with `cairn mount DIR --workspace \(name)`"
                )
            }
        }
    }

    struct Transfer: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hand a workspace to a new owner (the agent that built it may keep admin).")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "The workspace.") var workspace: String
        @Option(help: "The new owner: user:NAME or uid:N.") var to: String
        @Flag(help: "The old owner keeps an admin grant.") var keepAdmin = false

        func run() throws {
            try reporting {
                _ = try storeOptions.perform(.transfer(workspace: workspace, to: to, keepAdmin: keepAdmin))
                print("'\(workspace)' now belongs to \(to)\(keepAdmin ? "; the old owner keeps admin" : "")")
            }
        }
    }

    struct Retention: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set how long a workspace keeps old versions (applied by `cairn gc`).",
            discussion: """
                Durations: 36h, 7d, 2w, 0 or forever. Windows count back from now: every version \
                younger than --keep-all; then the last version of each hour until --hourly; then \
                the last of each day until --daily. Current versions and what snapshots show are \
                always kept. Default: --keep-all 24h --hourly 7d --daily 30d.
                """)
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "The workspace.") var workspace: String
        @Option(help: "Keep every version younger than this.") var keepAll: String?
        @Option(help: "Then keep one version per hour until this age.") var hourly: String?
        @Option(help: "Then keep one version per day until this age.") var daily: String?
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            try reporting {
                let store = try storeOptions.openReadOnly()
                var policy = try FileSystem(readOnly: store).retention(of: store.workspace(named: workspace))
                store.close()
                if keepAll != nil || hourly != nil || daily != nil {
                    if let keepAll { policy.keepAll = try RetentionPolicy.parseDuration(keepAll) }
                    if let hourly { policy.hourly = try RetentionPolicy.parseDuration(hourly) }
                    if let daily { policy.daily = try RetentionPolicy.parseDuration(daily) }
                    policy =
                        try storeOptions.perform(.setRetention(workspace: workspace, policy: policy)).retention
                        ?? policy
                }
                if json {
                    return try printJSON([
                        "keep_all": RetentionPolicy.format(policy.keepAll),
                        "hourly": RetentionPolicy.format(policy.hourly),
                        "daily": RetentionPolicy.format(policy.daily),
                    ])
                }
                print("\(workspace): \(policy)")
            }
        }
    }
}
