import Foundation
import Glibc

/// What a restore did.
public struct RestoreSummary: Sendable, Codable, Equatable {
    /// The seq whose state was brought back.
    public var sourceSeq: Int64
    /// Nodes given their old state: created again, or changed back.
    public var restored = 0
    /// Nodes that were already as they were then.
    public var unchanged = 0
    /// Nodes that did not exist then, removed (they stay in history).
    public var removed = 0
    /// Bytes of file content restored.
    public var bytes: Int64 = 0
    /// The snapshot taken first, so that the restore itself can be undone.
    public var safetySnapshot: String?
}

/// Brings nodes back to their state at a seq, inside one operation of the writer (so a restore
/// is all or nothing). Every change is a new event and, where content or attributes change, a
/// new version with cause `restore`: history only grows, so a restore can be undone like any
/// other change. A node whose inode has no name left is given its name back (its history goes
/// on); one whose inode lives on elsewhere is restored as a new inode sharing the old content.
final class Restorer {
    let db: Connection
    let fs: FileSystem
    let workspace: Workspace
    let actor: String
    let seq: Int64
    var summary: RestoreSummary
    var changes = Set<NamespaceChange>()
    /// Files whose current content changed: a daemon reloads those it has open.
    var contentChanged: [InodeID] = []
    /// The live inode each past inode was restored as, so hard links stay links.
    private var placed: [InodeID: InodeID] = [:]
    /// The live directory the restore makes what it was (nil until the first directory is
    /// restored; a restored file has no subtree).
    private var scope: InodeID?

    init(_ db: Connection, fs: FileSystem, workspace: Workspace, actor: String, seq: Int64) {
        self.db = db
        self.fs = fs
        self.workspace = workspace
        self.actor = actor
        self.seq = seq
        self.summary = RestoreSummary(sourceSeq: seq)
    }

    private func event(_ kind: String, _ inode: InodeID, _ parent: InodeID, _ name: [UInt8], _ now: Timestamp) throws
        -> Int64
    {
        try NamespaceQueries.recordEvent(
            db, kind: kind, inode: inode, parent: parent, name: name, actor: actor, time: now)
    }

    /// Restores the node `version` describes as `name` in the live directory `parent`, with its
    /// entries at `seq` when it is a directory and `withEntries`. Returns the live inode.
    @discardableResult
    func restore(_ version: VersionRecord, parent: InodeID, name: [UInt8], withEntries: Bool = true) throws -> InodeID {
        let past = version.inode
        let kind = version.mode & S_IFMT
        guard let (pastNode, _) = try NamespaceQueries.inodeAndWorkspace(db, past) else {
            throw FSError.io("inode \(past) of the history is missing; run `cairn fsck`")
        }
        let target = kind == S_IFLNK ? try NamespaceQueries.target(db, past) : nil
        try fs.copyEntries(db, parent)
        let inode: InodeID
        if let (dentry, live) = try NamespaceQueries.lookup(db, parent: parent, name: name),
            live.mode & S_IFMT == kind, live.rdev == pastNode.rdev,
            try kind != S_IFLNK || NamespaceQueries.target(db, live.id) == target
        {
            _ = dentry
            if try restoreState(of: live.id, to: version, parent: parent, name: name) {
                summary.restored += 1
            } else {
                summary.unchanged += 1
            }
            inode = live.id
        } else {
            if try NamespaceQueries.lookup(db, parent: parent, name: name) != nil {
                try remove(parent: parent, name: name)
            }
            inode = try place(version, node: pastNode, target: target, parent: parent, name: name)
        }
        placed[past] = inode
        if kind == S_IFDIR && withEntries {
            if scope == nil { scope = inode }
            try restoreEntries(of: past, into: inode)
        }
        return inode
    }

    /// Makes the live directory `directory` hold exactly the entries `past` held at `seq`:
    /// entries added since are removed first (so an inode renamed away can take its old name
    /// back), then each old entry is restored.
    func restoreEntries(of past: InodeID, into directory: InodeID) throws {
        if scope == nil { scope = directory }
        try fs.copyEntries(db, directory)
        try fs.copyEntries(db, past)
        let then = try PastQueries.listing(db, parent: past, at: seq, afterCookie: 0, limit: Int.max)
        let names = Set(then.map(\.name))
        for entry in try NamespaceQueries.listing(db, parent: directory, afterCookie: 0, limit: Int.max)
        where !names.contains(entry.name) {
            try remove(parent: directory, name: entry.name)
        }
        for entry in then { try restore(entry.version, parent: directory, name: entry.name) }
    }

