import CairnCore
import CairnTestSupport
import Foundation
import Glibc
import Testing

@Suite struct ContentTests {
    @Test func roundTripsAcrossChunkBoundariesWithHoles() throws {
        let t = try TemporaryStore()
        let cs = t.store.chunkSize
        let (attrs, h) = try t.fs.create(
            parent: t.root, name: Array("f".utf8), mode: 0o644, flags: O_RDWR, caller: .tester)
        let a = pseudoRandomBytes(cs + 100, seed: 1)
        let b = pseudoRandomBytes(5000, seed: 2)
        _ = try a.withUnsafeBytes { try t.fs.write(handle: h, offset: Int64(cs - 50), data: $0) }
        _ = try b.withUnsafeBytes { try t.fs.write(handle: h, offset: Int64(4 * cs + 7), data: $0) }
        try t.fs.flush(handle: h)
        try t.fs.release(handle: h)
        var expected = [UInt8](repeating: 0, count: 4 * cs + 7 + 5000)
        expected.replaceSubrange((cs - 50)..<(cs - 50 + a.count), with: a)
        expected.replaceSubrange((4 * cs + 7)..<(4 * cs + 7 + 5000), with: b)
        #expect(try t.fs.readFile(attrs.id) == expected)
    }

    @Test func rewritingFourKiBOfALargeFileStoresOneChunk() throws {
        let t = try TemporaryStore()
        let size = 8 * t.store.chunkSize
        let attrs = try t.fs.writeFile(t.root, "big", pseudoRandomBytes(size, seed: 3))
        let before = try t.store.statistics()
        let h = try t.fs.open(attrs.id, flags: O_WRONLY, caller: .tester)
        let patch = pseudoRandomBytes(4096, seed: 4)
        _ = try patch.withUnsafeBytes { try t.fs.write(handle: h, offset: Int64(size / 2 + 123), data: $0) }
        try t.fs.flush(handle: h)
        try t.fs.release(handle: h)
        let after = try t.store.statistics()
        #expect(after.chunks - before.chunks == 1)
        #expect(after.chunkBytes - before.chunkBytes <= Int64(t.store.chunkSize))
        var expected = pseudoRandomBytes(size, seed: 3)
        expected.replaceSubrange((size / 2 + 123)..<(size / 2 + 123 + 4096), with: patch)
        #expect(try t.fs.readFile(attrs.id) == expected)
    }

    @Test func identicalContentIsStoredOnce() throws {
        let t = try TemporaryStore()
        let content = pseudoRandomBytes(3 * t.store.chunkSize, seed: 5)
        try t.fs.writeFile(t.root, "a", content)
        let once = try t.store.statistics()
        try t.fs.writeFile(t.root, "b", content)
        let twice = try t.store.statistics()
        #expect(twice.chunks == once.chunks)
        #expect(twice.chunkBytes == once.chunkBytes)
        #expect(twice.liveBytes == 2 * once.liveBytes)
    }

    @Test func zeroChunksAndHolesCostNothing() throws {
        let t = try TemporaryStore()
        try t.fs.writeFile(t.root, "zeros", [UInt8](repeating: 0, count: 2 * t.store.chunkSize))
        #expect(try t.store.statistics().chunks == 0)
    }

