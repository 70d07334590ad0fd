import Foundation
import Glibc

/// The live content of a regular file while any handle has it open: the committed manifest plus
/// the chunks written since. All handles of one inode share one `OpenFile`; its lock orders their
/// reads, writes and commits. Readers of the same daemon see staged bytes at once; the version
/// history sees them at commit (close, fsync, rename).
final class OpenFile: @unchecked Sendable {
    let inode: InodeID
    let content: ContentStore
    let staging: StagingArea
    let lock = NSLock()

    // protected by `lock`
    var manifest: Manifest
    var staged: [Int64: StagedChunk] = [:]
    var size: Int64
    /// The size of the committed content (what quota usage counts until the next commit).
    var committedSize: Int64
    var mtime: Timestamp
    var ctime: Timestamp
    /// The inode's mode, owner and access time: a write tells by mode and group whether it
    /// drops the set-user-ID and set-group-ID bits (see `FileSystem.dropSetIDBits`). A change of
    /// them while the file has uncommitted content stays here (`attributesPending`) and is written
    /// with that content's version, as mtime and ctime are: tar sets times, owner and mode of
    /// every file it writes before it closes it, three row updates otherwise.
    var ownership: NamespaceQueries.Ownership
    var attributesPending = false
    /// The inode's row as last read (`FileSystem.currentAttributes`).
    var row: RowSnapshot
    /// Content or size changed since the last commit.
    var modified = false
    /// Made by a create that recorded no version: the first commit records one, written to or
    /// not (see `FileSystem.create`).
    var unversioned = false
    /// `XattrQueries.writes` before the create that made the file (nil: not made so): while the
    /// count has not moved, nothing has given the new inode an xattr.
    var noXattrsSince: Int?
    /// Chunks moved into storage by a commit that has not reached the database yet (it failed):
    /// the next commit records them, so no manifest ever names a chunk without its row.
    var pendingStored: [ContentStore.StoredChunk] = []
    /// The unsealed version an fsync of this write session created, updated by later commits.
    var sessionVersion: Int64?
    /// The version the last commit made or updated (for the audit log).
    var lastVersion: Int64?
    var sessionStarted = Timestamp(nanoseconds: 0)

    // protected by the FileSystem's table lock
    var handleCount = 0

    private var chunkSize: Int { content.chunkSize }

    init(inode: InodeID, manifest: Manifest, row: RowSnapshot, content: ContentStore, staging: StagingArea) {
        let attributes = row.attributes
        self.inode = inode
        self.manifest = manifest
        self.row = row
        self.size = attributes.size
        self.committedSize = attributes.size
        self.mtime = attributes.mtime
        self.ctime = attributes.ctime
        self.ownership = attributes.ownership
        self.content = content
        self.staging = staging
    }

    deinit { for chunk in staged.values { chunk.discard() } }

    /// Whether a close commits something (changes, or an fsynced session to seal).
    var hasUncommittedChangesOrSession: Bool {
        lock.lock()
        defer { lock.unlock() }
        return modified || !staged.isEmpty
    }

    /// Whether the file has changes not committed yet, asked without waiting: nil when another
    /// thread holds the file (a write or a commit in progress). Callers that hold the store's
    /// writer must not wait for the file's lock: a commit holds the file's lock and waits for
    /// the writer.
    var uncommittedChangesWithoutWaiting: Bool? {
        guard lock.try() else { return nil }
        defer { lock.unlock() }
        return modified || !staged.isEmpty
    }

    /// The committed content changed behind the open handles (a restore): they read the new one,
    /// unless they have written since, in which case their next commit replaces it.
    func committedContentChanged(to manifest: Manifest, attributes: InodeAttributes) {
        lock.lock()
        defer { lock.unlock() }
        // A restore changes mode and group with the content: the set-ID check of later writes
        // must see them, whatever the content (unless the handles changed them since: their
        // commit replaces the restored ones).
        if !attributesPending { ownership = attributes.ownership }
        unversioned = false
        guard !modified, staged.isEmpty else { return }
        self.manifest = manifest
        size = attributes.size
        committedSize = attributes.size
        mtime = attributes.mtime
        ctime = attributes.ctime
    }

