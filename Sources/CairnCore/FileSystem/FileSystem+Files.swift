import Foundation
import Glibc
import Synchronization

extension FileSystem {
    /// Opens an inode. `flags` are open(2)'s; O_TRUNC truncates a regular file here.
    public func open(_ inode: InodeID, flags: Int32, caller: Caller) throws(FSError) -> UInt64 {
        let writes = flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0
        try authorize(caller, inode, needs: writes ? .writer : .reader)
        audit(caller, writes ? "open-write" : AuditLog.openForReading, inode: inode)
        let attrs = try store.read { db in try NamespaceQueries.requireInode(db, inode) }
        if attrs.isDirectory && flags & O_ACCMODE != O_RDONLY { throw FSError.isDirectory }
        let handle = try addHandle(inode: inode, flags: flags, caller: caller, regular: attrs.isRegular)
        // As Linux: O_TRUNC truncates even a read-only open (the kernel checked write permission),
        // and drops set-ID bits as a truncate does (the kernel leaves both to the open).
        if attrs.isRegular, flags & O_TRUNC != 0 {
            do {
                try truncate(handle: handle, to: 0)
                if let file = try self.handle(handle).file { try dropSetIDBits(file, caller: caller) }
            } catch {
                if let (_, last) = removeHandle(handle), let last { dropIfUnused(last) }
                throw error
            }
        }
        return handle
    }

    /// Creates a regular file and opens it (open with O_CREAT). An existing name fails with
    /// `exists` under O_EXCL and is opened otherwise. The file's first version is the one its
    /// first close (or fsync, rename, link) commits, with what was written by then: a version
    /// of the empty file first would be a second row of each kind per file, for nothing a view
    /// of the past cannot tell anyway (see `PastQueries`).
    public func create(
        parent: InodeID, name: [UInt8], mode: UInt32, flags: Int32, caller: Caller
    ) throws(FSError) -> (InodeAttributes, UInt64) {
        let attrs: InodeAttributes
        let before = store.changes.load(ordering: .relaxed)
        let xattrWrites = XattrQueries.writes.load(ordering: .relaxed)
        do {
            attrs = try makeNode(
                parent: parent, name: name, mode: S_IFREG | (mode & 0o7777), versioned: false, caller: caller)
        } catch .exists where flags & O_EXCL == 0 {
            let existing = try lookup(parent: parent, name: name)
            if existing.isDirectory { throw FSError.isDirectory }
            let handle = try open(existing.id, flags: flags, caller: caller)
            return (try getattr(existing.id), handle)
        }
        // The new row is known without reading it, if no other operation ran meanwhile (one that
        // did, finished or not, moved the count too: the next use reads the row).
        let readAt = store.changes.load(ordering: .relaxed) == before + 1 ? before + 1 : -1
        let handle = try addHandle(
            inode: attrs.id, flags: flags, caller: caller, regular: true,
            created: RowSnapshot(attributes: attrs, readAt: readAt), noXattrsSince: xattrWrites)
        return (attrs, handle)
    }

