import Foundation
import Glibc

/// What `cairn status` reports about a store.
public struct StoreStatistics: Codable, Sendable {
    public var workspaces: Int
    public var liveFiles: Int
    public var inodes: Int
    public var versions: Int
    public var events: Int
    public var chunks: Int
    /// Chunks up to the inline threshold: in pack files (in their rows in stores from before packs).
    public var inlineChunks: Int
    /// Bytes of distinct chunks stored (each stored once).
    public var chunkBytes: Int64
    /// Bytes kept in the manifests of versions of small files (`Manifest.embeddedLimit`), once
    /// per version.
    public var embeddedBytes: Int64
    /// Bytes the current versions of live files name (what a copy of the workspaces would take).
    public var liveBytes: Int64
    /// Bytes every version names, counting shared chunks each time.
    public var versionedBytes: Int64
    public var databaseBytes: Int64
    /// liveBytes+history over stored bytes: how much deduplication and sharing save.
    public var dedupRatio: Double
}

extension Store {
    public func statistics() throws(FSError) -> StoreStatistics {
        var stats = try read { db in try StatisticsQueries.collect(db) }
        var total: Int64 = 0
        for suffix in ["", "-wal", "-shm"] {
            var st = stat()
            if stat(databasePath + suffix, &st) == 0 { total += Int64(st.st_size) }
        }
        stats.databaseBytes = total
        return stats
    }
}
