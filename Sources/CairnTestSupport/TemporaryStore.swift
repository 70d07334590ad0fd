import CairnCore
import Foundation
import Glibc

/// A store in a fresh temporary directory, removed when the value is closed.
public final class TemporaryStore {
    public let directory: String
    public let store: Store
    public let fs: FileSystem
    public let workspace: Workspace

    public init() throws {
        let template = NSTemporaryDirectory() + "/cairn-test-XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { throw FSError.io("mkdtemp failed") }
        directory = String(cString: made)
        store = try Store.create(at: directory + "/store", owner: (0, 0))
        fs = try FileSystem(store: store)
        workspace = try store.workspace(named: "default")
    }

    public var root: InodeID { workspace.root }

    public func close() {
        store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { close() }
}

extension Caller {
    /// A caller for tests: root, labelled `tester`.
    public static let tester = Caller(uid: 0, gid: 0, pid: 1, actor: "tester")
}
