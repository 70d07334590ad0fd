import CairnCore
import CairnTestSupport
import Foundation
import Glibc
import Testing

/// Retention policies and gc: what is released, and that nothing kept ever loses a chunk.
@Suite struct RetentionTests {
    private func name(_ s: String) -> [UInt8] { Array(s.utf8) }
    private static let day: Int64 = 86_400_000_000_000

    /// path → content of every file of the workspace as it was at `seq`.
    private func pastTree(_ fs: FileSystem, _ dir: InodeID, at seq: Int64, _ prefix: String = "") throws
        -> [String: [UInt8]]
    {
        var out: [String: [UInt8]] = [:]
        for e in try fs.pastListing(parent: dir, at: seq, afterCookie: 0, limit: 100_000) {
            let path = prefix + String(decoding: e.name, as: UTF8.self)
            if e.attributes.isDirectory {
                out.merge(try pastTree(fs, e.attributes.id, at: seq, path + "/")) { a, _ in a }
            } else {
                let v = try fs.pastVersion(e.attributes.id, at: seq)
                var bytes = [UInt8](repeating: 0, count: Int(v.size))
                let n = try bytes.withUnsafeMutableBytes { try fs.read(version: v, offset: 0, into: $0) }
                out[path] = Array(bytes.prefix(n))
            }
        }
        return out
    }

    @Test func theDefaultPolicyKeepsRecentHourlyAndDailyVersions() throws {
        let t = try TemporaryStore()
        let a = try t.fs.writeFile(t.root, "log", name("v0"))
        for i in 1...5 { try t.fs.writeFile(t.root, "log", name("v\(i)")) }
        let before = try t.fs.history(of: "log", in: t.workspace)
        // All six versions were made within the same second: aged 10 days they share a day
        // bucket, so only the last survives (and it is current anyway); aged 1 hour, all stay.
        let young = try t.fs.collectGarbage(
            dryRun: false, now: Timestamp(nanoseconds: Timestamp.now().nanoseconds + 3_600_000_000_000))
        #expect(young.versionsReleased == 0)
        let snapshot = try t.fs.createSnapshot(of: t.workspace, name: "mid", caller: .tester)
        try t.fs.writeFile(t.root, "log", name("after snapshot"))
        let summary = try t.fs.collectGarbage(
            dryRun: false, now: Timestamp(nanoseconds: Timestamp.now().nanoseconds + 10 * Self.day))
        let after = try t.fs.history(of: "log", in: t.workspace)
        #expect(summary.versionsReleased == before.count - 1)
        #expect(after.count == 2, "the current version and the one the snapshot shows")
        #expect(try t.fs.readFile(a.id) == name("after snapshot"))
        #expect(try pastTree(t.fs, t.root, at: snapshot.seq) == ["log": name("v5")])
        #expect(try t.store.check().isEmpty)
    }

