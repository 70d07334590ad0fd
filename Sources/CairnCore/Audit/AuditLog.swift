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
/// a thread writes them every few milliseconds in one operation of the writer, each row's hash
/// being SHA-256 of the previous row's hash and the row's own fields. After each batch the head
/// of the chain (last id and hash) is written to a file outside the store, so that `verify`
/// finds an edited row (the first whose hash does not follow) and a log cut short (the head
/// names a row the store no longer has).
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

    init(store: Store) throws(FSError) {
        self.store = store
        self.headPath = Self.defaultHeadPath(store)
        let last = try store.read { db in try db.row("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1") }
        if let last { head.withLock { $0 = (last[0], last[1]) } }
        let thread = Thread { [self] in self.loop() }
        thread.name = "cairn-audit"
        thread.start()
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

    /// Writes what is queued, then stops the thread.
    func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        wake.signal()
        stopped.wait()
        flush()
    }

    private func loop() {
        while !stopping.load(ordering: .relaxed) {
            wake.wait()
            usleep(5_000)  // gather a batch
            flush()
        }
        stopped.signal()
    }

    /// Writes the queued records as one batch, chained, and the new head outside the store.
    func flush() {
        let batch = queue.withLock { q -> [Pending] in
            defer { q.removeAll(keepingCapacity: true) }
            return q
        }
        guard !batch.isEmpty else { return }
        do {
            let newHead = try store.write(.deferred) { db -> (Int64, Data) in
                var (_, hash) = head.withLock { $0 }
                var id: Int64 = 0
                let spaces = try WorkspaceQueries.all(db)
                let quiet = Set(
                    try db.rows("SELECT name FROM workspaces WHERE audit_reads = 0").map { $0[0] as String })
                let now = try db.value(Int64.self, "SELECT max(seq) FROM events") ?? 0
                for p in batch {
                    let (workspace, path) = try Self.place(db, p, spaces, now)
                    if p.op == Self.openForReading, let workspace, quiet.contains(workspace) { continue }
                    let row = AuditRecord(
                        id: 0, time: p.time, actor: p.caller.actor, uid: p.caller.uid, pid: p.caller.pid,
                        process: p.caller.process, op: p.op, workspace: workspace, path: path, version: p.version,
                        bytes: p.bytes, result: p.result)
                    hash = Self.chain(hash, row)
                    try db.run(
                        """
                        INSERT INTO audit(time_ns, actor, uid, pid, process, op, workspace, path, version, bytes, result, hash)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                        [
                            row.time.nanoseconds, row.actor, row.uid, row.pid, row.process, row.op, row.workspace,
                            row.path, row.version, row.bytes, row.result, hash,
                        ])
                    id = db.lastInsertedRowID
                }
                return (id, hash)
            }
            head.withLock { $0 = newHead }
            writeHead(newHead.0, newHead.1)
        } catch {
            FileHandle.standardError.write(Data("cairn: writing \(batch.count) audit records failed: \(error)\n".utf8))
        }
    }

    /// The workspace and path a record names, as they are now.
    private static func place(_ db: Connection, _ p: Pending, _ spaces: [Workspace], _ seq: Int64) throws -> (
        String?, String?
    ) {
        if p.workspace != nil || p.path != nil { return (p.workspace, p.path) }
        guard let anchor = p.parent ?? p.inode,
            let id = try NamespaceQueries.workspace(ofInode: anchor, db),
            let ws = spaces.first(where: { $0.id == id })
        else { return (nil, nil) }
        if let parent = p.parent, let name = p.name {
            return (ws.name, try FileSystem.path(db, parent, in: ws, at: seq, appending: name))
        }
        return (ws.name, try FileSystem.path(db, anchor, in: ws, at: seq))
    }

    /// The next hash of the chain: SHA-256 of the previous one and the row's fields.
    static func chain(_ previous: Data, _ r: AuditRecord) -> Data {
        let fields = [
            String(r.time.nanoseconds), r.actor, String(r.uid), String(r.pid), r.process, r.op, r.workspace ?? "",
            r.path ?? "", r.version.map(String.init) ?? "", r.bytes.map(String.init) ?? "", r.result,
        ].map { $0.replacingOccurrences(of: "\u{1F}", with: " ") }.joined(separator: "\u{1F}")
        var hasher = SHA256()
        hasher.update(data: previous)
        hasher.update(data: Data(fields.utf8))
        return Data(hasher.finalize())
    }

    private func writeHead(_ id: Int64, _ hash: Data) {
        let directory = (headPath as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let temp = headPath + ".tmp"
        let text = "\(id) \(hash.map { String(format: "%02x", $0) }.joined())\n"
        if FileManager.default.createFile(atPath: temp, contents: Data(text.utf8)) { rename(temp, headPath) }
    }
}
