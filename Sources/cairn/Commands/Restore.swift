import ArgumentParser
import CairnCore
import Foundation

/// Where a restore or rollback reads the past from, as options.
struct RestoreSourceOptions: ParsableArguments {
    @Option(help: "A version of the file, from `cairn log`.") var version: Int64?
    @Option(
        parsing: .unconditional,
        help: "A point in time: @SEQ, an ISO-8601 time (2026-11-26T10:00:00Z; local without Z), or -30m, -2h, -3d.")
    var at: String?
    @Option(help: "A snapshot of the workspace, by name.") var snapshot: String?

    func source(allowVersion: Bool) throws -> RestoreSource {
        let given = [version.map { RestoreSource.version($0) }, at.map { .at($0) }, snapshot.map { .snapshot($0) }]
            .compactMap { $0 }
        let names = allowVersion ? "--version, --at or --snapshot" : "--at or --to"
        guard given.count == 1 else { throw CLIError(message: "give exactly one of \(names)", code: .usage) }
        if case .version = given[0], !allowVersion { throw CLIError(message: "give --at or --to", code: .usage) }
        return given[0]
    }
}

struct Restore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bring a file or a directory tree back to a past state, as new versions.",
        discussion: """
            Works for files that were deleted or overwritten and for whole directories: the \
            directory becomes exactly what it was (entries added since are removed, deleted ones \
            come back, changed ones get their old content). Nothing is lost: what the restore \
            replaces stays in history, so a restore is undone by restoring again. Restoring a \
            whole workspace first takes a snapshot (before-restore-TIME). Deleted files and the \
            command that brings each back: `cairn trash`.
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The file or directory: a path in a Cairn mount, or relative to the workspace root.")
    var path: String
    @OptionGroup var from: RestoreSourceOptions
    @Option(help: "The workspace (default: the mount's, else 'default').") var workspace: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try reporting {
            let target = PathArgument(path, workspace: workspace)
            let result = try storeOptions.perform(
                .restore(workspace: target.workspace, path: target.relative, source: from.source(allowVersion: true)))
            try report(result, what: "'\(target.relative.isEmpty ? "/" : target.relative)'", json: json)
        }
    }
}

struct Rollback: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bring a whole workspace back to a snapshot or a point in time, as new versions.",
        discussion: """
            Takes a snapshot first (before-rollback-TIME), so the rollback is undone by \
            `cairn rollback WS --to before-rollback-TIME`.
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The workspace.") var workspace: String
    @Option(help: "A snapshot of the workspace, by name.") var to: String?
    @Option(parsing: .unconditional, help: "A point in time: @SEQ, an ISO-8601 time, or -30m, -2h, -3d.")
    var at: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try reporting {
            let source = try RestoreSourceOptions(version: nil, at: at, snapshot: to).source(allowVersion: false)
            let result = try storeOptions.perform(.rollback(workspace: workspace, source: source))
            try report(result, what: "workspace '\(workspace)'", json: json)
        }
    }
}

extension RestoreSourceOptions {
    init(version: Int64?, at: String?, snapshot: String?) {
        self.init()
        self.version = version
        self.at = at
        self.snapshot = snapshot
    }
}

private func report(_ result: StoreActionResult, what: String, json: Bool) throws {
    guard let summary = result.restore else { throw CLIError(message: "the store did not answer") }
    if json { return try printJSON(summary) }
    print(
        "restored \(what) as of @\(summary.sourceSeq): \(summary.restored) restored, \(summary.removed) removed, "
            + "\(summary.unchanged) unchanged, \(summary.bytes) bytes of content")
    if let snapshot = summary.safetySnapshot {
        print("undo with: cairn rollback \(result.workspace ?? "WS") --to \(snapshot)")
    }
}
