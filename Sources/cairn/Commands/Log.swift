import ArgumentParser
import CairnCore
import Foundation

struct Log: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List a file's versions, or a workspace's changes, newest first.",
        discussion: """
            With PATH (a path inside a Cairn mount, or relative to the workspace root): the file's \
            versions. The history follows the name across the files that held it (save-by-rename) \
            and shows deleted files whose directory still exists. Use a VERSION with `cairn cat`, \
            `cairn diff` and `cairn restore --version`.

            Without PATH: the changes of the workspace (of the mount you are in, else --workspace, \
            else 'default'): each with its seq (a point in time for `--at @SEQ`), kind, path, actor \
            and cause. Page back with --before SEQ.
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The file (default: the whole workspace).") var path: String?
    @Option(help: "The workspace (default: the mount's, else 'default').") var workspace: String?
    @Option(help: "Show at most this many entries.") var limit = 50
    @Option(help: "Show changes before this seq (paging).") var before: Int64?
    @Flag(help: "Print the result as JSON.") var json = false

    struct VersionRow: Encodable {
        var version: Int64
        var seq: Int64
        var time: String
        var size: Int64
        var actor: String
        var cause: String
        var inode: Int64
        var mode: String
    }

    struct ChangeRow: Encodable {
        var seq: Int64
        var time: String
        var kind: String
        var path: String
        var old_path: String?
        var actor: String
        var version: Int64?
        var cause: String?
        var size: Int64?
    }

    func run() throws {
        try reporting {
            guard limit > 0 else { throw CLIError(message: "--limit must be at least 1", code: .usage) }
            if let path { try fileLog(path) } else { try workspaceLog() }
        }
    }

    private func fileLog(_ path: String) throws {
        let found = try PathHistory(path, workspace: workspace, storeOptions: storeOptions)
        defer { found.store.close() }
        let rows = found.versions.prefix(limit).map {
            VersionRow(
                version: $0.id, seq: $0.seq, time: isoTime($0.time), size: $0.size, actor: $0.actor, cause: $0.cause,
                inode: $0.inode, mode: String($0.mode & 0o7777, radix: 8))
        }
        if json { return try printJSON(Array(rows)) }
        printTable(
            ["VERSION", "SEQ", "TIME", "SIZE", "ACTOR", "CAUSE"],
            rows.map { [String($0.version), "@\($0.seq)", $0.time, String($0.size), $0.actor, $0.cause] })
    }

    private func workspaceLog() throws {
        let here = PathArgument(FileManager.default.currentDirectoryPath, workspace: workspace)
        let store = try storeOptions.openReadOnly()
        defer { store.close() }
        let fs = try FileSystem(readOnly: store)
        let ws = try store.workspace(named: workspace ?? here.workspace)
        let rows = try fs.changes(in: ws, before: before ?? .max, limit: limit).map {
            ChangeRow(
                seq: $0.seq, time: isoTime($0.time), kind: $0.kind, path: $0.path, old_path: $0.oldPath,
                actor: $0.actor, version: $0.version, cause: $0.cause, size: $0.size)
        }
        if json { return try printJSON(rows) }
        printTable(
            ["SEQ", "TIME", "KIND", "ACTOR", "CAUSE", "PATH"],
            rows.map {
                [
                    "@\($0.seq)", $0.time, $0.kind, $0.actor, $0.cause ?? "",
                    ($0.old_path.map { "\($0) -> " } ?? "") + $0.path,
                ]
            })
    }
}
