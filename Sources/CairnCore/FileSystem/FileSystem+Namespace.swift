import Foundation
import Glibc

extension FileSystem {
    /// The attributes as a caller sees them now: an open file's size and times are live.
    func live(_ attrs: InodeAttributes) -> InodeAttributes {
        guard attrs.isRegular, let file = openFile(attrs.id) else { return attrs }
        file.lock.lock()
        defer { file.lock.unlock() }
        return overlay(attrs, file)
    }

    /// `attrs` with what the open file holds newer than the row (caller holds its lock).
    private func overlay(_ attrs: InodeAttributes, _ file: OpenFile) -> InodeAttributes {
        var a = attrs
        a.size = file.size
        a.mtime = file.mtime
        a.ctime = file.ctime
        a.blocks = max(a.blocks, (file.manifest.storedBytes + Int64(file.staged.count * content.chunkSize) + 511) / 512)
        return a.holding(file.attributesPending ? file.ownership : nil)
    }

    /// An open file's attributes as its handles see them (caller holds its lock), from the row
    /// as last read unless an operation may have changed it since: tar's three changes of each
    /// file it writes then read nothing.
    func currentAttributes(_ file: OpenFile) throws(FSError) -> InodeAttributes {
        let count = store.changes.load(ordering: .relaxed)
        if file.row.readAt != count {
            let attrs = try store.read { db in try NamespaceQueries.requireInode(db, file.inode) }
            file.row = RowSnapshot(attributes: attrs, readAt: count)
        }
        return overlay(file.row.attributes, file)
    }

    public func getattr(_ inode: InodeID) throws(FSError) -> InodeAttributes {
        if let known = knownDirectory(inode, at: store.directoryChanges.load(ordering: .relaxed)) {
            return known.attributes
        }
        return live(
            try store.read { db in
                guard let (attrs, workspace) = try NamespaceQueries.inodeAndWorkspace(db, inode) else {
                    throw FSError.notFound
                }
                if attrs.isDirectory {
                    noteDirectory(attrs, workspace, readAt: store.directoryChanges.load(ordering: .relaxed))
                }
                return attrs
            })
    }

    /// `inode`'s row and workspace if `lastDirectory` holds them as of the count `count`
    /// (`Store.directoryChanges`). Only the writer counts changes: a reader of a store another
    /// process writes keeps nothing.
    private func knownDirectory(_ inode: InodeID, at count: Int) -> (attributes: InodeAttributes, workspace: Int64?)? {
        guard store.isWritable, let last = lastDirectory.withLock({ $0 }), last.row.attributes.id == inode,
            last.row.readAt == count
        else { return nil }
        return (last.row.attributes, last.workspace)
    }

    /// Remembers a directory's row and workspace as of the count `readAt` (see `lastDirectory`).
    private func noteDirectory(_ directory: InodeAttributes?, _ workspace: Int64?, readAt: Int) {
        guard let directory else { return }
        lastDirectory.withLock { $0 = (RowSnapshot(attributes: directory, readAt: readAt), workspace) }
    }

    public func lookup(parent: InodeID, name: [UInt8]) throws(FSError) -> InodeAttributes {
        guard name.count <= Limits.maxNameLength else { throw FSError.nameTooLong }
        try ensureEntries(parent)
        guard let found = try store.read({ db in try NamespaceQueries.lookup(db, parent: parent, name: name) }) else {
            throw FSError.notFound
        }
        return live(found.attributes)
    }

    public func readlink(_ inode: InodeID) throws(FSError) -> [UInt8] {
        guard let target = try store.read({ db in try NamespaceQueries.target(db, inode) }) else {
            throw FSError.invalidArgument("not a symbolic link")
        }
        return target
    }

    /// Lists live entries of a directory after `cookie` (0 = from the start), at most `limit`.
    public func list(directory: InodeID, after cookie: Int64, limit: Int) throws(FSError) -> [DirectoryEntry] {
        reads.wrappingAdd(1, ordering: .relaxed)
        try ensureEntries(directory)
        return try store.read { db in
            let dir = try NamespaceQueries.requireInode(db, directory)
            guard dir.isDirectory else { throw FSError.notDirectory }
            return try NamespaceQueries.listing(db, parent: directory, afterCookie: cookie, limit: limit)
        }.map { entry in
            var e = entry
            e.attributes = live(entry.attributes)
            return e
        }
    }

