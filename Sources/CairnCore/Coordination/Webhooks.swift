import Crypto
import Foundation

/// An HTTP endpoint that receives the store's events: each one its filters keep is POSTed as a
/// JSON `EventLine`, signed with HMAC-SHA256 when it has a secret, at least once and in seq order
/// (the daemon's `WebhookDispatcher`; see there for retries and the dead-letter list).
public struct Webhook: Sendable, Codable, Equatable {
    public var id: Int64
    public var url: String
    /// nil: every workspace.
    public var workspace: String?
    public var pathGlob: String?
    public var kinds: [String]
    public var hasSecret: Bool
    /// The last seq handled (delivered, or given up on).
    public var cursor: Int64
    public var created: Timestamp
}

/// One event's outcome for one webhook.
public struct WebhookDelivery: Sendable, Codable, Equatable {
    public var id: Int64
    public var webhook: Int64
    public var seq: Int64
    /// `delivered`, or `dead` (it kept failing; `cairn webhook retry` sends it again).
    public var state: String
    public var attempts: Int
    public var status: Int?
    public var error: String?
    public var time: Timestamp
}

extension FileSystem {
    public func addWebhook(
        url: String, workspace: Workspace?, pathGlob: String?, kinds: [String], secret: String?
    ) throws(FSError) -> Webhook {
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw FSError.invalidArgument("'\(url)' is not an http:// or https:// URL")
        }
        let from = try currentSeq()
        let now = Timestamp.now()
        let id = try store.write(.now) { db in
            try db.run(
                """
                INSERT INTO webhooks(url, workspace, path_glob, kinds, secret, cursor, created_ns)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    url, workspace?.id, pathGlob, kinds.isEmpty ? nil : kinds.joined(separator: ","), secret, from,
                    now.nanoseconds,
                ])
            return db.lastInsertedRowID
        }
        return try webhook(id)
    }

    public func removeWebhook(_ id: Int64) throws(FSError) {
        let removed = try store.write(.now) { db in
            try db.run("DELETE FROM webhooks WHERE id = ?", [id])
            return db.changesCount
        }
        if removed == 0 { throw FSError.invalidArgument("no webhook \(id) (see `cairn webhook list`)") }
    }

    public func webhooks() throws(FSError) -> [Webhook] {
        try store.read { db in
            let spaces = try WorkspaceQueries.all(db)
            return try db.rows(
                "SELECT id, url, workspace, path_glob, kinds, secret IS NOT NULL, cursor, created_ns FROM webhooks ORDER BY id"
            ).map { row in
                let ws: Int64? = row[2]
                let kinds: String? = row[4]
                return Webhook(
                    id: row[0], url: row[1], workspace: ws.flatMap { id in spaces.first { $0.id == id }?.name },
                    pathGlob: row[3], kinds: kinds.map { $0.split(separator: ",").map(String.init) } ?? [],
                    hasSecret: row[5], cursor: row[6], created: Timestamp(nanoseconds: row[7]))
            }
        }
    }

    public func webhook(_ id: Int64) throws(FSError) -> Webhook {
        guard let hook = try webhooks().first(where: { $0.id == id }) else {
            throw FSError.invalidArgument("no webhook \(id) (see `cairn webhook list`)")
        }
        return hook
    }

    /// The secret a webhook signs with (kept out of `Webhook`, which is shown to people).
    func webhookSecret(_ id: Int64) throws(FSError) -> String? {
        try store.read { db in try db.value(String.self, "SELECT secret FROM webhooks WHERE id = ?", [id]) }
    }

    public func deliveries(webhook: Int64? = nil, limit: Int = 100) throws(FSError) -> [WebhookDelivery] {
        try store.read { db in
            try db.rows(
                """
                SELECT id, webhook, seq, state, attempts, status, error, time_ns FROM webhook_deliveries
                WHERE ? IS NULL OR webhook = ? ORDER BY id DESC LIMIT ?
                """, [webhook, webhook, limit]
            ).map { row in
                WebhookDelivery(
                    id: row[0], webhook: row[1], seq: row[2], state: row[3], attempts: row[4], status: row[5],
                    error: row[6], time: Timestamp(nanoseconds: row[7]))
            }
        }
    }

    /// Records an event's outcome for a webhook and moves its cursor past it, in one commit.
    public func recordDelivery(
        webhook: Int64, seq: Int64, delivered: Bool, attempts: Int, status: Int?, error: String?, moveCursor: Bool
    ) throws(FSError) {
        try store.write(.journaled) { db in
            try db.run(
                """
                INSERT INTO webhook_deliveries(webhook, seq, state, attempts, status, error, time_ns)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
                [webhook, seq, delivered ? "delivered" : "dead", attempts, status, error, Timestamp.now().nanoseconds])
            if moveCursor { try db.run("UPDATE webhooks SET cursor = max(cursor, ?) WHERE id = ?", [seq, webhook]) }
        }
    }

    /// Moves a webhook's cursor past events its filters leave out.
    public func advanceWebhook(_ id: Int64, to seq: Int64) throws(FSError) {
        try store.write(.deferred) { db in
            try db.run("UPDATE webhooks SET cursor = max(cursor, ?) WHERE id = ?", [seq, id])
        }
    }

    /// The body and headers of one event for a webhook: the JSON line, and its signature
    /// (`sha256=` and the hex HMAC-SHA256 of the body with the webhook's secret).
    public func webhookRequest(_ hook: Webhook, event: ChangeRecord) throws(FSError) -> (
        body: Data, headers: [String: String]
    ) {
        let body = Data(EventLine(event).json.utf8)
        var headers = [
            "Content-Type": "application/json", "X-Cairn-Event": String(event.seq), "X-Cairn-Webhook": String(hook.id),
            "X-Cairn-Delivery": "\(hook.id)-\(event.seq)",
        ]
        if let secret = try webhookSecret(hook.id) {
            let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
            headers["X-Cairn-Signature"] = "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
        }
        return (body, headers)
    }
}
