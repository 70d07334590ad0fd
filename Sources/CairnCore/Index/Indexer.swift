import Foundation
import Glibc
import Synchronization

/// Keeps the search index up to date with what the store has committed, never on the write
/// path: a thread (at a lower CPU priority than the daemon's other threads) reads the changes
/// committed since the index's cursor, works out which files they touched, reads and extracts
/// the text of those whose current version the index does not have, and writes entries and the
/// new cursor in one transaction of `index.db`. After a crash or a restart it goes on from the
/// cursor; after `cairn index rebuild` (the cursor back at zero) from the first change.
final class Indexer: Sendable {
    private let fs: FileSystem
    private let index: SearchIndex
    private let stopping = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    /// The last failure, for `cairn index status` (the indexer retries after a pause).
    let lastError = Mutex<String?>(nil)

    /// Changes read per turn.
    static let batch = 256
    /// File bytes read per snapshot (a file counts its first `ExtractedText.maximumBytes`).
    static let bytesPerRead = 32 << 20

    init(fs: FileSystem, index: SearchIndex) {
        self.fs = fs
        self.index = index
    }

    /// Starts the background thread.
    func start() {
        let thread = Thread { [self] in self.loop() }
        thread.name = "cairn-index"
        thread.start()
        fs.store.stopBeforeClosing { [weak self] in self?.stop() }
    }

