import CFuse3
import Glibc

/// The session's reads and writes of its device, as libfuse's custom I/O on the descriptor it
/// mounted: one worker at a time reads, polling before it sleeps (`DeviceReader`), and the
/// INIT exchange gets the flags libfuse leaves out (`InitReplyFlags`).
enum DeviceIO {
    static func io() -> fuse_custom_io {
        var io = fuse_custom_io()
        io.read = { fd, buffer, length, userdata in
            let box = userdata.map(DeviceIO.box)
            let count = box?.reader.read(fd, buffer, length) ?? Glibc.read(fd, buffer, length)
            if let box, let buffer, count > 0 { InitReplyFlags.noteRead(buffer, count: count, box.initReplyFlags) }
            return count
        }
        io.writev = { fd, vectors, count, userdata in
            if let vectors, let userdata, count >= 2 {
                InitReplyFlags.patch(vectors, DeviceIO.box(userdata).initReplyFlags)
            }
            return Glibc.writev(fd, vectors, count)
        }
        return io
    }

    private static func box(_ userdata: UnsafeMutableRawPointer) -> OperationsBox {
        // SAFETY: libfuse passes the session's userdata, the OperationsBox FuseSession retains.
        Unmanaged<OperationsBox>.fromOpaque(userdata).takeUnretainedValue()
    }
}
