import Foundation
import Glibc
import Synchronization

/// The filesystem over one store: every operation a mount (or any other front end) can perform,
/// as plain synchronous, thread-safe methods that take and return values and throw `FSError`.
///
/// Contract:
/// - Each mutating operation is one write transaction through the store's single writer (group
///   commit); it returns after that transaction commits, so a later read on any thread sees it.
/// - Regular-file content is read and written through handles (`open`/`create`). A version is
///   committed by `flush` when the handle's file has uncommitted changes, by `release` if more
///   arrived after the last flush (shared mmap), before `rename`/`link` of the inode, and by
///   `fsync` (durably, into one unsealed version per write session).
/// - Permission bits are enforced by the kernel (`default_permissions`); the core applies the
///   ownership rules of file creation (caller's ids, setgid directories).
public final class FileSystem: Sendable {
    public let store: Store
    let content: ContentStore
    /// A file open for writing for longer than this gets a sealed version (a checkpoint) at its
    /// next fsync, and its later fsyncs go into a new version (nanoseconds).
    let checkpointInterval: Int64
    private let table = Mutex(Table())
    /// Inodes that carry `security.capability`: the kernel asks for it before every write.
    let capabilityHolders: Mutex<Set<InodeID>>
    /// Directories of forks whose entries are still their parent's (see `ensureEntries`).
    let pendingDirectories: Mutex<Set<InodeID>>
    /// flock and POSIX locks of every mount and the CLI (the daemon's; see LockTable).
    public let locks: LockTable
    let quotas = Mutex(QuotaCache())
    let permissions = Mutex(RoleCache())
    /// The daemon's audit log (nil for readers of a store another process owns).
    let auditLog: AuditLog?
    /// Where the audit log's rows are (nil: a reader, which opens it when asked for rows).
    let auditDatabase: SideDatabase?
    /// The full-text index (nil: a reader of a store that has none yet), and the thread that
    /// keeps it current (the daemon's; see `startIndexing`).
    let searchIndex: SearchIndex?
    let indexer = Mutex<Indexer?>(nil)
    /// Counts reads of files and directories: with the writer's count, how the indexer knows
    /// that nobody waits for an answer.
    let reads = Atomic<Int>(0)
    /// The row of the directory last read or changed, as of a count of `Store.directoryChanges`:
    /// after each create or unlink, the kernel asks for the directory's attributes (its
    /// permission check); while no operation that may change a directory has run since, this
    /// is the answer. A create or unlink derives the row it leaves from the one before.
    let lastDirectory = Mutex<(row: RowSnapshot, workspace: Int64?)?>(nil)

    struct Handle {
        var inode: InodeID
        var flags: Int32
        var caller: Caller
        var file: OpenFile?
        /// The last lock granted through this handle, with its fencing token.
        var lock: HeldLock?
        var writable: Bool { flags & O_ACCMODE != O_RDONLY }
        var append: Bool { flags & O_APPEND != 0 }
    }

    struct Table {
        var files: [InodeID: OpenFile] = [:]
        var handles: [UInt64: Handle] = [:]
        var nextHandle: UInt64 = 1
    }

    public init(store: Store, checkpointInterval: Double = 60) throws(FSError) {
        self.store = store
        self.content = ContentStore(store: store)
        self.checkpointInterval = Int64(checkpointInterval * 1e9)
        let (holders, pending) = try store.read { db in
            (try XattrQueries.inodesWith(db, name: Self.capabilityName), try ForkQueries.allPending(db))
        }
        capabilityHolders = Mutex(Set(holders))
        pendingDirectories = Mutex(Set(pending))
        locks = Self.lockTable(store)
        let auditDatabase = try AuditDatabase.open(storePath: store.path, readOnly: false)
        self.auditDatabase = auditDatabase
        // Registered first, so it closes after the log has written its last batch (a store
        // stops what it was given in the reverse order).
        if let auditDatabase { store.stopBeforeClosing { auditDatabase.close() } }
        if let auditDatabase, !AuditLog.switchedOff {
            auditLog = try AuditLog(store: store, database: auditDatabase)
        } else {
            auditLog = nil
        }
        searchIndex = try SearchIndex.open(storePath: store.path, readOnly: false)
        if let searchIndex { store.stopBeforeClosing { searchIndex.close() } }
        try loadQuotas()
        try loadPermissions()
        try store.staging.removeLeftovers()
        store.ensureReserve()
    }

    /// A filesystem for reading a store another process owns (history, cat): no staging cleanup.
    public init(readOnly store: Store) throws(FSError) {
        self.store = store
        self.content = ContentStore(store: store)
        self.checkpointInterval = 0
        capabilityHolders = Mutex([])
        pendingDirectories = Mutex([])
        locks = Self.lockTable(store)
        auditLog = nil
        auditDatabase = nil
        // The index holds nothing the store lacks: its owner may bring it up to date even
        // while a daemon owns the store.
        searchIndex = try SearchIndex.open(storePath: store.path, readOnly: access(store.path, W_OK) != 0)
        if let searchIndex { store.stopBeforeClosing { searchIndex.close() } }
    }

    static let capabilityName = Array("security.capability".utf8)

    // MARK: handles

    func updateHandles(_ change: (inout Handle) -> Void) {
        table.withLock { t in
            for id in Array(t.handles.keys) { change(&t.handles[id]!) }
        }
    }

