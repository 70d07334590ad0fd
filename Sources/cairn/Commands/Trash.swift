import ArgumentParser
import CairnCore
import Foundation

struct Trash: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List deleted files and directories still in history, with the command to restore each.",
        discussion: """
            A directory removed with everything in it shows once, as the directory. A name that \
            exists again is not listed (its old versions are in `cairn log PATH`).
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The workspace (default: the mount you are in, else 'default').") var workspace: String?
    @Option(help: "Show at most this many entries.") var limit = 100
    @Flag(help: "Print the result as JSON.") var json = false

    struct Row: Encodable {
        var path: String
        var kind: String
        var size: Int64
        var deleted: String
        var deleted_seq: Int64
        var actor: String
        var restore: String
    }

    func run() throws {
        try reporting {
            let here = PathArgument(FileManager.default.currentDirectoryPath, workspace: workspace)
            let store = try storeOptions.openReadOnly()
            defer { store.close() }
            let ws = try store.workspace(named: here.workspace)
            let rows = try FileSystem(readOnly: store).trash(of: ws).prefix(limit).map {
                Row(
                    path: $0.path, kind: $0.isDirectory ? "directory" : "file", size: $0.size,
                    deleted: isoTime($0.deleted), deleted_seq: $0.deletedSeq, actor: $0.actor,
                    restore:
                        "cairn restore --workspace \(shellQuoted(ws.name)) \(shellQuoted("/" + $0.path)) --at \($0.restorePoint)"
                )
            }
            if json { return try printJSON(Array(rows)) }
            if rows.isEmpty { return print("nothing deleted in '\(ws.name)' is waiting in history") }
            for r in rows {
                print("\(r.path)\(r.kind == "directory" ? "/" : "")  deleted \(r.deleted) by \(r.actor)")
                print("    \(r.restore)")
            }
        }
    }
}

/// `text` as one word for a POSIX shell.
func shellQuoted(_ text: String) -> String {
    let plain = text.allSatisfy { $0.isLetter || $0.isNumber || "-_./@:+,=".contains($0) }
    return plain && !text.isEmpty ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
