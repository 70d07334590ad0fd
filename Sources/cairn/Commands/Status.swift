import ArgumentParser
import CairnCore
import CairnMount
import Foundation

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Show the store's size, chunks, deduplication, versions, each workspace's private and shared bytes, and mounts."
    )

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Print the result as JSON.") var json = false

    struct Report: Encodable {
        var store: String
        var uuid: String
        var statistics: StoreStatistics
        var workspaces: [WorkspaceUsage]
        var daemon: DaemonStatus?
    }

    func run() throws {
        try reporting {
            let store = try storeOptions.openReadOnly()
            defer { store.close() }
            let stats = try store.statistics()
            let usage = try FileSystem(readOnly: store).usage()
            let daemon = DaemonClient.send(ControlRequest(op: .status), storePath: storeOptions.path)?.status
            if json {
                try printJSON(
                    Report(
                        store: store.path, uuid: store.identifier, statistics: stats, workspaces: usage, daemon: daemon)
                )
                return
            }
            print("store      \(store.path) (id \(store.identifier))")
            print("workspaces \(stats.workspaces)")
            print(
                "files      \(stats.liveFiles) live, \(stats.inodes) inodes ever, \(stats.versions) versions, \(stats.events) changes"
            )
            print(
                "data       \(bytes(stats.liveBytes)) in current versions; \(bytes(stats.chunkBytes)) stored in \(stats.chunks) chunks (\(stats.inlineChunks) inline)"
            )
            print(
                "dedup      \(String(format: "%.2f", stats.dedupRatio))x (bytes named by all versions / bytes stored)")
            print("database   \(bytes(stats.databaseBytes))")
            for u in usage {
                var line =
                    "workspace  \(u.workspace): \(u.files) files, \(bytes(u.privateBytes)) private, \(bytes(u.sharedBytes)) shared"
                if let parent = u.parent, let base = u.baseSeq { line += "; fork of \(parent) at @\(base)" }
                if u.pendingDirectories > 0 {
                    line += " (\(u.pendingDirectories) directories not opened since, still shared)"
                }
                print(line)
            }
            if let daemon {
                print("daemon     pid \(daemon.pid), \(daemon.openHandles) open handles")
                for m in daemon.mounts { print("mount      \(m.mountpoint) -> \(m.workspace ?? "(all workspaces)")") }
            } else {
                print("daemon     not running (no mounts)")
            }
        }
    }

    private func bytes(_ n: Int64) -> String { formatBytes(n) }
}
