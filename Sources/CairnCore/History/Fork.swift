import Foundation
import Glibc

/// Forks: a workspace that starts as another one was at a seq. Making one copies nothing but
/// its root: its directories take the parent's entries of then at their first use (one
/// directory at a time, each entry a new inode sharing the old content and xattrs), so a fork
/// costs the same whatever the size of its parent, and later writes on either side never show
/// in the other. Entries copied in are dated from the fork, so the fork's history views are
/// exact; its history before the fork is the parent's.
extension FileSystem {
    /// Forks `source` as it was at `source`'s point `at` (default: now) into a new workspace.
    public func fork(_ source: Workspace, as name: String, at point: PointInTime?, caller: Caller) throws(FSError)
        -> Workspace
    {
        try Store.validate(workspaceName: name)
        let seq: Int64
        if let point { seq = try self.seq(of: point) } else { seq = try currentSeq() }
        try sealWriteSessions()
        let fork = try store.write(.now) { db -> Workspace in
            // A source that is itself a fork may not have its root's entries yet.
            try self.copyEntries(db, source.root)
            guard let (rootThen, _) = try PastQueries.version(db, inode: source.root, at: seq) else {
                throw FSError.invalidArgument("workspace '\(source.name)' did not exist at @\(seq)")
            }
            let now = Timestamp.now()
            let links = 2 + (try ForkQueries.subdirectories(db, of: source.root, at: seq))
            let (ws, forkSeq) = try Store.addWorkspace(
                db, name: name,
                root: .init(
                    mode: rootThen.mode, uid: caller.uid, gid: caller.gid, nlink: UInt64(links), time: now,
                    workspace: nil),
                owner: caller.uid, caller: caller, kind: "fork")
            try ContentQueries.recordAttributeVersion(
                db, inode: ws.root, seq: forkSeq, actor: caller.actor, cause: "fork")
            try ForkQueries.setParent(db, workspace: ws.id, parent: source.id, baseSeq: seq)
            try ForkQueries.markPending(db, directory: ws.root, origin: source.root, seq: seq)
            return ws
        }
        pendingDirectories.withLock { _ = $0.insert(fork.root) }
        return fork
    }

    /// Copies in the entries of a fork's directory that still has its parent's, if `directory`
    /// is one. Every operation that reads or changes a directory's entries calls it first.
    ///
    /// `pendingDirectories` is a hint (the database says what is pending): a directory leaves it
    /// only here, once the copy is committed, so an operation that copies entries in and then
    /// fails (its changes rolled back) never makes a directory look copied when it is not.
    func ensureEntries(_ directories: InodeID...) throws(FSError) {
        let pending = pendingDirectories.withLock { p in directories.filter { p.contains($0) } }
        guard !pending.isEmpty, store.isWritable else { return }
        try store.write(.now) { db in
            for directory in pending { try self.copyEntries(db, directory) }
        }
        pendingDirectories.withLock { $0.subtract(pending) }
    }

    /// As `ensureEntries`, inside an operation already running on the writer.
    func copyEntries(_ db: Connection, _ directory: InodeID) throws {
        guard pendingDirectories.withLock({ $0.contains(directory) }),
            let (origin, seq) = try ForkQueries.pending(db, directory: directory),
            let workspace = try NamespaceQueries.workspace(ofInode: directory, db),
            let root = try WorkspaceQueries.all(db).first(where: { $0.id == workspace })?.root
        else { return }
        // The origin may be a fork's directory still waiting for its own entries (a fork of a
        // fork); once copied they are dated from that fork, before `seq`.
        try copyEntries(db, origin)
        let forkSeq = try ForkQueries.forkSeq(db, root: root)
        var subdirectories: [InodeID] = []
        for entry in try PastQueries.listing(db, parent: origin, at: seq, afterCookie: 0, limit: Int.max) {
            let v = entry.version
            let isDirectory = v.mode & S_IFMT == S_IFDIR
            if !isDirectory, let copy = try ForkQueries.copy(db, workspace: workspace, origin: v.inode) {
                // Another name of a file copied already: a hard link, as it was (its link
                // count already counts every name it had).
                try NamespaceQueries.insertDentry(db, parent: directory, name: entry.name, inode: copy, seq: forkSeq)
                try ForkQueries.countLiveNames(db, inode: copy)
                continue
            }
            let links =
                isDirectory
                ? 2 + (try ForkQueries.subdirectories(db, of: v.inode, at: seq))
                : try ForkQueries.names(db, of: v.inode, at: seq)
            let target = v.mode & S_IFMT == S_IFLNK ? try NamespaceQueries.target(db, v.inode) : nil
            let inode = try NamespaceQueries.insertInode(
                db,
                .init(
                    mode: v.mode, uid: v.uid, gid: v.gid, nlink: UInt64(links), rdev: entry.rdev, target: target,
                    size: v.size, time: v.mtime, workspace: workspace))
            try db.run("UPDATE inodes SET ctime_ns = ? WHERE id = ?", [v.ctime.nanoseconds, inode])
            let stored = try v.manifestID.map { try ContentQueries.manifest(db, id: $0).storedBytes } ?? 0
            let version = try ContentQueries.insertVersion(
                db,
                .init(
                    inode: inode, seq: forkSeq, size: v.size, storedBytes: stored, mode: v.mode, uid: v.uid, gid: v.gid,
                    mtime: v.mtime, ctime: v.ctime, manifest: v.manifestID, xattrs: v.xattrsDigest, actor: v.actor,
                    cause: "fork", sealed: true))
            try ContentQueries.setCurrentContent(
                db, inode: inode, version: version, size: v.size, storedBytes: stored, mtime: v.mtime, ctime: v.ctime)
            let xattrs = try XattrQueries.recordedSet(db, digest: v.xattrsDigest)
            try XattrQueries.replaceAll(db, inode: inode, with: xattrs)
            if xattrs.contains(where: { [UInt8]($0.name) == Self.capabilityName }) {
                // A hint like `pendingDirectories`: an extra entry only costs a lookup.
                capabilityHolders.withLock { _ = $0.insert(inode) }
            }
            try ForkQueries.recordCopy(db, workspace: workspace, origin: v.inode, inode: inode)
            try NamespaceQueries.insertDentry(db, parent: directory, name: entry.name, inode: inode, seq: forkSeq)
            if isDirectory {
                try ForkQueries.markPending(db, directory: inode, origin: v.inode, seq: seq)
                subdirectories.append(inode)
            }
        }
        try ForkQueries.clearPending(db, directory: directory)
        pendingDirectories.withLock { $0.formUnion(subdirectories) }
    }

    /// Whether some directory of `workspace` still shows its parent's entries (a fork).
    public func hasPendingDirectories(in workspace: Workspace) throws(FSError) -> Bool {
        try store.read { db in try ForkQueries.hasPending(db, workspace: workspace.id) }
    }

    /// Copies in the entries of the fork directories on the way to `path`, so that readers
    /// without the writer (the CLI) find it.
    public func prepare(_ path: String, in workspace: Workspace) throws(FSError) {
        var current = workspace.root
        for name in Self.components(path) {
            try ensureEntries(current)
            guard let next = try? lookup(parent: current, name: name), next.isDirectory else { return }
            current = next.id
        }
        try ensureEntries(current)
    }
}
