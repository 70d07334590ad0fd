import CairnCore
import FuseKit
import Glibc

/// `.cairn/` in the workspace root: read-only views of the past, reachable by name and never
/// listed (so `find`, `cp -r`, `grep -r` and `tar` of a workspace never descend into it).
/// `.cairn/at/<when>/…` is the workspace as it was at `<when>` (see `PointInTime`);
/// `.cairn/snapshots/<name>/…` as it was when the snapshot was taken. A view of
/// the past is readable only by those who may read the file today: history never re-opens what
/// was closed.
extension CairnFilesystem {
    /// Whether `name` in `parent` is a `.cairn` directory: in the root of every workspace (the
    /// mount's root in a workspace mount, each workspace's directory in a mount of them all).
    func isCairnEntry(parent: InodeNumber, name: [UInt8]) -> Bool { cairnRoot(parent: parent, name: name) != nil }

    /// The workspace root whose `.cairn` `name` in `parent` is.
    func cairnRoot(parent: InodeNumber, name: [UInt8]) -> InodeID? {
        guard name == HistoryNodes.cairnName, !HistoryNodes.contains(parent) else { return nil }
        if root != 1 { return parent == 1 ? root : nil }
        let dir = inode(parent)
        return dir != 1 && (try? fs.store.workspace(root: dir)) != nil ? dir : nil
    }