    public func read(handle id: UInt64, offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws(FSError)
        -> Int
    {
        guard offset >= 0 else { throw FSError.invalidArgument("negative offset") }
        reads.wrappingAdd(1, ordering: .relaxed)
        guard let file = try handle(id).file else { throw FSError.isDirectory }
        file.lock.lock()
        defer { file.lock.unlock() }
        return try file.read(at: offset, into: buffer)
    }

    /// Writes at `offset` (at the end of file for O_APPEND handles). Returns the count written.
    public func write(handle id: UInt64, offset: Int64, data: UnsafeRawBufferPointer) throws(FSError) -> Int {
        let handle = try handle(id)
        guard let file = handle.file else { throw FSError.isDirectory }
        guard handle.writable else { throw FSError.badHandle }
        try authorize(handle.caller, handle.inode, needs: .writer)
        try checkFence(handle)
        guard store.hasRoomForData() else { throw FSError.noSpace }
        try dropSetIDBits(file, caller: handle.caller)
        file.lock.lock()
        defer { file.lock.unlock() }
        let at = handle.append ? file.size : offset
        let (end, overflow) = at.addingReportingOverflow(Int64(data.count))
        if !overflow {
            try checkQuota(file.inode, growth: max(file.size, end) - file.committedSize, caller: handle.caller)
        }
        try file.write(data, at: at, time: Timestamp.now())
        return data.count
    }

    /// close(2) of a descriptor: commits the file's uncommitted changes as a version.
    public func flush(handle id: UInt64) throws(FSError) {
        let handle = try handle(id)
        guard let file = handle.file else { return }
        if handle.writable { try checkFence(handle) }
        let changed = file.hasUncommittedChangesOrSession
        // A descriptor closed before anything was written (a shell's redirection closes the one
        // it dup'ed) does not make a created file's first version: its last release does.
        try commit(
            file, cause: "close", actor: handle.caller.actor, durable: false, seal: true, enforceQuota: true,
            unlessUnwritten: true)
        if changed {
            audit(handle.caller, "write", inode: file.inode, version: file.lastVersion, bytes: file.committedSize)
        }
    }

    /// The last descriptor of an open is gone. When it was the file's last handle: commits what
    /// a shared mmap dirtied after the last flush, and drops the file's in-memory state. While
    /// other handles have the file open, what is uncommitted may be theirs (the kernel sends
    /// RELEASE in the background, possibly after the next open and its O_TRUNC): their close
    /// commits it, under their actor.
    public func release(handle id: UInt64) throws(FSError) {
        guard let (handle, lastFile) = removeHandle(id) else { throw FSError.badHandle }
        guard let file = lastFile else { return }
        defer { dropIfUnused(file) }
        try commit(file, cause: "close", actor: handle.caller.actor, durable: false, seal: true, unlessReopened: true)
    }

    /// Makes the file's current content durable. Versions are not multiplied: every fsync of one
    /// write session updates the same unsealed version until close seals it, or until the session
    /// has lasted `checkpointInterval`, when that version is sealed and a new one begins.
    public func fsync(handle id: UInt64) throws(FSError) {
        let handle = try handle(id)
        guard let file = handle.file else {
            try store.write(.durable, directories: false) { _ in }
            return
        }
        try checkFence(handle)
        try commit(
            file, cause: "fsync", actor: handle.caller.actor, durable: true, seal: false, force: true,
            enforceQuota: true)
    }

    /// Commits the file's changes as a version (see the type's contract).
    /// `enforceQuota`: close and fsync refuse a commit past the workspace's quota; commits the
    /// daemon makes on its own (rename, shutdown) never lose what was written.
    /// `unlessReopened`: commit nothing if a handle has opened the file again since its last one
    /// was released (what is uncommitted may be that open's O_TRUNC: its close commits it).
    /// `unlessUnwritten`: a created file nobody wrote to yet gets no version now (see `flush`).
    func commit(
        _ file: OpenFile, cause: String, actor: String, durable: Bool, seal: Bool, force: Bool = false,
        enforceQuota: Bool = false, unlessReopened: Bool = false, unlessUnwritten: Bool = false
    ) throws(FSError) {
        // Before the file's lock: gc takes the sweep lock first, then reads open files.
        store.sweepLock.lockShared()
        defer { store.sweepLock.unlock() }
        file.lock.lock()
        defer { file.lock.unlock() }
        // The open bumps the count before it changes the file, under this lock.
        if unlessReopened, hasHandles(file) { return }
        let firstVersion = file.unversioned && !unlessUnwritten
        guard file.modified || firstVersion || (force && durable) else {
            if seal, let session = file.sessionVersion {
                // close after fsync: the session's version is final now.
                try store.write(.journaled, directories: false) { db in try ContentQueries.sealVersion(db, id: session)
                }
                file.sessionVersion = nil
            }
            return
        }
        if !file.staged.isEmpty, !store.hasRoomForData() { throw FSError.noSpace }
        if enforceQuota { try checkQuota(file.inode, growth: file.size - file.committedSize, caller: nil) }
        if durable { try store.syncPendingBlobs() }
        let stored = try file.storeStaged(durable: durable)
        if !durable && stored.contains(where: { if case .blob = $0.ref.storage { true } else { false } }) {
            store.noteUnsyncedBlobs()
        }
        guard file.modified || firstVersion else {
            // Nothing new, but fsync must still make the last commit durable.
            try store.write(.durable, directories: false) { _ in }
            return
        }
        let now = Timestamp.now()
        // A checkpoint: the session's version so far is sealed, and this commit starts the next.
        var checkpoint: Int64?
        if let open = file.sessionVersion, now.nanoseconds - file.sessionStarted.nanoseconds > checkpointInterval {
            checkpoint = open
            file.sessionVersion = nil
        }
        // If the commit fails, the session goes on with the version it had.
        defer { if let checkpoint, file.modified { file.sessionVersion = checkpoint } }
        let manifest = file.manifest
        let size = file.size
        let mtime = file.mtime
        let ctime = file.ctime
        let inode = file.inode
        let session = file.sessionVersion
        let ownership = file.attributesPending ? file.ownership : nil
        let noXattrsSince = file.noXattrsSince
        let versionID = try store.write(durable ? .durable : .journaled, directories: false) { db -> Int64 in
            // In the writer's turn: an xattr write before it has moved the count.
            let noXattrs = noXattrsSince == XattrQueries.writes.load(ordering: .relaxed)
            if let checkpoint { try ContentQueries.sealVersion(db, id: checkpoint) }
            for chunk in stored {
                guard let digest = chunk.ref.digest else { continue }
                try ContentQueries.recordBlob(
                    db, digest, size: chunk.ref.length, small: chunk.inlineData, packs: store.packs, time: now)
            }
            // Mode and owner changed since the last commit are the open file's; else the row's,
            // as the file last read it if no operation ran since.
            let owner =
                try ownership
                ?? (file.row.readAt == store.changes.load(ordering: .relaxed)
                ? file.row.attributes : NamespaceQueries.requireInode(db, inode)).ownership
            let manifestID = try ContentQueries.insertManifest(db, manifest)
            let seq = try NamespaceQueries.recordEvent(db, kind: "write", inode: inode, actor: actor, time: now)
            let version = ContentQueries.NewVersion(
                inode: inode, seq: seq, size: size, storedBytes: manifest.storedBytes, mode: owner.mode, uid: owner.uid,
                gid: owner.gid, mtime: mtime, ctime: ctime, manifest: manifestID,
                xattrs: noXattrs ? nil : try ContentQueries.snapshotXattrs(db, inode: inode), actor: actor,
                cause: cause, sealed: seal)
            let id: Int64
            if let session {
                try ContentQueries.replaceVersion(db, id: session, version)
                id = session
            } else {
                id = try ContentQueries.insertVersion(db, version)
            }
            try ContentQueries.setCurrentContent(
                db, inode: inode, version: id, size: size, storedBytes: manifest.storedBytes, mtime: mtime,
                ctime: ctime,
                ownership: ownership)
            return id
        }
        file.modified = false
        file.unversioned = false
        file.attributesPending = false
        file.committedSize = size
        file.lastVersion = versionID
        file.pendingStored = []
        if seal {
            file.sessionVersion = nil
        } else if file.sessionVersion == nil {
            file.sessionVersion = versionID
            file.sessionStarted = now
        }
    }

    /// Commits an inode's open changes, if it is open (before rename and link).
    func commitIfModified(_ inode: InodeID, cause: String, actor: String) throws(FSError) {
        guard let file = openFile(inode) else { return }
        try commit(file, cause: cause, actor: actor, durable: false, seal: true)
    }

    /// Truncates through a handle, or (handle nil) by inode, committing a version when no
    /// handle has the file open.
    func truncate(handle: UInt64?, inode: InodeID? = nil, to size: Int64, caller: Caller? = nil) throws(FSError) {
        if let handle, case let open = try self.handle(handle), let file = open.file {
            file.lock.lock()
            defer { file.lock.unlock() }
            try checkQuota(file.inode, growth: size - file.committedSize, caller: open.caller)
            try file.truncate(to: size, time: Timestamp.now())
            return
        }
        guard let inode else { throw FSError.badHandle }
        if let file = openFile(inode) {
            file.lock.lock()
            defer { file.lock.unlock() }
            try file.truncate(to: size, time: Timestamp.now())
            return
        }
        // Not open: a short-lived handle carries the change into a version.
        let caller = caller ?? Caller.system
        let temp = try addHandle(inode: inode, flags: O_WRONLY, caller: caller, regular: true)
        defer { try? release(handle: temp) }
        try truncate(handle: temp, to: size)
        try flush(handle: temp)
    }

    public func fallocate(handle id: UInt64, mode: FallocateFlags, offset: Int64, length: Int64) throws(FSError) {
        guard let file = try handle(id).file else { throw FSError.notSupported }
        guard offset >= 0, length > 0 else { throw FSError.invalidArgument("bad fallocate range") }
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= Limits.maxFileSize else { throw FSError.fileTooLarge }
        let keepSize = mode.contains(.keepSize)
        let punch = mode.contains(.punchHole)
        let zeroRange = mode.contains(.zeroRange)
        guard mode.subtracting([.keepSize, .punchHole, .zeroRange]).isEmpty else { throw FSError.notSupported }
        if punch && !keepSize { throw FSError.notSupported }  // as Linux: PUNCH_HOLE needs KEEP_SIZE
        if punch && zeroRange { throw FSError.invalidArgument("PUNCH_HOLE with ZERO_RANGE") }
        file.lock.lock()
        defer { file.lock.unlock() }
        let now = Timestamp.now()
        if punch || zeroRange { try file.zero(offset: offset, length: length, time: now) }
        if !keepSize && end > file.size { try file.truncate(to: end, time: now) }
    }

    /// fallocate(2) modes, with Linux's values.
    public struct FallocateFlags: OptionSet, Sendable {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        public static let keepSize = FallocateFlags(rawValue: 0x01)
        public static let punchHole = FallocateFlags(rawValue: 0x02)
        public static let zeroRange = FallocateFlags(rawValue: 0x10)
    }

    public enum SeekTarget: Sendable { case data, hole }

    public func seek(handle id: UInt64, offset: Int64, to target: SeekTarget) throws(FSError) -> Int64 {
        guard let file = try handle(id).file else { throw FSError.invalidArgument("not a regular file") }
        file.lock.lock()
        defer { file.lock.unlock() }
        return try file.seek(from: offset, data: target == .data)
    }

    /// copy_file_range: whole chunks are cloned by reference (no bytes copied); the rest is copied.
    public func copyRange(
        from sourceHandle: UInt64, offset sourceOffset: Int64, to destinationHandle: UInt64, offset: Int64, length: Int
    ) throws(FSError) -> Int {
        let source = try handle(sourceHandle)
        let destination = try handle(destinationHandle)
        guard let from = source.file, let to = destination.file else { throw FSError.isDirectory }
        guard destination.writable else { throw FSError.badHandle }
        guard sourceOffset >= 0, offset >= 0 else { throw FSError.invalidArgument("negative offset") }
        if from !== to {
            let cloned: Bool
            do {
                // Lock order: by inode id, so two opposite copies cannot deadlock.
                let (first, second) = from.inode < to.inode ? (from, to) : (to, from)
                first.lock.lock()
                second.lock.lock()
                defer {
                    second.lock.unlock()
                    first.lock.unlock()
                }
                cloned = try to.cloneChunks(
                    from: from, sourceOffset: sourceOffset, offset: offset, length: Int64(length), time: Timestamp.now()
                )
                if cloned { return Int(max(0, min(Int64(length), from.size - sourceOffset))) }
            }
        }
        let count = min(length, 1 << 20)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        defer { buffer.deallocate() }
        let got = try read(handle: sourceHandle, offset: sourceOffset, into: buffer)
        guard got > 0 else { return 0 }
        to.lock.lock()
        defer { to.lock.unlock() }
        try to.write(UnsafeRawBufferPointer(rebasing: buffer[0..<got]), at: offset, time: Timestamp.now())
        return got
    }
}

extension Store {
    /// A commit that was not durable wrote blob files; the next fsync must make them durable too,
    /// since its version may name them. One syncfs of the store's filesystem does it.
    func noteUnsyncedBlobs() { unsyncedBlobs.store(true, ordering: .relaxed) }

