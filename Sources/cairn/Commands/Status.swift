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
        var index: IndexStatus?
        var daemon: DaemonStatus?
    }

    func run() throws {
        try reporting {
            let store = try storeOptions.openReadOnly()
            defer { store.close() }
            let stats = try store.statistics()
            let fs = try FileSystem(readOnly: store)
            let usage = try fs.usage()
            // A store without an index yet (never mounted by this version) shows none.
            let index = try? fs.indexStatus()
            let daemon = DaemonClient.send(ControlRequest(op: .status), storePath: storeOptions.path)?.status
            if json {
                try printJSON(
                    Report(
                        store: store.path, uuid: store.identifier, statistics: stats, workspaces: usage, index: index,
                        daemon: daemon)
                )
                return
            }
            print("store      \(store.path) (id \(store.identifier))")
            print("workspaces \(stats.workspaces)")
            print(
                "files      \(stats.liveFiles) live, \(stats.inodes) inodes ever, \(stats.versions) versions, \(stats.events) changes"
            )
            print(
                "data       \(bytes(stats.liveBytes)) in current versions; \(bytes(stats.chunkBytes)) stored in \(stats.chunks) chunks (\(stats.inlineChunks) small), \(bytes(stats.embeddedBytes)) in the versions of small files"
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
            if let index {
                print(
                    "index      \(index.files) files, \(bytes(index.textBytes)) of text; "
                        + (index.upToDate ? "up to date" : "\(index.backlog) changes to take in"))
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