    /// A live node of the same kind takes the old attributes, xattrs and (for files) content.
    /// Returns false when it had them already.
    private func restoreState(of inode: InodeID, to version: VersionRecord, parent: InodeID, name: [UInt8]) throws
        -> Bool
    {
        let attrs = try NamespaceQueries.requireInode(db, inode)
        let current = try HistoryQueries.current(db, inode: inode)
        let regular = attrs.isRegular
        let sameContent = !regular || (current?.manifestID == version.manifestID && attrs.size == version.size)
        if sameContent, attrs.mode == version.mode, attrs.uid == version.uid, attrs.gid == version.gid,
            current?.xattrsDigest == version.xattrsDigest
        {
            return false
        }
        if regular, let file = fs.openFile(inode), file.uncommittedChangesWithoutWaiting != false {
            throw FSError.busy(
                "'\(String(decoding: name, as: UTF8.self))' is open and being written; close it and retry")
        }
        let now = Timestamp.now()
        let seq = try event("restore", inode, parent, name, now)
        try NamespaceQueries.updateAttributes(
            db, inode,
            .init(
                mode: version.mode, uid: version.uid, gid: version.gid, atime: attrs.atime,
                mtime: regular ? now : attrs.mtime, ctime: now))
        try XattrQueries.replaceAll(db, inode: inode, with: XattrQueries.recordedSet(db, digest: version.xattrsDigest))
        if regular {
            try setContent(of: inode, to: version, seq: seq, time: now)
        } else {
            try ContentQueries.recordAttributeVersion(db, inode: inode, seq: seq, actor: actor, cause: "restore")
        }
        changes.insert(.inode(inode))
        return true
    }

    /// A new current version of a regular file, sharing the manifest of `version` (no bytes copied).
    private func setContent(of inode: InodeID, to version: VersionRecord, seq: Int64, time: Timestamp) throws {
        // ContentQueries.manifest fails for a manifest gc deleted since the version was chosen.
        let stored = try version.manifestID.map { try ContentQueries.manifest(db, id: $0).storedBytes } ?? 0
        let id = try ContentQueries.insertVersion(
            db,
            .init(
                inode: inode, seq: seq, size: version.size, storedBytes: stored, mode: version.mode, uid: version.uid,
                gid: version.gid, mtime: time, ctime: time, manifest: version.manifestID,
                xattrs: version.xattrsDigest, actor: actor, cause: "restore", sealed: true))
        try ContentQueries.setCurrentContent(
            db, inode: inode, version: id, size: version.size, storedBytes: stored, mtime: time, ctime: time)
        contentChanged.append(inode)
        summary.bytes += version.size
    }

