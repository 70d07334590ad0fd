import CairnCore
import FuseKit
import Glibc

/// `.cairn/search/<query>/`: the files of the workspace a full-text query finds, best first, as
/// symlinks (`01-name`, `02-name`, …) to them, so that `ls` and `cat` search from a plain shell.
/// The hits are the caller's (only files it may read), found anew at each listing and lookup:
/// query directories and hits are never cached by the kernel.
extension CairnFilesystem {
    /// Hits listed per query directory (as many as `cairn search` shows by default).
    static let searchLimit = 20

    /// The hits of `text` in the workspace whose root is `root`, for `caller`, as the entries of
    /// a query directory: (name, target).
    func searchEntries(root: InodeID, text: [UInt8], caller: Caller) throws(FSError) -> [(
        name: [UInt8], target: [UInt8]
    )] {
        guard let query = String(validating: text, as: UTF8.self) else { throw FSError.notFound }
        let hits = try fs.search(
            query, in: try fs.store.workspace(root: root), limit: Self.searchLimit, marks: nil, caller: caller
        ).hits
        let width = String(Self.searchLimit).count
        return hits.enumerated().map { rank, hit in
            let number = String(rank + 1)
            let base = hit.path.split(separator: "/").last.map(String.init) ?? hit.path
            let prefix = String(repeating: "0", count: max(0, width - number.count)) + number + "-"
            // Within NAME_MAX: a long name loses its end (its path, the link's target, is whole).
            let name = prefix + String(decoding: base.utf8.prefix(253 - prefix.utf8.count), as: UTF8.self)
            // From `<root>/.cairn/search/<query>/` back up to the workspace's root.
            return (Array(name.utf8), Array(("../../../" + hit.path).utf8))
        }
    }

    /// A query directory's child `name`.
    func searchLookup(root: InodeID, text: [UInt8], name: [UInt8], caller: Caller) throws(FSError)
        -> HistoryNodes.Node
    {
        guard
            let target = try searchEntries(root: root, text: text, caller: caller).first(where: { $0.name == name })?
                .target
        else { throw FSError.notFound }
        return .hit(root: root, target: target)
    }

    /// A query directory's entries, read once at opendir.
    func searchListing(root: InodeID, text: [UInt8], directory: InodeAttributes, caller: Caller) throws(FSError)
        -> [DirectoryEntry]
    {
        try searchEntries(root: root, text: text, caller: caller).enumerated().map { index, entry throws(FSError) in
            var attrs = hitAttributes(directory, target: entry.target)
            attrs.id = InodeID(bitPattern: try history.id(.hit(root: root, target: entry.target)))
            return DirectoryEntry(cookie: Int64(index + 1), name: entry.name, attributes: attrs)
        }
    }

    /// A hit's attributes: a symlink as old as the workspace root's view, sized by its target.
    func hitAttributes(_ base: InodeAttributes, target: [UInt8]) -> InodeAttributes {
        var a = base
        a.mode = S_IFLNK | 0o777
        a.nlink = 1
        a.size = Int64(target.count)
        a.blocks = 0
        return a
    }
}
