import Foundation
import Glibc
import Synchronization

/// What a principal may do in a workspace, on top of Unix mode bits (which still apply).
public enum Role: String, Sendable, Codable, Comparable, CaseIterable {
    case none, reader, writer, admin

    private var rank: Int { Role.allCases.firstIndex(of: self)! }
    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
}

/// One grant: `principal` is `uid:N`, `gid:N`, `agent:NAME` or `everyone` (every uid
/// without a grant of its own).
public struct Grant: Sendable, Codable, Equatable {
    public var workspace: String
    public var principal: String
    public var role: Role
}

/// Roles remembered for a second (a revoke applies within that time), by workspace and caller.
struct RoleCache {
    struct Key: Hashable {
        var workspace: Int64
        var uid: UInt32
        var gids: [UInt32]
        var actor: String
    }

    /// Whether any grant exists (else every check returns at once: Unix mode bits decide).
    var any = false
    var roles: [Key: (role: Role, at: Int64)] = [:]
    var workspaceOf: [InodeID: Int64] = [:]
}

extension FileSystem {
    /// The role of a uid without a grant in a workspace without grants to users: writer (mode
    /// bits decide). A store-wide default (`cairn access --default`) gives new workspaces an
    /// `everyone` grant instead.
    public static let defaultRole = Role.writer
    static let everyone = "everyone"

    /// The store-wide role new workspaces give every uid without a grant (nil: `defaultRole`).
    static func storeDefaultRole(_ db: Connection) throws -> Role? {
        try db.value(String.self, "SELECT value FROM meta WHERE key = 'default_role'").flatMap(Role.init(rawValue:))
    }

    public func storeDefaultRole() throws(FSError) -> Role {
        try store.read { db in try Self.storeDefaultRole(db) } ?? Self.defaultRole
    }

    func setStoreDefaultRole(_ role: Role) throws(FSError) {
        try store.write(.now) { db in
            try db.run("INSERT OR REPLACE INTO meta(key, value) VALUES ('default_role', ?)", [role.rawValue])
        }
    }

    /// The role of `caller` in `workspace`. Root and the workspace's owner are admins. A uid's
    /// role is its best grant, or a group's it is in, else the default; a grant to the caller's
    /// actor can only narrow it (actors are labels within a uid, not a security boundary).
    public func role(of caller: Caller, in workspace: Workspace) throws(FSError) -> Role {
        try store.read { db in try Self.role(db, caller, workspace.id, owner: workspace.owner) }
    }

    static func role(_ db: Connection, _ caller: Caller, _ workspace: Int64, owner: UInt32) throws -> Role {
        if caller.uid == 0 || caller.uid == owner { return .admin }
        let grants = Dictionary(
            uniqueKeysWithValues: try db.rows("SELECT principal, role FROM grants WHERE workspace = ?", [workspace]).map
            {
                ($0[0] as String, Role(rawValue: $0[1]) ?? .none)
            })
        let mine = (["uid:\(caller.uid)", "gid:\(caller.gid)"] + caller.groups.map { "gid:\($0)" }).compactMap {
            grants[$0]
        }
        var role = mine.max() ?? othersRole(grants)
        if let actorRole = grants["agent:\(caller.actor)"] { role = min(role, actorRole) }
        return role
    }

    /// The role of a uid without a grant of its own or of its groups: the `everyone` grant,
    /// else none once a user or group has a grant, else the default.
    public static func othersRole(_ grants: [String: Role]) -> Role {
        grants[everyone] ?? (grants.keys.contains { !$0.hasPrefix("agent:") } ? .none : defaultRole)
    }

    /// Whether any grant exists (else roles are not checked: Unix mode bits alone decide).
    public var enforcesRoles: Bool { permissions.withLock { $0.any } }