    @Test func petabyteSparseFileIsConstantWork() throws {
        let t = try TemporaryStore()
        let attrs = try t.fs.writeFile(t.root, "sparse", Array("head".utf8))
        let h = try t.fs.open(attrs.id, flags: O_RDWR, caller: .tester)
        _ = try t.fs.setattr(
            attrs.id, changes: AttributeChanges(size: 1_000_000_000_000_000), handle: h, caller: .tester)
        #expect(try t.fs.getattr(attrs.id).size == 1_000_000_000_000_000)
        var buf = [UInt8](repeating: 1, count: 16)
        let n = try buf.withUnsafeMutableBytes { try t.fs.read(handle: h, offset: 999_999_999_999_990, into: $0) }
        #expect(n == 10 && buf.prefix(10).allSatisfy { $0 == 0 })
        #expect(try t.fs.seek(handle: h, offset: 0, to: .data) == 0)
        #expect(try t.fs.seek(handle: h, offset: 0, to: .hole) == Int64(t.store.chunkSize))
        #expect(throws: FSError.noData) { try t.fs.seek(handle: h, offset: 1 << 40, to: .data) }
        #expect(throws: FSError.fileTooLarge) {
            try t.fs.setattr(
                attrs.id, changes: AttributeChanges(size: Limits.maxFileSize + 1), handle: h, caller: .tester)
        }
        try t.fs.flush(handle: h)
        try t.fs.release(handle: h)
        try t.fs.unlink(parent: t.root, name: Array("sparse".utf8), caller: .tester)
    }

    @Test func punchHoleAndZeroRangeReadAsZeros() throws {
        let t = try TemporaryStore()
        let cs = t.store.chunkSize
        let content = pseudoRandomBytes(3 * cs, seed: 6)
        let attrs = try t.fs.writeFile(t.root, "p", content)
        let h = try t.fs.open(attrs.id, flags: O_RDWR, caller: .tester)
        try t.fs.fallocate(handle: h, mode: [.punchHole, .keepSize], offset: Int64(cs - 10), length: Int64(cs + 20))
        try t.fs.fallocate(handle: h, mode: [.zeroRange], offset: Int64(3 * cs - 5), length: 100)
        try t.fs.flush(handle: h)
        try t.fs.release(handle: h)
        var expected = content
        for i in (cs - 10)..<(2 * cs + 10) { expected[i] = 0 }
        for i in (3 * cs - 5)..<(3 * cs) { expected[i] = 0 }
        expected += [UInt8](repeating: 0, count: 95)
        #expect(try t.fs.readFile(attrs.id) == expected)
    }

    /// Chunks of at most 256 bytes live in their manifest: no chunk row, no pack. They read
    /// back, shrink and grow with truncate, are cloned, and older versions keep their bytes.
    @Test func smallChunksLiveInTheirManifest() throws {
        let t = try TemporaryStore()
        let before = try t.store.statistics()
        let text = Array("a small file\n".utf8)
        let a = try t.fs.writeFile(t.root, "a", text)
        let edge = pseudoRandomBytes(256, seed: 1)
        let b = try t.fs.writeFile(t.root, "b", edge)
        #expect(try t.store.statistics().chunks == before.chunks)
        let c = try t.fs.writeFile(t.root, "c", pseudoRandomBytes(257, seed: 2))
        #expect(try t.store.statistics().chunks == before.chunks + 1)
        #expect(try t.fs.readFile(a.id) == text && t.fs.readFile(b.id) == edge)
        for size in [5, 40] {
            _ = try t.fs.setattr(a.id, changes: AttributeChanges(size: Int64(size)), handle: nil, caller: .tester)
        }
        #expect(try t.fs.readFile(a.id) == Array(text.prefix(5)) + [UInt8](repeating: 0, count: 35))
        let versions = try t.fs.history(of: "a", in: t.workspace)
        let first = try #require(versions.first { $0.size == Int64(text.count) })
        var old = [UInt8](repeating: 0xFF, count: 64)
        let n = try old.withUnsafeMutableBytes { try t.fs.read(version: first, offset: 0, into: $0) }
        #expect(Array(old.prefix(n)) == text)
        // A clone of part of the chunk: its first 100 bytes at offset 10.
        let (dst, hd) = try t.fs.create(
            parent: t.root, name: Array("d".utf8), mode: 0o644, flags: O_WRONLY, caller: .tester)
        let hs = try t.fs.open(b.id, flags: O_RDONLY, caller: .tester)
        _ = try t.fs.copyRange(from: hs, offset: 0, to: hd, offset: 0, length: 100)
        try t.fs.flush(handle: hd)
        try t.fs.release(handle: hd)
        try t.fs.release(handle: hs)
        #expect(try t.fs.readFile(dst.id) == Array(edge.prefix(100)))
        #expect(try t.fs.readFile(c.id) == pseudoRandomBytes(257, seed: 2))
        #expect(try t.store.check(verifyBlobs: true).isEmpty)
        #expect(try t.store.statistics().embeddedBytes >= Int64(text.count + edge.count + 100))
    }

    @Test func copyRangeClonesWholeChunksWithoutNewData() throws {
        let t = try TemporaryStore()
        let content = pseudoRandomBytes(4 * t.store.chunkSize + 333, seed: 7)
        let src = try t.fs.writeFile(t.root, "src", content)
        let before = try t.store.statistics()
        let (dst, hd) = try t.fs.create(
            parent: t.root, name: Array("dst".utf8), mode: 0o644, flags: O_WRONLY, caller: .tester)
        let hs = try t.fs.open(src.id, flags: O_RDONLY, caller: .tester)
        var copied = 0
        while copied < content.count {
            let n = try t.fs.copyRange(
                from: hs, offset: Int64(copied), to: hd, offset: Int64(copied), length: content.count - copied)
            #expect(n > 0)
            copied += n
        }
        try t.fs.flush(handle: hd)
        try t.fs.release(handle: hd)
        try t.fs.release(handle: hs)
        #expect(try t.fs.readFile(dst.id) == content)
        #expect(try t.store.statistics().chunkBytes == before.chunkBytes)
    }
}
