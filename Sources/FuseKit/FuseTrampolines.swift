import CFuse3
import Glibc

/// The C callbacks: the only code that turns libfuse's raw pointers into Swift values. Each one
/// finds the operations through the request's userdata, wraps the request so it is answered
/// exactly once, and calls the matching `FuseOperations` method.
private func operations(_ req: fuse_req_t) -> any FuseOperations {
    // SAFETY: the userdata is the OperationsBox retained by FuseSession for the session's life.
    Unmanaged<OperationsBox>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue().operations
}

private func bytes(_ name: UnsafePointer<CChar>) -> [UInt8] {
    let count = strlen(name)
    return name.withMemoryRebound(to: UInt8.self, capacity: count) {
        Array(UnsafeBufferPointer(start: $0, count: count))
    }
}

enum FuseTrampolines {
    static func table() -> fuse_lowlevel_ops {
        var ops = fuse_lowlevel_ops()
        ops.`init` = { userdata, conn in
            guard let userdata, let conn else { return }
            let box = Unmanaged<OperationsBox>.fromOpaque(userdata).takeUnretainedValue()
            // libfuse wants this one by default; it takes work of the filesystem (dropping set-ID
            // bits itself), so only one that asks for it in `initialize` gets it.
            let killPrivilege = FuseConnection.Capability.handleKillpriv.rawValue
            conn.pointee.want &= ~killPrivilege
            box.operations.initialize(FuseConnection(raw: conn))
            box.initReplyFlags.handleKillPrivilege.store(conn.pointee.want & killPrivilege != 0, ordering: .relaxed)
        }
        ops.destroy = { userdata in
            guard let userdata else { return }
            Unmanaged<OperationsBox>.fromOpaque(userdata).takeUnretainedValue().operations.destroy()
        }
        ops.lookup = { req, parent, name in
            guard let req, let name else { return }
            operations(req).lookup(FuseRequest(req), parent: parent, name: bytes(name))
        }
        ops.forget = { req, ino, nlookup in
            guard let req else { return }
            operations(req).forget(ino, lookups: nlookup)
            fuse_reply_none(req)
        }
        ops.forget_multi = { req, count, forgets in
            guard let req else { return }
            let ops = operations(req)
            if let forgets {
                for i in 0..<count { ops.forget(forgets[i].ino, lookups: forgets[i].nlookup) }
            }
            fuse_reply_none(req)
        }
        ops.getattr = { req, ino, fi in
            guard let req else { return }
            operations(req).getattr(FuseRequest(req), ino: ino, handle: fi?.pointee.fh)
        }
        ops.setattr = { req, ino, attr, toSet, fi in
            guard let req, let attr else { return }
            operations(req).setattr(
                FuseRequest(req), ino: ino, changes: AttributeChanges(stat: attr.pointee, toSet: toSet),
                handle: fi?.pointee.fh)
        }
        ops.readlink = { req, ino in
            guard let req else { return }
            operations(req).readlink(FuseRequest(req), ino: ino)
        }
        ops.mknod = { req, parent, name, mode, rdev in
            guard let req, let name else { return }
            operations(req).mknod(FuseRequest(req), parent: parent, name: bytes(name), mode: mode, rdev: UInt64(rdev))
        }
        ops.mkdir = { req, parent, name, mode in
            guard let req, let name else { return }
            operations(req).mkdir(FuseRequest(req), parent: parent, name: bytes(name), mode: mode)
        }
        ops.unlink = { req, parent, name in
            guard let req, let name else { return }
            operations(req).unlink(FuseRequest(req), parent: parent, name: bytes(name))
        }
        ops.rmdir = { req, parent, name in
            guard let req, let name else { return }
            operations(req).rmdir(FuseRequest(req), parent: parent, name: bytes(name))
        }
        ops.symlink = { req, link, parent, name in
            guard let req, let link, let name else { return }
            operations(req).symlink(FuseRequest(req), target: bytes(link), parent: parent, name: bytes(name))
        }
        ops.rename = { req, parent, name, newParent, newName, flags in
            guard let req, let name, let newName else { return }
            operations(req).rename(
                FuseRequest(req), parent: parent, name: bytes(name), newParent: newParent, newName: bytes(newName),
                flags: RenameFlags(rawValue: flags))
        }
        ops.link = { req, ino, newParent, newName in
            guard let req, let newName else { return }
            operations(req).link(FuseRequest(req), ino: ino, newParent: newParent, newName: bytes(newName))
        }
        ops.open = { req, ino, fi in
            guard let req else { return }
            operations(req).open(FuseRequest(req), ino: ino, info: FileInfo(fi))
        }
        ops.read = { req, ino, size, off, fi in
            guard let req else { return }
            operations(req).read(FuseRequest(req), ino: ino, size: size, offset: Int64(off), info: FileInfo(fi))
        }
        ops.write = { req, ino, buf, size, off, fi in
            guard let req else { return }
            operations(req).write(
                FuseRequest(req), ino: ino, data: UnsafeRawBufferPointer(start: buf, count: size), offset: Int64(off),
                info: FileInfo(fi))
        }
        ops.flush = { req, ino, fi in
            guard let req else { return }
            operations(req).flush(FuseRequest(req), ino: ino, info: FileInfo(fi))
        }
        ops.release = { req, ino, fi in
            guard let req else { return }
            operations(req).release(FuseRequest(req), ino: ino, info: FileInfo(fi))
        }
        ops.fsync = { req, ino, datasync, fi in
            guard let req else { return }
            operations(req).fsync(FuseRequest(req), ino: ino, dataOnly: datasync != 0, info: FileInfo(fi))
        }
        ops.opendir = { req, ino, fi in
            guard let req else { return }
            operations(req).opendir(FuseRequest(req), ino: ino, info: FileInfo(fi))
        }
        ops.readdir = { req, ino, size, off, fi in
            guard let req else { return }
            operations(req).readdir(FuseRequest(req), ino: ino, size: size, offset: Int64(off), info: FileInfo(fi))
        }
        ops.readdirplus = { req, ino, size, off, fi in
            guard let req else { return }
            operations(req).readdirplus(FuseRequest(req), ino: ino, size: size, offset: Int64(off), info: FileInfo(fi))
        }
        ops.releasedir = { req, ino, fi in
            guard let req else { return }
            operations(req).releasedir(FuseRequest(req), ino: ino, info: FileInfo(fi))
        }
        ops.fsyncdir = { req, ino, datasync, fi in
            guard let req else { return }
            operations(req).fsyncdir(FuseRequest(req), ino: ino, dataOnly: datasync != 0, info: FileInfo(fi))
        }
        ops.statfs = { req, ino in
            guard let req else { return }
            operations(req).statfs(FuseRequest(req), ino: ino)
        }
        ops.setxattr = { req, ino, name, value, size, flags in
            guard let req, let name else { return }
            operations(req).setxattr(
                FuseRequest(req), ino: ino, name: bytes(name), value: UnsafeRawBufferPointer(start: value, count: size),
                flags: flags)
        }
        ops.getxattr = { req, ino, name, size in
            guard let req, let name else { return }
            operations(req).getxattr(FuseRequest(req), ino: ino, name: bytes(name), size: size)
        }
        ops.listxattr = { req, ino, size in
            guard let req else { return }
            operations(req).listxattr(FuseRequest(req), ino: ino, size: size)
        }
        ops.removexattr = { req, ino, name in
            guard let req, let name else { return }
            operations(req).removexattr(FuseRequest(req), ino: ino, name: bytes(name))
        }
        ops.create = { req, parent, name, mode, fi in
            guard let req, let name else { return }
            operations(req).create(FuseRequest(req), parent: parent, name: bytes(name), mode: mode, info: FileInfo(fi))
        }
        ops.getlk = { req, ino, fi, lock in
            guard let req, let lock else { return }
            operations(req).getlk(FuseRequest(req), ino: ino, info: FileInfo(fi), lock: FileLock(lock.pointee))
        }
        ops.setlk = { req, ino, fi, lock, sleep in
            guard let req, let lock else { return }
            operations(req).setlk(
                FuseRequest(req), ino: ino, info: FileInfo(fi), lock: FileLock(lock.pointee), sleep: sleep != 0)
        }
        ops.flock = { req, ino, fi, op in
            guard let req else { return }
            operations(req).flock(FuseRequest(req), ino: ino, info: FileInfo(fi), operation: op)
        }
        ops.fallocate = { req, ino, mode, offset, length, fi in
            guard let req else { return }
            operations(req).fallocate(
                FuseRequest(req), ino: ino, mode: FallocateMode(rawValue: mode), offset: Int64(offset),
                length: Int64(length), info: FileInfo(fi))
        }
        ops.lseek = { req, ino, off, whence, fi in
            guard let req else { return }
            guard let whence = SeekWhence(whence) else {
                // The kernel resolves SEEK_SET/CUR/END itself and forwards only DATA and HOLE.
                fuse_reply_err(req, EINVAL)
                return
            }
            operations(req).lseek(FuseRequest(req), ino: ino, offset: Int64(off), whence: whence, info: FileInfo(fi))
        }
        ops.copy_file_range = { req, inoIn, offIn, fiIn, inoOut, offOut, fiOut, len, flags in
            guard let req else { return }
            operations(req).copyFileRange(
                FuseRequest(req), from: inoIn, offset: Int64(offIn), info: FileInfo(fiIn), to: inoOut,
                offset: Int64(offOut), info: FileInfo(fiOut), length: len, flags: flags)
        }
        return ops
    }
}
