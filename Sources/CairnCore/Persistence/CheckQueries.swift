import Foundation

/// The SQL of the consistency rules in `Schema` (used by `Store.check`).
enum CheckQueries {
    static func integrity(_ db: Connection) throws -> [String] {
        try db.values(String.self, "PRAGMA integrity_check").filter { $0 != "ok" }
    }

    /// Rule 1: live dentries whose inode is missing, or whose parent is not a directory.
    static func danglingDentries(_ db: Connection) throws -> [(
        dentry: Int64, parent: InodeID, name: [UInt8], inode: InodeID
    )] {
        try db.rows(
            """
            SELECT d.id, d.parent, d.name, d.inode FROM dentries d
            LEFT JOIN inodes i ON i.id = d.inode
            LEFT JOIN inodes p ON p.id = d.parent
            WHERE d.deleted_seq IS NULL AND (i.id IS NULL OR p.id IS NULL OR (p.mode & 61440) != 16384)
            """
        ).map { ($0[0], $0[1], [UInt8]($0[2] as Data), $0[3]) }
    }

    /// Rule 3: regular files whose current version, or the manifest it names, is missing (a
    /// version without a manifest is an empty file; so is a file with no version yet).
    static func filesWithoutContent(_ db: Connection) throws -> [(inode: InodeID, version: Int64?)] {
        try db.rows(
            """
            SELECT i.id, i.version FROM inodes i LEFT JOIN versions v ON v.id = i.version
            LEFT JOIN manifests m ON m.id = v.manifest
            WHERE (i.mode & 61440) = 32768 AND i.version IS NOT NULL
              AND (v.id IS NULL OR (v.manifest IS NOT NULL AND m.id IS NULL))
            """
        ).map { ($0[0], $0[1]) }
    }

    /// Every manifest with the versions that use it, for rule 4.
    static func manifests(_ db: Connection, after id: Int64, limit: Int) throws -> [(
        id: Int64, data: Data, versions: [Int64]
    )] {
        try db.rows(
            """
            SELECT m.id, m.data, (SELECT group_concat(v.id) FROM versions v WHERE v.manifest = m.id)
            FROM manifests m WHERE m.id > ? ORDER BY m.id LIMIT ?
            """, [id, limit]
        ).map { row in
            let list: String? = row[2]
            return (row[0], row[1], (list ?? "").split(separator: ",").compactMap { Int64($0) })
        }
    }

    /// A chunk's row: its size, and where the database keeps its bytes (nil: a blob file).
    static func blob(_ db: Connection, _ digest: BlobDigest) throws -> (
        size: Int, small: ContentQueries.SmallChunk?
    )? {
        try db.row("SELECT \(ContentQueries.smallChunkColumns) FROM blobs WHERE digest = ?", [Data(digest.bytes)])
            .map { ($0[3], ContentQueries.smallChunk($0, at: 0)) }
    }

    static func blobRows(_ db: Connection) throws -> [(
        digest: BlobDigest, size: Int, small: ContentQueries.SmallChunk?
    )] {
        try db.rows("SELECT digest, \(ContentQueries.smallChunkColumns) FROM blobs").compactMap { row in
            BlobDigest(bytes: [UInt8](row[0] as Data)).map { ($0, row[4], ContentQueries.smallChunk(row, at: 1)) }
        }
    }

    /// Rule 6: link counts are derived from the live entries: a file has one link per name, a
    /// directory two plus one per subdirectory (none once removed), the store root likewise.
    static func wrongLinkCounts(_ db: Connection) throws -> [(inode: InodeID, nlink: Int64, expected: Int64)] {
        try db.rows(
            """
            SELECT c.id, c.nlink, c.expected FROM (
                SELECT i.id, i.nlink, i.pending_entries, CASE WHEN (i.mode & 61440) = 16384 THEN
                    CASE WHEN i.id = 1 OR EXISTS (SELECT 1 FROM dentries d WHERE d.inode = i.id AND d.deleted_seq IS NULL)
                    THEN 2 + (SELECT count(*) FROM dentries d JOIN inodes c ON c.id = d.inode
                              WHERE d.parent = i.id AND d.deleted_seq IS NULL AND (c.mode & 61440) = 16384)
                    ELSE 0 END
                  ELSE (SELECT count(*) FROM dentries d WHERE d.inode = i.id AND d.deleted_seq IS NULL) END AS expected
                FROM inodes i) AS c
            WHERE c.nlink != c.expected
              -- A fork's directory waiting for its entries counts the subdirectories it will have;
              -- a fork's copy of a file counts all the names it had, some perhaps in directories
              -- whose entries are not copied in yet.
              AND c.pending_entries = 0
              AND NOT EXISTS (
                  SELECT 1 FROM fork_origins f JOIN inodes p ON p.workspace = f.workspace AND p.pending_entries = 1
                  WHERE f.inode = c.id)
            """
        ).map { ($0[0], $0[1], $0[2]) }
    }

    static func setLinkCount(_ db: Connection, inode: InodeID, to nlink: Int64) throws {
        try db.run("UPDATE inodes SET nlink = ? WHERE id = ?", [nlink, inode])
    }

    /// The inode a version belongs to.
    static func inode(ofVersion id: Int64, _ db: Connection) throws -> InodeID? {
        try db.value(InodeID.self, "SELECT inode FROM versions WHERE id = ?", [id])
    }

    /// An inode's newest name: its parent, name, and the seq it was removed at (nil: live).
    static func lastName(_ db: Connection, inode: InodeID) throws -> (parent: InodeID, name: [UInt8], removed: Int64?)?
    {
        try db.row(
            "SELECT parent, name, deleted_seq FROM dentries WHERE inode = ? ORDER BY created_seq DESC, id DESC LIMIT 1",
            [inode]
        ).map { ($0[0], [UInt8]($0[1] as Data), $0[2]) }
    }
}
