import Foundation
import Glibc

/// A change the CLI asks of a store. The store's daemon performs it when one runs (it owns the
/// writer and the open files); otherwise the CLI performs it as the store's one writer. One
/// description, and one implementation (`FileSystem.perform`), serves both ways.
public enum StoreAction: Sendable, Codable, Equatable {
    case createWorkspace(name: String)
    case createSnapshot(workspace: String, name: String)
    case deleteSnapshot(workspace: String, name: String)
    /// `path` "" is the whole workspace.
    case restore(workspace: String, path: String, source: RestoreSource)
    /// The whole workspace, after a safety snapshot named `before-rollback-<time>`.
    case rollback(workspace: String, source: RestoreSource)
    case setRetention(workspace: String, policy: RetentionPolicy)
    case collectGarbage(dryRun: Bool)
    /// fsck --repair: what loses nothing.
    case repair
    /// A new workspace `name` that starts as `source` was at `at` (default: now).
    case fork(source: String, name: String, at: String?)
    /// Makes `path` of a fork readable without the writer (see `FileSystem.prepare`).
    case prepare(workspace: String, path: String)
    /// A named event consumer took every event up to `seq`.
    case consumed(consumer: String, seq: Int64)
    /// A webhook for the events after now that its filters keep.
    case addWebhook(url: String, workspace: String?, pathGlob: String?, kinds: [String], secret: String?)
    case removeWebhook(id: Int64)
    /// nil limits: none.
    case setQuota(workspace: String, bytes: Int64?, files: Int64?)
    /// Admins only (root, the owner, or an admin grant).
    case grant(workspace: String, principal: String, role: Role)
    case revoke(workspace: String, principal: String)
    case transfer(workspace: String, to: String, keepAdmin: Bool)
    /// Whether opens for reading are audited in the workspace (on by default).
    case setAuditReads(workspace: String, on: Bool)
    /// The role new workspaces give every uid without a grant; root or the store's owner only.
    case setDefaultRole(Role)
}

/// What an action did; the fields its kind fills.
public struct StoreActionResult: Sendable, Codable, Equatable {
    public var workspace: String?
    public var snapshot: Snapshot?
    public var restore: RestoreSummary?
    public var retention: RetentionPolicy?
    public var gc: GCSummary?
    public var repair: RepairSummary?
    public var webhook: Webhook?
    public var quota: QuotaReport?
    public var grants: [Grant]?
    public var auditReads: Bool?
    public var defaultRole: Role?
}

extension FileSystem {
    /// Performs `action` for `caller`. The changes are what caches of the namespace must drop.
    /// `progress` hears from long actions (gc).
    public func perform(
        _ action: StoreAction, caller: Caller, progress: (GCProgress) -> Void = { _ in }
    ) throws(FSError) -> (
        StoreActionResult, Set<NamespaceChange>
    ) {
        do {
            let done = try performUnaudited(action, caller: caller, progress: progress)
            if let (op, workspace, path, detail) = action.audited {
                audit(
                    caller, op, workspace: workspace ?? done.0.workspace, path: path,
                    result: "ok" + (detail.map { ": " + $0 } ?? ""))
            }
            return done
        } catch .notAllowed(let why) {
            if let (op, workspace, path, _) = action.audited {
                audit(caller, op, workspace: workspace, path: path, result: "denied: \(why)")
            }
            throw FSError.notAllowed(why)
        }
    }