    /// Takes what a setattr leaves (caller holds the lock).
    func takeChangedAttributes(_ attributes: InodeAttributes) {
        ownership = attributes.ownership
        mtime = attributes.mtime
        ctime = attributes.ctime
    }

    /// Reads up to `buffer.count` bytes at `offset`; returns the count (short at end of file).
    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws(FSError) -> Int {
        try content.readRange(size: size, offset: offset, into: buffer) { index, within, piece throws(FSError) in
            if let chunk = staged[index] {
                try chunk.read(at: within, into: piece)
            } else {
                try content.read(manifest.chunks[index], at: within, into: piece)
            }
        }
    }

    /// Writes `data` at `offset`, extending the file if needed.
    func write(_ data: UnsafeRawBufferPointer, at offset: Int64, time: Timestamp) throws(FSError) {
        let (end, overflow) = offset.addingReportingOverflow(Int64(data.count))
        guard offset >= 0, !overflow else { throw FSError.invalidArgument("offset out of range") }
        guard end <= Limits.maxFileSize else { throw FSError.fileTooLarge }
        let cs = Int64(chunkSize)
        var done = 0
        while done < data.count {
            let position = offset + Int64(done)
            let index = position / cs
            let within = Int(position % cs)
            let n = min(chunkSize - within, data.count - done)
            let chunk = try stagedChunk(index, coveringFrom: within, count: n)
            try chunk.write(UnsafeRawBufferPointer(rebasing: data[done..<(done + n)]), at: within)
            done += n
        }
        if end > size { size = end }
        mtime = time
        ctime = time
        modified = true
    }

