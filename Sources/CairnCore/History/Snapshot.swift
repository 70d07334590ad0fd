import Foundation

/// A named checkpoint of a workspace: the seq it was taken at, with a name. Taking one copies
/// nothing (the namespace and versions of every seq are kept), so it costs the same whatever
/// the workspace's size.
public struct Snapshot: Sendable, Equatable, Codable {
    public var id: Int64
    public var name: String
    public var seq: Int64
    public var created: Timestamp
    public var actor: String
    public var workspace: String
}

extension FileSystem {
    /// Takes a snapshot of `workspace` as it is now.
    public func createSnapshot(of workspace: Workspace, name: String, caller: Caller) throws(FSError) -> Snapshot {
        try Self.validate(snapshotName: name)
        try sealWriteSessions()
        return try store.write(.now) { db in try Self.createSnapshot(db, of: workspace, name: name, caller: caller) }
    }

    /// Takes a snapshot inside an operation already running on the writer.
    static func createSnapshot(_ db: Connection, of workspace: Workspace, name: String, caller: Caller) throws
        -> Snapshot
    {
        if try SnapshotQueries.named(db, workspace: workspace.id, name: name) != nil {
            throw FSError.invalidArgument(
                "workspace '\(workspace.name)' has a snapshot named '\(name)' already; choose another name")
        }
        let now = Timestamp.now()
        // The snapshot's own event is its seq: every change before it is in the snapshot.
        let seq = try NamespaceQueries.recordEvent(
            db, kind: "snapshot", inode: workspace.root, name: Array(name.utf8), actor: caller.actor, time: now)
        let id = try SnapshotQueries.insert(
            db, workspace: workspace.id, name: name, seq: seq, time: now, actor: caller.actor)
        return Snapshot(id: id, name: name, seq: seq, created: now, actor: caller.actor, workspace: workspace.name)
    }

    public func deleteSnapshot(of workspace: Workspace, name: String, caller: Caller) throws(FSError) -> Snapshot {
        try store.write(.now) { db in
            guard let snapshot = try SnapshotQueries.named(db, workspace: workspace.id, name: name) else {
                throw FSError.invalidArgument(
                    "workspace '\(workspace.name)' has no snapshot named '\(name)' (see `cairn snapshot list`)")
            }
            try SnapshotQueries.delete(db, id: snapshot.id)
            _ = try NamespaceQueries.recordEvent(
                db, kind: "snapshot-delete", inode: workspace.root, name: Array(name.utf8), actor: caller.actor,
                time: .now())
            return snapshot
        }
    }

    public func snapshots(of workspace: Workspace) throws(FSError) -> [Snapshot] {
        try store.read { db in try SnapshotQueries.all(db, workspace: workspace.id) }
    }

    public func snapshot(of workspace: Workspace, named name: String) throws(FSError) -> Snapshot? {
        try store.read { db in try SnapshotQueries.named(db, workspace: workspace.id, name: name) }
    }

    /// Seals the version of every open write session (fsynced, not closed yet). An unsealed
    /// version is updated in place by its session's next fsync, which would move it past a seq
    /// recorded now (a snapshot, a fork) and make that seq show the content before the session.
    func sealWriteSessions() throws(FSError) {
        for file in openFiles {
            file.lock.lock()
            defer { file.lock.unlock() }
            guard let session = file.sessionVersion else { continue }
            try store.write(.journaled) { db in try ContentQueries.sealVersion(db, id: session) }
            file.sessionVersion = nil
        }
    }

    /// A snapshot's name is a file name in `.cairn/snapshots/`.
    static func validate(snapshotName name: String) throws(FSError) {
        do {
            try validate(name: Array(name.utf8))
        } catch .nameTooLong {
            throw FSError.nameTooLong
        } catch {
            throw FSError.invalidArgument("a snapshot name may not be empty or contain '/'")
        }
        guard name != ".", name != ".." else {
            throw FSError.invalidArgument("a snapshot may not be named '.' or '..'")
        }
    }
}