    /// Gives the old node a name again: the same inode if nothing else holds it, a hard link to
    /// what this restore placed already, or else a new inode with the old state.
    private func place(
        _ version: VersionRecord, node: InodeAttributes, target: [UInt8]?, parent: InodeID, name: [UInt8]
    ) throws -> InodeID {
        let now = Timestamp.now()
        let directory = version.mode & S_IFMT == S_IFDIR
        defer {
            changes.insert(.entry(parent: parent, name: name))
            changes.insert(.inode(parent))
            summary.restored += 1
        }
        try NamespaceQueries.touchDirectory(db, parent, at: now, linkDelta: directory ? 1 : 0)
        let owner = try NamespaceQueries.workspace(ofInode: version.inode, db)
        if !directory, let linked = try hardLinkTarget(version.inode, node: node, owner: owner) {
            let seq = try event("restore", linked, parent, name, now)
            try NamespaceQueries.insertDentry(db, parent: parent, name: name, inode: linked, seq: seq)
            try NamespaceQueries.adjustLinks(db, linked, by: 1, ctime: now)
            if linked == version.inode { _ = try restoreState(of: linked, to: version, parent: parent, name: name) }
            changes.insert(.inode(linked))
            return linked
        }
        let revivable = node.nlink == 0 && owner == workspace.id && fs.openFile(version.inode) == nil
        if revivable {
            let inode = version.inode
            let seq = try event("restore", inode, parent, name, now)
            try NamespaceQueries.insertDentry(db, parent: parent, name: name, inode: inode, seq: seq)
            try db.run("UPDATE inodes SET nlink = ? WHERE id = ?", [directory ? 2 : 1, inode])
            if try !restoreState(of: inode, to: version, parent: parent, name: name), version.mode & S_IFMT == S_IFREG {
                summary.bytes += version.size
            }
            changes.insert(.inode(inode))
            return inode
        }
        let inode = try NamespaceQueries.insertInode(
            db,
            .init(
                mode: version.mode, uid: version.uid, gid: version.gid, nlink: directory ? 2 : 1, rdev: node.rdev,
                target: target, size: Int64(target?.count ?? 0), time: now, workspace: workspace.id))
        changes.insert(.inode(inode))
        let seq = try event("restore", inode, parent, name, now)
        try NamespaceQueries.insertDentry(db, parent: parent, name: name, inode: inode, seq: seq)
        try XattrQueries.replaceAll(db, inode: inode, with: XattrQueries.recordedSet(db, digest: version.xattrsDigest))
        if version.mode & S_IFMT == S_IFREG {
            try setContent(of: inode, to: version, seq: seq, time: now)
        } else {
            try ContentQueries.recordAttributeVersion(db, inode: inode, seq: seq, actor: actor, cause: "restore")
        }
        return inode
    }

    /// The live inode a restored name of `past` becomes a hard link to: what this restore placed
    /// it as already, or `past` itself when it still has a name it had at `seq` inside the tree
    /// being restored (the names were links of one file then, and are again). A file linked from
    /// outside that tree is never touched: the name gets an inode of its own (nil).
    private func hardLinkTarget(_ past: InodeID, node: InodeAttributes, owner: Int64?) throws -> InodeID? {
        if let linked = placed[past], let attrs = try NamespaceQueries.inode(db, linked), attrs.nlink > 0 {
            return linked
        }
        guard node.nlink > 0, owner == workspace.id, let scope else { return nil }
        let kept = try db.values(
            InodeID.self, "SELECT parent FROM dentries WHERE inode = ? AND deleted_seq IS NULL AND created_seq <= ?",
            [past, seq])
        for parent in kept where try isInside(parent, scope) { return past }
        return nil
    }

    /// Whether the live directory `directory` is `top` or below it.
    private func isInside(_ directory: InodeID, _ top: InodeID) throws -> Bool {
        var current: InodeID? = directory
        var steps = 0
        while let at = current, at != 1, steps < 100_000 {
            if at == top { return true }
            current = try NamespaceQueries.parent(ofDirectory: at, db)
            steps += 1
        }
        return false
    }

    /// Removes a live entry (a directory with everything below it), as unlink and rmdir would.
    func remove(parent: InodeID, name: [UInt8]) throws {
        guard let (dentry, attrs) = try NamespaceQueries.lookup(db, parent: parent, name: name) else { return }
        if attrs.isDirectory {
            try fs.copyEntries(db, attrs.id)
            for entry in try NamespaceQueries.listing(db, parent: attrs.id, afterCookie: 0, limit: Int.max) {
                try remove(parent: attrs.id, name: entry.name)
            }
        }
        let now = Timestamp.now()
        let seq = try event("delete", attrs.id, parent, name, now)
        try NamespaceQueries.closeDentry(db, id: dentry, seq: seq)
        if attrs.isDirectory {
            // Removing its subdirectories already took their links off `attrs.nlink`.
            try CheckQueries.setLinkCount(db, inode: attrs.id, to: 0)
        } else {
            try NamespaceQueries.adjustLinks(db, attrs.id, by: -1, ctime: now)
        }
        try NamespaceQueries.touchDirectory(db, parent, at: now, linkDelta: attrs.isDirectory ? -1 : 0)
        changes.insert(.removed(parent: parent, child: attrs.id, name: name))
        changes.insert(.inode(parent))
        changes.insert(.inode(attrs.id))
        summary.removed += 1
    }
}