    func syncPendingBlobs() throws(FSError) {
        guard unsyncedBlobs.exchange(false, ordering: .relaxed) else { return }
        do {
            try syncFilesystem()
        } catch {
            noteUnsyncedBlobs()
            throw error
        }
    }

    /// Everything written to the store's filesystem reaches the disk (syncfs).
    func syncFilesystem() throws(FSError) {
        let fd = Glibc.open(path + "/blobs", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FSError.fromErrno(errno, "open the blob store") }
        defer { Glibc.close(fd) }
        if systemSyncfs(fd) != 0 { throw FSError.fromErrno(errno, "syncfs of the store") }
    }
}

/// syncfs(2) is a GNU extension the Glibc module does not export.
@_silgen_name("syncfs")
private func systemSyncfs(_ fd: Int32) -> Int32

extension FileSystem {
    /// fsyncdir: every committed namespace change becomes durable.
    public func syncMetadata() throws(FSError) {
        try store.write(.durable, directories: false) { _ in }
    }

    /// Commits what the daemon has answered for and not committed yet (group commit holds it up
    /// to `Store.defaultCommitDelay`), the audit records queued for it included, so that a
    /// reader of the database opened next sees it.
    public func commitAnswered() throws(FSError) {
        flushAudit()
        try store.writer?.flush()
    }
}
