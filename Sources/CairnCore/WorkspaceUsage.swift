import Foundation

/// How much of the store a workspace's current files use, and how much of it other workspaces
/// share (a fork shares its parent's chunks until either side rewrites them).
public struct WorkspaceUsage: Sendable, Codable, Equatable {
    public var workspace: String
    /// The workspace this one was forked from, and the parent's seq it started at.
    public var parent: String?
    public var baseSeq: Int64?
    public var files: Int
    /// Bytes of chunks only this workspace's current files name.
    public var privateBytes: Int64
    /// Bytes of chunks this workspace's current files name that others' current files name too.
    public var sharedBytes: Int64
    /// Directories of a fork still showing their parent's entries (content shared with it).
    public var pendingDirectories: Int
}

extension FileSystem {
    public func usage() throws(FSError) -> [WorkspaceUsage] {
        try store.readCommitted { db in
            let spaces = try WorkspaceQueries.all(db)
            var users: [BlobDigest: Set<Int64>] = [:]
            var sizes: [BlobDigest: Int64] = [:]
            var named: [Int64: Set<BlobDigest>] = [:]
            var files: [Int64: Int] = [:]
            // Bytes kept in manifests: never shared.
            var embedded: [Int64: Int64] = [:]
            for row in try db.rows(
                """
                SELECT i.workspace, m.data FROM inodes i LEFT JOIN versions v ON v.id = i.version
                LEFT JOIN manifests m ON m.id = v.manifest WHERE i.nlink > 0 AND (i.mode & 61440) = 32768
                """)
            {
                let ws: Int64 = row[0]
                files[ws, default: 0] += 1
                guard let data: Data = row[1], let manifest = try? Manifest(encoded: [UInt8](data)) else { continue }
                for ref in manifest.chunks.values {
                    guard let digest = ref.digest else {
                        embedded[ws, default: 0] += Int64(ref.length)
                        continue
                    }
                    users[digest, default: []].insert(ws)
                    sizes[digest] = Int64(ref.length)
                    named[ws, default: []].insert(digest)
                }
            }
            let pending = try db.rows(
                "SELECT workspace, count(*) FROM inodes WHERE pending_entries = 1 GROUP BY workspace")
            let pendingBy = Dictionary(uniqueKeysWithValues: pending.map { ($0[0] as Int64, $0[1] as Int) })
            return try spaces.map { ws in
                var mine: Int64 = embedded[ws.id] ?? 0
                var shared: Int64 = 0
                for digest in named[ws.id] ?? [] {
                    if users[digest]?.count == 1 { mine += sizes[digest] ?? 0 } else { shared += sizes[digest] ?? 0 }
                }
                let parent = try ForkQueries.parent(db, workspace: ws.id)
                return WorkspaceUsage(
                    workspace: ws.name, parent: parent.flatMap { p in spaces.first { $0.id == p.parent }?.name },
                    baseSeq: parent?.baseSeq, files: files[ws.id] ?? 0, privateBytes: mine, sharedBytes: shared,
                    pendingDirectories: pendingBy[ws.id] ?? 0)
            }
        }
    }
}
