internal import CSQLite
import Foundation
internal import GRDB
import Glibc
import Synchronization

/// A store on disk: `cairn.db` (SQLite, WAL), `blobs/`, `staging/`. Nothing else holds state.
///
/// `Store` owns the database pool, the single writer and the blob store. One process (the daemon)
/// opens a store for writing; others open it read-only.
public final class Store: Sendable {
    public static let formatVersion = 1
    /// Incompatible features this build understands; a store naming others is refused.
    static let knownIncompatibleFeatures: Set<String> = [
        "audit-database", "chunked-manifests", "embedded-chunks", "id-placeholders", "packed-chunks",
    ]
    static let defaultChunkSize = 1 << 20
    /// Chunks up to this size live in the database, larger ones are files. Rows are appended in
    /// storage order (schema v10), so a small file's bytes cost its commit a few sequential
    /// pages, less than a blob file costs the close that writes it (a file created, renamed
    /// into its directory, and a directory that must be read from disk after a cold start).
    static let defaultInlineThreshold = 64 << 10
    /// An open file's chunk is staged in memory up to this size, in a staging file beyond.
    static let stagingMemoryLimit = 64 << 10

    public let path: String
    public let identifier: String
    public let chunkSize: Int
    public let inlineThreshold: Int
    let pool: DatabasePool
    let writer: MetadataWriter?
    let blobs: LocalBlobStore
    /// Chunks up to `inlineThreshold` long (ChunkRef.inline).
    let packs: PackFiles
    let descriptors: DescriptorCache
    let staging: StagingArea
    let unsyncedBlobs = Atomic<Bool>(false)
    /// Commits hold it shared from storing chunks until their rows are written; gc holds it
    /// exclusively while it deletes chunks, so it never deletes one a commit is about to name.
    let sweepLock = SweepLock()
    /// Counts operations of the writer: what was computed from the database at one count is
    /// still true while it has not moved (quota usage, an open file's row). Each operation moves
    /// it at the end of its turn on the writer, before the next operation runs.
    let changes = Atomic<Int>(0)
    /// Counts the operations of the writer that may change a directory's row (all but the
    /// commits of files), in the same way.
    let directoryChanges = Atomic<Int>(0)
    /// The last free-space check: when, and whether there was room for data (SpaceReserve).
    let spaceCheck = Mutex<(at: Int64, room: Bool)>((0, true))
    /// What writes into the store on its own threads (the audit log), stopped before it closes.
    private let beforeClosing = Mutex<[@Sendable () -> Void]>([])

    var databasePath: String { path + "/cairn.db" }
    var stagingPath: String { path + "/staging" }

    /// The default store location: `$CAIRN_STORE`, else `~/.local/share/cairn`.
    public static var defaultPath: String {
        if let env = ProcessInfo.processInfo.environment["CAIRN_STORE"], !env.isEmpty { return env }
        return NSHomeDirectory() + "/.local/share/cairn"
    }

    /// Creates a new store with one workspace, `default`, owned by `owner`.
    @discardableResult
    public static func create(at path: String, owner: (uid: UInt32, gid: UInt32)) throws(StoreError) -> Store {
        let fm = FileManager.default
        if fm.fileExists(atPath: path + "/cairn.db") { throw .alreadyExists(path: path) }
        do {
            // The store holds every version of every file, whatever its mode in the mount: only
            // its owner may read it.
            try fm.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            chmod(path, 0o700)
            try LocalBlobStore.prepare(root: path + "/blobs")
            try makeDirectory(path + "/staging")
            let pool = try DatabasePool(path: path + "/cairn.db", configuration: configuration(readOnly: false))
            try Schema.migrator(storePath: path).migrate(pool)
            try pool.write { db in
                let meta: [String: String] = [
                    "uuid": UUID().uuidString.lowercased(),
                    "format_version": String(formatVersion),
                    "features_compatible": "",
                    "features_incompatible": knownIncompatibleFeatures.sorted().joined(separator: ","),
                    "hash_algorithm": BlobDigest.algorithm,
                    "chunk_size": String(defaultChunkSize),
                    "inline_threshold": String(defaultInlineThreshold),
                    "created_ns": String(Timestamp.now().nanoseconds),
                ]
                for (key, value) in meta {
                    try db.execute(sql: "INSERT INTO meta(key, value) VALUES (?, ?)", arguments: [key, value])
                }
                let now = Timestamp.now().nanoseconds
                // Inode 1 is the store root: its entries are the workspaces' root directories.
                try db.execute(
                    sql: """
                        INSERT INTO inodes(id, mode, uid, gid, nlink, atime_ns, mtime_ns, ctime_ns, btime_ns)
                        VALUES (1, ?, 0, 0, 2, ?, ?, ?, ?)
                        """, arguments: [S_IFDIR | 0o755, now, now, now, now])
            }
            try pool.close()
        } catch let error as StoreError {
            throw error
        } catch {
            throw .io("cannot create a store at \(path): \(error)")
        }
        let store = try open(at: path)
        do {
            _ = try store.createWorkspace(name: "default", owner: owner, caller: Caller.system)
        } catch {
            throw .io("cannot create the default workspace: \(error)")
        }
        return store
    }