    /// Creates a node of any kind but directory-with-contents: regular file, FIFO, socket, device,
    /// directory (`mode` carries the type) or symlink (`target`). `versioned` false records no
    /// version of it (a file `create` opens: its first close does).
    func makeNode(
        parent: InodeID, name: [UInt8], mode: UInt32, rdev: UInt64 = 0, target: [UInt8]? = nil,
        versioned: Bool = true, caller: Caller
    ) throws(FSError) -> InodeAttributes {
        try Self.validate(name: name)
        try authorize(caller, parent, needs: .writer)
        try ensureEntries(parent)
        try checkQuota(parent, growth: 0, newInodes: 1, caller: caller)
        let isDirectory = mode & S_IFMT == S_IFDIR
        let (made, directory, workspace, readAt) = try store.write(.deferred) { db in
            let count = store.directoryChanges.load(ordering: .relaxed)
            guard
                let (parentAttrs, workspace) = try knownDirectory(parent, at: count)
                    ?? NamespaceQueries.inodeAndWorkspace(db, parent)
            else {
                throw FSError.notFound
            }
            guard parentAttrs.isDirectory else { throw FSError.notDirectory }
            guard parentAttrs.nlink > 0 else { throw FSError.notFound }
            if parent == 1 { throw FSError.notPermitted }
            var finalMode = mode
            var gid = caller.gid
            // See: man 2 open, "bsdgroups"/setgid directories, and ext4's inode_init_owner.
            if parentAttrs.mode & S_ISGID != 0 {
                gid = parentAttrs.gid
                if isDirectory {
                    finalMode |= S_ISGID
                } else if finalMode & S_ISGID != 0, caller.uid != 0, !caller.isMember(of: gid) {
                    finalMode &= ~S_ISGID
                }
            }
            let now = Timestamp.now()
            let size = Int64(target?.count ?? 0)
            let nlink: UInt64 = isDirectory ? 2 : 1
            let inode = try NamespaceQueries.insertInode(
                db,
                .init(
                    mode: finalMode, uid: caller.uid, gid: gid, nlink: nlink, rdev: rdev, target: target, size: size,
                    time: now, workspace: workspace))
            let seq = try NamespaceQueries.recordEvent(
                db, kind: isDirectory ? "mkdir" : "create", inode: inode, parent: parent, name: name,
                actor: caller.actor, time: now)
            // A name taken already fails here (`exists`): the inode and event before are undone
            // (rare: the kernel looks the name up first, so only a race with another mount).
            try NamespaceQueries.insertDentry(db, parent: parent, name: name, inode: inode, seq: seq)
            try NamespaceQueries.touchDirectory(db, parent, at: now, linkDelta: isDirectory ? 1 : 0)
            if versioned {
                let version = try ContentQueries.insertVersion(
                    db,
                    .init(
                        inode: inode, seq: seq, size: size, storedBytes: 0, mode: finalMode, uid: caller.uid, gid: gid,
                        mtime: now, ctime: now, manifest: nil, xattrs: nil, actor: caller.actor, cause: "create",
                        sealed: true))
                try NamespaceQueries.setVersion(db, inode, version)
            }
            let made = InodeAttributes(
                id: inode, mode: finalMode, nlink: nlink, uid: caller.uid, gid: gid, rdev: rdev, size: size, atime: now,
                mtime: now, ctime: now, generation: 1, blocks: 0)
            // The parent as this operation leaves it, once the count has moved at its end.
            let directory = parentAttrs.touched(at: now, linkDelta: isDirectory ? 1 : 0)
            return (made, directory, workspace, count + 1)
        }
        noteDirectory(directory, workspace, readAt: readAt)
        let op = isDirectory ? "mkdir" : target != nil ? "symlink" : mode & S_IFMT == S_IFREG ? "create" : "mknod"
        audit(caller, op, inode: made.id, parent: parent, name: name)
        return made
    }