    @Test func deletedFilesAreForgottenWhenTheirLastVersionAges() throws {
        let t = try TemporaryStore()
        try t.fs.writeFile(t.root, "big", pseudoRandomBytes(2 << 20, seed: 3))
        try t.fs.unlink(parent: t.root, name: name("big"), caller: .tester)
        #expect(try t.fs.trash(of: t.workspace).count == 1)
        let dry = try t.fs.collectGarbage(
            dryRun: true, now: Timestamp(nanoseconds: Timestamp.now().nanoseconds + 40 * Self.day))
        #expect(dry.chunksDeleted == 2 && dry.bytesFreed == 2 << 20)
        #expect(try t.fs.trash(of: t.workspace).count == 1, "a dry run changes nothing")
        let real = try t.fs.collectGarbage(
            dryRun: false, now: Timestamp(nanoseconds: Timestamp.now().nanoseconds + 40 * Self.day))
        #expect(
            real.filesForgotten == 1 && real.chunksDeleted == dry.chunksDeleted && real.bytesFreed == dry.bytesFreed)
        #expect(try t.fs.trash(of: t.workspace).isEmpty)
        #expect(try t.store.check().isEmpty)
    }

    /// The rows gc deletes last of their table (the forgotten file's inode, name, version and
    /// manifest, the lock's events) leave their ids behind: what is made next never takes one.
    @Test func idsOfTheNewestRowsGCDeletesAreNeverHandedOutAgain() throws {
        let t = try TemporaryStore()
        let kept = try t.fs.writeFile(t.root, "kept", name("x"))
        let gone = try t.fs.writeFile(t.root, "gone", pseudoRandomBytes(1000, seed: 4))
        let goneVersion = try #require(try t.fs.history(of: "gone", in: t.workspace).last)
        try t.fs.unlink(parent: t.root, name: name("gone"), caller: .tester)
        let spec = LockSpec(
            inode: kept.id, kind: .flock, exclusive: true, owner: LockOwner(session: 9, id: 1), pid: 1,
            actor: "tester", place: "test")
        _ = try t.fs.locks.lock(spec)
        t.fs.locks.endSession(9)
        let lastSeq = try #require(try t.fs.events(after: 0).map(\.seq).max())
        let summary = try t.fs.collectGarbage(
            dryRun: false, now: Timestamp(nanoseconds: Timestamp.now().nanoseconds + 40 * Self.day))
        #expect(summary.filesForgotten == 1 && summary.recordsPruned == 2)
        #expect(try t.fs.trash(of: t.workspace).isEmpty)
        // The placeholders on top stay put: gc again finds nothing to delete.
        let again = try t.fs.collectGarbage(
            dryRun: false, now: Timestamp(nanoseconds: Timestamp.now().nanoseconds + 40 * Self.day))
        #expect(again.manifestsDeleted == 0 && again.recordsPruned == 0 && again.filesForgotten == 0)
        let next = try t.fs.writeFile(t.root, "next", name("y"))
        let nextVersion = try #require(try t.fs.history(of: "next", in: t.workspace).last)
        #expect(next.id > gone.id)
        #expect(nextVersion.id > goneVersion.id)
        #expect(try #require(try t.fs.history(of: "next", in: t.workspace).first).seq > lastSeq)
        #expect(try t.fs.readFile(next.id) == name("y") && t.fs.readFile(kept.id) == name("x"))
        #expect(try t.store.check().isEmpty)
    }

    /// A view of a moment whose version of a file retention released shows no such file, not an
    /// empty one (a created file is empty only before its first close).
    @Test func aFileIsNotShownEmptyWhereRetentionReleasedItsVersion() throws {
        let t = try TemporaryStore()
        let a = try t.fs.writeFile(t.root, "a", name("first"))
        let between = try t.fs.currentSeq()
        try t.fs.writeFile(t.root, "a", name("second"))
        #expect(try t.fs.pastVersion(a.id, at: between).size == 5)
        let summary = try t.fs.collectGarbage(
            dryRun: false, now: Timestamp(nanoseconds: Timestamp.now().nanoseconds + 10 * Self.day))
        #expect(summary.versionsReleased == 1)
        #expect(throws: FSError.notFound) { try t.fs.pastVersion(a.id, at: between) }
        #expect(throws: FSError.notFound) { try t.fs.pastLookup(parent: t.root, name: name("a"), at: between) }
        #expect(try t.fs.readFile(a.id) == name("second"))
    }

    /// Random workloads, random policies, random ages: after gc, the live tree, every
    /// snapshot's tree and every kept version read back exactly, and fsck is clean.
    @Test(arguments: 0..<12) func gcNeverRemovesWhatAKeptVersionOrSnapshotNeeds(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        let t = try TemporaryStore()
        let windows: [Int64?] = [0, 3600, 86_400, 7 * 86_400, nil]
        var policy = RetentionPolicy(
            keepAll: windows.randomElement(using: &rng)!, hourly: windows.randomElement(using: &rng)!,
            daily: windows.randomElement(using: &rng)!)
        if policy.keepAll == nil { policy.hourly = nil }
        if policy.hourly == nil { policy.daily = nil }
        try t.fs.setRetention(of: t.workspace, to: policy)
        let dir = try t.fs.mkdir(parent: t.root, name: name("d"), mode: 0o755, caller: .tester).id
        var snapshots: [(Snapshot, [String: [UInt8]])] = []
        for step in 0..<60 {
            let parent = Bool.random(using: &rng) ? t.root : dir
            let file = "f\(Int.random(in: 0..<5, using: &rng))"
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<6:
                // Sizes across the inline threshold and the chunk size; shared seeds share chunks.
                let size = [100, 70_000, 1 << 20, (1 << 20) + 5000].randomElement(using: &rng)!
                try t.fs.writeFile(parent, file, pseudoRandomBytes(size, seed: UInt64.random(in: 0..<4, using: &rng)))
            case 6, 7:
                _ = try? t.fs.unlink(parent: parent, name: name(file), caller: .tester)
            case 8:
                try? t.fs.rename(
                    parent: parent, name: name(file), newParent: parent == dir ? t.root : dir, newName: name(file),
                    options: [], caller: .tester)
            default:
                let s = try t.fs.createSnapshot(of: t.workspace, name: "s\(step)", caller: .tester)
                snapshots.append((s, try pastTree(t.fs, t.root, at: s.seq)))
            }
        }
        let live = try pastTree(t.fs, t.root, at: t.fs.currentSeq())
        let age = Int64.random(in: 0..<(40 * Self.day), using: &rng)
        let now = Timestamp(nanoseconds: Timestamp.now().nanoseconds + age)
        let dry = try t.fs.collectGarbage(dryRun: true, now: now)
        let real = try t.fs.collectGarbage(dryRun: false, now: now)
        #expect(real.versionsReleased == dry.versionsReleased)
        #expect(real.chunksDeleted == dry.chunksDeleted && real.bytesFreed == dry.bytesFreed)
        #expect(try pastTree(t.fs, t.root, at: t.fs.currentSeq()) == live)
        for (snapshot, tree) in snapshots {
            #expect(try pastTree(t.fs, t.root, at: snapshot.seq) == tree, "snapshot \(snapshot.name) after gc")
        }
        #expect(try t.store.check().isEmpty)
        // A second gc at the same moment finds nothing more.
        let again = try t.fs.collectGarbage(dryRun: false, now: now)
        #expect(again.versionsReleased == 0 && again.chunksDeleted == 0)
    }

    @Test func policiesParseAndRefuseNonsense() throws {
        #expect(try RetentionPolicy.parseDuration("36h") == 36 * 3600)
        #expect(try RetentionPolicy.parseDuration("2w") == 14 * 86_400)
        #expect(try RetentionPolicy.parseDuration("forever") == nil)
        #expect(throws: FSError.self) { try RetentionPolicy.parseDuration("3 days") }
        #expect(throws: FSError.self) { try RetentionPolicy.parseDuration("-1d") }
        let t = try TemporaryStore()
        #expect(throws: FSError.self) {
            try t.fs.setRetention(of: t.workspace, to: RetentionPolicy(keepAll: nil, hourly: 3600, daily: nil))
        }
        let policy = RetentionPolicy(keepAll: 3600, hourly: 86_400, daily: nil)
        try t.fs.setRetention(of: t.workspace, to: policy)
        #expect(try t.fs.retention(of: t.workspace) == policy)
        #expect(policy.description == "keep every version for 1h, one per hour for 1d, one per day for forever")
    }

    @Test func oldCoordinationRecordsArePrunedAndHistoryEventsStay() throws {
        let t = try TemporaryStore()
        let a = try t.fs.writeFile(t.root, "f", name("x"))
        let spec = LockSpec(
            inode: a.id, kind: .flock, exclusive: true, owner: LockOwner(session: 9, id: 1), pid: 1, actor: "tester",
            place: "test")
        _ = try t.fs.locks.lock(spec)
        t.fs.locks.endSession(9)
        try t.fs.setConsumerPosition("agent", to: 1)
        let later = Timestamp(nanoseconds: Timestamp.now().nanoseconds + 100 * Self.day)
        let kinds = { try t.fs.events(after: 0).map(\.kind) }
        #expect(try kinds().contains("lock"))
        let dry = try t.fs.collectGarbage(dryRun: true, now: later)
        let afterDry = try kinds()
        #expect(dry.recordsPruned == 3 && afterDry.contains("lock"))
        let real = try t.fs.collectGarbage(dryRun: false, now: later)
        #expect(real.recordsPruned == 3)
        #expect(try t.fs.consumerPosition("agent") == nil)
        let afterReal = try kinds()
        #expect(!afterReal.contains("lock") && afterReal.contains("write"), "the history's own events stay")
    }
}

/// A deterministic random source for property tests (splitmix64).
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
