import ArgumentParser
import CairnCore
import CairnMount
import Foundation

struct WebhookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhook", abstract: "POST the store's events to HTTP endpoints.",
        discussion: """
            Each event a webhook's filters keep is POSTed as one JSON object (the line `cairn watch \
            --json` prints), with headers X-Cairn-Event (its seq), X-Cairn-Delivery and, with a \
            secret, X-Cairn-Signature: sha256=HMAC-SHA256(body, secret) in hex. Delivery is at \
            least once and in seq order per webhook, from a cursor kept in the store, so a receiver \
            that was down, or a daemon that was killed, still gets every event. A failing event is \
            retried with growing waits (0.5 s to a minute) and after 8 tries goes to the \
            dead-letter list (`deliveries`, `retry`) instead of blocking the webhook. The store's \
            daemon delivers: events wait in the store while no daemon runs.
            """,
        subcommands: [Add.self, List.self, Remove.self, Test.self, Deliveries.self, Retry.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send the events from now on to URL.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "An http:// or https:// URL.") var url: String
        @Option(help: "Only this workspace's events.") var workspace: String?
        @Option(help: "Only events of a path, a directory's tree or a glob.") var path: String?
        @Option(help: "Only these kinds (repeat, or separate with commas).") var kind: [String] = []
        @Option(help: "Sign each body with HMAC-SHA256 and this secret.") var secret: String?
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            try reporting {
                let kinds = kind.flatMap { $0.split(separator: ",").map(String.init) }
                let result = try storeOptions.perform(
                    .addWebhook(url: url, workspace: workspace, pathGlob: path, kinds: kinds, secret: secret))
                guard let hook = result.webhook else { throw CLIError(message: "the store did not answer") }
                if json { return try printJSON(hook) }
                print("webhook \(hook.id): events after @\(hook.cursor) go to \(hook.url)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the webhooks and where each one is.")
        @OptionGroup var storeOptions: StoreOptions
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            try reporting {
                let store = try storeOptions.openReadOnly()
                defer { store.close() }
                let hooks = try FileSystem(readOnly: store).webhooks()
                if json { return try printJSON(hooks) }
                printTable(
                    ["ID", "URL", "WORKSPACE", "PATH", "KINDS", "SIGNED", "AT"],
                    hooks.map {
                        [
                            String($0.id), $0.url, $0.workspace ?? "*", $0.pathGlob ?? "*",
                            $0.kinds.isEmpty ? "*" : $0.kinds.joined(separator: ","), $0.hasSecret ? "yes" : "no",
                            "@\($0.cursor)",
                        ]
                    })
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop sending events to a webhook.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "The webhook's id (see `cairn webhook list`).") var id: Int64

        func run() throws {
            try reporting {
                let result = try storeOptions.perform(.removeWebhook(id: id))
                print("removed webhook \(id) (\(result.webhook?.url ?? ""))")
            }
        }
    }

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "POST a test event (kind ping) to a webhook now and show the answer.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "The webhook's id.") var id: Int64

        func run() throws {
            try reporting {
                let response = try daemonRequest(ControlRequest(op: .webhookTest, id: id), storeOptions)
                guard let status = response.httpStatus else {
                    throw CLIError(message: "no answer: \(response.detail ?? "unknown error")")
                }
                print("HTTP \(status)")
                if !(200..<300).contains(status) { throw ExitCode(1) }
            }
        }
    }

    struct Deliveries: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what was delivered, and the dead-letter list (state dead), newest first.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "Only this webhook.") var id: Int64?
        @Option(help: "Show at most this many.") var limit = 50
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            try reporting {
                let store = try storeOptions.openReadOnly()
                defer { store.close() }
                let rows = try FileSystem(readOnly: store).deliveries(webhook: id, limit: limit)
                if json { return try printJSON(rows) }
                printTable(
                    ["DELIVERY", "WEBHOOK", "SEQ", "STATE", "TRIES", "STATUS", "TIME", "ERROR"],
                    rows.map {
                        [
                            String($0.id), String($0.webhook), "@\($0.seq)", $0.state, String($0.attempts),
                            $0.status.map(String.init) ?? "-", isoTime($0.time), $0.error ?? "",
                        ]
                    })
            }
        }
    }

    struct Retry: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a dead-lettered delivery again, now.")
        @OptionGroup var storeOptions: StoreOptions
        @Argument(help: "The delivery's id (see `cairn webhook deliveries`).") var delivery: Int64

        func run() throws {
            try reporting {
                let response = try daemonRequest(ControlRequest(op: .webhookRetry, id: delivery), storeOptions)
                guard let outcome = response.delivery else { throw CLIError(message: "the daemon did not answer") }
                print("delivery \(outcome.id): \(outcome.state)\(outcome.status.map { " (HTTP \($0))" } ?? "")")
                if outcome.state != "delivered" { throw ExitCode(1) }
            }
        }
    }
}

/// A request only the running daemon can answer.
func daemonRequest(_ request: ControlRequest, _ storeOptions: StoreOptions) throws -> ControlResponse {
    guard let response = DaemonClient.send(request, storePath: storeOptions.path) else {
        throw CLIError(
            message: "no Cairn daemon runs for this store: webhooks are sent by the daemon; mount the store first")
    }
    guard response.ok else { throw CLIError(message: response.error ?? "the daemon refused") }
    return response
}
