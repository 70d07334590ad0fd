import ArgumentParser
import CairnCore
import Foundation

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Who did what: every change, every denial and every open, newest first.",
        discussion: """
            Rows are hash-chained, and the head of the chain is kept outside the store \
            ($CAIRN_AUDIT_HEAD of the daemon, else ~/.local/state/cairn/STORE-ID.audit-head); \
            `cairn audit verify` recomputes the chain and names the first row that was changed, \
            and finds a log cut short.
            """,
        subcommands: [Show.self, Verify.self, Reads.self], defaultSubcommand: Show.self)

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "List audit rows, newest first.")
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "Only this actor.") var actor: String?
        @Option(help: "Only paths a glob matches (workspace-relative; * spans directories).") var path: String?
        @Option(parsing: .unconditional, help: "Only since this point in time (ISO-8601, or -2h).") var since: String?
        @Option(help: "Only these operations (repeat, or separate with commas).") var op: [String] = []
        @Flag(help: "Only denials.") var denied = false
        @Option(help: "Show at most this many rows.") var limit = 100
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            try reporting {
                let store = try storeOptions.openReadOnly()
                defer { store.close() }
                var from: Timestamp?
                if let since, case .time(let t) = try PointInTime(since) { from = t }
                let rows = try FileSystem(readOnly: store).auditRecords(
                    actor: actor, pathGlob: path, since: from,
                    ops: op.flatMap { $0.split(separator: ",").map(String.init) },
                    deniedOnly: denied, limit: limit)
                if json { return try printJSON(rows) }
                printTable(
                    ["ID", "TIME", "ACTOR", "UID", "PID", "PROCESS", "OP", "PATH", "BYTES", "RESULT"],
                    rows.map {
                        [
                            String($0.id), isoTime($0.time), $0.actor, String($0.uid), String($0.pid), $0.process,
                            $0.op,
                            ($0.workspace.map { "\($0):" } ?? "") + ($0.path ?? ""), $0.bytes.map(String.init) ?? "",
                            $0.result,
                        ]
                    })
            }
        }
    }

    struct Reads: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show, or switch on or off, the auditing of opens for reading in a workspace.",
            discussion: "On by default. Changes, denials and opens for writing are always audited. Admins only.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "The workspace.") var workspace: String
        @Argument(help: "on or off (default: show).") var state: Switch?
        @Flag(help: "Print the result as JSON.") var json = false

        enum Switch: String, ExpressibleByArgument { case on, off }

        func run() throws {
            try reporting {
                if let state { _ = try storeOptions.perform(.setAuditReads(workspace: workspace, on: state == .on)) }
                let store = try storeOptions.openReadOnly()
                defer { store.close() }
                let on = try FileSystem(readOnly: store).auditsReads(in: store.workspace(named: workspace))
                if json { return try printJSON(["workspace": workspace, "audit_reads": on ? "on" : "off"]) }
                print("opens for reading in '\(workspace)' are \(on ? "audited" : "not audited")")
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the audit log's hash chain and its head outside the store.",
            discussion: "Exit status: 0 intact, 4 the log was changed or cut short.")
        @OptionGroup var storeOptions: StoreOptions
        @Option(help: "The head file (default: where the daemon writes it).") var head: String?
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            try reporting {
                let store = try storeOptions.openReadOnly()
                defer { store.close() }
                let result = try FileSystem(readOnly: store).verifyAudit(headPath: head)
                if json { try printJSON(result) } else { print(result.detail) }
                if !result.intact { throw ExitCode(CLIError.Code.problemsFound.rawValue) }
            }
        }
    }
}