    /// Refuses `caller` what its role in `inode`'s workspace does not allow (EACCES).
    public func authorize(_ caller: Caller, _ inode: InodeID, needs: Role) throws(FSError) {
        guard permissions.withLock({ $0.any }), caller.uid != 0 else { return }
        let now = Timestamp.monotonicNanoseconds()
        let known = permissions.withLock { $0.workspaceOf[inode] }
        let workspace: Int64
        if let known {
            workspace = known
        } else {
            guard let ws = try store.read({ db in try NamespaceQueries.workspace(ofInode: inode, db) }) else { return }
            permissions.withLock { $0.workspaceOf[inode] = ws }
            workspace = ws
        }
        let key = RoleCache.Key(
            workspace: workspace, uid: caller.uid, gids: [caller.gid] + caller.groups, actor: caller.actor)
        var role = permissions.withLock { c in c.roles[key].flatMap { now - $0.at < 1_000_000_000 ? $0.role : nil } }
        if role == nil {
            let fresh = try store.read { db -> Role in
                let owner = try db.value(UInt32.self, "SELECT owner_uid FROM workspaces WHERE id = ?", [workspace]) ?? 0
                return try Self.role(db, caller, workspace, owner: owner)
            }
            permissions.withLock { $0.roles[key] = (fresh, now) }
            role = fresh
        }
        if role! < needs {
            audit(caller, "denied", inode: inode, result: Self.denial(needs: needs, has: role!))
            throw FSError.permissionDenied
        }
    }

    public func grant(_ role: Role, to principal: String, in workspace: Workspace) throws(FSError) {
        let normalized = try Self.principal(principal)
        try store.write(.now) { db in
            try db.run(
                "INSERT OR REPLACE INTO grants(workspace, principal, role) VALUES (?, ?, ?)",
                [workspace.id, normalized, role.rawValue])
        }
        try loadPermissions()
    }

    public func revoke(_ principal: String, in workspace: Workspace) throws(FSError) {
        let normalized = try Self.principal(principal)
        try store.write(.now) { db in
            try db.run("DELETE FROM grants WHERE workspace = ? AND principal = ?", [workspace.id, normalized])
        }
        try loadPermissions()
    }

    public func grants(in workspace: Workspace) throws(FSError) -> [Grant] {
        try store.read { db in
            try db.rows("SELECT principal, role FROM grants WHERE workspace = ? ORDER BY principal", [workspace.id]).map
            {
                Grant(workspace: workspace.name, principal: $0[0], role: Role(rawValue: $0[1]) ?? .none)
            }
        }
    }

    /// Hands a workspace to a new owner (a uid); the old one keeps admin when `keepAdmin`.
    public func transfer(_ workspace: Workspace, to principal: String, keepAdmin: Bool) throws(FSError) {
        let normalized = try Self.principal(principal)
        guard normalized.hasPrefix("uid:"), let uid = UInt32(normalized.dropFirst(4)) else {
            throw FSError.invalidArgument("a workspace is owned by a user (user:NAME or uid:N)")
        }
        try store.write(.now) { db in
            try db.run("UPDATE workspaces SET owner_uid = ? WHERE id = ?", [uid, workspace.id])
            if keepAdmin {
                try db.run(
                    "INSERT OR REPLACE INTO grants(workspace, principal, role) VALUES (?, ?, 'admin')",
                    [workspace.id, "uid:\(workspace.owner)"])
            }
        }
        try loadPermissions()
    }

    func loadPermissions() throws(FSError) {
        let any = try store.read { db in try db.value(Int.self, "SELECT 1 FROM grants LIMIT 1") != nil }
        permissions.withLock { c in
            c.any = any
            c.roles.removeAll()
        }
    }

    static func denial(needs: Role, has: Role) -> String { "denied: needs \(needs.rawValue), has \(has.rawValue)" }

    /// `user:NAME`, `uid:N`, `group:NAME`, `gid:N`, `agent:NAME` or `everyone`, as stored (uid:,
    /// gid:, agent:, everyone).
    static func principal(_ text: String) throws(FSError) -> String {
        if text == everyone { return text }
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[1].isEmpty else {
            throw FSError.invalidArgument(
                "'\(text)' is not a principal: use user:NAME, uid:N, group:NAME, gid:N, agent:NAME or everyone")
        }
        switch parts[0] {
        case "uid", "gid":
            guard UInt32(parts[1]) != nil else { throw FSError.invalidArgument("'\(parts[1])' is not a number") }
            return text
        case "agent": return text
        case "user":
            guard let pw = getpwnam(parts[1]) else { throw FSError.invalidArgument("no user named '\(parts[1])'") }
            return "uid:\(pw.pointee.pw_uid)"
        case "group":
            guard let gr = getgrnam(parts[1]) else { throw FSError.invalidArgument("no group named '\(parts[1])'") }
            return "gid:\(gr.pointee.gr_gid)"
        default:
            throw FSError.invalidArgument(
                "'\(text)' is not a principal: use user:NAME, uid:N, group:NAME, gid:N, agent:NAME or everyone")
        }
    }
}
