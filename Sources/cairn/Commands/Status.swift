import ArgumentParser
import CairnCore
import CairnMount
import Foundation

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the store's size, chunks, deduplication, versions and mounts.")

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Print the result as JSON.") var json = false

    struct Report: Encodable {
        var store: String
        var uuid: String
        var statistics: StoreStatistics
        var daemon: DaemonStatus?
    }

    func run() throws {
        try reporting {
            let store = try storeOptions.openReadOnly()
            defer { store.close() }
            let stats = try store.statistics()
            let daemon = DaemonClient.send(ControlRequest(op: .status), storePath: storeOptions.path)?.status
            if json {
                try printJSON(Report(store: store.path, uuid: store.identifier, statistics: stats, daemon: daemon))
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
            if let daemon {
                print("daemon     pid \(daemon.pid), \(daemon.openHandles) open handles")
                for m in daemon.mounts { print("mount      \(m.mountpoint) -> \(m.workspace ?? "(all workspaces)")") }
            } else {
                print("daemon     not running (no mounts)")
            }
        }
    }

    private func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var v = Double(n)
        var u = 0
        while v >= 1024 && u < units.count - 1 {
            v /= 1024
            u += 1
        }
        return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
    }
}
