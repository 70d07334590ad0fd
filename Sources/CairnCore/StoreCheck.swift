import Foundation
import Glibc

/// One inconsistency found by `Store.check`, with what it affects.
public struct Problem: Codable, Sendable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable {
        case databaseIntegrity, danglingEntry, missingContent, missingChunk, corruptChunk, wrongLinkCount
    }

    public var kind: Kind
    public var detail: String
    public var versions: [Int64]
    /// The workspace paths of the files affected (`ws:path`, "(deleted)" when no longer named).
    public var paths: [String] = []

    public var description: String {
        var text = "\(kind.rawValue): \(detail)"
        if !paths.isEmpty { text += "\n    affects \(paths.joined(separator: ", "))" }
        if !versions.isEmpty { text += "\n    versions \(versions.map(String.init).joined(separator: ", "))" }
        return text
    }
}

/// What fsck found: problems (which lose data or break rules) and garbage (which only wastes space).
public struct CheckReport: Codable, Sendable {
    public var problems: [Problem]
    /// Chunks no manifest names, and chunk files without a record: `fsck --repair` or gc deletes them.
    public var reclaimableChunks: Int
    public var reclaimableBytes: Int64
    public var clean: Bool { problems.isEmpty }
}

extension Store {
    /// Checks the consistency rules of `Schema`, every link count, and every chunk's size and
    /// hash. `progress` is called with (done, total) while chunks are read back.
    public func check(verifyBlobs: Bool = true, progress: (Int, Int) -> Void = { _, _ in }) throws(FSError) -> [Problem]
    {
        try checkReport(verifyBlobs: verifyBlobs, progress: progress).problems
    }

    /// What SQLite finds wrong in the audit log's database (none: a store without one yet).
    private func auditLogIntegrity() -> [String] {
        do {
            guard let log = try AuditDatabase.open(storePath: path, readOnly: true) else { return [] }
            defer { log.close() }
            return try log.read { try CheckQueries.integrity($0) }
        } catch {
            return ["\(error)"]
        }
    }

    public func checkReport(verifyBlobs: Bool = true, progress: (Int, Int) -> Void = { _, _ in }) throws(FSError)
        -> CheckReport
    {
        // The scans read committed state: first commit what this process's writer holds open.
        if isWritable { try write(.now) { _ in } }
        var problems: [Problem] = []
        var named = Set<BlobDigest>()
        var missing: [BlobDigest: [Int64]] = [:]
        try readCommitted { db in
            for line in try CheckQueries.integrity(db) {
                problems.append(Problem(kind: .databaseIntegrity, detail: line, versions: []))
            }
            for line in auditLogIntegrity() {
                problems.append(
                    Problem(kind: .databaseIntegrity, detail: AuditDatabase.fileName + ": " + line, versions: []))
            }
            for d in try CheckQueries.danglingDentries(db) {
                problems.append(
                    Problem(
                        kind: .danglingEntry,
                        detail: "an entry names inode \(d.inode), which is missing or not below a directory",
                        versions: [], paths: [try Self.describe(db, parent: d.parent, name: d.name)]))
            }
            for f in try CheckQueries.filesWithoutContent(db) {
                problems.append(
                    Problem(
                        kind: .missingContent, detail: "file inode \(f.inode) has no readable current version",
                        versions: f.version.map { [$0] } ?? [], paths: [try Self.describe(db, inode: f.inode)]))
            }
            for l in try CheckQueries.wrongLinkCounts(db) {
                problems.append(
                    Problem(
                        kind: .wrongLinkCount, detail: "inode \(l.inode) counts \(l.nlink) links but has \(l.expected)",
                        versions: [], paths: [try Self.describe(db, inode: l.inode)]))
            }
            try Self.forEachManifest(db) { id, manifest, versions in
                guard let manifest else {
                    problems.append(
                        Problem(
                            kind: .missingContent, detail: "manifest \(id) is unreadable", versions: versions,
                            paths: try Self.describe(db, versions: versions)))
                    return
                }
                for ref in manifest.chunks.values {
                    guard let digest = ref.digest else { continue }
                    named.insert(digest)
                    if let users = missing[digest] {
                        missing[digest] = users + versions
                        continue
                    }
                    let present =
                        try CheckQueries.blob(db, digest).map { row in
                            guard case .inline = ref.storage else { return blobs.contains(digest) }
                            switch row.small {
                            case .row(let data): return data.count >= ref.length
                            case .packed(let pack, let offset, _):
                                return (packs.length(of: pack) ?? 0) >= offset + Int64(ref.length)
                            case .none: return false
                            }
                        } ?? false
                    if !present { missing[digest] = versions }
                }
            }
            for (digest, versions) in missing.sorted(by: { $0.key.hex < $1.key.hex }) {
                problems.append(
                    Problem(
                        kind: .missingChunk, detail: "chunk \(digest) is missing", versions: versions,
                        paths: try Self.describe(db, versions: versions)))
            }
        }
        if verifyBlobs {
            let corrupt = try verifyBlobContents(progress: progress)
            if !corrupt.isEmpty {
                let users = try versionsNaming(Set(corrupt.map(\.digest)))
                for c in corrupt {
                    let versions = users[c.digest] ?? []
                    problems.append(
                        Problem(
                            kind: .corruptChunk, detail: c.detail, versions: versions,
                            paths: try readCommitted { db in try Self.describe(db, versions: versions) }))
                }
            }
        }
        let (chunks, bytes) = try reclaimable(named: named)
        return CheckReport(problems: problems, reclaimableChunks: chunks, reclaimableBytes: bytes)
    }

