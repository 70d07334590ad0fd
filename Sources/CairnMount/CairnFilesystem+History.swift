import CairnCore
import FuseKit
import Glibc

/// `.cairn/` in the workspace root: read-only views of the past, reachable by name and never
/// listed (so `find`, `cp -r`, `grep -r` and `tar` of a workspace never descend into it).
/// `.cairn/at/<when>/…` is the workspace as it was at `<when>` (see `PointInTime`). A view of
/// the past is readable only by those who may read the file today: history never re-opens what
/// was closed.
extension CairnFilesystem {
    /// Whether `name` in `parent` is the `.cairn` directory (in the root of a workspace mount).
    func isCairnEntry(parent: InodeNumber, name: [UInt8]) -> Bool {
        parent == 1 && root != 1 && name == HistoryNodes.cairnName
    }

    func historyLookup(_ req: consuming FuseRequest, parent: InodeNumber, name: [UInt8]) {
        do throws(FSError) {
            var timeout = ttl
            let child: HistoryNodes.Node
            switch history.node(parent) {
            case nil where isCairnEntry(parent: parent, name: name): child = .cairn
            case .cairn? where name == Array("at".utf8): child = .at
            case .at?:
                guard let text = String(validating: name, as: UTF8.self), let point = try? PointInTime(text) else {
                    throw FSError.notFound
                }
                // A name relative to now stands for a fixed seq once looked up; a new lookup
                // of the same name resolves it again.
                if text.hasPrefix("-") { timeout = 0 }
                let seq = try fs.seq(of: point)
                _ = try fs.pastAttributes(root, at: seq)
                child = .past(seq: seq, inode: root)
            case .past(let seq, let dir)?:
                child = .past(seq: seq, inode: try fs.pastLookup(parent: dir, name: name, at: seq).id)
            default: throw FSError.notFound
            }
            let attrs = try historyAttributes(child)
            let id = try history.id(child)
            req.reply(
                entry: Entry(
                    ino: id, generation: 1, attributes: historyFileAttributes(attrs, id: id), attrTimeout: timeout,
                    entryTimeout: timeout))
        } catch .notFound {
            req.reply(entry: .negative(timeout: negativeTTL))
        } catch {
            req.reply(error: error.errno)
        }
    }

    func historyAttributes(_ node: HistoryNodes.Node) throws(FSError) -> InodeAttributes {
        switch node {
        case .cairn, .at:
            var a = try fs.getattr(root)
            a.mode = S_IFDIR | 0o555
            a.nlink = 2
            return a
        case .past(let seq, let inode):
            return try fs.pastAttributes(inode, at: seq)
        }
    }

    func historyFileAttributes(_ a: InodeAttributes, id: InodeNumber) -> FileAttributes {
        var attrs = attributes(a)
        attrs.ino = id
        return attrs
    }

    func historyGetattr(_ req: consuming FuseRequest, ino: InodeNumber) {
        do throws(FSError) {
            guard let node = history.node(ino) else { throw FSError.notFound }
            req.reply(attributes: historyFileAttributes(try historyAttributes(node), id: ino), timeout: ttl)
        } catch {
            req.reply(error: error.errno)
        }
    }

    /// Today's attributes of the file a past node shows decide who may read it.
    private func mayReadToday(_ node: HistoryNodes.Node, _ req: borrowing FuseRequest) throws(FSError) {
        guard case .past(_, let inode) = node else { return }
        guard caller(req).mayRead(try fs.getattr(inode)) else { throw FSError.permissionDenied }
    }

    func historyOpen(_ req: consuming FuseRequest, ino: InodeNumber, info: FileInfo) {
        do throws(FSError) {
            guard info.flags & O_ACCMODE == O_RDONLY, info.flags & O_TRUNC == 0 else { throw FSError.readOnly }
            guard let node = history.node(ino), case .past(let seq, let inode) = node else {
                throw FSError.isDirectory
            }
            try mayReadToday(node, req)
            let version = try fs.pastVersion(inode, at: seq)
            guard version.mode & S_IFMT == S_IFREG else { throw FSError.invalidArgument("not a regular file") }
            let handle = history.open(version)
            if !req.reply(open: OpenReply(handle: handle, keepCache: true)) { history.release(handle) }
        } catch {
            req.reply(error: error.errno)
        }
    }

    func historyRead(_ req: consuming FuseRequest, size: Int, offset: Int64, handle: UInt64) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
        defer { buffer.deallocate() }
        do throws(FSError) {
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
            req.reply(open: OpenReply(handle: 0))
        } catch {
            req.reply(error: error.errno)
        }
    }

    /// `.cairn` lists `at`; `at` lists nothing (any point in time is a name in it); a past
    /// directory lists its entries of then. Offsets as in the live tree.
    func historyList(_ req: consuming FuseRequest, ino: InodeNumber, size: Int, offset: Int64, plus: Bool) {
        var buffer = req.makeDirectoryBuffer(capacity: size)
        do throws(FSError) {
            guard let node = history.node(ino) else { throw FSError.notFound }
            let dir = try historyAttributes(node)
            var full = false
            if offset < 1 { full = !add(&buffer, Array(".".utf8), dir, id: ino, 1, plus: plus) }
            if !full && offset < 2 { full = !add(&buffer, Array("..".utf8), dir, id: ino, 2, plus: plus) }
            switch node {
            case .cairn:
                if !full && offset < 3 {
                    full = !add(&buffer, Array("at".utf8), dir, id: HistoryNodes.atID, 3, plus: plus)
                }
            case .at: break
            case .past(let seq, let inode):
                var cookie = offset > 2 ? offset - 2 : 0
                while !full {
                    let batch = try fs.pastListing(
                        parent: inode, at: seq, afterCookie: cookie, limit: max(16, size / 64))
                    if batch.isEmpty { break }
                    for e in batch {
                        let id = try history.id(.past(seq: seq, inode: e.attributes.id))
                        if !add(&buffer, e.name, e.attributes, id: id, e.cookie + 2, plus: plus) {
                            full = true
                            break
                        }
                        cookie = e.cookie
                    }
                }
            }
            req.reply(directory: buffer)
        } catch {
            req.reply(error: error.errno)
        }
    }

    private func add(
        _ buffer: inout DirectoryBuffer, _ name: [UInt8], _ a: InodeAttributes, id: InodeNumber, _ next: Int64,
        plus: Bool
    ) -> Bool {
        plus
            ? buffer.addPlus(
                name: name,
                entry: Entry(
                    ino: id, generation: 1, attributes: historyFileAttributes(a, id: id), attrTimeout: ttl,
                    entryTimeout: ttl), nextOffset: next)
            : buffer.add(name: name, ino: id, mode: a.mode, nextOffset: next)
    }
}