    func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        wake.signal()
        stopped.wait()
    }

    private func loop() {
        Self.runOnlyWhenIdle()
        let store = fs.store
        // Writes and reads of the daemon: activity of those waiting for an answer.
        func activity() -> Int { store.changes.load(ordering: .relaxed) &+ fs.reads.load(ordering: .relaxed) }
        var seen = activity()
        var lastChange = Timestamp.monotonicNanoseconds()
        // Changes may wait from before this thread started (a restart): catch up at once.
        var pendingSince: Int64? = 0
        while !stopping.load(ordering: .relaxed) {
            let now = Timestamp.monotonicNanoseconds()
            let count = activity()
            if count != seen {
                seen = count
                lastChange = now
                if pendingSince == nil { pendingSince = now }
            } else if pendingSince == nil, now - lastChange >= Self.longestWait {
                // Another process may have changed the index (`cairn index rebuild`): look.
                pendingSince = now
                lastChange = now
            }
            // Work while readers and writers rest, or once a change has waited long enough.
            guard let since = pendingSince, now - lastChange >= Self.quiet || now - since >= Self.longestWait else {
                _ = wake.wait(timeout: .now() + .milliseconds(Self.tick))
                continue
            }
            do {
                if try !step() {
                    pendingSince = nil
                } else if now - lastChange < Self.quiet {
                    // Writers are busy: one batch per `longestWait`, so that the index trickles
                    // forward without taking the store's readers, disk and processors from them.
                    pendingSince = now
                }
                lastError.withLock { $0 = nil }
            } catch {
                lastError.withLock { $0 = "\(error)" }
                _ = wake.wait(timeout: .now() + .seconds(1))
            }
        }
        stopped.signal()
    }

    /// How long the writers must have rested before indexing begins.
    static let quiet: Int64 = 100_000_000
    /// How long a change waits at most while writers keep working (then it is indexed anyway).
    static let longestWait: Int64 = 1_000_000_000
    /// How often the thread looks at the writers' activity.
    private static let tick = 20

    /// Puts the calling thread in SCHED_IDLE (Linux: per thread), which runs only on a processor
    /// nothing else wants: indexing never takes time from the operations that wait for an answer.
    /// If that is refused, the lowest nice value.
    private static func runOnlyWhenIdle() {
        var param = sched_param()
        let schedIdle: Int32 = 5  // SCHED_IDLE, hidden behind _GNU_SOURCE in the Glibc module
        if sched_setscheduler(0, schedIdle, &param) != 0 {
            setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
        }
    }

    /// Indexes until the index has every change committed when it started; `progress` gets the
    /// changes done and the total.
    func catchUp(progress: (Int64, Int64) -> Void = { _, _ in }) throws(FSError) {
        let target = try fs.store.readCommitted { db in try Self.storeCursor(db) }
        let start = try index.read { db in try SearchIndex.cursor(db) }
        let total = max(0, target.events - start.events) + max(0, target.versions - start.versions)
        while try step() {
            let now = try index.read { db in try SearchIndex.cursor(db) }
            progress(
                min(total, max(0, now.events - start.events) + max(0, now.versions - start.versions)), total)
            if now.events >= target.events && now.versions >= target.versions { break }
        }
    }

    /// The last event seq and version id the store has committed.
    static func storeCursor(_ db: Connection) throws -> SearchIndex.Cursor {
        SearchIndex.Cursor(
            events: try db.value(Int64.self, "SELECT max(seq) FROM events") ?? 0,
            versions: try db.value(Int64.self, "SELECT max(id) FROM versions") ?? 0)
    }

    /// What the index should hold for one inode.
    private enum Target {
        case absent(InodeID)
        case file(InodeID, workspace: Int64, version: VersionRecord, name: String)
    }

    /// One turn: returns whether there was anything to do.
    func step() throws(FSError) -> Bool {
        let cursor = try index.read { db in try SearchIndex.cursor(db) }
        // Which files the changes since the cursor touched, and their state, in one committed
        // snapshot of the store.
        let planned = try fs.store.readCommitted { db -> (SearchIndex.Cursor, [Target])? in
            let events = try db.rows(
                """
                SELECT seq, inode, kind, parent, name, old_parent, old_name FROM events
                WHERE seq > ? ORDER BY seq LIMIT ?
                """, [cursor.events, Self.batch])
            let versions = try db.rows(
                "SELECT id, inode FROM versions WHERE id > ? ORDER BY id LIMIT ?", [cursor.versions, Self.batch])
            var next = cursor
            if let last = events.last { next.events = last[0] }
            if let last = versions.last { next.versions = last[0] }
            guard next != cursor else { return nil }
            var inodes = Set(events.compactMap { $0[1] as InodeID? } + versions.map { $0[1] as InodeID })
            // A rename names only the file moved: the file it replaced (or, exchanged, moved the
            // other way) is found by the entries the rename closed and opened.
            for event in events where (event[2] as String) == "rename" {
                let seq: Int64 = event[0]
                for (parent, name) in [(event[3], event[4]), (event[5], event[6])] as [(InodeID?, Data?)] {
                    guard let parent, let name else { continue }
                    inodes.formUnion(
                        try db.values(
                            InodeID.self,
                            """
                            SELECT inode FROM dentries WHERE parent = ? AND name = ?
                            AND (deleted_seq = ? OR created_seq = ?)
                            """, [parent, name, seq, seq]))
                }
            }
            return (next, try inodes.sorted().map { try Self.target(db, $0) })
        }
        guard let (next, targets) = planned else { return false }
        var texts: [InodeID: ExtractedText] = [:]
        // What the index holds now: a version (an fsynced one still being written changes in
        // place, its manifest with it) and a name.
        var indexed: [InodeID: (version: Int64, manifest: Int64?, name: String)] = [:]
        let ids = targets.compactMap { target -> InodeID? in
            if case .file(let inode, _, _, _) = target { return inode }
            return nil
        }
        if !ids.isEmpty {
            indexed = try index.read { db in
                var found: [InodeID: (Int64, Int64?, String)] = [:]
                for inode in ids {
                    if let row = try db.row("SELECT version, manifest, name FROM docs WHERE inode = ?", [inode]) {
                        found[inode] = (row[0], row[1], row[2])
                    }
                }
                return found
            }
        }
        // The files whose text the index lacks, read a few at a time in one snapshot each, so
        // that a batch of large files never sits in memory at once.
        var stale = targets.compactMap { target -> (InodeID, VersionRecord, String)? in
            guard case .file(let inode, _, let version, let name) = target,
                indexed[inode].map({ $0.version != version.id || $0.manifest != version.manifestID }) ?? true
            else { return nil }
            return (inode, version, name)
        }[...]
        func text(of inode: InodeID) throws -> ExtractedText? {
            if texts[inode] == nil, stale.first?.0 == inode {
                texts = [:]
                var budget = Self.bytesPerRead
                let group = stale.prefix { file in
                    defer { budget -= Int(min(file.1.size, Int64(ExtractedText.maximumBytes))) }
                    return budget > 0
                }
                stale = stale.dropFirst(group.count)
                // A file that cannot be read (a missing chunk: `cairn fsck` says which) is
                // marked unreadable, not retried for ever: the changes after it go on.
                let contents = try fs.store.readCommitted { db in
                    group.map { file -> (InodeID, String, Result<[UInt8], Error>) in
                        (file.0, file.2, Result { try bytes(of: file.1, db) })
                    }
                }
                // Extracted outside the store's snapshot (pdftotext may take its time).
                for (inode, name, content) in contents {
                    switch content {
                    case .success(let bytes): texts[inode] = ExtractedText.extract(bytes, name: name)
                    case .failure(let error):
                        lastError.withLock { $0 = "inode \(inode) (\(name)) could not be read: \(error)" }
                        texts[inode] = ExtractedText(format: .unreadable, text: "")
                    }
                }
            }
            return texts[inode]
        }
        try index.write { db in
            // A rebuild began meanwhile: this turn's plan is for a cursor that no longer is.
            guard try SearchIndex.cursor(db) == cursor else { return }
            for target in targets {
                switch target {
                case .absent(let inode):
                    try db.run("DELETE FROM docs WHERE inode = ?", [inode])
                    try db.run("DELETE FROM texts WHERE rowid = ?", [inode])
                case .file(let inode, let workspace, let version, let name):
                    if let text = try text(of: inode) {
                        try db.run(
                            """
                            INSERT OR REPLACE INTO docs(inode, workspace, version, manifest, format, bytes, name)
                            VALUES (?, ?, ?, ?, ?, ?, ?)
                            """,
                            [
                                inode, workspace, version.id, version.manifestID, text.format.rawValue,
                                text.text.utf8.count, name,
                            ])
                        try db.run("DELETE FROM texts WHERE rowid = ?", [inode])
                        if !text.text.isEmpty {
                            try db.run(
                                "INSERT INTO texts(rowid, name, body) VALUES (?, ?, ?)", [inode, name, text.text])
                        }
                    } else if let known = indexed[inode], known.name != name {
                        try db.run("UPDATE docs SET name = ?, workspace = ? WHERE inode = ?", [name, workspace, inode])
                        try db.run("UPDATE texts SET name = ? WHERE rowid = ?", [name, inode])
                    }
                }
            }
            try SearchIndex.setCursor(db, next)
        }
        return true
    }

    /// What the index should hold for `inode` as the store is now: a live regular file's current
    /// version, or nothing.
    private static func target(_ db: Connection, _ inode: InodeID) throws -> Target {
        guard let row = try db.row("SELECT mode, nlink, workspace FROM inodes WHERE id = ?", [inode]),
            (row[0] as UInt32) & S_IFMT == S_IFREG, (row[1] as Int64) > 0, let workspace = row[2] as Int64?,
            let version = try HistoryQueries.current(db, inode: inode),
            let name = try db.value(
                Data.self,
                "SELECT name FROM dentries WHERE inode = ? AND deleted_seq IS NULL ORDER BY id DESC LIMIT 1", [inode])
        else { return .absent(inode) }
        return .file(inode, workspace: workspace, version: version, name: String(decoding: name, as: UTF8.self))
    }

    /// The first `ExtractedText.maximumBytes` of a version, read through `db`.
    private func bytes(of version: VersionRecord, _ db: Connection) throws -> [UInt8] {
        let size = Int(min(version.size, Int64(ExtractedText.maximumBytes)))
        guard let manifestID = version.manifestID, size > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: size)
        let manifest = try ContentQueries.manifest(db, id: manifestID)
        let count = try bytes.withUnsafeMutableBytes { buffer in
            try fs.content.read(manifest, size: version.size, offset: 0, into: buffer, inlineFrom: db)
        }
        return Array(bytes.prefix(count))
    }
}