    func updateHandle(_ id: UInt64, _ change: (inout Handle) -> Void) {
        table.withLock { t in
            if var h = t.handles[id] {
                change(&h)
                t.handles[id] = h
            }
        }
    }

    func handle(_ id: UInt64) throws(FSError) -> Handle {
        guard let handle = table.withLock({ $0.handles[id] }) else { throw FSError.badHandle }
        return handle
    }

    /// Registers a handle, loading the file's content state for regular files.
    /// `created` is a file this call's caller just created, with no version (empty: nothing to
    /// load), and `noXattrsSince` the count of xattr writes before it did (see `OpenFile`).
    func addHandle(
        inode: InodeID, flags: Int32, caller: Caller, regular: Bool, created: RowSnapshot? = nil,
        noXattrsSince: Int? = nil
    ) throws(FSError) -> UInt64 {
        var file: OpenFile?
        if regular {
            file = table.withLock { t in
                let f = t.files[inode]
                f?.handleCount += 1
                return f
            }
            if file == nil {
                let loaded: OpenFile
                if let created {
                    loaded = OpenFile(
                        inode: inode, manifest: Manifest(), row: created, content: content, staging: store.staging)
                    loaded.unversioned = true
                    loaded.noXattrsSince = noXattrsSince
                } else {
                    loaded = try loadOpenFile(inode)
                }
                file = table.withLock { t in
                    let f = t.files[inode] ?? loaded
                    t.files[inode] = f
                    f.handleCount += 1
                    return f
                }
            }
        }
        return table.withLock { t in
            let id = t.nextHandle
            t.nextHandle += 1
            t.handles[id] = Handle(inode: inode, flags: flags, caller: caller, file: file)
            return id
        }
    }

    /// Forgets a handle; returns the file if this was its last handle (so it can be committed).
    /// The file stays in the table until `dropIfUnused`: an open racing with the last release
    /// must find it, not reload a manifest the release has not committed yet.
    func removeHandle(_ id: UInt64) -> (handle: Handle, lastFile: OpenFile?)? {
        table.withLock { t in
            guard let handle = t.handles.removeValue(forKey: id) else { return nil }
            guard let file = handle.file else { return (handle, nil) }
            file.handleCount -= 1
            return (handle, file.handleCount == 0 ? file : nil)
        }
    }

    /// Drops a released file's in-memory state, unless it was opened again meanwhile.
    func dropIfUnused(_ file: OpenFile) {
        table.withLock { t in
            if file.handleCount == 0, t.files[file.inode] === file { t.files.removeValue(forKey: file.inode) }
        }
    }

    func openFile(_ inode: InodeID) -> OpenFile? { table.withLock { $0.files[inode] } }

    /// Whether some handle has `file` open (its count changes under the table's lock).
    func hasHandles(_ file: OpenFile) -> Bool { table.withLock { _ in file.handleCount > 0 } }

    /// Every file some handle has open.
    var openFiles: [OpenFile] { table.withLock { Array($0.files.values) } }

    private func loadOpenFile(_ inode: InodeID) throws(FSError) -> OpenFile {
        let readAt = store.changes.load(ordering: .relaxed)
        let (attrs, manifest) = try store.read { db in
            (
                try NamespaceQueries.requireInode(db, inode),
                try ContentQueries.currentManifest(db, inode: inode).manifest
            )
        }
        return OpenFile(
            inode: inode, manifest: manifest, row: RowSnapshot(attributes: attrs, readAt: readAt), content: content,
            staging: store.staging)
    }

    /// Whether other handles have the file of `handle` open too.
    public func sharesOpenFile(handle id: UInt64) -> Bool {
        table.withLock { t in (t.handles[id]?.file?.handleCount ?? 0) > 1 }
    }

    /// The number of open handles (for status and resource tests).
    public var openHandleCount: Int { table.withLock { $0.handles.count } }

    /// Adds a record to the audit log (see AuditLog). The record names the file by `inode` or
    /// `parent` and `name` (resolved to a path when written), or by `workspace` and `path`.
    func audit(
        _ caller: Caller, _ op: String, inode: InodeID? = nil, parent: InodeID? = nil, name: [UInt8]? = nil,
        workspace: String? = nil, path: String? = nil, version: Int64? = nil, bytes: Int64? = nil,
        result: String = "ok"
    ) {
        auditLog?.record(
            .init(
                time: .now(), caller: caller, op: op, inode: inode, parent: parent, name: name, workspace: workspace,
                path: path, version: version, bytes: bytes, result: result))
    }

    /// Writes the audit records queued so far now, rather than within a few milliseconds.
    public func flushAudit() { auditLog?.flush() }

    /// Writes the audit records queued so far and stops the audit log (shutdown).
    public func closeAudit() { auditLog?.stop() }

    /// Commits every open file with uncommitted changes (before unmount or shutdown).
    public func commitAll() {
        for file in openFiles { try? commit(file, cause: "shutdown", actor: "system", durable: true, seal: true) }
    }

    // MARK: helpers shared by the operations

    static func validate(name: [UInt8]) throws(FSError) {
        guard !name.isEmpty, !name.contains(0), !name.contains(UInt8(ascii: "/")) else {
            throw FSError.invalidArgument("a name may not be empty or contain '/' or NUL")
        }
        guard name.count <= Limits.maxNameLength else { throw FSError.nameTooLong }
    }
}
