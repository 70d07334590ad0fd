import CairnCore
import CairnTestSupport
import Foundation
import Testing

@Suite struct StoreTests {
    @Test func createsAStoreWithADefaultWorkspace() throws {
        let t = try TemporaryStore()
        let names = try t.store.workspaces().map(\.name)
        #expect(names == ["default"])
        let root = try t.fs.getattr(t.root)
        #expect(root.isDirectory)
        #expect(root.nlink == 2)
    }

    @Test func refusesAMissingStoreWithAClearMessage() {
        #expect {
            _ = try Store.open(at: "/nonexistent/cairn-store")
        } throws: { error in
            "\(error)".contains("cairn init")
        }
    }

    @Test func refusesASecondInitOnTheSameDirectory() throws {
        let t = try TemporaryStore()
        #expect(throws: StoreError.self) { try Store.create(at: t.store.path, owner: (0, 0)) }
    }
}
