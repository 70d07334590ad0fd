import Foundation
import Glibc

/// A named tree of the store, with its own root directory.
public struct Workspace: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var root: InodeID
    public var owner: UInt32
    public var created: Timestamp
}

extension Store {
    /// Creates a workspace whose root directory belongs to `owner`.
    public func createWorkspace(name: String, owner: (uid: UInt32, gid: UInt32), caller: Caller) throws(FSError)
        -> Workspace
    {
        try Self.validate(workspaceName: name)
        return try write { db in
            let now = Timestamp.now()
            let root = NamespaceQueries.NewInode(
                mode: S_IFDIR | 0o755, uid: owner.uid, gid: owner.gid, nlink: 2, time: now, workspace: nil)
            let (ws, seq) = try Self.addWorkspace(
                db, name: name, root: root, owner: owner.uid, caller: caller, kind: "mkdir")
            try ContentQueries.recordAttributeVersion(
                db, inode: ws.root, seq: seq, actor: caller.actor, cause: "create")
            return ws
        }
    }

    static func validate(workspaceName name: String) throws(FSError) {
        try FileSystem.validate(name: Array(name.utf8))
        guard !name.hasPrefix(".") else { throw FSError.invalidArgument("a workspace name may not start with '.'") }
        // The name appears in mount options (fsname=cairn:NAME) and in the mount table.
        guard !name.contains(where: { $0 == "," || $0.isWhitespace || $0 == "\\" }) else {
            throw FSError.invalidArgument("a workspace name may not contain ',', '\\' or white space")
        }
    }

    /// Adds a workspace named `name` with a new root directory, inside an operation of the
    /// writer; returns it with the seq of its creation (an event of `kind`).
    static func addWorkspace(
        _ db: Connection, name: String, root: NamespaceQueries.NewInode, owner: UInt32, caller: Caller, kind: String
    ) throws -> (Workspace, Int64) {
        if try WorkspaceQueries.named(db, name) != nil {
            throw FSError.invalidArgument("a workspace named '\(name)' exists already")
        }
        let bytes = Array(name.utf8)
        let now = root.time
        let rootID = try NamespaceQueries.insertInode(db, root)
        let id = try WorkspaceQueries.insert(db, name: name, root: rootID, owner: owner, time: now)
        try WorkspaceQueries.setWorkspace(db, inode: rootID, workspace: id)
        let seq = try NamespaceQueries.recordEvent(
            db, kind: kind, inode: rootID, parent: 1, name: bytes, actor: caller.actor, time: now)
        try NamespaceQueries.insertDentry(db, parent: 1, name: bytes, inode: rootID, seq: seq)
        try NamespaceQueries.touchDirectory(db, 1, at: now, linkDelta: 1)
        if let role = try FileSystem.storeDefaultRole(db), role != FileSystem.defaultRole {
            try db.run(
                "INSERT INTO grants(workspace, principal, role) VALUES (?, ?, ?)",
                [id, FileSystem.everyone, role.rawValue])
        }
        return (Workspace(id: id, name: name, root: rootID, owner: owner, created: now), seq)
    }

    public func workspaces() throws(FSError) -> [Workspace] {
        try read { db in try WorkspaceQueries.all(db) }
    }

    public func workspace(named name: String) throws(FSError) -> Workspace {
        guard let ws = try read({ db in try WorkspaceQueries.named(db, name) }) else {
            throw FSError.invalidArgument("no workspace named '\(name)' (see `cairn workspace list`)")
        }
        return ws
    }
}

extension Store {
    /// The workspace whose root directory is `root`.
    public func workspace(root: InodeID) throws(FSError) -> Workspace {
        guard let ws = try workspaces().first(where: { $0.root == root }) else { throw FSError.notFound }
        return ws
    }
}
