import ArgumentParser
import CairnCore
import Foundation
import Glibc

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream the store's changes as they are committed, one line each, from now or from a seq.",
        discussion: """
            Every committed change is an event: create, mkdir, write (a new version), rename, \
            delete, link, attr, xattr, lock, unlock, restore, snapshot, fork. PATH-OR-GLOB keeps \
            the events of one file, a directory's tree, or the paths a glob matches (`*` spans \
            directories). With --consumer NAME the position is kept in the store after every line: \
            a restarted watcher resumes after the last event it printed (at least once: a watcher \
            killed between printing a line and keeping its position prints that line again). \
            Ends with Ctrl-C, or after --count events.
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "A file, a directory or a glob (in a mount, or relative to the workspace root).")
    var pathOrGlob: String?
    @Option(help: "Only this workspace (default: the mount you are in, else every workspace).") var workspace: String?
    @Option(help: "Start after this seq (default: from now, or a consumer's position).") var since: Int64?
    @Option(help: "Keep this consumer's position in the store and resume from it.") var consumer: String?
    @Option(help: "Only these kinds (repeat, or separate with commas).") var kind: [String] = []
    @Option(help: "Stop after this many events.") var count: Int?
    @Flag(help: "Print each event as a line of JSON.") var json = false

    func run() throws {
        try reporting {
            let store = try storeOptions.openReadOnly()
            defer { store.close() }
            let fs = try FileSystem(readOnly: store)
            let here = PathArgument(pathOrGlob ?? FileManager.default.currentDirectoryPath, workspace: workspace)
            let scope: Workspace?
            if let name = workspace ?? (pathOrGlob != nil || here.inMount ? here.workspace : nil) {
                scope = try store.workspace(named: name)
            } else {
                scope = nil
            }
            let filter = EventFilter(pattern: pathOrGlob.map { _ in here.relative }, kinds: kind)
            var cursor: Int64
            if let since {
                cursor = since
            } else if let consumer, let position = try fs.consumerPosition(consumer) {
                cursor = position
            } else {
                cursor = try fs.currentSeq()
            }
            var left = count ?? .max
            guard left > 0 else { return }
            while true {
                let batch = try fs.events(after: cursor, in: scope, limit: 500)
                if batch.isEmpty {
                    usleep(15_000)
                    continue
                }
                for event in batch {
                    cursor = event.seq
                    guard filter.matches(event) else { continue }
                    let line = json ? EventLine(event).json : Self.text(event)
                    FileHandle.standardOutput.write(Data(line.utf8))
                    if let consumer { _ = try storeOptions.perform(.consumed(consumer: consumer, seq: cursor)) }
                    left -= 1
                    if left == 0 { return }
                }
                // Events the filter left out are taken too.
                if let consumer { _ = try storeOptions.perform(.consumed(consumer: consumer, seq: cursor)) }
            }
        }
    }

    static func text(_ e: ChangeRecord) -> String {
        let moved = e.oldPath.map { "\($0) -> " } ?? ""
        return "@\(e.seq) \(e.time.iso8601()) \(e.kind) \(e.workspace):\(moved)\(e.path) by \(e.actor)\n"
    }
}
