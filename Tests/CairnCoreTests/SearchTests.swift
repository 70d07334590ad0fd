import CairnCore
import CairnTestSupport
import Foundation
import Glibc
import Testing

/// Search results never show a file the caller could not read: by role in its workspace, by
/// the directories above it, by the file's own mode.
@Suite struct SearchTests {
    private let stranger = Caller(uid: 4321, gid: 4321, pid: 2, actor: "stranger")

    @Test func hitsAreOnlyFilesTheCallerMayRead() throws {
        let t = try TemporaryStore()
        defer { t.close() }
        _ = try t.fs.perform(.createWorkspace(name: "other"), caller: .tester)
        let other = try t.store.workspace(named: "other")
        _ = try t.fs.perform(.grant(workspace: "default", principal: "uid:4321", role: .reader), caller: .tester)
        _ = try t.fs.perform(.grant(workspace: "other", principal: "uid:4321", role: .none), caller: .tester)

        try t.fs.writeFile(t.root, "open.txt", Array("zebra crossing, for everyone".utf8))
        let secret = try t.fs.writeFile(t.root, "private.txt", Array("zebra in a private file".utf8))
        _ = try t.fs.setattr(secret.id, changes: AttributeChanges(mode: 0o600), handle: nil, caller: .tester)
        let locked = try t.fs.mkdir(parent: t.root, name: Array("locked".utf8), mode: 0o700, caller: .tester)
        try t.fs.writeFile(locked.id, "inside.txt", Array("zebra behind a closed directory".utf8))
        try t.fs.writeFile(other.root, "elsewhere.txt", Array("zebra in another workspace".utf8))
        try t.fs.syncMetadata()
        try t.fs.updateIndex()
        #expect(try t.fs.indexStatus().upToDate)

        let all = try t.fs.search("zebra", caller: .tester).hits.map { "\($0.workspace):\($0.path)" }
        #expect(
            Set(all) == ["default:open.txt", "default:private.txt", "default:locked/inside.txt", "other:elsewhere.txt"])
        let mine = try t.fs.search("zebra", caller: stranger).hits.map { "\($0.workspace):\($0.path)" }
        #expect(mine == ["default:open.txt"])
        #expect(try t.fs.search("zebra", in: other, caller: .tester).hits.map(\.path) == ["elsewhere.txt"])
    }

    /// A chmod of a file being written takes effect for search at once, as it does for opens.
    @Test func aModeChangedWhileWritingHidesTheFileAtOnce() throws {
        let t = try TemporaryStore()
        defer { t.close() }
        _ = try t.fs.perform(.grant(workspace: "default", principal: "uid:4321", role: .reader), caller: .tester)
        let file = try t.fs.writeFile(t.root, "plans.txt", Array("zebra plans for everyone".utf8))
        try t.fs.syncMetadata()
        try t.fs.updateIndex()
        #expect(try t.fs.search("zebra", caller: stranger).hits.map(\.path) == ["plans.txt"])
        let handle = try t.fs.open(file.id, flags: O_WRONLY, caller: .tester)
        _ = try Array("secret zebra plans".utf8).withUnsafeBytes { try t.fs.write(handle: handle, offset: 0, data: $0) }
        _ = try t.fs.setattr(file.id, changes: AttributeChanges(mode: 0o600), handle: handle, caller: .tester)
        #expect(try t.fs.search("zebra", caller: stranger).hits.isEmpty)
        try t.fs.release(handle: handle)
    }

    @Test func htmlGivesItsTextAndBinaryFilesAreLeftOut() throws {
        let t = try TemporaryStore()
        defer { t.close() }
        try t.fs.writeFile(
            t.root, "page.html",
            Array("<p>caf&eacute; <b>okapi</b> &amp; friends</p><script>var hidden = 'quokka';</script>".utf8))
        try t.fs.writeFile(t.root, "data.bin", [0, 1, 2] + Array("okapi".utf8))
        try t.fs.writeFile(
            t.root, "upper.htm",
            Array("<P>gnu<!-- wallaby --> zebu</P><SCRIPT>var x = 'quokka'</SCRIPT><STYLE>p {}</STYLE> yak".utf8))
        try t.fs.syncMetadata()
        try t.fs.updateIndex()
        #expect(try t.fs.search("okapi", caller: .tester).hits.map(\.path) == ["page.html"])
        #expect(try t.fs.search("quokka", caller: .tester).hits.isEmpty)
        #expect(try t.fs.search("wallaby", caller: .tester).hits.isEmpty, "comments are not text")
        #expect(try t.fs.search("gnu zebu yak", caller: .tester).hits.map(\.path) == ["upper.htm"])
        #expect(try t.fs.indexStatus().formats == ["html": 2, "binary": 1])
    }

    @Test func aQueryMatchingMoreFilesThanAreRankedRanksTheNewestAndSaysSo() throws {
        let t = try TemporaryStore()
        defer { t.close() }
        // The oldest file is the best match, but the query matches one file more than are ranked.
        try t.fs.writeFile(t.root, "oldest.txt", Array("common common common rare".utf8))
        for i in 0..<FileSystem.rankedMost { try t.fs.writeFile(t.root, "f\(i).txt", Array("common \(i)".utf8)) }
        try t.fs.syncMetadata()
        try t.fs.updateIndex()
        let broad = try t.fs.search("common", limit: 5, caller: .tester)
        #expect(broad.rankedOnly == FileSystem.rankedMost)
        #expect(broad.hits.count == 5 && !broad.hits.map(\.path).contains("oldest.txt"))
        let narrow = try t.fs.search("common rare", caller: .tester)
        #expect(narrow.rankedOnly == nil && narrow.hits.map(\.path) == ["oldest.txt"])
    }

    @Test func largeFilesAreIndexedByTheirFirstEightMebibytes() throws {
        let t = try TemporaryStore()
        defer { t.close() }
        // More than one read's worth of files in one batch of changes.
        let filler = Array(repeating: Array("lorem ipsum ".utf8), count: (9 << 20) / 12).flatMap { $0 }
        for i in 0..<5 {
            try t.fs.writeFile(t.root, "big\(i).txt", Array("opening\(i) ".utf8) + filler + Array(" closing\(i)".utf8))
        }
        try t.fs.syncMetadata()
        try t.fs.updateIndex()
        for i in 0..<5 {
            #expect(try t.fs.search("opening\(i)", caller: .tester).hits.map(\.path) == ["big\(i).txt"])
            #expect(try t.fs.search("closing\(i)", caller: .tester).hits.isEmpty, "beyond the first 8 MiB")
        }
    }
}