    func historyLookup(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8]) {
        do throws(FSError) {
            var timeout = ttl
            let child: HistoryNodes.Node
            switch history.node(parent) {
            case nil:
                guard let workspaceRoot = cairnRoot(parent: parent, name: name) else { throw FSError.notFound }
                child = .cairn(root: workspaceRoot)
            case .cairn(let root)? where name == Array("at".utf8): child = .at(root: root)
            case .cairn(let root)? where name == Array("snapshots".utf8): child = .snapshots(root: root)
            case .cairn(let root)? where name == Array("versions".utf8): child = .mirror(root)
            case .cairn(let root)? where name == Array("locks".utf8):
                child = .locks(root: root)
                timeout = 0  // its size is not known before it is read
            case .cairn(let root)? where name == Array("events".utf8):
                child = .events(root: root)
                timeout = 0
            case .cairn(let root)? where name == Array("search".utf8): child = .search(root: root)
            case .search(let root)?:
                child = .query(root: root, text: name)
                timeout = 0  // hits change with every write
            case .query(let root, let text)?:
                child = try searchLookup(root: root, text: text, name: name, caller: caller(req))
                timeout = 0
            case .mirror(let dir)?: child = try versionsLookup(in: dir, name: name)
            case .fileVersions(let dir, let file)?:
                guard let version = try versionFiles(dir, file).first(where: { $0.name == name })?.version else {
                    throw FSError.notFound
                }
                child = .version(version.id)
            case .snapshots(let root)?:
                guard let text = String(validating: name, as: UTF8.self),
                    let snapshot = try fs.snapshot(of: fs.store.workspace(root: root), named: text)
                else { throw FSError.notFound }
                // Taking or deleting a snapshot drops this entry from every mount's cache.
                child = .past(seq: snapshot.seq, inode: root)
            case .at(let root)?:
                guard let text = String(validating: name, as: UTF8.self), let point = try? PointInTime(text) else {
                    throw FSError.notFound
                }
                // A name relative to now stands for a fixed seq once looked up; a new lookup
                // of the same name resolves it again.
                if text.hasPrefix("-") { timeout = 0 }
                child = .past(seq: try fs.seq(of: point), inode: root)
            case .past(let seq, let dir)?:
                child = .past(seq: seq, inode: try fs.pastLookup(parent: dir, name: name, at: seq).id)
            default: throw FSError.notFound
            }
            // Not found when the workspace did not exist yet at that point.
            let attrs = try historyAttributes(child)
            req.reply(entry: entry(attrs, node: try history.id(child), timeout: timeout))
        } catch .notFound {
            req.reply(entry: .negative(timeout: negativeTTL))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func historyAttributes(_ node: HistoryNodes.Node) throws(FSError) -> InodeAttributes {
        switch node {
        case .cairn(let root), .at(let root), .snapshots(let root), .search(let root), .query(let root, _):
            var a = try fs.getattr(root)
            a.mode = S_IFDIR | 0o555
            a.nlink = 2
            a.generation = 1
            return a
        case .past(let seq, let inode):
            return try fs.pastAttributes(inode, at: seq)
        case .mirror, .fileVersions, .version:
            return try versionsAttributes(node)
        case .hit(let root, let target):
            return hitAttributes(try fs.getattr(root), target: target)
        case .locks(let root), .events(let root):
            var a = try fs.getattr(root)
            a.mode = S_IFREG | 0o444
            a.nlink = 1
            a.size = 0
            a.blocks = 0
            a.generation = 1
            return a
        }
    }

    func historyGetattr(_ req: consuming FuseRequest, ino: InodeNumber) {
        do throws(FSError) {
            guard let node = history.node(ino) else { throw FSError.notFound }
            req.reply(attributes: attributes(try historyAttributes(node), node: ino), timeout: ttl)
        } catch {
            req.reply(error: error.errno)
        }
    }

    /// Today's attributes of the file a past node shows decide who may read it.
    private func mayReadToday(_ node: HistoryNodes.Node, _ req: borrowing FuseRequest) throws(FSError) {
        let inode: InodeID
        switch node {
        case .past(_, let shown): inode = shown
        case .version(let id): inode = try fs.version(id).inode
        case .fileVersions(let dir, let name):
            guard let newest = try fs.history(parent: dir, name: name).first else { throw FSError.notFound }
            inode = newest.inode
        default: return
        }
        guard caller(req).mayRead(try fs.getattr(inode)) else { throw FSError.permissionDenied }
    }

    /// The version a node of a past file shows.
    func historyVersion(_ node: HistoryNodes.Node) throws(FSError) -> VersionRecord {
        switch node {
        case .past(let seq, let inode): return try fs.pastVersion(inode, at: seq)
        case .version(let id): return try fs.version(id)
        default: throw FSError.isDirectory
        }
    }

    func historyOpen(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo) {
        do throws(FSError) {
            guard info.flags & O_ACCMODE == O_RDONLY, info.flags & O_TRUNC == 0 else { throw FSError.readOnly }
            guard let node = history.node(ino) else { throw FSError.notFound }
            if case .events(let root) = node {
                let handle = history.open(feed: EventCursor(root: root, after: try fs.currentSeq()))
                // A stream: read through, no offsets.
                if !req.reply(open: OpenReply(handle: handle, directIO: true, nonSeekable: true)) {
                    history.release(handle)
                }
                return
            }
            if case .locks(let root) = node {
                let text = FileSystem.lockTable(try fs.lockReports(workspace: fs.store.workspace(root: root)))
                let handle = history.open(text: Array(text.utf8))
                // Read through (no page cache): the text is new at every open.
                if !req.reply(open: OpenReply(handle: handle, directIO: true)) { history.release(handle) }
                return
            }
            let version = try historyVersion(node)
            try mayReadToday(node, req)
            guard version.mode & S_IFMT == S_IFREG else { throw FSError.invalidArgument("not a regular file") }
            let handle = history.open(version)
            // An unsealed version (a write session's, fsynced) changes in place: no cache kept.
            if !req.reply(open: OpenReply(handle: handle, keepCache: version.sealed)) { history.release(handle) }
        } catch {
            req.reply(error: error.errno)
        }
    }

    func historyRead(_ req: consuming FuseRequest, size: Int, offset: Int64, handle: UInt64) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
        defer { buffer.deallocate() }
        do throws(FSError) {
            if let cursor = history.feed(ofHandle: handle) {
                let fs = self.fs
                guard let bytes = try cursor.serially({ () throws(FSError) in try cursor.next(size, from: fs) }) else {
                    return feed.park(req, cursor: cursor, size: size)
                }
                return req.reply(bytes: bytes)
            }
            if let text = history.text(ofHandle: handle) {
                let from = Int(min(max(offset, 0), Int64(text.count)))
                return req.reply(bytes: Array(text[from..<min(text.count, from + size)]))
            }
            guard let version = history.version(ofHandle: handle) else { throw FSError.badHandle }
            let n = try fs.read(
                version: version, offset: offset, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size]))
            req.reply(data: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func historyOpendir(_ req: consuming FuseRequest, ino: InodeNumber) {
        do throws(FSError) {
            guard let node = history.node(ino) else { throw FSError.notFound }
            guard try historyAttributes(node).isDirectory else { throw FSError.notDirectory }
            try mayReadToday(node, req)
            let listing: [DirectoryEntry]
            switch node {
            case .past(let seq, let inode):
                listing = try fs.pastListing(parent: inode, at: seq, afterCookie: 0, limit: Int.max)
            case .query(let root, let text):
                listing = try searchListing(
                    root: root, text: text, directory: try historyAttributes(node), caller: caller(req))
            default:
                req.reply(open: OpenReply(handle: 0))
                return
            }
            let handle = history.open(listing: listing)
            if !req.reply(open: OpenReply(handle: handle)) { history.release(handle) }
        } catch {
            req.reply(error: error.errno)
        }
    }

    /// `.cairn` lists `at`; `at` lists nothing (any point in time is a name in it); a past
    /// directory lists its entries of then.
    func historyList(
        _ req: consuming FuseRequest, ino: InodeNumber, size: Int, offset: Int64, plus: Bool, handle: UInt64
    ) {
        let node: HistoryNodes.Node
        let dir: InodeAttributes
        do throws(FSError) {
            guard let known = history.node(ino) else { throw FSError.notFound }
            node = known
            dir = try historyAttributes(node)
        } catch {
            return req.reply(error: error.errno)
        }
        switch node {
        case .cairn(let root):
            let children: [(name: String, id: InodeNumber, attributes: InodeAttributes)]
            do throws(FSError) {
                let nodes: [(String, HistoryNodes.Node)] = [
                    ("at", .at(root: root)), ("events", .events(root: root)), ("locks", .locks(root: root)),
                    ("search", .search(root: root)), ("snapshots", .snapshots(root: root)), ("versions", .mirror(root)),
                ]
                children = try nodes.map { (name, node) throws(FSError) in
                    (name, try history.id(node), try historyAttributes(node))
                }
            } catch {
                return req.reply(error: error.errno)
            }
            list(
                req, directory: dir, node: ino, size: size, offset: offset, plus: plus,
                entries: { cookie, _ in
                    children.indices.dropFirst(Int(cookie)).map {
                        DirectoryEntry(
                            cookie: Int64($0 + 1), name: Array(children[$0].name.utf8),
                            attributes: children[$0].attributes)
                    }
                },
                nodeOf: { e in children[Int(e.cookie) - 1].id })
        case .locks, .events, .hit:
            req.reply(error: ENOTDIR)
        case .query:
            let all = history.listing(ofHandle: handle) ?? []
            list(
                req, directory: dir, node: ino, size: size, offset: offset, plus: plus, entryTimeout: 0,
                entries: { cookie, limit in Array(all.dropFirst(Int(cookie)).prefix(limit)) },
                nodeOf: { e in InodeNumber(bitPattern: e.attributes.id) })
        case .at, .search:
            list(
                req, directory: dir, node: ino, size: size, offset: offset, plus: plus, entries: { _, _ in [] },
                nodeOf: { _ in ino })
        case .snapshots(let root):
            // Each entry's cookie is its snapshot's id; the workspace root as it was then.
            let snapshots: [Int64: Snapshot]
            do throws(FSError) {
                snapshots = Dictionary(
                    uniqueKeysWithValues: try fs.snapshots(of: fs.store.workspace(root: root)).map { ($0.id, $0) })
            } catch {
                return req.reply(error: error.errno)
            }
            list(
                req, directory: dir, node: ino, size: size, offset: offset, plus: plus,
                entries: { cookie, limit throws(FSError) in
                    var batch: [DirectoryEntry] = []
                    for s in snapshots.values.filter({ $0.id > cookie }).sorted(by: { $0.id < $1.id }).prefix(limit) {
                        let attrs = try self.fs.pastAttributes(root, at: s.seq)
                        batch.append(DirectoryEntry(cookie: s.id, name: Array(s.name.utf8), attributes: attrs))
                    }
                    return batch
                },
                nodeOf: { e throws(FSError) in
                    try self.history.id(.past(seq: snapshots[e.cookie]?.seq ?? 0, inode: root))
                })
        case .mirror, .fileVersions, .version:
            versionsList(req, node: node, directory: dir, ino: ino, size: size, offset: offset, plus: plus)
        case .past(let seq, let inode):
            list(
                req, directory: dir, node: ino, size: size, offset: offset, plus: plus,
                entries: { cookie, limit throws(FSError) in
                    guard let all = self.history.listing(ofHandle: handle) else {
                        return try self.fs.pastListing(parent: inode, at: seq, afterCookie: cookie, limit: limit)
                    }
                    // Sorted by cookie: the batch starts after the first entry past `cookie`.
                    var low = 0
                    var high = all.count
                    while low < high {
                        let mid = (low + high) / 2
                        if all[mid].cookie <= cookie { low = mid + 1 } else { high = mid }
                    }
                    return Array(all[low..<min(all.count, low + limit)])
                },
                nodeOf: { e throws(FSError) in try self.history.id(.past(seq: seq, inode: e.attributes.id)) })
        }
    }
}

extension CairnFilesystem {
    /// The xattrs of a past node are those its version recorded; `.cairn` itself has none.
    private func historyXattrs(_ ino: InodeNumber) throws(FSError) -> [(name: [UInt8], value: [UInt8])] {
        switch history.node(ino) {
        case .past(let seq, let inode)?: return try fs.pastXattrs(inode, at: seq)
        case .version(let id)?:
            let version = try fs.version(id)
            return try fs.pastXattrs(version.inode, at: version.seq)
        default: return []
        }
    }

    func historyXattrNames(_ ino: InodeNumber) throws(FSError) -> [[UInt8]] {
        try historyXattrs(ino).map(\.name)
    }

    func historyXattr(_ ino: InodeNumber, name: [UInt8]) throws(FSError) -> [UInt8] {
        guard let value = try historyXattrs(ino).first(where: { $0.name == name })?.value else {
            throw FSError.noAttribute
        }
        return value
    }
}
