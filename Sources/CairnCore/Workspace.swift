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
        let bytes = Array(name.utf8)
        try FileSystem.validate(name: bytes)
        guard !name.hasPrefix(".") else { throw FSError.invalidArgument("a workspace name may not start with '.'") }
        // The name appears in mount options (fsname=cairn:NAME) and in the mount table.
        guard !name.contains(where: { $0 == "," || $0.isWhitespace || $0 == "\\" }) else {
            throw FSError.invalidArgument("a workspace name may not contain ',', '\\' or white space")
        }
        return try write { db in
            if try WorkspaceQueries.named(db, name) != nil {
                throw FSError.invalidArgument("a workspace named '\(name)' exists already")
            }
            let now = Timestamp.now()
            let root = try NamespaceQueries.insertInode(
                db, .init(mode: S_IFDIR | 0o755, uid: owner.uid, gid: owner.gid, nlink: 2, time: now, workspace: nil))
            let id = try WorkspaceQueries.insert(db, name: name, root: root, owner: owner.uid, time: now)
            try WorkspaceQueries.setWorkspace(db, inode: root, workspace: id)
            let seq = try NamespaceQueries.recordEvent(
                db, kind: "mkdir", inode: root, parent: 1, name: bytes, actor: caller.actor, time: now)
            try NamespaceQueries.insertDentry(db, parent: 1, name: bytes, inode: root, seq: seq)
            try NamespaceQueries.touchDirectory(db, 1, at: now, linkDelta: 1)
            try ContentQueries.recordAttributeVersion(db, inode: root, seq: seq, actor: caller.actor, cause: "create")
            return Workspace(id: id, name: name, root: root, owner: owner.uid, created: now)
        }
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
