import CFuse3
import Glibc

/// The body of a readdir or readdirplus answer. `add` returns false once the kernel's buffer is
/// full; the entry that did not fit is not added and must be offered again at the next call.
public struct DirectoryBuffer: ~Copyable {
    let request: fuse_req_t
    let base: UnsafeMutableRawPointer
    let capacity: Int
    var used = 0

    init(request: fuse_req_t, capacity: Int) {
        self.request = request
        self.capacity = capacity
        base = UnsafeMutableRawPointer.allocate(byteCount: max(capacity, 1), alignment: 8)
    }

    deinit { base.deallocate() }

    public var isEmpty: Bool { used == 0 }

    /// readdir: name, the node's id and type, and the offset at which the next call resumes.
    public mutating func add(name: [UInt8], ino: InodeNumber, mode: mode_t, nextOffset: Int64) -> Bool {
        var st = stat()
        st.st_ino = UInt(ino)
        st.st_mode = mode
        let req = request
        return append(name: name) { buf, remaining, cName in
            fuse_add_direntry(req, buf, remaining, cName, &st, off_t(nextOffset))
        }
    }

    /// readdirplus: as `add`, with the full entry. Every entry added counts as one lookup.
    public mutating func addPlus(name: [UInt8], entry: Entry, nextOffset: Int64) -> Bool {
        var e = entry.cValue
        let req = request
        return append(name: name) { buf, remaining, cName in
            fuse_add_direntry_plus(req, buf, remaining, cName, &e, off_t(nextOffset))
        }
    }

    private mutating func append(
        name: [UInt8], _ add: (UnsafeMutablePointer<CChar>, Int, UnsafePointer<CChar>) -> Int
    ) -> Bool {
        var cName = name
        cName.append(0)
        let remaining = capacity - used
        let target = (base + used).assumingMemoryBound(to: CChar.self)
        let needed = cName.withUnsafeBufferPointer { nameBuf in
            nameBuf.withMemoryRebound(to: CChar.self) { n in add(target, remaining, n.baseAddress!) }
        }
        guard needed <= remaining else { return false }
        used += needed
        return true
    }
}
