import ArgumentParser
import CairnCore
import Foundation

struct Log: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the versions of a file, newest first.",
        discussion: """
            PATH is a path inside a Cairn mount, or a path relative to the workspace root. The
            history follows the name across the files that held it (save-by-rename), and shows
            deleted files whose directory still exists. Use a VERSION with `cairn cat`.
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The file.") var path: String
    @Option(help: "The workspace (default: the mount's, else 'default').") var workspace: String?
    @Flag(help: "Print the result as JSON.") var json = false

    struct Row: Encodable {
        var version: Int64
        var seq: Int64
        var time: String
        var size: Int64
        var actor: String
        var cause: String
        var inode: Int64
        var mode: String
    }

    func run() throws {
        try reporting {
            let found = try PathHistory(path, workspace: workspace, storeOptions: storeOptions)
            defer { found.store.close() }
            let rows = found.versions.map {
                Row(
                    version: $0.id, seq: $0.seq, time: isoTime($0.time), size: $0.size, actor: $0.actor,
                    cause: $0.cause,
                    inode: $0.inode, mode: String($0.mode & 0o7777, radix: 8))
            }
            if json {
                try printJSON(rows)
                return
            }
            print("VERSION  SEQ       TIME                           SIZE        ACTOR            CAUSE")
            for r in rows {
                print(
                    "\(pad(r.version, 8)) \(pad(r.seq, 9)) \(r.time.padding(toLength: 30, withPad: " ", startingAt: 0)) \(pad(r.size, 11)) \(r.actor.padding(toLength: 16, withPad: " ", startingAt: 0)) \(r.cause)"
                )
            }
        }
    }

    private func pad(_ n: Int64, _ width: Int) -> String {
        let s = String(n)
        return s + String(repeating: " ", count: max(0, width - s.count))
    }
}
