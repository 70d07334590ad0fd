import Foundation
import Glibc

/// What gc did, or (dry run) would do.
public struct GCSummary: Sendable, Codable, Equatable {
    public var dryRun: Bool
    /// File versions the retention policies released.
    public var versionsReleased = 0
    /// Deleted files whose every version was released: gone from history and the trash.
    public var filesForgotten = 0
    public var manifestsDeleted = 0
    /// Chunks no kept version names, deleted with their bytes.
    public var chunksDeleted = 0
    public var bytesFreed: Int64 = 0
    /// Chunks still named by a kept version.
    public var chunksKept = 0
    /// Old coordination records dropped: webhook deliveries (30 days), positions of consumers not
    /// seen for 90 days, lock and unlock events (7 days). Other events are the history's clock
    /// and stay.
    public var recordsPruned = 0
}

/// Where a long gc is.
public struct GCProgress: Sendable, Codable, Equatable {
    public var phase: String
    public var done: Int
    public var total: Int
}

extension FileSystem {
    /// Applies every workspace's retention policy, then sweeps the chunks no kept version names
    /// (mark and sweep). Safe while mounts write: the versions and chunks a commit is making are
    /// never released (see `Store.sweepLock`), and long scans read committed state without
    /// holding up the writer.
    /// `now` is when the policies' windows end (later in tests, to age the history). Without
    /// `applyRetention`, no version is released: only garbage goes (fsck --repair).
    public func collectGarbage(
        dryRun: Bool, applyRetention: Bool = true, now: Timestamp = .now(), progress: (GCProgress) -> Void = { _ in }
    ) throws(FSError) -> GCSummary {
        var summary = GCSummary(dryRun: dryRun)
        // The scans read committed state: first commit what the writer holds open.
        try store.write(.now) { _ in }
        let released = applyRetention ? try releasedVersions(now: now, progress: progress) : []
        summary.versionsReleased = released.count
        if applyRetention { summary.recordsPruned = try pruneRecords(now: now, dryRun: dryRun) }
        if !dryRun {
            (summary.filesForgotten, summary.manifestsDeleted) = try release(released, progress: progress)
        }
        let (marked, markedUpTo) = try markChunks(excluding: dryRun ? Set(released.map(\.id)) : [], progress: progress)
        let rows = try store.readCommitted { db in try GCQueries.blobs(db) }
        let unmarked = rows.filter { !marked.contains($0.digest) }
        summary.chunksKept = rows.count - unmarked.count
        if dryRun {
            summary.chunksDeleted = unmarked.count
            summary.bytesFreed = unmarked.reduce(0) { $0 + $1.size }
            return summary
        }
        (summary.chunksDeleted, summary.bytesFreed) = try sweep(
            unmarked, recorded: Set(rows.map(\.digest)), marked: marked, markedUpTo: markedUpTo, progress: progress)
        return summary
    }

    private func pruneRecords(now: Timestamp, dryRun: Bool) throws(FSError) -> Int {
        let day: Int64 = 86_400_000_000_000
        let rules: [(table: String, condition: String, age: Int64)] = [
            ("webhook_deliveries", "time_ns < ?", 30 * day), ("consumers", "updated_ns < ?", 90 * day),
            ("events", "kind IN ('lock', 'unlock') AND time_ns < ?", 7 * day),
        ]
        let work = { (db: Connection) throws -> Int in
            try rules.reduce(0) { total, rule in
                let before = now.nanoseconds - rule.age
                if dryRun {
                    return total
                        + (try db.value(
                            Int.self, "SELECT count(*) FROM \(rule.table) WHERE \(rule.condition)", [before]) ?? 0)
                }
                if let numbered = GCQueries.NumberedTable(rawValue: rule.table) {
                    return total + (try GCQueries.delete(db, from: numbered, where: rule.condition, [before]))
                }
                try db.run("DELETE FROM \(rule.table) WHERE \(rule.condition)", [before])
                return total + db.changesCount
            }
        }
        return dryRun ? try store.read(work) : try store.write(.now, work)
    }

