import CairnCore
import Foundation
import FuseKit
import Glibc

/// `.cairn/versions/<path>/`: the live tree's directories, mirrored, where each file (also one
/// deleted since, reachable by name) is a directory holding one read-only file per version of
/// its name, named `<number>_<time>_<actor>` so that `ls` lists them oldest first.
extension CairnFilesystem {
    /// A name in a mirrored directory: a live subdirectory is mirrored; any name with history
    /// (a file, or one deleted since) is the directory of its versions.
    func versionsLookup(in dir: InodeID, name: [UInt8]) throws(FSError) -> HistoryNodes.Node {
        if let live = try? fs.lookup(parent: dir, name: name), live.isDirectory { return .mirror(live.id) }
        guard !(try fs.history(parent: dir, name: name)).isEmpty else { throw FSError.notFound }
        return .fileVersions(parent: dir, name: name)
    }

    /// The version files of a name, oldest first, with their names.
    func versionFiles(_ dir: InodeID, _ name: [UInt8]) throws(FSError) -> [(name: [UInt8], version: VersionRecord)] {
        let versions = try fs.history(parent: dir, name: name).reversed()
        let width = max(4, String(versions.count).count)
        return versions.enumerated().map { i, v in (Self.versionFileName(number: i + 1, width: width, v), v) }
    }

    /// `0007_2026-11-26T10-00-00Z_agentA` (UTC; '/' in an actor becomes '_').
    static func versionFileName(number: Int, width: Int, _ v: VersionRecord) -> [UInt8] {
        let digits = String(number)
        let stamp = v.time.iso8601(milliseconds: false, timeSeparator: "-")
        let actor = v.actor.map { $0 == "/" || $0 == "\0" ? "_" : $0 }
        let text =
            String(repeating: "0", count: max(0, width - digits.count)) + digits + "_" + stamp + "_" + String(actor)
        return Array(Array(text.utf8).prefix(Limits.maxNameLength))
    }

    func versionsAttributes(_ node: HistoryNodes.Node) throws(FSError) -> InodeAttributes {
        switch node {
        case .mirror(let dir):
            var a = try fs.getattr(dir)
            a.mode = S_IFDIR | (a.mode & 0o555)
            return a
        case .fileVersions(let dir, let name):
            guard let newest = try fs.history(parent: dir, name: name).first else { throw FSError.notFound }
            var a = fs.attributes(of: newest)
            a.mode = S_IFDIR | 0o555
            a.nlink = 2
            a.size = 0
            a.blocks = 0
            return a
        case .version(let id):
            return fs.attributes(of: try fs.version(id))
        default:
            throw FSError.notFound
        }
    }

    func versionsList(
        _ req: consuming FuseRequest, node: HistoryNodes.Node, directory: InodeAttributes, ino: InodeNumber, size: Int,
        offset: Int64, plus: Bool
    ) {
        switch node {
        case .mirror(let dir):
            list(
                req, directory: directory, node: ino, size: size, offset: offset, plus: plus,
                entries: { cookie, limit throws(FSError) in
                    try self.fs.list(directory: dir, after: cookie, limit: limit).map { e in
                        var a = e.attributes
                        a.mode = S_IFDIR | (a.isDirectory ? a.mode & 0o555 : 0o555)
                        if !e.attributes.isDirectory { a.nlink = 2 }
                        return DirectoryEntry(cookie: e.cookie, name: e.name, attributes: a)
                    }
                },
                nodeOf: { e throws(FSError) in
                    let live = try self.fs.lookup(parent: dir, name: e.name)
                    return try self.history.id(
                        live.isDirectory ? .mirror(live.id) : .fileVersions(parent: dir, name: e.name))
                })
        case .fileVersions(let dir, let name):
            let files: [(name: [UInt8], version: VersionRecord)]
            do throws(FSError) {
                files = try versionFiles(dir, name)
            } catch {
                return req.reply(error: error.errno)
            }
            list(
                req, directory: directory, node: ino, size: size, offset: offset, plus: plus,
                entries: { cookie, limit in
                    files.indices.dropFirst(Int(cookie)).prefix(limit).map {
                        DirectoryEntry(
                            cookie: Int64($0 + 1), name: files[$0].name,
                            attributes: self.fs.attributes(of: files[$0].version))
                    }
                },
                nodeOf: { e throws(FSError) in try self.history.id(.version(files[Int(e.cookie) - 1].version.id)) })
        default:
            req.reply(error: ENOTDIR)
        }
    }
}
