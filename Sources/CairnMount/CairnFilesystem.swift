import CairnCore
import FuseKit
import Glibc
import Synchronization

/// The adapter: serves one FUSE session from the core. Each handler decodes the request, calls
/// the core and replies; the policy is in the core, the errno table in `FSError+Errno`.
///
/// Node ids: the session's root (FUSE node 1) is the mounted directory's inode (a workspace root,
/// or inode 1 for the whole store). Inode ids are never reused, so node id = inode id for every
/// other node, with inode 1 and the root swapped: a swap is its own inverse.
final class CairnFilesystem: FuseOperations {
    let fs: FileSystem
    let root: InodeID
    let actors: ActorResolver
    /// How long the kernel may cache names and attributes. Every change to this store goes
    /// through this daemon: the kernel updates its cache on the changes made through this mount,
    /// and `coherence` invalidates it for changes made through the store's other mounts.
    let ttl: Double
    /// Not cached for as long: a name may appear through a mount that does not know it was asked.
    let negativeTTL: Double
    let coherence: SessionCoherence
    let sessionID: Int
    /// The mountpoint, as locks name where their holder is.
    let place: String
    let history = HistoryNodes()
    /// Reads of `.cairn/events` waiting for the next change.
    let feed: EventFeed
    /// Whether the kernel leaves dropping set-ID bits on chown and truncate to the daemon.
    let handlesKillPrivilege = Atomic<Bool>(false)

    init(
        fs: FileSystem, root: InodeID, actor: String?, coherence: SessionCoherence, sessionID: Int, place: String,
        ttl: Double = 10
    ) {
        self.fs = fs
        self.place = place
        self.feed = EventFeed(fs: fs)
        self.root = root
        self.actors = ActorResolver(mountActor: actor)
        self.coherence = coherence
        self.sessionID = sessionID
        self.ttl = ttl
        self.negativeTTL = 1
    }

    /// Tells the store's other mounts what changed.
    func changed(_ changes: SessionCoherence.Change...) {
        for change in changes { coherence.changed(change, by: sessionID) }
    }

    // MARK: mapping

    /// A name that may not change: anything in a view of the past, and `.cairn` itself.
    func readOnlyName(_ parent: InodeNumber, _ name: [UInt8]) -> Bool {
        HistoryNodes.contains(parent) || isCairnEntry(parent: parent, name: name)
    }

    func inode(_ node: InodeNumber) -> InodeID {
        let id = InodeID(bitPattern: node)
        return id == 1 ? root : (id == root ? 1 : id)
    }

    func node(_ inode: InodeID) -> InodeNumber { UInt64(bitPattern: self.inode(UInt64(bitPattern: inode))) }

    /// `node`: the id the kernel knows the node by, when it is not the inode's (views of the past).
    func attributes(_ a: InodeAttributes, node id: InodeNumber? = nil) -> FileAttributes {
        FileAttributes(
            ino: id ?? node(a.id), mode: a.mode, nlink: a.nlink, uid: a.uid, gid: a.gid, rdev: a.rdev, size: a.size,
            blocks: a.blocks, atime: timespec(a.atime), mtime: timespec(a.mtime), ctime: timespec(a.ctime))
    }

    func entry(_ a: InodeAttributes, node id: InodeNumber? = nil, timeout: Double? = nil) -> Entry {
        Entry(
            ino: id ?? node(a.id), generation: a.generation, attributes: attributes(a, node: id),
            attrTimeout: timeout ?? ttl, entryTimeout: timeout ?? ttl)
    }

    func caller(_ req: borrowing FuseRequest) -> Caller {
        let ctx = req.context
        // Supplementary groups cost a read of /proc per request; root needs none (it may keep
        // any group), so they are read only for other users.
        let who = actors.identify(pid: ctx.pid, uid: ctx.uid)
        return Caller(
            uid: ctx.uid, gid: ctx.gid, pid: ctx.pid, groups: ctx.uid == 0 ? [] : req.supplementaryGroups,
            actor: who.actor, process: who.process)
    }

    // MARK: lifecycle