    /// The versions each workspace's policy no longer keeps.
    private func releasedVersions(now: Timestamp, progress: (GCProgress) -> Void) throws(FSError)
        -> [(id: Int64, inode: InodeID)]
    {
        let spaces = try store.workspaces()
        var released: [(id: Int64, inode: InodeID)] = []
        for (i, ws) in spaces.enumerated() {
            progress(GCProgress(phase: "retention", done: i, total: spaces.count))
            let (policy, pinned, rows) = try store.readCommitted { db in
                (
                    try GCQueries.retention(db, workspace: ws.id), try GCQueries.pinnedSeqs(db, workspace: ws.id),
                    try GCQueries.fileVersions(db, workspace: ws.id)
                )
            }
            var start = 0
            while start < rows.count {
                let inode: InodeID = rows[start][1]
                var end = start
                var versions: [RetainedVersion] = []
                while end < rows.count, rows[end][1] as InodeID == inode {
                    let r = rows[end]
                    versions.append(
                        RetainedVersion(id: r[0], seq: r[2], time: Timestamp(nanoseconds: r[3]), sealed: r[4]))
                    end += 1
                }
                let current: Int64? = rows[start][5]
                let live = (rows[start][6] as Int64) > 0 || openFile(inode) != nil
                let keep = policy.kept(versions, current: current, live: live, pinned: pinned, now: now)
                released += versions.filter { !keep.contains($0.id) }.map { ($0.id, inode) }
                start = end
            }
        }
        progress(GCProgress(phase: "retention", done: spaces.count, total: spaces.count))
        return released
    }

    /// Deletes released versions (in batches, so mounts keep working meanwhile), settles the
    /// unlinked files they belonged to, and deletes manifests no version uses.
    private func release(_ versions: [(id: Int64, inode: InodeID)], progress: (GCProgress) -> Void) throws(FSError)
        -> (forgotten: Int, manifests: Int)
    {
        var forgotten = 0
        var batch = 0
        while batch < versions.count {
            progress(GCProgress(phase: "releasing", done: batch, total: versions.count))
            let slice = versions[batch..<min(batch + 500, versions.count)]
            forgotten += try store.write(.now) { db in
                var touched = Set<InodeID>()
                for v in slice where try GCQueries.deleteVersion(db, id: v.id) { touched.insert(v.inode) }
                var count = 0
                for inode in touched where openFile(inode) == nil {
                    guard let attrs = try NamespaceQueries.inode(db, inode), attrs.nlink == 0 else { continue }
                    if try GCQueries.settleUnlinked(db, inode: inode) { count += 1 }
                }
                return count
            }
            batch += slice.count
        }
        let manifests = try store.write(.now) { db in try GCQueries.deleteUnusedManifests(db) }
        return (forgotten, manifests)
    }

    /// The chunks the manifests of kept versions name (read from committed state), and the
    /// last manifest id read.
    private func markChunks(excluding released: Set<Int64>, progress: (GCProgress) -> Void) throws(FSError)
        -> (Set<BlobDigest>, Int64)
    {
        let (used, last) = try store.readCommitted { db in
            (try GCQueries.usedManifests(db), try GCQueries.maxManifest(db))
        }
        let kept = Set(used.filter { !released.contains($0.version) }.map(\.manifest))
        var marked = Set<BlobDigest>()
        var after: Int64 = 0
        while after < last {
            progress(GCProgress(phase: "marking", done: Int(after), total: Int(last)))
            let batch = try store.readCommitted { db in try GCQueries.manifests(db, after: after, limit: 1000) }
            guard let end = batch.last?.id else { break }
            for m in batch where kept.contains(m.id) && m.id <= last {
                try Self.mark(m.data, into: &marked)
            }
            after = end
        }
        return (marked, last)
    }

    private static func mark(_ data: Data, into marked: inout Set<BlobDigest>) throws(FSError) {
        let manifest: Manifest
        do {
            manifest = try Manifest(encoded: [UInt8](data))
        } catch {
            throw FSError.io("a manifest is unreadable; run `cairn fsck` before gc")
        }
        for case let digest? in manifest.chunks.values.map(\.digest) { marked.insert(digest) }
    }