    /// The staged chunk for `index`, created by copying the committed bytes the write does not
    /// cover (copy-up happens once per chunk per commit).
    private func stagedChunk(_ index: Int64, coveringFrom within: Int, count: Int) throws(FSError) -> StagedChunk {
        if let chunk = staged[index] { return chunk }
        let chunk = StagedChunk(staging: staging)
        if let ref = manifest.chunks[index], !(within == 0 && count >= ref.length) {
            let valid = Int(min(Int64(ref.length), max(0, size - index * Int64(chunkSize))))
            if valid > 0 {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: valid, alignment: 16)
                defer { buffer.deallocate() }
                try content.read(ref, at: 0, into: buffer)
                try chunk.write(UnsafeRawBufferPointer(buffer), at: 0)
            }
        }
        staged[index] = chunk
        return chunk
    }

    func truncate(to newSize: Int64, time: Timestamp) throws(FSError) {
        guard newSize >= 0 else { throw FSError.invalidArgument("negative size") }
        guard newSize <= Limits.maxFileSize else { throw FSError.fileTooLarge }
        if newSize < size {
            let cs = Int64(chunkSize)
            let lastKept = newSize == 0 ? -1 : (newSize - 1) / cs
            for (index, chunk) in staged where index > lastKept {
                chunk.discard()
                staged.removeValue(forKey: index)
            }
            if lastKept >= 0, let chunk = staged[lastKept] { try chunk.truncate(to: Int(newSize - lastKept * cs)) }
            manifest.truncate(to: newSize, chunkSize: chunkSize)
        }
        size = newSize
        mtime = time
        ctime = time
        modified = true
    }

    /// Makes [offset, offset+length) read as zeros without changing the size (PUNCH_HOLE,
    /// ZERO_RANGE). Whole chunks become holes; partial chunks are rewritten.
    func zero(offset: Int64, length: Int64, time: Timestamp) throws(FSError) {
        let end = min(size, offset + length)
        guard offset < end else { return }
        let cs = Int64(chunkSize)
        var position = offset
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { zeros.deallocate() }
        memset(zeros.baseAddress!, 0, chunkSize)
        while position < end {
            let index = position / cs
            let chunkStart = index * cs
            let pieceEnd = min(end, chunkStart + cs)
            if position == chunkStart && (pieceEnd == chunkStart + cs || pieceEnd == size) {
                staged.removeValue(forKey: index)?.discard()
                manifest.chunks.removeValue(forKey: index)
            } else if staged[index] != nil || manifest.chunks[index] != nil {
                let n = Int(pieceEnd - position)
                let chunk = try stagedChunk(index, coveringFrom: Int(position - chunkStart), count: n)
                try chunk.write(UnsafeRawBufferPointer(rebasing: zeros[0..<n]), at: Int(position - chunkStart))
            }
            position = pieceEnd
        }
        mtime = time
        ctime = time
        modified = true
    }

    /// SEEK_DATA / SEEK_HOLE at chunk granularity: a chunk with any stored bytes is data.
    func seek(from offset: Int64, data: Bool) throws(FSError) -> Int64 {
        guard offset >= 0, offset < size else { throw FSError.noData }
        let cs = Int64(chunkSize)
        func hasData(_ index: Int64) -> Bool { staged[index] != nil || manifest.chunks[index] != nil }
        let first = offset / cs
        if data {
            if hasData(first) { return offset }
            let candidates = Set(staged.keys).union(manifest.chunks.keys).filter { $0 > first && $0 * cs < size }
            guard let next = candidates.min() else { throw FSError.noData }
            return next * cs
        }
        var index = first
        while index * cs < size && hasData(index) { index += 1 }
        return min(size, max(offset, index * cs))
    }

    /// Copies whole chunks by reference from `source` (a clone: no bytes move). Returns false when
    /// the ranges are not chunk-aligned alike, so the caller copies bytes instead.
    func cloneChunks(from source: OpenFile, sourceOffset: Int64, offset: Int64, length: Int64, time: Timestamp)
        throws(FSError) -> Bool
    {
        let cs = Int64(chunkSize)
        guard sourceOffset % cs == 0, offset % cs == 0 else { return false }
        let available = min(length, source.size - sourceOffset)
        guard available > 0 else { return true }
        let (end, overflow) = offset.addingReportingOverflow(available)
        guard !overflow, end <= Limits.maxFileSize else { throw FSError.fileTooLarge }
        // Whole chunks only, or the tail of the source when it also ends the destination.
        let wholeChunks = available / cs
        let tail = available % cs
        guard tail == 0 || end >= size else { return false }
        let count = wholeChunks + (tail > 0 ? 1 : 0)
        for i in 0..<count {
            let from = sourceOffset / cs + i
            if source.staged[from] != nil { return false }
        }
        for i in 0..<count {
            let from = sourceOffset / cs + i
            let to = offset / cs + i
            staged.removeValue(forKey: to)?.discard()
            if var ref = source.manifest.chunks[from] {
                if i == count - 1, tail > 0 { ref.length = min(ref.length, Int(tail)) }
                manifest.chunks[to] = ref
            } else {
                manifest.chunks.removeValue(forKey: to)
            }
        }
        if end > size { size = end }
        mtime = time
        ctime = time
        modified = true
        return true
    }

    /// Moves every staged chunk into permanent storage and folds it into the manifest. The chunks
    /// stored are returned so the caller can record them in the same transaction as the version.
    func storeStaged(durable: Bool) throws(FSError) -> [ContentStore.StoredChunk] {
        // Many chunk files are made durable by one syncfs rather than two fsyncs each.
        let syncAtEnd = durable && staged.values.filter { $0.filePath != nil }.count > 4
        for index in staged.keys.sorted() {
            let chunk = staged[index]!
            if let result = try content.store(chunk, durable: durable && !syncAtEnd) {
                manifest.chunks[index] = result.ref
                pendingStored.append(result)
            } else {
                manifest.chunks.removeValue(forKey: index)
            }
            chunk.discard()
            staged.removeValue(forKey: index)
        }
        manifest.truncate(to: size, chunkSize: chunkSize)
        if syncAtEnd { try content.store.syncFilesystem() }
        return pendingStored
    }
}

/// An inode's row as read when `Store.changes` had the count `readAt`: still the row while the
/// count has not moved (every operation that may change rows moves it, after its turn).
struct RowSnapshot {
    var attributes: InodeAttributes
    var readAt: Int
}