    public func mknod(parent: InodeID, name: [UInt8], mode: UInt32, rdev: UInt64, caller: Caller) throws(FSError)
        -> InodeAttributes
    {
        switch mode & S_IFMT {
        case S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK, 0: break
        default: throw FSError.invalidArgument("mknod cannot make this kind of node")
        }
        let kind = mode & S_IFMT == 0 ? S_IFREG : mode & S_IFMT
        let keepsDevice = kind == S_IFCHR || kind == S_IFBLK
        return try makeNode(
            parent: parent, name: name, mode: kind | (mode & 0o7777), rdev: keepsDevice ? rdev : 0, caller: caller)
    }

    public func mkdir(parent: InodeID, name: [UInt8], mode: UInt32, caller: Caller) throws(FSError) -> InodeAttributes {
        try makeNode(parent: parent, name: name, mode: S_IFDIR | (mode & 0o7777), caller: caller)
    }

    public func symlink(parent: InodeID, name: [UInt8], target: [UInt8], caller: Caller) throws(FSError)
        -> InodeAttributes
    {
        guard !target.isEmpty else { throw FSError.notFound }
        guard target.count < 4096 else { throw FSError.nameTooLong }
        return try makeNode(parent: parent, name: name, mode: S_IFLNK | 0o777, target: target, caller: caller)
    }

    /// Returns the inode the name named, and how many names it has left.
    @discardableResult
    public func unlink(parent: InodeID, name: [UInt8], caller: Caller) throws(FSError) -> (
        inode: InodeID, links: UInt64
    ) {
        try removeEntry(parent: parent, name: name, directory: false, caller: caller)
    }

    @discardableResult
    public func rmdir(parent: InodeID, name: [UInt8], caller: Caller) throws(FSError) -> (
        inode: InodeID, links: UInt64
    ) {
        try removeEntry(parent: parent, name: name, directory: true, caller: caller)
    }

    private func removeEntry(parent: InodeID, name: [UInt8], directory: Bool, caller: Caller) throws(FSError)
        -> (inode: InodeID, links: UInt64)
    {
        guard name.count <= Limits.maxNameLength else { throw FSError.nameTooLong }
        try authorize(caller, parent, needs: .writer)
        try ensureEntries(parent)
        let (removed, parentRow, readAt) = try store.usingReserve { () throws(FSError) in
            try removeEntryTransaction(parent: parent, name: name, directory: directory, caller: caller)
        }
        if let parentRow { noteDirectory(parentRow.attributes, parentRow.workspace, readAt: readAt) }
        audit(caller, directory ? "rmdir" : "unlink", inode: removed.inode, parent: parent, name: name)
        return removed
    }

    /// Also returns the parent's row afterwards, if `lastDirectory` knew it before, and the
    /// count it is current at.
    private func removeEntryTransaction(parent: InodeID, name: [UInt8], directory: Bool, caller: Caller) throws(FSError)
        -> ((inode: InodeID, links: UInt64), (attributes: InodeAttributes, workspace: Int64?)?, Int)
    {
        // Like ext4's journal, a removal becomes durable with the next commit (within
        // MetadataWriter.commitDelay, or at the next close, fsync or rename).
        try store.write(.deferred) { db in
            guard let entry = try NamespaceQueries.entry(db, parent: parent, name: name) else {
                throw FSError.notFound
            }
            // The store root holds the workspaces: `cairn workspace` manages them, not rmdir.
            if parent == 1 { throw FSError.notPermitted }
            let isDirectory = entry.mode & S_IFMT == S_IFDIR
            if directory {
                guard isDirectory else { throw FSError.notDirectory }
                try copyEntries(db, entry.inode)
                if try NamespaceQueries.hasLiveChildren(db, entry.inode) { throw FSError.notEmpty }
            } else if isDirectory {
                throw FSError.isDirectory
            }
            let now = Timestamp.now()
            let seq = try NamespaceQueries.recordEvent(
                db, kind: "delete", inode: entry.inode, parent: parent, name: name, actor: caller.actor, time: now)
            try NamespaceQueries.closeDentry(db, id: entry.dentry, seq: seq)
            try NamespaceQueries.adjustLinks(db, entry.inode, by: directory ? -Int(entry.nlink) : -1, ctime: now)
            try NamespaceQueries.touchDirectory(db, parent, at: now, linkDelta: directory ? -1 : 0)
            let count = store.directoryChanges.load(ordering: .relaxed)
            let parentRow = knownDirectory(parent, at: count).map {
                ($0.attributes.touched(at: now, linkDelta: directory ? -1 : 0), $0.workspace)
            }
            return ((entry.inode, directory ? 0 : entry.nlink - 1), parentRow, count + 1)
        }
    }

