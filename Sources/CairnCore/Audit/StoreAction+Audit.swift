extension StoreAction {
    /// How the audit log names the action, the workspace and path it concerns, and what it
    /// says beyond them; nil for bookkeeping that changes nothing a person asks about later.
    var audited: (op: String, workspace: String?, path: String?, detail: String?)? {
        switch self {
        case .createWorkspace(let name): ("workspace-create", name, nil, nil)
        case .createSnapshot(let ws, let name): ("snapshot-create", ws, nil, name)
        case .deleteSnapshot(let ws, let name): ("snapshot-delete", ws, nil, name)
        case .restore(let ws, let path, let source): ("restore", ws, "/" + path, source.audited)
        case .rollback(let ws, let source): ("rollback", ws, "/", source.audited)
        case .setRetention(let ws, _): ("retention", ws, nil, nil)
        case .collectGarbage(let dryRun): dryRun ? nil : ("gc", nil, nil, nil)
        case .repair: ("repair", nil, nil, nil)
        case .fork(let source, let name, let at): ("fork", name, nil, "from \(source)" + (at.map { " at \($0)" } ?? ""))
        case .prepare, .consumed: nil
        case .addWebhook(let url, let ws, _, _, _): ("webhook-add", ws, nil, url)
        case .removeWebhook(let id): ("webhook-remove", nil, nil, "#\(id)")
        case .setQuota(let ws, let bytes, let files):
            ("quota", ws, nil, "bytes \(bytes.map(String.init) ?? "none"), files \(files.map(String.init) ?? "none")")
        case .grant(let ws, let principal, let role): ("grant", ws, nil, "\(principal) \(role.rawValue)")
        case .revoke(let ws, let principal): ("revoke", ws, nil, principal)
        case .transfer(let ws, let to, let keepAdmin):
            ("transfer", ws, nil, "to \(to)" + (keepAdmin ? ", the previous owner keeps admin" : ""))
        case .setAuditReads(let ws, let on): ("audit-reads", ws, nil, on ? "on" : "off")
        case .setDefaultRole(let role): ("default-role", nil, nil, role.rawValue)
        }
    }
}

extension RestoreSource {
    fileprivate var audited: String {
        switch self {
        case .at(let when): "from \(when)"
        case .snapshot(let name): "from snapshot \(name)"
        case .version(let id): "from version \(id)"
        }
    }
}
