import ArgumentParser
import CairnCore
import CairnMount
import Foundation
import Glibc

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find files by their content: ranked full-text search over every file's current version.",
        discussion: """
            QUERY is in SQLite FTS5's syntax: words (all must match), "a phrase", prefix*, \
            OR, NOT, NEAR(a b, 5), name:word (in the file's name only). Text, Markdown, source, \
            JSON, CSV, HTML and (with pdftotext installed) PDF files are indexed, in the background \
            after each close; `cairn index status` shows how far the index is. Only files you may \
            read are shown. Exit status: 0 with hits, 1 with none.
            """)
    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "What to look for.") var query: String
    @Option(help: "Only this workspace.") var workspace: String?
    @Option(help: "Only paths a glob matches (workspace-relative; * spans directories).") var path: String?
    @Option(help: "Show at most this many hits.") var limit = 20
    @Option(
        parsing: .unconditional,
        help: "Search the files as they were then (ISO-8601, -2h, @SEQ); slower: reads the tree of then.")
    var at: String?
    @Flag(help: "Print the result as JSON (matched terms between « and » in each snippet).") var json = false

    func run() throws {
        try reporting {
            guard limit > 0 else { throw CLIError(message: "--limit must be at least 1", code: .usage) }
            let store = try storeOptions.openReadOnly()
            defer { store.close() }
            let fs = try FileSystem(readOnly: store)
            var status = try fs.indexStatus()
            // With no daemon to keep the index current, this process brings it up to date.
            if !status.upToDate, DaemonClient.send(ControlRequest(op: .status), storePath: storeOptions.path) == nil {
                try fs.updateIndex()
                status = try fs.indexStatus()
            }
            let bold = !json && isatty(STDOUT_FILENO) == 1
            let scope = try workspace.map { try store.workspace(named: $0) }
            let marks = bold ? ("\u{1B}[1m", "\u{1B}[0m") : ("«", "»")
            let results =
                try at.map {
                    try fs.search(
                        query, at: fs.seq(of: PointInTime($0)), in: scope, pathGlob: path, limit: limit, marks: marks,
                        caller: .commandLine)
                }
                ?? fs.search(query, in: scope, pathGlob: path, limit: limit, marks: marks, caller: .commandLine)
            let hits = results.hits
            if let ranked = results.rankedOnly {
                FileHandle.standardError.write(
                    Data(
                        "cairn: the query matches more than \(ranked) files: these are the best of the \(ranked) made last; add words to narrow it\n"
                            .utf8))
            }
            if !status.upToDate {
                FileHandle.standardError.write(
                    Data(
                        "cairn: the index has \(status.backlog) changes still to take in; recent changes may be missing\n"
                            .utf8))
            }
            if json {
                try printJSON(hits)
            } else {
                for (rank, hit) in hits.enumerated() {
                    print(
                        "\(rank + 1). \(hit.workspace):\(hit.path)  (version \(hit.version), \(hit.actor), \(isoTime(hit.time)))"
                    )
                    print("   " + hit.snippet.replacingOccurrences(of: "\n", with: " "))
                }
            }
            if hits.isEmpty { throw ExitCode(CLIError.Code.failure.rawValue) }
        }
    }
}

struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index", abstract: "The full-text index: how far it is, and rebuilding it.",
        subcommands: [Status.self, Rebuild.self], defaultSubcommand: Status.self)

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "How many changes the index has still to take in, and what it holds.",
            discussion: "Exit status: 0 up to date, 1 behind.")
        @OptionGroup var storeOptions: StoreOptions
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            try reporting {
                let store = try storeOptions.openReadOnly()
                defer { store.close() }
                let status = try FileSystem(readOnly: store).indexStatus()
                if json {
                    try printJSON(status)
                } else {
                    print(status.upToDate ? "up to date" : "\(status.backlog) changes to take in")
                    print("indexed through change @\(status.indexedSeq) of @\(status.storeSeq)")
                    let formats = status.formats.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
                    print(
                        "files: \(status.files) (\(formats.joined(separator: ", "))), text: \(status.textBytes) bytes")
                    if !status.pdftotextInstalled {
                        print("PDF files are not indexed: pdftotext is not installed (apt-get install poppler-utils)")
                    }
                    if let error = status.lastError { print("last error: \(error)") }
                }
                if !status.upToDate { throw ExitCode(CLIError.Code.failure.rawValue) }
            }
        }
    }

    struct Rebuild: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Throw the index away and build it again from every file's current version.",
            discussion: """
                With a daemon running, it rebuilds in the background and this waits for it; \
                without one, this builds it. Progress goes to stderr.
                """)
        @OptionGroup var storeOptions: StoreOptions
        @Flag(help: "Print the final status as JSON.") var json = false

        func run() throws {
            try reporting {
                let store = try storeOptions.openReadOnly()
                defer { store.close() }
                let fs = try FileSystem(readOnly: store)
                try fs.resetIndex()
                let report = { (done: Int64, total: Int64) in
                    FileHandle.standardError.write(Data("\rindexing: \(done) of \(total) changes".utf8))
                }
                if DaemonClient.send(ControlRequest(op: .status), storePath: storeOptions.path) != nil {
                    var status = try fs.indexStatus()
                    let total = status.backlog
                    while !status.upToDate {
                        report(total - status.backlog, total)
                        usleep(200_000)
                        status = try fs.indexStatus()
                    }
                    report(total, total)
                } else {
                    try fs.updateIndex(progress: report)
                }
                FileHandle.standardError.write(Data("\n".utf8))
                let status = try fs.indexStatus()
                if json { try printJSON(status) } else { print("rebuilt: \(status.files) files") }
            }
        }
    }
}