    private func performUnaudited(
        _ action: StoreAction, caller: Caller, progress: (GCProgress) -> Void
    ) throws(FSError) -> (StoreActionResult, Set<NamespaceChange>) {
        var result = StoreActionResult()
        var changes = Set<NamespaceChange>()
        switch action {
        case .createWorkspace(let name):
            let ws = try store.createWorkspace(name: name, owner: (caller.uid, caller.gid), caller: caller)
            result.workspace = ws.name
            changes.insert(.entry(parent: 1, name: Array(name.utf8)))
            try loadPermissions()
        case .createSnapshot(let workspace, let name):
            let ws = try authorizedWorkspace(workspace, caller, needs: .writer)
            result.workspace = ws.name
            result.snapshot = try createSnapshot(of: ws, name: name, caller: caller)
            changes.insert(.snapshot(root: ws.root, name: Array(name.utf8)))
        case .deleteSnapshot(let workspace, let name):
            let ws = try authorizedWorkspace(workspace, caller, needs: .writer)
            result.workspace = ws.name
            result.snapshot = try deleteSnapshot(of: ws, name: name, caller: caller)
            changes.insert(.snapshot(root: ws.root, name: Array(name.utf8)))
        case .restore(let workspace, let path, let source):
            let ws = try authorizedWorkspace(workspace, caller, needs: .writer)
            result.workspace = ws.name
            (result.restore, changes) = try restore(path, in: ws, from: source, caller: caller)
        case .rollback(let workspace, let source):
            let ws = try authorizedWorkspace(workspace, caller, needs: .writer)
            result.workspace = ws.name
            (result.restore, changes) = try restore(
                "", in: ws, from: source, caller: caller, safetySnapshot: "before-rollback")
        case .setRetention(let workspace, let policy):
            let ws = try authorizedWorkspace(workspace, caller, needs: .admin)
            result.workspace = ws.name
            try setRetention(of: ws, to: policy)
            result.retention = policy
        case .collectGarbage(let dryRun):
            try requireStoreOwner(caller, "collect garbage")
            result.gc = try collectGarbage(dryRun: dryRun, progress: progress)
        case .repair:
            try requireStoreOwner(caller, "repair the store")
            result.repair = try repair(progress: progress)
        case .fork(let source, let name, let at):
            let ws = try fork(
                authorizedWorkspace(source, caller, needs: .reader), as: name,
                at: at.map { text throws(FSError) in try PointInTime(text) },
                caller: caller)
            result.workspace = ws.name
            changes.insert(.entry(parent: 1, name: Array(name.utf8)))
            try loadPermissions()
        case .prepare(let workspace, let path):
            let ws = try authorizedWorkspace(workspace, caller, needs: .reader)
            result.workspace = ws.name
            try prepare(path, in: ws)
        case .consumed(let consumer, let seq):
            try setConsumerPosition(consumer, to: seq)
        case .addWebhook(let url, let workspace, let pathGlob, let kinds, let secret):
            if workspace == nil { try requireStoreOwner(caller, "add a webhook for every workspace") }
            result.webhook = try addWebhook(
                url: url,
                workspace: workspace.map { name throws(FSError) in
                    try self.authorizedWorkspace(name, caller, needs: .admin)
                },
                pathGlob: pathGlob, kinds: kinds, secret: secret)
        case .grant(let workspace, let principal, let role):
            let ws = try authorizedWorkspace(workspace, caller, needs: .admin)
            try grant(role, to: principal, in: ws)
            result.grants = try grants(in: ws)
        case .revoke(let workspace, let principal):
            let ws = try authorizedWorkspace(workspace, caller, needs: .admin)
            try revoke(principal, in: ws)
            result.grants = try grants(in: ws)
        case .transfer(let workspace, let to, let keepAdmin):
            let ws = try authorizedWorkspace(workspace, caller, needs: .admin)
            try transfer(ws, to: to, keepAdmin: keepAdmin)
            result.workspace = ws.name
            result.grants = try grants(in: ws)
        case .setQuota(let workspace, let bytes, let files):
            let ws = try authorizedWorkspace(workspace, caller, needs: .admin)
            result.workspace = ws.name
            try setQuota(of: ws, bytes: bytes, files: files)
            result.quota = try quotaReport(of: ws)
        case .setAuditReads(let workspace, let on):
            let ws = try authorizedWorkspace(workspace, caller, needs: .admin)
            result.workspace = ws.name
            try setAuditReads(of: ws, on: on)
            result.auditReads = on
        case .setDefaultRole(let role):
            try requireStoreOwner(caller, "set the store's default role")
            try setStoreDefaultRole(role)
            result.defaultRole = role
        case .removeWebhook(let id):
            result.webhook = try webhook(id)
            if let name = result.webhook?.workspace {
                _ = try authorizedWorkspace(name, caller, needs: .admin)
            } else {
                try requireStoreOwner(caller, "remove a webhook for every workspace")
            }
            try removeWebhook(id)
        }
        return (result, changes)
    }

    /// The workspace, when `caller`'s role in it is at least `needs`.
    private func authorizedWorkspace(_ name: String, _ caller: Caller, needs: Role) throws(FSError) -> Workspace {
        let ws = try store.workspace(named: name)
        let role = try role(of: caller, in: ws)
        guard role >= needs else {
            throw FSError.notAllowed(
                needs == .admin
                    ? "only an admin of '\(name)' (its owner, root or an admin grant) may do that"
                    : "that needs the role \(needs.rawValue) in '\(name)', and \(caller.actor) has \(role.rawValue)")
        }
        return ws
    }

    /// Store-wide actions are for root and the store's owner (the daemon's user).
    private func requireStoreOwner(_ caller: Caller, _ what: String) throws(FSError) {
        guard caller.uid == 0 || caller.uid == geteuid() else {
            throw FSError.notAllowed("only root or the store's owner may \(what)")
        }
    }
}
