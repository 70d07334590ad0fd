import Crypto
import Foundation
import Glibc
import Synchronization

/// One row of the audit log.
public struct AuditRecord: Sendable, Codable, Equatable {
    public var id: Int64
    public var time: Timestamp
    public var actor: String
    public var uid: UInt32
    public var pid: Int32
    public var process: String
    public var op: String
    public var workspace: String?
    public var path: String?
    public var version: Int64?
    public var bytes: Int64?
    /// `ok`, or `denied` and why.
    public var result: String
}

/// The tamper-evident audit log. Operations hand their records in (`record`, cheap: a queue);
/// a thread writes them every 20 ms into the log's own database (`AuditDatabase`), one
/// transaction per batch, each row's hash being SHA-256 of the previous row's hash and the
/// row's own fields. After each commit the head of the chain (last id and hash) is written to a
/// file outside the store, so that `verify` finds an edited row (the first whose hash does not
/// follow) and a log cut short (the head names a row the log no longer has).
final class AuditLog: Sendable {
    struct Pending {
        var time: Timestamp
        var caller: Caller
        var op: String
        var inode: InodeID?
        var parent: InodeID?
        var name: [UInt8]?
        var workspace: String?
        var path: String?
        var version: Int64?
        var bytes: Int64?
        var result: String
    }

    /// The operation a workspace's `audit_reads` switch leaves out when off.
    static let openForReading = "open-read"

