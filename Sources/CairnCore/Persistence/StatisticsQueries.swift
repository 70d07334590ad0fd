/// The SQL of `cairn status`.
enum StatisticsQueries {
    static func collect(_ db: Connection) throws -> StoreStatistics {
        let row = try db.row(
            """
            SELECT (SELECT count(*) FROM workspaces),
                   (SELECT count(*) FROM inodes WHERE nlink > 0 AND (mode & 61440) = 32768),
                   (SELECT count(*) FROM inodes WHERE NOT (\(GCQueries.NumberedTable.inodes.isPlaceholder))),
                   (SELECT count(*) FROM versions WHERE NOT (\(GCQueries.NumberedTable.versions.isPlaceholder))),
                   (SELECT count(*) FROM events WHERE NOT (\(GCQueries.NumberedTable.events.isPlaceholder))),
                   (SELECT count(*) FROM blobs),
                   (SELECT count(*) FROM blobs WHERE data IS NOT NULL OR pack IS NOT NULL),
                   (SELECT coalesce(sum(size), 0) FROM blobs),
                   (SELECT coalesce(sum(stored_bytes), 0) FROM inodes WHERE nlink > 0),
                   (SELECT coalesce(sum(size), 0) FROM versions WHERE manifest IS NOT NULL),
                   (SELECT coalesce(sum(size), 0) FROM versions WHERE manifest IS NOT NULL AND size <= ?)
            """, [Manifest.embeddedLimit])!
        let chunkBytes: Int64 = row[7]
        let versioned: Int64 = row[9]
        let embedded: Int64 = row[10]
        let stored = chunkBytes + embedded
        return StoreStatistics(
            workspaces: row[0], liveFiles: row[1], inodes: row[2], versions: row[3], events: row[4], chunks: row[5],
            inlineChunks: row[6], chunkBytes: chunkBytes, embeddedBytes: embedded, liveBytes: row[8],
            versionedBytes: versioned, databaseBytes: 0, dedupRatio: stored > 0 ? Double(versioned) / Double(stored) : 1
        )
    }
}
