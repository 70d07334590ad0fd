import Foundation
import Glibc

/// One inconsistency found by `Store.check`, with what it affects.
public struct Problem: Codable, Sendable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable {
        case databaseIntegrity, danglingEntry, missingContent, missingChunk, corruptChunk, unreferencedBlob
    }

    public var kind: Kind
    public var detail: String
    public var versions: [Int64]
    public var description: String {
        versions.isEmpty
            ? "\(kind.rawValue): \(detail)"
            : "\(kind.rawValue): \(detail) (versions \(versions.map(String.init).joined(separator: ", ")))"
    }
}

extension Store {
    /// Checks the consistency rules of `Schema` and every blob's size and hash. `progress` is
    /// called with (done, total) while blobs are verified.
    public func check(verifyBlobs: Bool = true, progress: (Int, Int) -> Void = { _, _ in }) throws(FSError) -> [Problem]
    {
        var problems: [Problem] = []
        try read { db in
            for line in try CheckQueries.integrity(db) {
                problems.append(Problem(kind: .databaseIntegrity, detail: line, versions: []))
            }
            for d in try CheckQueries.danglingDentries(db) {
                problems.append(
                    Problem(
                        kind: .danglingEntry,
                        detail:
                            "entry '\(String(decoding: d.name, as: UTF8.self))' in directory inode \(d.parent) names inode \(d.inode), which is missing or not below a directory",
                        versions: []))
            }
            for f in try CheckQueries.filesWithoutContent(db) {
                problems.append(
                    Problem(
                        kind: .missingContent, detail: "file inode \(f.inode) has no readable current version",
                        versions: f.version.map { [$0] } ?? []))
            }
            var after: Int64 = 0
            var reported = Set<BlobDigest>()
            while true {
                let batch = try CheckQueries.manifests(db, after: after, limit: 512)
                guard let last = batch.last else { break }
                after = last.id
                for m in batch {
                    let manifest: Manifest
                    do {
                        manifest = try Manifest(encoded: [UInt8](m.data))
                    } catch {
                        problems.append(
                            Problem(
                                kind: .missingContent, detail: "manifest \(m.id) is unreadable", versions: m.versions))
                        continue
                    }
                    for ref in manifest.chunks.values where !reported.contains(ref.digest) {
                        let row = try CheckQueries.blob(db, ref.digest)
                        let present: Bool
                        if let row {
                            present = ref.inline ? (row.inline?.count ?? 0) >= ref.length : blobs.contains(ref.digest)
                        } else {
                            present = false
                        }
                        if !present {
                            reported.insert(ref.digest)
                            problems.append(
                                Problem(
                                    kind: .missingChunk, detail: "chunk \(ref.digest) is missing", versions: m.versions)
                            )
                        }
                    }
                }
            }
        }
        if verifyBlobs { problems += try verifyBlobContents(progress: progress) }
        return problems
    }

    /// Reads every stored chunk back and compares its hash and size with its name and record.
    private func verifyBlobContents(progress: (Int, Int) -> Void) throws(FSError) -> [Problem] {
        let rows = try read { db in try CheckQueries.blobRows(db) }
        var problems: [Problem] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(chunkSize, 1), alignment: 16)
        defer { buffer.deallocate() }
        for (i, row) in rows.enumerated() {
            progress(i, rows.count)
            let digest: BlobDigest
            let size: Int
            if let inline = row.inline {
                digest = inline.withUnsafeBytes { BlobDigest.of($0) }
                size = inline.count
            } else {
                guard blobs.contains(row.digest) else { continue }  // reported as missing above if used
                do {
                    size = try blobs.read(row.digest, offset: 0, into: buffer)
                } catch {
                    problems.append(
                        Problem(
                            kind: .corruptChunk, detail: "chunk \(row.digest) cannot be read: \(error)", versions: []))
                    continue
                }
                digest = BlobDigest.of(UnsafeRawBufferPointer(rebasing: buffer[0..<size]))
            }
            if digest != row.digest || size != row.size {
                problems.append(
                    Problem(
                        kind: .corruptChunk, detail: "chunk \(row.digest) holds \(size) bytes hashing to \(digest)",
                        versions: []))
            }
        }
        progress(rows.count, rows.count)
        return problems
    }
}