    /// Deletes the unmarked chunks, and chunk files no row names, while no commit can store or
    /// name a chunk. Chunks named since the mark (newer manifests, open files) are kept. The
    /// blob directory is listed before the lock is taken; what it finds is checked again under it.
    private func sweep(
        _ unmarked: [(digest: BlobDigest, size: Int64, inline: Bool, pack: Int64?, offset: Int64?)],
        recorded: Set<BlobDigest>,
        marked: Set<BlobDigest>, markedUpTo: Int64, progress: (GCProgress) -> Void
    ) throws(FSError) -> (Int, Int64) {
        // Chunk files without a row: stored by a commit that never happened (a crash).
        let strayCandidates = try store.blobs.allDigests().filter { !recorded.contains($0) && !marked.contains($0) }
        store.sweepLock.lockExclusive()
        defer { store.sweepLock.unlock() }
        var named = marked
        for file in openFiles {
            file.lock.lock()
            for case let digest? in file.manifest.chunks.values.map(\.digest) { named.insert(digest) }
            for case let digest? in file.pendingStored.map(\.ref.digest) { named.insert(digest) }
            file.lock.unlock()
        }
        // Durable before any bytes go: a power loss must not bring back rows whose chunks were
        // punched out of their pack or deleted (a later write of the same bytes would name them).
        let (doomed, strays) = try store.write(.durable) { db in
            var after = markedUpTo
            while true {
                let batch = try GCQueries.manifests(db, after: after, limit: 1000)
                guard let end = batch.last?.id else { break }
                for m in batch { try Self.mark(m.data, into: &named) }
                after = end
            }
            let doomed = unmarked.filter { !named.contains($0.digest) }
            for blob in doomed { try GCQueries.deleteBlob(db, blob.digest) }
            let strays = try strayCandidates.filter { try !named.contains($0) && !GCQueries.hasBlob(db, $0) }
            return (doomed, strays)
        }
        var freed: Int64 = 0
        for (i, blob) in doomed.enumerated() {
            if i % 256 == 0 { progress(GCProgress(phase: "sweeping", done: i, total: doomed.count)) }
            if let pack = blob.pack, let offset = blob.offset {
                try store.packs.punch(pack: pack, offset: offset, length: blob.size)
            } else if !blob.inline {
                try store.blobs.delete(blob.digest)
            }
            freed += blob.size
        }
        for digest in strays {
            var st = stat()
            if stat(store.blobs.path(digest), &st) == 0 { freed += Int64(st.st_size) }
            try store.blobs.delete(digest)
        }
        progress(GCProgress(phase: "sweeping", done: doomed.count, total: doomed.count))
        return (doomed.count + strays.count, freed)
    }
}

extension FileSystem {
    public func retention(of workspace: Workspace) throws(FSError) -> RetentionPolicy {
        try store.read { db in try GCQueries.retention(db, workspace: workspace.id) }
    }

    public func setRetention(of workspace: Workspace, to policy: RetentionPolicy) throws(FSError) {
        try policy.validate()
        try store.write(.now) { db in try GCQueries.setRetention(db, workspace: workspace.id, policy) }
    }
}

/// What `fsck --repair` did: only what loses nothing.
public struct RepairSummary: Sendable, Codable, Equatable {
    /// Link counts recomputed from the live entries (derived data).
    public var linkCountsFixed: Int
    /// Unused manifests and unreferenced chunks deleted (no version is released).
    public var garbage: GCSummary
}

extension FileSystem {
    public func repair(progress: (GCProgress) -> Void = { _ in }) throws(FSError) -> RepairSummary {
        let fixed = try store.write(.now) { db in
            let wrong = try CheckQueries.wrongLinkCounts(db)
            for l in wrong { try CheckQueries.setLinkCount(db, inode: l.inode, to: l.expected) }
            return wrong.count
        }
        let garbage = try collectGarbage(dryRun: false, applyRetention: false, progress: progress)
        return RepairSummary(linkCountsFixed: fixed, garbage: garbage)
    }
}