    public func link(inode: InodeID, newParent: InodeID, newName: [UInt8], caller: Caller) throws(FSError)
        -> InodeAttributes
    {
        try Self.validate(name: newName)
        try authorize(caller, newParent, needs: .writer)
        try ensureEntries(newParent)
        try commitIfModified(inode, cause: "link", actor: caller.actor)
        let linked = try store.write(.deferred) { db in
            let attrs = try NamespaceQueries.requireInode(db, inode)
            guard !attrs.isDirectory else { throw FSError.notPermitted }
            guard attrs.nlink > 0 else { throw FSError.notFound }
            guard attrs.nlink < Limits.maxLinks else { throw FSError.tooManyLinks }
            let parentAttrs = try NamespaceQueries.requireInode(db, newParent)
            guard parentAttrs.isDirectory else { throw FSError.notDirectory }
            if newParent == 1 { throw FSError.notPermitted }
            if try NamespaceQueries.lookup(db, parent: newParent, name: newName) != nil { throw FSError.exists }
            let now = Timestamp.now()
            let seq = try NamespaceQueries.recordEvent(
                db, kind: "link", inode: inode, parent: newParent, name: newName, actor: caller.actor, time: now)
            try NamespaceQueries.insertDentry(db, parent: newParent, name: newName, inode: inode, seq: seq)
            try NamespaceQueries.adjustLinks(db, inode, by: 1, ctime: now)
            try NamespaceQueries.touchDirectory(db, newParent, at: now)
            return try NamespaceQueries.requireInode(db, inode)
        }
        audit(caller, "link", parent: newParent, name: newName)
        return live(linked)
    }