    /// True when a daemon that stopped without committing left operations in the journal.
    public static func hasJournal(at path: String) -> Bool {
        var st = stat()
        return stat(path + "/journal", &st) == 0 && st.st_size > 0
    }

    /// The longest an operation waits in the writer's open transaction for its commit. Each
    /// commit writes every page the transaction changed, while file operations wait: at 20 ms
    /// rather than 5 a page changed by many operations is written once instead of four times
    /// (a tarball extracts 3% faster); other processes see a change up to 20 ms later.
    public static let defaultCommitDelay = 0.02

    /// Opens an existing store. `readOnly` stores have no writer (the CLI while a daemon runs).
    /// A writable open first re-applies what a crashed daemon answered for but had not committed
    /// (see MetadataWriter). `commitDelay`: see `defaultCommitDelay`.
    public static func open(
        at path: String, readOnly: Bool = false, commitDelay: Double = defaultCommitDelay
    ) throws(StoreError) -> Store {
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == EACCES { throw .notPermitted(path: path, owner: nil) }
            throw .missing(path: path)
        }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw .notAStore(path: path) }
        if access(path, R_OK | X_OK) != 0 { throw .notPermitted(path: path, owner: st.st_uid) }
        guard FileManager.default.fileExists(atPath: path + "/cairn.db") else {
            if (try? FileManager.default.contentsOfDirectory(atPath: path))?.isEmpty ?? true {
                throw .missing(path: path)
            }
            throw .notAStore(path: path)
        }
        let pool: DatabasePool
        // Blob reads, packs and staging files share one bounded set of descriptors.
        let descriptors = DescriptorCache(capacity: 1024)
        let packs = PackFiles(root: path + "/packs", descriptors: descriptors, writable: !readOnly)
        let meta: [String: String]
        let writer: MetadataWriter?
        do {
            pool = try DatabasePool(path: path + "/cairn.db", configuration: configuration(readOnly: readOnly))
            meta = try pool.read { db in
                guard try db.tableExists("meta") else { return [:] }
                return try Dictionary(
                    Row.fetchAll(db, sql: "SELECT key, value FROM meta").map {
                        ($0["key"] as String, $0["value"] as String)
                    },
                    uniquingKeysWith: { a, _ in a })
            }
        } catch {
            throw .corrupt(path: path, detail: "cannot read cairn.db (\(error))")
        }
        guard let version = meta["format_version"].flatMap(Int.init), let uuid = meta["uuid"] else {
            throw .corrupt(path: path, detail: "cairn.db has no format version")
        }
        guard version <= formatVersion else {
            throw .newerFormat(path: path, found: version, supported: formatVersion)
        }
        let incompatible = (meta["features_incompatible"] ?? "").split(separator: ",").map(String.init)
        let unknown = incompatible.filter { !knownIncompatibleFeatures.contains($0) }
        guard unknown.isEmpty else { throw .unknownFeatures(path: path, features: unknown) }
        guard meta["hash_algorithm"] == BlobDigest.algorithm else {
            throw .unknownFeatures(path: path, features: ["hash " + (meta["hash_algorithm"] ?? "?")])
        }
        if !readOnly {
            do {
                try Schema.migrator(storePath: path).migrate(pool)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL {
                throw .migrationNeedsSpace(path: path)
            } catch {
                throw .corrupt(path: path, detail: "schema migration failed (\(error))")
            }
            do {
                let reserve = path + "/reserve"
                writer = try MetadataWriter(
                    pool: pool, path: path + "/cairn.db", journalPath: path + "/journal", commitDelay: commitDelay,
                    beforeCommit: { Store.releaseReserveIfFull(storePath: path, reservePath: reserve) },
                    beforeLogSync: { () throws(FSError) in try packs.sync() })
            } catch {
                throw .io("cannot open the store's database for writing: \(error)")
            }
            do {
                try packs.syncAll()
            } catch {
                throw .io("cannot sync the store's packs: \(error)")
            }
        } else {
            writer = nil
        }
        return Store(
            path: path, identifier: uuid, pool: pool, writer: writer, descriptors: descriptors, packs: packs,
            chunkSize: meta["chunk_size"].flatMap(Int.init) ?? defaultChunkSize,
            inlineThreshold: meta["inline_threshold"].flatMap(Int.init) ?? defaultInlineThreshold)
    }

    private init(
        path: String, identifier: String, pool: DatabasePool, writer: MetadataWriter?, descriptors: DescriptorCache,
        packs: PackFiles, chunkSize: Int, inlineThreshold: Int
    ) {
        self.path = path
        self.identifier = identifier
        self.pool = pool
        self.chunkSize = chunkSize
        self.inlineThreshold = inlineThreshold
        self.writer = writer
        self.descriptors = descriptors
        self.blobs = LocalBlobStore(root: path + "/blobs", descriptors: descriptors)
        self.packs = packs
        self.staging = StagingArea(
            directory: path + "/staging", memoryLimit: Self.stagingMemoryLimit, budget: 256 << 20,
            descriptors: descriptors)
        // A transaction SQLite rolled back (a full disk at its commit) took back operations
        // already counted: what was computed from their rows is stale too.
        writer?.observeTransactions { [weak self] committed in
            if !committed {
                self?.changes.wrappingAdd(1, ordering: .relaxed)
                self?.directoryChanges.wrappingAdd(1, ordering: .relaxed)
            }
        }
    }

    /// Stops what writes on its own (`stopBeforeClosing`, the last registered first), then the writer after the work already
    /// queued. The store is unusable afterwards.
    public func close() {
        for stop in beforeClosing.withLock({ $0 }).reversed() { stop() }
        writer?.stop()
        try? pool.close()
    }

    /// Nothing reads SQLite's memory statistics, and keeping them serializes every allocation
    /// of every connection of the process on one mutex. Done before the first connection opens.
    private static let memoryStatisticsOff: Void = { _ = cairn_sqlite_disable_memory_statistics() }()

    private static func configuration(readOnly: Bool) -> Configuration {
        _ = memoryStatisticsOff
        var config = Configuration()
        config.readonly = readOnly
        config.busyMode = .timeout(10)
        config.maximumReaderCount = 8
        // The writer keeps a transaction open across calls (see MetadataWriter).
        config.allowsUnsafeTransactions = true
        config.prepareDatabase { db in
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                // Checkpoints run in the background (MetadataWriter), not on commits.
                try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
                // The writer's pages stay in its cache between transactions (32 MiB rather than
                // 2): a commit otherwise reads back pages of indexes written at random places
                // (chunk digests, names), and a large transaction spills before it commits.
                try db.execute(sql: "PRAGMA cache_size = -32768")
            }
        }
        return config
    }

    /// Registers `stop`, which ends a thread writing into the store, to run when it closes.
    func stopBeforeClosing(_ stop: @escaping @Sendable () -> Void) {
        beforeClosing.withLock { $0.append(stop) }
    }

    /// Whether this process holds the store's writer (the daemon, or the CLI without one).
    var isWritable: Bool { writer != nil }

    /// Runs `work` as one operation of the single writer; `commit` says how durable it must be
    /// when this returns (see MetadataWriter).
    /// `directories` false: the operation changes no directory's row (a file's commit).
    func write<T>(
        _ commit: MetadataWriter.Commit = .now, directories: Bool = true, _ work: (Connection) throws -> T
    ) throws(FSError) -> T {
        guard let writer else { throw FSError.readOnly }
        // Counted within the writer's turn: the next operation to run there already sees the
        // count moved, so it never trusts a row this one changed.
        return try writer.perform(commit) { db in
            defer {
                changes.wrappingAdd(1, ordering: .relaxed)
                if directories { directoryChanges.wrappingAdd(1, ordering: .relaxed) }
            }
            return try work(db)
        }
    }

    /// See `MetadataWriter.observeTransactions` (nothing happens without a writer).
    func observeTransactions(_ observer: @escaping @Sendable (_ committed: Bool) -> Void) {
        writer?.observeTransactions(observer)
    }

    /// Reads the store. In the daemon, through the writer's connection (it sees every operation
    /// already answered); elsewhere, through a reader of committed state.
    func read<T>(_ work: (Connection) throws -> T) throws(FSError) -> T {
        if let writer { return try writer.read(work) }
        return try readCommitted(work)
    }

    /// Reads committed state through a reader of the pool, without waiting for the writer (long
    /// scans: gc, fsck). Operations in the writer's open transaction are not seen.
    func readCommitted<T>(_ work: (Connection) throws -> T) throws(FSError) -> T {
        do {
            return try pool.read { db in try work(Connection(db.sqliteConnection!)) }
        } catch {
            throw FSError(database: error)
        }
    }
}
