import Foundation
import Synchronization

/// A workspace's quota and what counts against it: the bytes of the current versions of its
/// live files (a file with several names counted once) and its live inodes. History is shown
/// beside it and not counted.
public struct QuotaReport: Sendable, Codable, Equatable {
    public var workspace: String
    public var limitBytes: Int64?
    public var limitFiles: Int64?
    public var usedBytes: Int64
    public var usedFiles: Int64
    /// Bytes the workspace's versions name in all (history included), for comparison.
    public var historyBytes: Int64
}

/// What quota checks remember between writes: the usage read from the database, valid while
/// the writer has done nothing since (`Store.changes`).
struct QuotaCache {
    struct Usage {
        var limitBytes: Int64?
        var limitFiles: Int64?
        var bytes: Int64
        var files: Int64
        var atChange: Int
    }

    /// Whether any workspace has a quota (else every check returns at once).
    var any = false
    var usage: [Int64: Usage] = [:]
    var workspaceOf: [InodeID: Int64] = [:]
}

extension FileSystem {
    /// Sets (or, with nil, removes) a workspace's limits.
    public func setQuota(of workspace: Workspace, bytes: Int64?, files: Int64?) throws(FSError) {
        if let bytes, bytes < 0 { throw FSError.invalidArgument("a quota cannot be negative") }
        if let files, files < 0 { throw FSError.invalidArgument("a quota cannot be negative") }
        try store.write(.now) { db in
            try db.run(
                "UPDATE workspaces SET quota_bytes = ?, quota_files = ? WHERE id = ?", [bytes, files, workspace.id])
        }
        try loadQuotas()
    }

    public func quotaReport(of workspace: Workspace) throws(FSError) -> QuotaReport {
        try store.read { db in
            let (limits, used) = (try Self.limits(db, workspace.id), try Self.usage(db, workspace.id))
            let history =
                try db.value(
                    Int64.self,
                    """
                    SELECT coalesce(sum(v.size), 0) FROM versions v JOIN inodes i ON i.id = v.inode
                    WHERE i.workspace = ? AND v.manifest IS NOT NULL
                    """, [workspace.id]) ?? 0
            return QuotaReport(
                workspace: workspace.name, limitBytes: limits.bytes, limitFiles: limits.files, usedBytes: used.bytes,
                usedFiles: used.files, historyBytes: history)
        }
    }

    /// Reads whether any workspace has a quota (at start, and when one is set).
    func loadQuotas() throws(FSError) {
        let any = try store.read { db in
            try db.value(
                Int.self, "SELECT 1 FROM workspaces WHERE quota_bytes IS NOT NULL OR quota_files IS NOT NULL LIMIT 1")
                != nil
        }
        quotas.withLock { q in
            q.any = any
            q.usage.removeAll()
        }
    }

    /// Refuses a change that would take `inode`'s workspace past its quota: `growth` more bytes
    /// of current content, `newInodes` more live inodes. A refusal is audited as `caller`'s.
    func checkQuota(_ inode: InodeID, growth: Int64, newInodes: Int64 = 0, caller: Caller?) throws(FSError) {
        guard quotas.withLock({ $0.any }), growth > 0 || newInodes > 0 else { return }
        let now = store.changes.load(ordering: .relaxed)
        let cached = quotas.withLock { q -> (Int64?, QuotaCache.Usage?) in
            guard let ws = q.workspaceOf[inode] else { return (nil, nil) }
            return (ws, q.usage[ws].flatMap { $0.atChange == now ? $0 : nil })
        }
        var usage = cached.1
        if usage == nil {
            let (ws, fresh) = try store.read { db -> (Int64?, QuotaCache.Usage?) in
                guard let ws = try cached.0 ?? NamespaceQueries.workspace(ofInode: inode, db) else { return (nil, nil) }
                let limits = try Self.limits(db, ws)
                let used = try Self.usage(db, ws)
                return (
                    ws,
                    QuotaCache.Usage(
                        limitBytes: limits.bytes, limitFiles: limits.files, bytes: used.bytes, files: used.files,
                        atChange: now)
                )
            }
            guard let ws, let fresh else { return }
            quotas.withLock { q in
                q.workspaceOf[inode] = ws
                q.usage[ws] = fresh
            }
            usage = fresh
        }
        guard let usage else { return }
        let overBytes = usage.limitBytes.map { growth > 0 && usage.bytes + growth > $0 } ?? false
        let overFiles = usage.limitFiles.map { newInodes > 0 && usage.files + newInodes > $0 } ?? false
        guard overBytes || overFiles else { return }
        if let caller {
            audit(
                caller, "denied", inode: inode,
                result: "denied: over the workspace's quota of \(overBytes ? "bytes" : "files")")
        }
        throw FSError.quotaExceeded
    }

    private static func limits(_ db: Connection, _ workspace: Int64) throws -> (bytes: Int64?, files: Int64?) {
        guard let row = try db.row("SELECT quota_bytes, quota_files FROM workspaces WHERE id = ?", [workspace]) else {
            return (nil, nil)
        }
        return (row[0], row[1])
    }

    private static func usage(_ db: Connection, _ workspace: Int64) throws -> (bytes: Int64, files: Int64) {
        let row = try db.row(
            """
            SELECT coalesce(sum(CASE WHEN (mode & 61440) = 32768 THEN size ELSE 0 END), 0), count(*)
            FROM inodes WHERE workspace = ? AND nlink > 0
            """, [workspace])!
        return (row[0], row[1])
    }
}
