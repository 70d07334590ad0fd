import Foundation
import Glibc

/// One committed change of a workspace, as `cairn log` shows it.
public struct ChangeRecord: Sendable, Equatable {
    public var seq: Int64
    public var time: Timestamp
    public var workspace: String
    /// create, mkdir, write, delete, rename, link, attr, xattr, restore, snapshot, lock, unlock, …
    public var kind: String
    /// Relative to the workspace root; a rename's new path.
    public var path: String
    /// A rename's old path.
    public var oldPath: String?
    public var actor: String
    /// The version the change made, with its cause (close, fsync, rename, restore, …).
    public var version: Int64?
    public var cause: String?
    public var size: Int64?

    public init(
        seq: Int64, time: Timestamp, workspace: String, kind: String, path: String, oldPath: String? = nil,
        actor: String, version: Int64? = nil, cause: String? = nil, size: Int64? = nil
    ) {
        self.seq = seq
        self.time = time
        self.workspace = workspace
        self.kind = kind
        self.path = path
        self.oldPath = oldPath
        self.actor = actor
        self.version = version
        self.cause = cause
        self.size = size
    }
}

/// A removed file or tree still in history.
public struct TrashRecord: Sendable, Equatable {
    public var path: String
    public var deletedSeq: Int64
    public var deleted: Timestamp
    public var actor: String
    public var isDirectory: Bool
    public var size: Int64
    /// The last seq before its removal began (for a tree, before the first entry in it went).
    public var restoreSeq: Int64
    /// The point in time to restore it from.
    public var restorePoint: String { "@\(restoreSeq)" }
}

extension FileSystem {
    /// The changes of `workspace` before seq `before` (default: all), newest first.
    public func changes(in workspace: Workspace, before: Int64 = .max, limit: Int = 100) throws(FSError)
        -> [ChangeRecord]
    {
        try store.read { db in
            try ChangeQueries.events(db, workspace: workspace.id, before: before, limit: limit).map { row in
                try Self.change(row, in: workspace, db)
            }
        }
    }

    /// The changes after seq `after`, oldest first, of `workspace` (nil: every workspace), at
    /// most `limit`: what `cairn watch` and `.cairn/events` stream.
    /// `through` (default: no bound) stops at a seq: a caller that read the current seq first
    /// may move past it when nothing came back.
    public func events(after: Int64, through: Int64 = .max, in workspace: Workspace? = nil, limit: Int = 1000)
        throws(FSError) -> [ChangeRecord]
    {
        try store.read { db in
            let spaces = try WorkspaceQueries.all(db)
            let rows = try ChangeQueries.events(
                db, workspace: workspace?.id, after: after, through: through, limit: limit)
            return try rows.compactMap { row in
                let id: Int64? = row[12]
                guard let ws = spaces.first(where: { $0.id == id }) else { return nil }
                return try Self.change(row, in: ws, db)
            }
        }
    }

    /// A row of `ChangeQueries.events` as a change, its names as they were then.
    private static func change(_ row: SQLRow, in workspace: Workspace, _ db: Connection) throws -> ChangeRecord {
        let seq: Int64 = row[0]
        let inode: InodeID = row[3]
        let kind: String = row[2]
        let parent: InodeID? = row[4]
        let name: Data? = row[5]
        let oldParent: InodeID? = row[6]
        let oldName: Data? = row[7]
        // A removal's name was live until just before its event.
        let nameSeq = kind == "delete" ? seq - 1 : seq
        let path: String
        if let parent, let name {
            path = try Self.path(db, parent, in: workspace, at: nameSeq, appending: [UInt8](name))
        } else {
            path = try Self.path(db, inode, in: workspace, at: nameSeq)
        }
        let oldPath = try oldParent.flatMap { p in
            try oldName.map { try Self.path(db, p, in: workspace, at: seq - 1, appending: [UInt8]($0)) }
        }
        // A snapshot's event names the snapshot, not a path.
        let label = parent == nil ? name.map { String(decoding: $0, as: UTF8.self) } : nil
        return ChangeRecord(
            seq: seq, time: Timestamp(nanoseconds: row[1]), workspace: workspace.name, kind: kind, path: path,
            oldPath: oldPath, actor: row[8], version: row[9], cause: row[10] ?? label, size: row[11])
    }

    /// Removed files and trees of `workspace` that `restore` can bring back, newest first.
    public func trash(of workspace: Workspace) throws(FSError) -> [TrashRecord] {
        let now = try currentSeq()
        return try store.read { db in
            try ChangeQueries.trash(db, workspace: workspace.id).map { row in
                let mode: UInt32 = row[6]
                let deleted: Int64 = row[3]
                let directory = mode & S_IFMT == S_IFDIR
                let start =
                    directory
                    ? try ChangeQueries.removalStart(db, directory: row[2], workspace: workspace.id, deletedAt: deleted)
                    : deleted
                return TrashRecord(
                    path: try Self.path(db, row[0], in: workspace, at: now, appending: [UInt8](row[1] as Data)),
                    deletedSeq: deleted, deleted: Timestamp(nanoseconds: row[4]), actor: row[5],
                    isDirectory: directory, size: row[7], restoreSeq: start - 1)
            }
        }
    }

    /// The workspace-relative path `inode` had at `seq` (with `appending` as a last name), or a
    /// placeholder naming the inode when it had no name then.
    static func path(
        _ db: Connection, _ inode: InodeID, in workspace: Workspace, at seq: Int64, appending last: [UInt8]? = nil
    ) throws -> String {
        var names: [[UInt8]] = last.map { [$0] } ?? []
        var current = inode
        while current != workspace.root {
            guard names.count < 4096, let (parent, name) = try ChangeQueries.binding(db, inode: current, at: seq) else {
                names.append(Array("<inode \(current)>".utf8))
                break
            }
            names.append(name)
            current = parent
        }
        return display(names.reversed())
    }
}
