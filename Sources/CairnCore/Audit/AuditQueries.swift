import Foundation

/// What `cairn audit verify` found.
public struct AuditVerification: Sendable, Codable, Equatable {
    public var intact: Bool
    public var rows: Int
    /// The first row whose hash does not follow from the rows before it (edited or removed).
    public var firstBadRow: Int64?
    /// The head kept outside the store names a row the store no longer has, or another hash.
    public var cutShort: Bool
    public var headFile: String
    public var detail: String
}

extension FileSystem {
    public func auditRecords(
        actor: String? = nil, pathGlob: String? = nil, since: Timestamp? = nil, ops: [String] = [],
        deniedOnly: Bool = false, limit: Int = 100
    ) throws(FSError) -> [AuditRecord] {
        let filter = EventFilter(pattern: pathGlob, kinds: [])
        return try readAuditRows([]) { db in
            try db.rows(
                """
                SELECT id, time_ns, actor, uid, pid, process, op, workspace, path, version, bytes, result FROM audit
                WHERE (? IS NULL OR actor = ?) AND time_ns >= ? AND (? = 0 OR result LIKE 'denied%')
                ORDER BY id DESC
                """, [actor, actor, since?.nanoseconds ?? 0, deniedOnly ? 1 : 0]
            ).lazy.map(Self.auditRecord).filter { r in
                (ops.isEmpty || ops.contains(r.op))
                    && (pathGlob == nil
                        || filter.matches(
                            ChangeRecord(seq: 0, time: r.time, workspace: "", kind: "", path: r.path ?? "", actor: "")))
            }.prefix(limit).map { $0 }
        }
    }

    /// Reads the log's rows (`empty` from a store that has no log yet). A reader of a store
    /// another process owns opens the log for this only (a damaged one fails here, not in every
    /// command); a store its daemon has not migrated yet still has them in cairn.db.
    private func readAuditRows<T>(_ empty: T, _ work: (Connection) throws -> T) throws(FSError) -> T {
        if let auditDatabase { return try auditDatabase.read(work) }
        if let log = try AuditDatabase.open(storePath: store.path, readOnly: true) {
            defer { log.close() }
            return try log.read(work)
        }
        let unmoved = try store.read { db in
            try db.value(Int.self, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit'") ?? 0
        }
        return unmoved > 0 ? try store.read(work) : empty
    }

    private static func auditRecord(_ row: SQLRow) -> AuditRecord {
        AuditRecord(
            id: row[0], time: Timestamp(nanoseconds: row[1]), actor: row[2], uid: row[3], pid: row[4], process: row[5],
            op: row[6], workspace: row[7], path: row[8], version: row[9], bytes: row[10], result: row[11])
    }

    /// Recomputes the chain from the first row, and compares its end with the head kept outside
    /// the store (`headPath`, default: where the daemon writes it).
    public func verifyAudit(headPath: String? = nil) throws(FSError) -> AuditVerification {
        let headFile = headPath ?? AuditLog.defaultHeadPath(store)
        var hash = Data(count: 32)
        var rows = 0
        var firstBad: Int64?
        var hashes: [Int64: Data] = [:]
        var lastID: Int64 = 0
        var scratch: [UInt8] = []
        try readAuditRows(()) { db in
            for row in try db.rows(
                "SELECT id, time_ns, actor, uid, pid, process, op, workspace, path, version, bytes, result, hash FROM audit ORDER BY id"
            ) {
                let record = Self.auditRecord(row)
                let stored: Data = row[12]
                hash = AuditLog.chain(hash, record, scratch: &scratch)
                rows += 1
                lastID = record.id
                if firstBad == nil, hash != stored { firstBad = record.id }
                hashes[record.id] = stored
            }
        }
        var cutShort = false
        var detail = firstBad.map {
            "row \($0) does not follow from the rows before it (edited, or a row before it removed)"
        }
        if let text = try? String(contentsOfFile: headFile, encoding: .utf8) {
            let parts = text.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            if parts.count == 2, let id = Int64(parts[0]) {
                let hex = hashes[id].map { $0.map { String(format: "%02x", $0) }.joined() }
                if id > lastID || hex != parts[1] {
                    cutShort = true
                    detail =
                        detail
                        ?? "the head kept in \(headFile) names row \(id), which the log no longer has as it was: rows were cut"
                }
            }
        } else if rows > 0 {
            detail = detail ?? "no head file at \(headFile): the end of the log cannot be checked"
        }
        return AuditVerification(
            intact: firstBad == nil && !cutShort, rows: rows, firstBadRow: firstBad, cutShort: cutShort,
            headFile: headFile, detail: detail ?? "intact: \(rows) rows, the head outside the store matches")
    }
}

extension FileSystem {
    /// Whether opens for reading in `workspace` are audited (on unless switched off).
    public func auditsReads(in workspace: Workspace) throws(FSError) -> Bool {
        try store.read { db in
            try db.value(Int.self, "SELECT audit_reads FROM workspaces WHERE id = ?", [workspace.id]) != 0
        }
    }

    func setAuditReads(of workspace: Workspace, on: Bool) throws(FSError) {
        try store.write(.now) { db in
            try db.run("UPDATE workspaces SET audit_reads = ? WHERE id = ?", [on ? 1 : 0, workspace.id])
        }
    }
}