    /// Calls `body` with every manifest (nil when unreadable) and the versions using it.
    private static func forEachManifest(
        _ db: Connection, _ body: (Int64, Manifest?, [Int64]) throws -> Void
    ) throws {
        var after: Int64 = 0
        while true {
            let batch = try CheckQueries.manifests(db, after: after, limit: 512)
            guard let last = batch.last else { break }
            after = last.id
            for m in batch { try body(m.id, try? Manifest(encoded: [UInt8](m.data)), m.versions) }
        }
    }

    private func versionsNaming(_ digests: Set<BlobDigest>) throws(FSError) -> [BlobDigest: [Int64]] {
        try readCommitted { db in
            var users: [BlobDigest: [Int64]] = [:]
            try Self.forEachManifest(db) { _, manifest, versions in
                for case let digest? in manifest?.chunks.values.map(\.digest) ?? [] where digests.contains(digest) {
                    users[digest, default: []] += versions
                }
            }
            return users
        }
    }

    /// Chunk rows no manifest names, and chunk files without a row.
    private func reclaimable(named: Set<BlobDigest>) throws(FSError) -> (Int, Int64) {
        let rows = try readCommitted { db in try GCQueries.blobs(db) }
        var count = 0
        var bytes: Int64 = 0
        for row in rows where !named.contains(row.digest) {
            count += 1
            bytes += row.size
        }
        let recorded = Set(rows.map(\.digest))
        for digest in try blobs.allDigests() where !recorded.contains(digest) {
            var st = stat()
            if stat(blobs.path(digest), &st) == 0 { bytes += Int64(st.st_size) }
            count += 1
        }
        return (count, bytes)
    }

    /// Where the file of each version is (workspace and path), for reports.
    private static func describe(_ db: Connection, versions: [Int64]) throws -> [String] {
        var inodes: [InodeID] = []
        for v in versions {
            if let inode = try CheckQueries.inode(ofVersion: v, db), !inodes.contains(inode) { inodes.append(inode) }
        }
        return try inodes.map { try describe(db, inode: $0) }
    }

    private static func describe(_ db: Connection, inode: InodeID) throws -> String {
        guard let (parent, name, removed) = try CheckQueries.lastName(db, inode: inode) else {
            return "inode \(inode) (never named)"
        }
        return try describe(db, parent: parent, name: name, at: removed.map { $0 - 1 })
            + (removed == nil ? "" : " (deleted)")
    }

    private static func describe(_ db: Connection, parent: InodeID, name: [UInt8], at seq: Int64? = nil) throws
        -> String
    {
        guard let workspaceID = try NamespaceQueries.workspace(ofInode: parent, db),
            let ws = try WorkspaceQueries.all(db).first(where: { $0.id == workspaceID })
        else { return "inode \(parent)/\(String(decoding: name, as: UTF8.self))" }
        let when = try seq ?? (db.value(Int64.self, "SELECT max(seq) FROM events") ?? 0)
        return ws.name + ":" + (try FileSystem.path(db, parent, in: ws, at: when, appending: name))
    }

    /// Reads every stored chunk back and compares its hash and size with its name and record.
    private func verifyBlobContents(progress: (Int, Int) -> Void) throws(FSError) -> [(
        digest: BlobDigest, detail: String
    )] {
        let rows = try readCommitted { db in try CheckQueries.blobRows(db) }
        var corrupt: [(digest: BlobDigest, detail: String)] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(chunkSize, 1), alignment: 16)
        defer { buffer.deallocate() }
        for (i, row) in rows.enumerated() {
            progress(i, rows.count)
            // A chunk in its row is hashed there; the others are read into `buffer` first.
            var digest: BlobDigest?
            let size: Int
            switch row.small {
            case .row(let data):
                digest = data.withUnsafeBytes { BlobDigest.of($0) }
                size = data.count
            case .packed(let pack, let offset, let length):
                do {
                    size = try packs.read(
                        pack: pack, offset: offset,
                        into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(length, buffer.count)]))
                } catch {
                    corrupt.append((row.digest, "chunk \(row.digest) cannot be read from its pack: \(error)"))
                    continue
                }
                if size < length { continue }  // cut short: reported as missing above if used
            case .none:
                guard blobs.contains(row.digest) else { continue }  // reported as missing above if used
                do {
                    size = try blobs.read(row.digest, offset: 0, into: buffer)
                } catch {
                    corrupt.append((row.digest, "chunk \(row.digest) cannot be read: \(error)"))
                    continue
                }
            }
            let found = digest ?? BlobDigest.of(UnsafeRawBufferPointer(rebasing: buffer[0..<size]))
            if found != row.digest || size != row.size {
                corrupt.append((row.digest, "chunk \(row.digest) holds \(size) bytes hashing to \(found)"))
            }
        }
        progress(rows.count, rows.count)
        return corrupt
    }
}