    private let store: Store
    private let database: SideDatabase
    let headPath: String
    private let queue = Mutex<[Pending]>([])
    private let wake = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)
    /// What flushes keep between them (they run one at a time, under this lock): the hash of
    /// the last row written (the chain's head) and its id, and the places records name.
    private let chain = Mutex<Chain>(Chain())

    private struct Chain: ~Copyable {
        var id: Int64 = 0
        var hash = Data(count: 32)
        var places: PlaceResolver?
    }

    init(store: Store, database: SideDatabase) throws(FSError) {
        self.store = store
        self.database = database
        self.headPath = Self.defaultHeadPath(store)
        let stored = try Self.lastRow(database)
        chain.withLock { ($0.id, $0.hash) = stored }
        let thread = Thread { [self] in self.loop() }
        thread.name = "cairn-audit"
        thread.start()
        store.stopBeforeClosing { [weak self] in self?.stop() }
    }

    /// The last row of the chain (the start of a chain when there is none).
    private static func lastRow(_ database: SideDatabase) throws(FSError) -> (id: Int64, hash: Data) {
        let last = try database.read { db in try db.row("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1") }
        return last.map { ($0[0], $0[1]) } ?? (0, Data(count: 32))
    }

    /// Outside the store, so that whoever can rewrite the store's database cannot also rewrite
    /// this without it showing: `$CAIRN_AUDIT_HEAD`, else ~/.local/state/cairn/<store id>.audit-head.
    static func defaultHeadPath(_ store: Store) -> String {
        if let path = ProcessInfo.processInfo.environment["CAIRN_AUDIT_HEAD"], !path.isEmpty { return path }
        return NSHomeDirectory() + "/.local/state/cairn/\(store.identifier).audit-head"
    }

    /// `CAIRN_AUDIT=off` in the daemon's environment: no audit log at all, for measuring what
    /// it costs. Whoever starts the daemon owns the store anyway; `verify` still checks the rows
    /// there are, and the head file finds nothing cut.
    static var switchedOff: Bool { ProcessInfo.processInfo.environment["CAIRN_AUDIT"] == "off" }

    func record(_ pending: Pending) {
        let first = queue.withLock { q in
            q.append(pending)
            return q.count == 1
        }
        if first { wake.signal() }
    }

    /// Writes what is queued (on a full disk too, the last chance), then stops the thread.
    func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        wake.signal()
        stopped.wait()
        flush(evenWithoutRoom: true)
    }

    private func loop() {
        var waiting = false
        while !stopping.load(ordering: .relaxed) {
            // Records left waiting for room are tried again after the next interval; else the
            // thread sleeps until a record comes.
            if !waiting { wake.wait() }
            usleep(20_000)  // gather a batch: fewer, larger commits
            waiting = !flush()
        }
        stopped.signal()
    }

    /// Writes the queued records, chained, in one transaction of the log's database, `chunk`
    /// per statement. Their paths come from the places known from earlier batches, else from a
    /// short turn on the writer, which sees the operations not yet committed. After the commit
    /// the head file names the last row. Flushes run one at a time (the chain is theirs while
    /// they run). Returns false if records were left waiting for room.
    @discardableResult
    func flush(evenWithoutRoom: Bool = false) -> Bool {
        chain.withLock { head in
            // On a nearly full disk the space left (the store's reserve, given back when a
            // commit needs it) is the store's: records wait in memory for room, up to a bound.
            let room = evenWithoutRoom || store.hasRoomForData()
            let batch = queue.withLock { q -> [Pending]? in
                if !room, q.count <= Self.heldWithoutRoom { return q.isEmpty ? [] : nil }
                defer { q.removeAll(keepingCapacity: true) }
                return q
            }
            guard let batch else { return false }
            guard !batch.isEmpty else { return true }
            // An operation that may move a known place (a rename, a workspace's change) makes
            // every place be looked up again, in this batch and after it (a create in it may
            // have named its file as it was before).
            let moves = batch.contains(where: { !Self.keepsPlaces.contains($0.op) })
            if moves { head.places = nil }
            defer { if moves { head.places = nil } }
            head.places?.startBatch()
            do {
                let last = try database.write { log -> (id: Int64, hash: Data)? in
                    var last: (id: Int64, hash: Data)?
                    var hash = head.hash
                    var scratch: [UInt8] = []
                    var values: [SQLValue] = []
                    values.reserveCapacity(Self.chunk * Self.columns)
                    var left = batch[...]
                    while !left.isEmpty {
                        let chunk = left.prefix(Self.chunk)
                        left = left.dropFirst(chunk.count)
                        let placed = try place(chunk, &head.places)
                        guard !placed.isEmpty else { continue }
                        values.removeAll(keepingCapacity: true)
                        for (p, workspace, path) in placed {
                            let row = AuditRecord(
                                id: 0, time: p.time, actor: p.caller.actor, uid: p.caller.uid, pid: p.caller.pid,
                                process: p.caller.process, op: p.op, workspace: workspace, path: path,
                                version: p.version, bytes: p.bytes, result: p.result)
                            hash = Self.chain(hash, row, scratch: &scratch)
                            // One by one: a literal array per row would be an allocation per row.
                            values.append(.integer(row.time.nanoseconds))
                            values.append(.text(row.actor))
                            values.append(.integer(Int64(row.uid)))
                            values.append(.integer(Int64(row.pid)))
                            values.append(.text(row.process))
                            values.append(.text(row.op))
                            values.append(row.workspace.map(SQLValue.text) ?? .null)
                            values.append(row.path.map(SQLValue.text) ?? .null)
                            values.append(row.version.map(SQLValue.integer) ?? .null)
                            values.append(row.bytes.map(SQLValue.integer) ?? .null)
                            values.append(.text(row.result))
                            values.append(.blob(hash))
                        }
                        // One statement for the chunk: a statement per row costs more than the row.
                        try log.run(
                            placed.count == Self.chunk ? Self.insertChunk : Self.insert(rows: placed.count),
                            SQLArguments(values))
                        last = (log.lastInsertedRowID, hash)
                    }
                    return last
                }
                if let last {
                    (head.id, head.hash) = last
                    writeHead(last.id, last.hash)
                }
            } catch {
                FileHandle.standardError.write(
                    Data("cairn: writing audit records failed (a batch of \(batch.count) dropped): \(error)\n".utf8))
            }
            return true
        }
    }

    /// The records of `chunk` with their places: from those known, else looked up on the
    /// writer, which sees the operations not yet committed.
    private func place(_ chunk: ArraySlice<Pending>, _ places: inout PlaceResolver?) throws -> [(
        Pending, workspace: String?, path: String?
    )] {
        if let known = try? places?.placeAll(chunk, nil) { return known }
        return try store.read { db in
            if places == nil { places = try PlaceResolver(db) }
            return try places!.placeAll(chunk, db)
        }
    }

    /// How many records wait for room on a full disk before they are written anyway (and
    /// dropped with a message if that fails).
    private static let heldWithoutRoom = 100_000

    /// Records resolved (when a turn on the writer is needed, about 50 µs of it), then
    /// written, per statement.
    private static let chunk = 24
    private static let columns = 12

    /// The `INSERT` of a whole chunk, made once: the connection finds its statement by the
    /// text's address.
    private static let insertChunk = insert(rows: chunk)

    /// `INSERT` of `rows` rows (ids ascending in their order, so the last is the chain's head).
    private static func insert(rows: Int) -> String {
        let row = "(" + Array(repeating: "?", count: columns).joined(separator: ", ") + ")"
        return """
            INSERT INTO audit(time_ns, actor, uid, pid, process, op, workspace, path, version, bytes, result, hash)
            VALUES \(Array(repeating: row, count: rows).joined(separator: ", "))
            """
    }

    /// The operations after which every place known before is still where it was (they add
    /// names, remove a file's or change contents and attributes). Any other record makes its
    /// batch and the next look their places up again.
    private static let keepsPlaces: Set<String> = [
        "create", "mkdir", "mknod", "symlink", "link", "unlink", "write", "open-write", openForReading,
        "setattr", "setxattr", "removexattr", "denied",
    ]

    /// How many places are kept between batches at most.
    private static let knownPlaces = 20_000

    /// The workspace and path a record names: looked up on the writer the first time (as they
    /// are then) and known from then on, until an operation that may move them (`keepsPlaces`);
    /// a file created in the batch is where its create put it. Most records then need no turn
    /// on the writer at all.
    private final class PlaceResolver {
        /// The last event's seq, read at the first lookup of a batch.
        private var seq: Int64?
        let spaces: [Int64: Workspace]
        /// Workspaces whose opens for reading are left out.
        let quiet: Set<String>
        /// A directory's workspace and its path below the workspace's root, as displayed (each
        /// record's path is its directory's and its name).
        private var directories: [InodeID: Place?] = [:]
        /// Files created in this batch, where their create's record puts them (a rename later
        /// in the batch, or recorded late, would not show here): their close's record mostly
        /// comes in the same batch.
        private var created: [InodeID: Place] = [:]

        /// The store has the answer, and no connection was given.
        struct Unknown: Error {}

        struct Place {
            var workspace: Workspace
            var display: String

            func child(_ name: [UInt8]) -> Place {
                let shown = String(decoding: name, as: UTF8.self)
                return Place(workspace: workspace, display: display.isEmpty ? shown : display + "/" + shown)
            }
        }

        init(_ db: Connection) throws {
            spaces = Dictionary(uniqueKeysWithValues: try WorkspaceQueries.all(db).map { ($0.id, $0) })
            quiet = Set(try db.rows("SELECT name FROM workspaces WHERE audit_reads = 0").map { $0[0] as String })
        }

        func startBatch() {
            seq = nil
            created.removeAll(keepingCapacity: true)
            if directories.count > AuditLog.knownPlaces { directories.removeAll() }
        }

        /// The records of `chunk` with their places, opens for reading in quiet workspaces left
        /// out. `db` nil: from what is known only (throws `Unknown` if that is not enough).
        func placeAll(_ chunk: ArraySlice<Pending>, _ db: Connection?) throws -> [(
            Pending, workspace: String?, path: String?
        )] {
            try chunk.compactMap { p in
                let (workspace, path) = try place(p, db)
                if p.op == AuditLog.openForReading, let workspace, quiet.contains(workspace) { return nil }
                return (p, workspace, path)
            }
        }

        private func place(_ p: Pending, _ db: Connection?) throws -> (String?, String?) {
            if p.workspace != nil || p.path != nil { return (p.workspace, p.path) }
            if let parent = p.parent, let name = p.name {
                guard let directory = try directory(parent, db) else { return (nil, nil) }
                let place = directory.child(name)
                // A file unlinked is mostly gone.
                if let inode = p.inode {
                    if p.op == "create" {
                        created[inode] = place
                    } else if p.op == "unlink" {
                        created.removeValue(forKey: inode)
                        directories.removeValue(forKey: inode)
                    }
                }
                return (place.workspace.name, place.display)
            }
            guard let inode = p.inode else { return (nil, nil) }
            if let place = try created[inode] ?? directory(inode, db) { return (place.workspace.name, place.display) }
            return (nil, nil)
        }

        /// `inode`'s workspace and path (any inode; directories are remembered).
        private func directory(_ inode: InodeID, _ db: Connection?) throws -> Place? {
            if let known = directories[inode] { return known }
            guard let db else { throw Unknown() }
            if seq == nil { seq = try db.value(Int64.self, "SELECT max(seq) FROM events") ?? 0 }
            var found: Place?
            if let ws = spaces.values.first(where: { $0.root == inode }) {
                found = Place(workspace: ws, display: "")
            } else if let (parent, name) = try ChangeQueries.binding(db, inode: inode, at: seq!),
                let directory = try directory(parent, db)
            {
                found = directory.child(name)
            } else if let id = try NamespaceQueries.workspace(ofInode: inode, db), let ws = spaces[id] {
                found = Place(workspace: ws, display: "").child(Array("<inode \(inode)>".utf8))
            }
            directories[inode] = found
            return found
        }
    }

    /// The next hash of the chain: SHA-256 of the previous one and the row's fields, as UTF-8
    /// joined by U+001F (a U+001F inside a field counts as a space, so fields cannot shift).
    /// `bytes`: room for the fields, reused from row to row.
    static func chain(_ previous: Data, _ r: AuditRecord, scratch bytes: inout [UInt8]) -> Data {
        bytes.removeAll(keepingCapacity: true)
        var first = true
        func separate() {
            if !first { bytes.append(0x1F) }
            first = false
        }
        func field(_ text: String) {
            separate()
            let start = bytes.count
            bytes.append(contentsOf: text.utf8)
            // Rare: most fields hold no U+001F, and the check is one pass over bytes.
            if bytes[start...].contains(0x1F) {
                for i in start..<bytes.count where bytes[i] == 0x1F { bytes[i] = 0x20 }
            }
        }
        // As `String(value)` spells it, without making the string.
        func number(_ value: Int64?) {
            separate()
            guard let value else { return }
            if value < 0 { bytes.append(0x2D) }
            var rest = value.magnitude
            var digits = 1
            var probe = rest
            while probe >= 10 {
                probe /= 10
                digits += 1
            }
            bytes.append(contentsOf: repeatElement(0x30, count: digits))
            var at = bytes.count - 1
            repeat {
                bytes[at] = 0x30 + UInt8(rest % 10)
                rest /= 10
                at -= 1
            } while rest > 0
        }
        number(r.time.nanoseconds)
        field(r.actor)
        number(Int64(r.uid))
        number(Int64(r.pid))
        field(r.process)
        field(r.op)
        field(r.workspace ?? "")
        field(r.path ?? "")
        number(r.version)
        number(r.bytes)
        field(r.result)
        var hasher = SHA256()
        hasher.update(data: previous)
        hasher.update(data: bytes)
        return hasher.finalize().withUnsafeBytes { Data($0) }
    }

    /// Replaces the head file (write a temporary file, rename it over), with plain system calls:
    /// this runs after every batch.
    private func writeHead(_ id: Int64, _ hash: Data) {
        let digits = Array("0123456789abcdef".utf8)
        var text = Array("\(id) ".utf8)
        for byte in hash {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0xF)])
        }
        text.append(0x0A)
        let temp = headPath + ".tmp"
        var fd = Glibc.open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd < 0 {
            let directory = (headPath as NSString).deletingLastPathComponent
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            fd = Glibc.open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { return }
        }
        let written = text.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        Glibc.close(fd)
        if written == text.count { rename(temp, headPath) }
    }
}
