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
/// a thread writes them every 20 ms into the writer's open transaction, each row's hash being
/// SHA-256 of the previous row's hash and the row's own fields, and they commit with the group
/// commit. After the commit that holds them, the head of the chain (last id and hash) is
/// written to a file outside the store, so that `verify` finds an edited row (the first whose
/// hash does not follow) and a log cut short (the head names a row the store no longer has).
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
    let headPath: String
    private let queue = Mutex<[Pending]>([])
    private let wake = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)
    /// The hash of the last row written (the chain's head), and its id.
    private let head = Mutex<(id: Int64, hash: Data)>((0, Data(count: 32)))
    /// The last row inserted and not yet committed: the head file names it after the commit.
    private let pendingHead = Mutex<(id: Int64, hash: Data)?>(nil)
    /// SQLite rolled back rows of the chain (a full disk): the next batch chains from the last
    /// row the store has.
    private let headLost = Atomic<Bool>(false)

    init(store: Store) throws(FSError) {
        self.store = store
        self.headPath = Self.defaultHeadPath(store)
        let stored = try Self.lastRow(store)
        head.withLock { $0 = stored }
        let thread = Thread { [self] in self.loop() }
        thread.name = "cairn-audit"
        thread.start()
        store.stopBeforeClosing { [weak self] in self?.stop() }
        store.observeTransactions { [weak self] committed in self?.transactionEnded(committed: committed) }
    }

    /// The last row of the chain in the store (the start of a chain when there is none).
    private static func lastRow(_ store: Store) throws(FSError) -> (id: Int64, hash: Data) {
        let last = try store.read { db in try db.row("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1") }
        return last.map { ($0[0], $0[1]) } ?? (0, Data(count: 32))
    }

    /// On the writer, after a commit or a rollback of its transaction.
    private func transactionEnded(committed: Bool) {
        let pending = pendingHead.withLock { pending in
            defer { pending = nil }
            return pending
        }
        if committed {
            if let pending { writeHead(pending.id, pending.hash) }
        } else if pending != nil {
            headLost.store(true, ordering: .relaxed)
        }
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

    /// Writes what is queued and commits it, then stops the thread.
    func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        wake.signal()
        stopped.wait()
        flush()
        try? store.writer?.flush()
    }

    private func loop() {
        while !stopping.load(ordering: .relaxed) {
            wake.wait()
            usleep(20_000)  // gather a batch: fewer, larger commits
            flush()
        }
        stopped.signal()
    }

    /// Writes the queued records, chained, `chunk` at a time: their paths are resolved in one
    /// short turn on the writer, which sees the operations not yet committed, the rows hashed
    /// off it and inserted in another, so that file operations wait for the writer briefly. The group commit
    /// commits them, and only then does the head file name them (`transactionEnded`). Flushes
    /// run one at a time (the head is theirs while they run).
    func flush() {
        head.withLock { head in
            if headLost.exchange(false, ordering: .relaxed) {
                do {
                    head = try Self.lastRow(store)
                } catch {
                    headLost.store(true, ordering: .relaxed)
                    FileHandle.standardError.write(
                        Data("cairn: reading the audit log's last row failed: \(error)\n".utf8))
                    return
                }
            }
            let batch = queue.withLock { q -> [Pending] in
                defer { q.removeAll(keepingCapacity: true) }
                return q
            }
            var left = batch[...]
            var places: PlaceResolver?
            do {
                while !left.isEmpty {
                    let chunk = left.prefix(Self.chunk)
                    // Paths on the writer, which sees the operations not yet committed.
                    let placed = try store.read { db in
                        if places == nil { places = try PlaceResolver(db) }
                        return try chunk.compactMap { p -> (Pending, workspace: String?, path: String?)? in
                            let (workspace, path) = try places!.place(p, db)
                            if p.op == Self.openForReading, let workspace, places!.quiet.contains(workspace) {
                                return nil
                            }
                            return (p, workspace, path)
                        }
                    }
                    var hash = head.hash
                    var scratch: [UInt8] = []
                    var values: [SQLValue] = []
                    values.reserveCapacity(placed.count * Self.columns)
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
                    if !placed.isEmpty {
                        // One statement for the chunk: a statement per row costs more than the row.
                        let id = try store.writeBookkeeping(commit: false) { db in
                            // The rows before these were rolled back since they were chained:
                            // these would not follow from the rows the store has. The next batch
                            // starts over.
                            if headLost.load(ordering: .relaxed) {
                                throw FSError.io("the audit chain's last rows were lost")
                            }
                            try db.run(
                                placed.count == Self.chunk ? Self.insertChunk : Self.insert(rows: placed.count),
                                SQLArguments(values))
                            let id = db.lastInsertedRowID
                            // In the same turn of the writer: no commit comes between.
                            pendingHead.withLock { $0 = (id, hash) }
                            return id
                        }
                        head = (id, hash)
                    }
                    left = left.dropFirst(chunk.count)
                }
            } catch {
                FileHandle.standardError.write(
                    Data("cairn: writing audit records failed (\(left.count) of the batch dropped): \(error)\n".utf8))
            }
        }
    }

    /// Records resolved, then written, per turn on the writer (about 50 µs of it each).
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

    /// The workspace and path a record names, as they are now; the directories of one batch
    /// are looked up once.
    private struct PlaceResolver {
        let seq: Int64
        let spaces: [Int64: Workspace]
        /// Workspaces whose opens for reading are left out.
        let quiet: Set<String>
        /// A directory's workspace and its path below the workspace's root, as displayed (each
        /// record's path is its directory's and its name).
        var directories: [InodeID: Place?] = [:]

        struct Place {
            var workspace: Workspace
            var display: String

            func child(_ name: [UInt8]) -> Place {
                let shown = String(decoding: name, as: UTF8.self)
                return Place(workspace: workspace, display: display.isEmpty ? shown : display + "/" + shown)
            }
        }

        init(_ db: Connection) throws {
            seq = try db.value(Int64.self, "SELECT max(seq) FROM events") ?? 0
            spaces = Dictionary(uniqueKeysWithValues: try WorkspaceQueries.all(db).map { ($0.id, $0) })
            quiet = Set(try db.rows("SELECT name FROM workspaces WHERE audit_reads = 0").map { $0[0] as String })
        }

        mutating func place(_ p: Pending, _ db: Connection) throws -> (String?, String?) {
            if p.workspace != nil || p.path != nil { return (p.workspace, p.path) }
            if let parent = p.parent, let name = p.name {
                guard let directory = try directory(parent, db) else { return (nil, nil) }
                let place = directory.child(name)
                // A file created in this batch is written in it too, mostly: its close's
                // record then needs no lookup.
                if p.op == "create", let inode = p.inode { directories[inode] = place }
                return (place.workspace.name, place.display)
            }
            guard let inode = p.inode else { return (nil, nil) }
            if let place = try directory(inode, db) { return (place.workspace.name, place.display) }
            return (nil, nil)
        }

        /// `inode`'s workspace and path (any inode; directories are remembered).
        private mutating func directory(_ inode: InodeID, _ db: Connection) throws -> Place? {
            if let known = directories[inode] { return known }
            var found: Place?
            if let ws = spaces.values.first(where: { $0.root == inode }) {
                found = Place(workspace: ws, display: "")
            } else if let (parent, name) = try ChangeQueries.binding(db, inode: inode, at: seq),
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