    public struct RenameOptions: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let noReplace = RenameOptions(rawValue: 1)
        public static let exchange = RenameOptions(rawValue: 2)
    }

    /// See: man 2 rename (and renameat2 for RENAME_NOREPLACE / RENAME_EXCHANGE).
    public func rename(
        parent: InodeID, name: [UInt8], newParent: InodeID, newName: [UInt8], options: RenameOptions, caller: Caller
    ) throws(FSError) {
        try Self.validate(name: newName)
        guard name.count <= Limits.maxNameLength else { throw FSError.nameTooLong }
        if options.contains(.noReplace) && options.contains(.exchange) {
            throw FSError.invalidArgument("RENAME_NOREPLACE and RENAME_EXCHANGE together")
        }
        try authorize(caller, parent, needs: .writer)
        try authorize(caller, newParent, needs: .writer)
        try ensureEntries(parent, newParent)
        // Content written under the old name is committed before the name changes, so
        // write-temp-then-rename never publishes a name whose bytes are not yet a version.
        let moving = try store.read { db in
            [
                try NamespaceQueries.lookup(db, parent: parent, name: name)?.attributes.id,
                try NamespaceQueries.lookup(db, parent: newParent, name: newName)?.attributes.id,
            ]
        }
        for inode in moving.compactMap({ $0 }) { try commitIfModified(inode, cause: "rename", actor: caller.actor) }
        try store.usingReserve { () throws(FSError) in
            try renameTransaction(
                parent: parent, name: name, newParent: newParent, newName: newName, options: options, caller: caller)
        }
        audit(caller, "rename", parent: newParent, name: newName)
    }

    private func renameTransaction(
        parent: InodeID, name: [UInt8], newParent: InodeID, newName: [UInt8], options: RenameOptions, caller: Caller
    ) throws(FSError) {
        try store.write(.journaled) { db in
            guard let (srcDentry, src) = try NamespaceQueries.lookup(db, parent: parent, name: name) else {
                throw FSError.notFound
            }
            let newParentAttrs = try NamespaceQueries.requireInode(db, newParent)
            guard newParentAttrs.isDirectory else { throw FSError.notDirectory }
            if newParent == 1 || parent == 1 { throw FSError.notPermitted }
            let dst = try NamespaceQueries.lookup(db, parent: newParent, name: newName)
            let now = Timestamp.now()

            if options.contains(.exchange) {
                guard let (dstDentry, dstAttrs) = dst else { throw FSError.notFound }
                if src.isDirectory { try Self.refuseMoveIntoItself(db, directory: src.id, newParent: newParent) }
                if dstAttrs.isDirectory { try Self.refuseMoveIntoItself(db, directory: dstAttrs.id, newParent: parent) }
                let seq = try NamespaceQueries.recordEvent(
                    db, kind: "rename", inode: src.id, parent: newParent, name: newName, oldParent: parent,
                    oldName: name, actor: caller.actor, time: now)
                try NamespaceQueries.closeDentry(db, id: srcDentry, seq: seq)
                try NamespaceQueries.closeDentry(db, id: dstDentry, seq: seq)
                try NamespaceQueries.insertDentry(db, parent: newParent, name: newName, inode: src.id, seq: seq)
                try NamespaceQueries.insertDentry(db, parent: parent, name: name, inode: dstAttrs.id, seq: seq)
                if parent != newParent {
                    let delta = (src.isDirectory ? 1 : 0) - (dstAttrs.isDirectory ? 1 : 0)
                    try NamespaceQueries.touchDirectory(db, parent, at: now, linkDelta: -delta)
                    try NamespaceQueries.touchDirectory(db, newParent, at: now, linkDelta: delta)
                } else {
                    try NamespaceQueries.touchDirectory(db, parent, at: now)
                }
                try NamespaceQueries.adjustLinks(db, src.id, by: 0, ctime: now)
                try NamespaceQueries.adjustLinks(db, dstAttrs.id, by: 0, ctime: now)
                return
            }

            if let (_, dstAttrs) = dst, dstAttrs.id == src.id { return }  // same file: nothing to do
            if dst != nil, options.contains(.noReplace) { throw FSError.exists }
            if let (_, dstAttrs) = dst {
                if src.isDirectory {
                    guard dstAttrs.isDirectory else { throw FSError.notDirectory }
                    try copyEntries(db, dstAttrs.id)
                    if try NamespaceQueries.hasLiveChildren(db, dstAttrs.id) { throw FSError.notEmpty }
                } else if dstAttrs.isDirectory {
                    throw FSError.isDirectory
                }
            }
            if src.isDirectory { try Self.refuseMoveIntoItself(db, directory: src.id, newParent: newParent) }

            let seq = try NamespaceQueries.recordEvent(
                db, kind: "rename", inode: src.id, parent: newParent, name: newName, oldParent: parent, oldName: name,
                actor: caller.actor, time: now)
            var newParentLinks = 0
            if let (dstDentry, dstAttrs) = dst {
                try NamespaceQueries.closeDentry(db, id: dstDentry, seq: seq)
                try NamespaceQueries.adjustLinks(
                    db, dstAttrs.id, by: dstAttrs.isDirectory ? -Int(dstAttrs.nlink) : -1, ctime: now)
                if dstAttrs.isDirectory { newParentLinks -= 1 }
            }
            try NamespaceQueries.closeDentry(db, id: srcDentry, seq: seq)
            try NamespaceQueries.insertDentry(db, parent: newParent, name: newName, inode: src.id, seq: seq)
            try NamespaceQueries.adjustLinks(db, src.id, by: 0, ctime: now)
            if src.isDirectory && parent != newParent {
                newParentLinks += 1
                try NamespaceQueries.touchDirectory(db, parent, at: now, linkDelta: -1)
            } else if parent != newParent {
                try NamespaceQueries.touchDirectory(db, parent, at: now)
            }
            try NamespaceQueries.touchDirectory(db, newParent, at: now, linkDelta: newParentLinks)
        }
    }

    /// A directory cannot move below itself (EINVAL, as Linux).
    private static func refuseMoveIntoItself(_ db: Connection, directory: InodeID, newParent: InodeID) throws {
        var current: InodeID? = newParent
        var steps = 0
        while let at = current, at != 1 {
            if at == directory { throw FSError.invalidArgument("cannot move a directory into itself") }
            current = try NamespaceQueries.parent(ofDirectory: at, db)
            steps += 1
            if steps > 100_000 { throw FSError.io("directory cycle detected; run `cairn fsck`") }
        }
    }
}