    func initialize(_ connection: FuseConnection) {
        connection.enable(.asyncRead)
        connection.enable(.atomicOpenTrunc)
        connection.enable(.readdirplus)
        connection.enable(.readdirplusAuto)
        connection.enable(.parallelDirops)
        connection.enable(.asyncDIO)
        connection.enable(.exportSupport)
        // The daemon drops set-ID bits on chown, truncate and write itself (see `setattr`): the
        // kernel then no longer fetches a file's attributes before each chown.
        handlesKillPrivilege.store(connection.enable(.handleKillpriv), ordering: .relaxed)
        // The kernel applies the umask before the mode reaches us (no DONT_MASK).
        connection.disable(.dontMask)
        connection.disable(.writebackCache)
        connection.maxWrite = 1 << 20
        connection.timeGranularity = 1
    }

    // MARK: names

    func lookup(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8]) {
        if HistoryNodes.contains(parent) || isCairnEntry(parent: parent, name: name) {
            return historyLookup(req, parent: parent, name: name)
        }
        do {
            if fs.enforcesRoles { try fs.authorize(caller(req), inode(parent), needs: .reader) }
            req.reply(entry: entry(try fs.lookup(parent: inode(parent), name: name)))
        } catch .notFound {
            req.reply(entry: .negative(timeout: negativeTTL))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func getattr(_ req: consuming FuseRequest, ino: InodeNumber, handle: UInt64?) {
        if HistoryNodes.contains(ino) { return historyGetattr(req, ino: ino) }
        do {
            req.reply(attributes: attributes(try fs.getattr(inode(ino))), timeout: ttl)
        } catch {
            req.reply(error: error.errno)
        }
    }

    func setattr(_ req: consuming FuseRequest, ino: InodeNumber, changes: FuseKit.AttributeChanges, handle: UInt64?) {
        if HistoryNodes.contains(ino) { return req.reply(error: EROFS) }
        func time(_ t: FuseKit.TimeChange?) -> CairnCore.TimeChange? {
            switch t {
            case .none: nil
            case .now: .now
            case .value(let ts): .value(Timestamp(seconds: ts.tv_sec, nanoseconds: ts.tv_nsec))
            }
        }
        var core = CairnCore.AttributeChanges(
            mode: changes.mode, uid: changes.uid, gid: changes.gid, size: changes.size, atime: time(changes.atime),
            mtime: time(changes.mtime))
        let who = caller(req)
        if handlesKillPrivilege.load(ordering: .relaxed) {
            // What the kernel leaves to the daemon: a chown drops the bits; so does a truncate by
            // a user without CAP_FSETID; and a setattr that changes nothing is how the kernel
            // asks for it before such a user's write through the page cache (or a chown to -1, -1).
            let nothing =
                core.mode == nil && core.uid == nil && core.gid == nil && core.size == nil
                && core.atime == nil && core.mtime == nil
            core.dropsSetID = core.uid != nil || core.gid != nil || (core.size != nil && who.uid != 0) || nothing
        }
        do {
            let a = try fs.setattr(inode(ino), changes: core, handle: handle, caller: who)
            req.reply(attributes: attributes(a), timeout: ttl)
            changed(.inode(a.id))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func readlink(_ req: consuming FuseRequest, ino: InodeNumber) {
        if HistoryNodes.contains(ino) {
            do throws(FSError) {
                guard let node = history.node(ino) else { throw FSError.notFound }
                if case .hit(_, let target) = node { return req.reply(readlink: target) }
                return req.reply(readlink: try fs.readlink(try historyVersion(node).inode))
            } catch {
                return req.reply(error: error.errno == EISDIR ? EINVAL : error.errno)
            }
        }
        do {
            req.reply(readlink: try fs.readlink(inode(ino)))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func mknod(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8], mode: mode_t, rdev: UInt64) {
        if readOnlyName(parent, name) { return req.reply(error: EROFS) }
        do {
            let made = try fs.mknod(parent: inode(parent), name: name, mode: mode, rdev: rdev, caller: caller(req))
            req.reply(entry: entry(made))
            changed(.entry(parent: inode(parent), name: name), .inode(inode(parent)))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func mkdir(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8], mode: mode_t) {
        if readOnlyName(parent, name) { return req.reply(error: EROFS) }
        do {
            req.reply(entry: entry(try fs.mkdir(parent: inode(parent), name: name, mode: mode, caller: caller(req))))
            changed(.entry(parent: inode(parent), name: name), .inode(inode(parent)))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func symlink(_ req: consuming FuseRequest, target: [UInt8], parent: InodeNumber, name: [UInt8]) {
        if readOnlyName(parent, name) { return req.reply(error: EROFS) }
        do {
            let made = try fs.symlink(parent: inode(parent), name: name, target: target, caller: caller(req))
            req.reply(entry: entry(made))
            changed(.entry(parent: inode(parent), name: name), .inode(inode(parent)))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func unlink(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8]) {
        if readOnlyName(parent, name) { return req.reply(error: EROFS) }
        do {
            let removed = try fs.unlink(parent: inode(parent), name: name, caller: caller(req))
            req.replyOK()
            // A file with names left is not deleted: the other mounts only drop this name.
            changed(
                removed.links == 0
                    ? .removed(parent: inode(parent), child: removed.inode, name: name)
                    : .entry(parent: inode(parent), name: name), .inode(inode(parent)), .inode(removed.inode))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func rmdir(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8]) {
        if readOnlyName(parent, name) { return req.reply(error: EROFS) }
        do {
            let removed = try fs.rmdir(parent: inode(parent), name: name, caller: caller(req))
            req.replyOK()
            // A file with names left is not deleted: the other mounts only drop this name.
            changed(
                removed.links == 0
                    ? .removed(parent: inode(parent), child: removed.inode, name: name)
                    : .entry(parent: inode(parent), name: name), .inode(inode(parent)), .inode(removed.inode))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func rename(
        _ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8], newParent: InodeNumber, newName: [UInt8],
        flags: RenameFlags
    ) {
        if readOnlyName(parent, name) || readOnlyName(newParent, newName) { return req.reply(error: EROFS) }
        guard flags.subtracting([.noReplace, .exchange]).isEmpty else {
            req.reply(error: EINVAL)
            return
        }
        var options: FileSystem.RenameOptions = []
        if flags.contains(.noReplace) { options.insert(.noReplace) }
        if flags.contains(.exchange) { options.insert(.exchange) }
        do {
            try fs.rename(
                parent: inode(parent), name: name, newParent: inode(newParent), newName: newName, options: options,
                caller: caller(req))
            req.replyOK()
            changed(
                .entry(parent: inode(parent), name: name), .entry(parent: inode(newParent), name: newName),
                .inode(inode(parent)), .inode(inode(newParent)))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func link(_ req: consuming FuseRequest, ino: InodeNumber, newParent: InodeNumber, newName: [UInt8]) {
        if HistoryNodes.contains(ino) || readOnlyName(newParent, newName) { return req.reply(error: EROFS) }
        do {
            let linked = try fs.link(
                inode: inode(ino), newParent: inode(newParent), newName: newName, caller: caller(req))
            req.reply(entry: entry(linked))
            changed(.entry(parent: inode(newParent), name: newName), .inode(linked.id), .inode(inode(newParent)))
        } catch {
            req.reply(error: error.errno)
        }
    }

    // MARK: files

    /// Write-only descriptors bypass the kernel's page cache (direct I/O): nothing reads or maps
    /// through them, so the cache has nothing to keep, and without it the kernel neither copies
    /// each write into it nor asks for `security.capability` before each write. Descriptors that
    /// can read keep the cache (shared mmap needs it).
    static func bypassesPageCache(_ flags: Int32) -> Bool { flags & O_ACCMODE == O_WRONLY }

    func open(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo) {
        if HistoryNodes.contains(ino) { return historyOpen(req, ino: ino, info: info) }
        do {
            let handle = try fs.open(inode(ino), flags: info.flags, caller: caller(req))
            // The opener may be gone (killed while waiting): then no RELEASE will come.
            let reply = OpenReply(handle: handle, directIO: Self.bypassesPageCache(info.flags))
            if !req.reply(open: reply) { try? fs.release(handle: handle) }
        } catch {
            req.reply(error: error.errno)
        }
    }

    func create(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8], mode: mode_t, info: FileInfo) {
        if readOnlyName(parent, name) { return req.reply(error: EROFS) }
        do {
            let (attrs, handle) = try fs.create(
                parent: inode(parent), name: name, mode: mode, flags: info.flags, caller: caller(req))
            let reply = OpenReply(handle: handle, directIO: Self.bypassesPageCache(info.flags))
            if !req.reply(create: entry(attrs), open: reply) { try? fs.release(handle: handle) }
            changed(.entry(parent: inode(parent), name: name), .inode(inode(parent)))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func read(_ req: consuming FuseRequest, ino: InodeNumber, size: Int, offset: Int64, info: FileInfo) {
        if HistoryNodes.contains(ino) { return historyRead(req, size: size, offset: offset, handle: info.handle) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
        defer { buffer.deallocate() }
        do {
            let n = try fs.read(
                handle: info.handle, offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size]))
            req.reply(data: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func write(
        _ req: consuming FuseRequest, ino: InodeNumber, data: UnsafeRawBufferPointer, offset: Int64, info: FileInfo
    ) {
        if HistoryNodes.contains(ino) { return req.reply(error: EROFS) }
        do {
            let written = try fs.write(handle: info.handle, offset: offset, data: data)
            // Other descriptors of the file may read through this mount's page cache, which a
            // write that bypassed it left stale: the pages go before the write is answered (newer
            // kernels drop them too, after the answer).
            if Self.bypassesPageCache(info.flags), fs.sharesOpenFile(handle: info.handle) {
                coherence.invalidatePagesNow(of: inode(ino), in: sessionID)
            }
            req.reply(written: written)
        } catch {
            req.reply(error: error.errno)
        }
    }

    func flush(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo) {
        if HistoryNodes.contains(ino) { return req.replyOK() }
        // close(2) drops the closing process's POSIX locks on the file, after its data is in,
        // before close returns (a lock taken right after must not be dropped by this close).
        let result: Int32
        do {
            try fs.flush(handle: info.handle)
            result = 0
        } catch {
            result = error.errno
        }
        fs.locks.unlock(inode: inode(ino), kind: .posix, owner: posixOwner(info))
        if result == 0 { changed(.inode(inode(ino))) }
        req.reply(error: result)
    }

    func release(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo) {
        if HistoryNodes.contains(ino) {
            history.release(info.handle)
            return req.replyOK()
        }
        // The last descriptor of an open file is gone: so are its flock locks.
        fs.locks.unlock(inode: inode(ino), kind: .flock, owner: flockOwner(info))
        do {
            try fs.release(handle: info.handle)
            req.replyOK()
            changed(.inode(inode(ino)))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func fsync(_ req: consuming FuseRequest, ino: InodeNumber, dataOnly: Bool, info: FileInfo) {
        if HistoryNodes.contains(ino) { return req.replyOK() }
        do {
            try fs.fsync(handle: info.handle)
            req.replyOK()
            changed(.inode(inode(ino)))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func fallocate(
        _ req: consuming FuseRequest, ino: InodeNumber, mode: FallocateMode, offset: Int64, length: Int64,
        info: FileInfo
    ) {
        if HistoryNodes.contains(ino) { return req.reply(error: EROFS) }
        do {
            try fs.fallocate(
                handle: info.handle, mode: FileSystem.FallocateFlags(rawValue: mode.rawValue), offset: offset,
                length: length)
            req.replyOK()
            changed(.inode(inode(ino)))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func lseek(_ req: consuming FuseRequest, ino: InodeNumber, offset: Int64, whence: SeekWhence, info: FileInfo) {
        if HistoryNodes.contains(ino) { return req.reply(error: ENOSYS) }
        do {
            req.reply(offset: try fs.seek(handle: info.handle, offset: offset, to: whence == .data ? .data : .hole))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func copyFileRange(
        _ req: consuming FuseRequest, from source: InodeNumber, offset sourceOffset: Int64, info sourceInfo: FileInfo,
        to destination: InodeNumber, offset destinationOffset: Int64, info destinationInfo: FileInfo, length: Int,
        flags: Int32
    ) {
        // Copying out of a view of the past goes through read and write (EXDEV: the caller falls back).
        if HistoryNodes.contains(source) || HistoryNodes.contains(destination) {
            return req.reply(error: HistoryNodes.contains(destination) ? EROFS : EXDEV)
        }
        guard flags == 0 else {
            req.reply(error: EINVAL)
            return
        }
        do {
            req.reply(
                written: try fs.copyRange(
                    from: sourceInfo.handle, offset: sourceOffset, to: destinationInfo.handle,
                    offset: destinationOffset,
                    length: length))
        } catch {
            req.reply(error: error.errno)
        }
    }

    // MARK: directories

    func opendir(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo) {
        if HistoryNodes.contains(ino) { return historyOpendir(req, ino: ino) }
        do throws(FSError) {
            if fs.enforcesRoles { try fs.authorize(caller(req), inode(ino), needs: .reader) }
            let attrs = try fs.getattr(inode(ino))
            guard attrs.isDirectory else { throw FSError.notDirectory }
            req.reply(open: OpenReply(handle: 0))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func readdir(_ req: consuming FuseRequest, ino: InodeNumber, size: Int, offset: Int64, info: FileInfo) {
        listDirectory(req, ino: ino, size: size, offset: offset, plus: false, handle: info.handle)
    }

    func readdirplus(_ req: consuming FuseRequest, ino: InodeNumber, size: Int, offset: Int64, info: FileInfo) {
        listDirectory(req, ino: ino, size: size, offset: offset, plus: true, handle: info.handle)
    }

    func releasedir(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo) {
        if HistoryNodes.contains(ino) { history.release(info.handle) }
        req.replyOK()
    }

    private func listDirectory(
        _ req: consuming FuseRequest, ino: InodeNumber, size: Int, offset: Int64, plus: Bool, handle: UInt64
    ) {
        if HistoryNodes.contains(ino) {
            return historyList(req, ino: ino, size: size, offset: offset, plus: plus, handle: handle)
        }
        let dir: InodeAttributes
        do throws(FSError) {
            dir = try fs.getattr(inode(ino))
        } catch {
            return req.reply(error: error.errno)
        }
        list(
            req, directory: dir, node: ino, size: size, offset: offset, plus: plus,
            entries: { cookie, limit throws(FSError) in try self.fs.list(directory: dir.id, after: cookie, limit: limit)
            },
            nodeOf: { e throws(FSError) in self.node(e.attributes.id) })
    }

    /// Answers a readdir of `directory` (known to the kernel as `node`): ".", "..", then what
    /// `entries` gives after a cookie, each entry under the id `nodeOf` gives it. Offsets: 1 after
    /// ".", 2 after "..", then 2 + the cookie of the last entry returned (a dentry id), so a
    /// listing resumes at the right entry however the directory changed in between.
    func list(
        _ req: consuming FuseRequest, directory: InodeAttributes, node: InodeNumber, size: Int, offset: Int64,
        plus: Bool, entryTimeout: Double? = nil,
        entries: (_ after: Int64, _ limit: Int) throws(FSError) -> [DirectoryEntry],
        nodeOf: (DirectoryEntry) throws(FSError) -> InodeNumber
    ) {
        var buffer = req.makeDirectoryBuffer(capacity: size)
        do throws(FSError) {
            guard directory.isDirectory else { throw FSError.notDirectory }
            var full = false
            if offset < 1 { full = !add(&buffer, [UInt8(ascii: ".")], directory, node, 1, plus: plus) }
            if !full && offset < 2 {
                full = !add(&buffer, [UInt8(ascii: "."), UInt8(ascii: ".")], directory, node, 2, plus: plus)
            }
            var cookie = offset > 2 ? offset - 2 : 0
            while !full {
                let batch = try entries(cookie, max(16, size / 64))
                if batch.isEmpty { break }
                for e in batch {
                    if !add(&buffer, e.name, e.attributes, try nodeOf(e), e.cookie + 2, plus: plus) {
                        full = true
                        break
                    }
                    cookie = e.cookie
                }
            }
            req.reply(directory: buffer)
        } catch {
            req.reply(error: error.errno)
        }
    }

    private func add(
        _ buffer: inout DirectoryBuffer, _ name: [UInt8], _ a: InodeAttributes, _ id: InodeNumber, _ next: Int64,
        plus: Bool
    ) -> Bool {
        plus
            ? buffer.addPlus(name: name, entry: entry(a, node: id), nextOffset: next)
            : buffer.add(name: name, ino: id, mode: a.mode, nextOffset: next)
    }

    func fsyncdir(_ req: consuming FuseRequest, ino: InodeNumber, dataOnly: Bool, info: FileInfo) {
        do {
            try fs.syncMetadata()
            req.replyOK()
        } catch {
            req.reply(error: error.errno)
        }
    }

    func statfs(_ req: consuming FuseRequest, ino: InodeNumber) {
        do {
            let s = try fs.statfs(root: root == 1 ? nil : root)
            var v = statvfs()
            v.f_bsize = UInt(s.blockSize)
            v.f_frsize = UInt(s.blockSize)
            v.f_blocks = fsblkcnt_t(s.totalBlocks)
            v.f_bfree = fsblkcnt_t(s.freeBlocks)
            v.f_bavail = fsblkcnt_t(s.availableBlocks)
            v.f_files = fsfilcnt_t(s.totalInodes)
            v.f_ffree = fsfilcnt_t(s.freeInodes)
            v.f_favail = fsfilcnt_t(s.freeInodes)
            v.f_namemax = UInt(s.maxNameLength)
            req.reply(statfs: v)
        } catch {
            req.reply(error: error.errno)
        }
    }

    // MARK: extended attributes

    func setxattr(
        _ req: consuming FuseRequest, ino: InodeNumber, name: [UInt8], value: UnsafeRawBufferPointer, flags: Int32
    ) {
        if HistoryNodes.contains(ino) { return req.reply(error: EROFS) }
        // The lock attribute shows the lock table; it is not set by hand.
        if name == Self.lockAttribute { return req.reply(error: EPERM) }
        do {
            try fs.setxattr(
                inode(ino), name: name, value: Array(value), flags: FileSystem.XattrFlags(rawValue: flags),
                caller: caller(req))
            req.replyOK()
            changed(.inode(inode(ino)))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func getxattr(_ req: consuming FuseRequest, ino: InodeNumber, name: [UInt8], size: Int) {
        do throws(FSError) {
            if name == Self.lockAttribute, !HistoryNodes.contains(ino) {
                guard let value = fs.lockDescription(inode(ino)) else { throw FSError.noAttribute }
                return reply(req, bytes: value, size: size)
            }
            let value =
                HistoryNodes.contains(ino) ? try historyXattr(ino, name: name) : try fs.getxattr(inode(ino), name: name)
            reply(req, bytes: value, size: size)
        } catch {
            req.reply(error: error.errno)
        }
    }

    func listxattr(_ req: consuming FuseRequest, ino: InodeNumber, size: Int) {
        do {
            let names = HistoryNodes.contains(ino) ? try historyXattrNames(ino) : try fs.listxattr(inode(ino))
            let list = names.flatMap { $0 + [UInt8(0)] }
            reply(req, bytes: list, size: size)
        } catch {
            req.reply(error: error.errno)
        }
    }

    func removexattr(_ req: consuming FuseRequest, ino: InodeNumber, name: [UInt8]) {
        if HistoryNodes.contains(ino) { return req.reply(error: EROFS) }
        do {
            try fs.removexattr(inode(ino), name: name, caller: caller(req))
            req.replyOK()
            changed(.inode(inode(ino)))
        } catch {
            req.reply(error: error.errno)
        }
    }

    /// getxattr/listxattr: size 0 asks for the length; a smaller buffer than the value is ERANGE.
    private func reply(_ req: consuming FuseRequest, bytes: [UInt8], size: Int) {
        if size == 0 {
            req.reply(xattrSize: bytes.count)
        } else if bytes.count > size {
            req.reply(error: ERANGE)
        } else {
            req.reply(bytes: bytes)
        }
    }
}

extension timespec {
    init(_ t: Timestamp) { self.init(tv_sec: t.seconds, tv_nsec: t.subsecondNanoseconds) }
}
