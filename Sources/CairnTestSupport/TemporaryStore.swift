import CairnCore
import Foundation
import Glibc

/// A store in a fresh temporary directory, removed when the value is closed.
public final class TemporaryStore {
    public let directory: String
    public let store: Store
    public let fs: FileSystem
    public let workspace: Workspace

    /// `commitDelay`: how long operations wait for their commit (long ones leave the journal
    /// holding them, as a crash would find it).
    public init(checkpointInterval: Double = 60, commitDelay: Double = Store.defaultCommitDelay) throws {
        let template = NSTemporaryDirectory() + "/cairn-test-XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { throw FSError.io("mkdtemp failed") }
        directory = String(cString: made)
        try Store.create(at: directory + "/store", owner: (0, 0)).close()
        store = try Store.open(at: directory + "/store", commitDelay: commitDelay)
        fs = try FileSystem(store: store, checkpointInterval: checkpointInterval)
        workspace = try store.workspace(named: "default")
    }

    public var root: InodeID { workspace.root }

    /// A copy of the store's files as a crash of the daemon now would leave them (the database,
    /// its log, the journal and the blobs; nothing in the process's memory), in a new directory.
    public func crashCopy() throws -> String {
        let copy = directory + "/crashed-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: false)
        for name in try FileManager.default.contentsOfDirectory(atPath: directory + "/store")
        where !name.hasPrefix("daemon.") && !name.hasSuffix("-shm") {
            try FileManager.default.copyItem(atPath: directory + "/store/" + name, toPath: copy + "/" + name)
        }
        return copy
    }

    public func close() {
        fs.closeAudit()
        store.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { close() }
}

extension Caller {
    /// A caller for tests: root, labelled `tester`.
    public static let tester = Caller(uid: 0, gid: 0, pid: 1, actor: "tester")
}

extension FileSystem {
    /// Creates (or truncates) `name` in `parent` with `bytes` and closes it: one version.
    @discardableResult
    public func writeFile(_ parent: InodeID, _ name: String, _ bytes: [UInt8], caller: Caller = .tester) throws
        -> InodeAttributes
    {
        let (attrs, handle) = try create(
            parent: parent, name: Array(name.utf8), mode: 0o644, flags: O_WRONLY | O_CREAT | O_TRUNC, caller: caller)
        _ = try bytes.withUnsafeBytes { try write(handle: handle, offset: 0, data: $0) }
        try flush(handle: handle)
        try release(handle: handle)
        return try getattr(attrs.id)
    }

    /// Every node below `dir`, for comparing trees: path ("/" after directories) → mode and
    /// link count, then a symlink's target, or a file's content (short text as is) and xattrs.
    public func describeTree(_ dir: InodeID, _ prefix: String = "") throws -> [String: String] {
        var out: [String: String] = [:]
        for e in try list(directory: dir, after: 0, limit: 100_000) {
            let path = prefix + String(decoding: e.name, as: UTF8.self)
            let a = e.attributes
            let head = String(a.mode, radix: 8) + " links \(a.nlink)"
            if a.isDirectory {
                out[path + "/"] = head
                out.merge(try describeTree(a.id, path + "/")) { x, _ in x }
            } else if a.isSymlink {
                out[path] = head + " -> " + String(decoding: try readlink(a.id), as: UTF8.self)
            } else {
                let bytes = try readFile(a.id)
                let text =
                    bytes.count < 100
                    ? String(decoding: bytes, as: UTF8.self) : "\(bytes.count) bytes \(bytes.hashValue)"
                let xattrs = try listxattr(a.id).map { String(decoding: $0, as: UTF8.self) }
                out[path] = head + " " + text + " \(xattrs)"
            }
        }
        return out
    }

    /// Reads a whole file through a fresh handle.
    public func readFile(_ inode: InodeID) throws -> [UInt8] {
        let handle = try open(inode, flags: O_RDONLY, caller: .tester)
        defer { try? release(handle: handle) }
        let size = Int(try getattr(inode).size)
        var out = [UInt8](repeating: 0, count: size)
        let n = try out.withUnsafeMutableBytes { try read(handle: handle, offset: 0, into: $0) }
        return Array(out.prefix(n))
    }
}

/// Deterministic pseudo-random bytes (xorshift), so content is reproducible and incompressible.
public func pseudoRandomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed | 1
    var out = [UInt8](repeating: 0, count: count)
    out.withUnsafeMutableBytes { raw in
        var i = 0
        while i + 8 <= count {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            raw.storeBytes(of: x, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < count {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            raw[i] = UInt8(truncatingIfNeeded: x)
            i += 1
        }
    }
    return out
}
