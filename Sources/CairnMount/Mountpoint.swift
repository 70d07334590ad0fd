import Foundation
import Glibc

/// Checks on a directory before mounting on it.
public enum Mountpoint {
    /// The fsname suffix of a mount of every workspace (`cairn:.all`): workspace names cannot
    /// start with a dot, so it never names one.
    public static let allWorkspaces = ".all"

    /// The canonical path of a usable mountpoint for a store at `storePath`.
    static func validate(_ path: String, storePath: String) throws(MountError) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOTCONN { throw MountError.alreadyMounted(path) }  // a dead FUSE mount
            throw MountError.mountpointMissing(path)
        }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw MountError.notADirectory(path) }
        let canonical = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        if isMountpoint(canonical) { throw MountError.alreadyMounted(canonical) }
        let store = URL(fileURLWithPath: storePath).resolvingSymlinksInPath().path
        if canonical == store || canonical.hasPrefix(store + "/") || store.hasPrefix(canonical + "/") {
            throw MountError.insideStore(canonical)
        }
        return canonical
    }

    /// Whether `path` is listed as a mountpoint in /proc/self/mountinfo.
    static func isMountpoint(_ path: String) -> Bool {
        guard let info = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return false }
        for line in info.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 4, unescape(String(fields[4])) == path { return true }
        }
        return false
    }

    /// mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    private static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out = [UInt8]()
        let bytes = Array(s.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 3 < bytes.count,
                let v = UInt8(String(decoding: bytes[(i + 1)...(i + 3)], as: UTF8.self), radix: 8)
            {
                out.append(v)
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The mount options given to libfuse: ours, then the user's (validated, since libfuse
    /// refuses the whole mount on one option it does not know).
    static func options(user: [String], workspace: String, isRoot: Bool) throws(MountError) -> [String] {
        var options = ["default_permissions", "fsname=cairn:\(workspace)", "subtype=cairn"]
        if isRoot { options.append("allow_other") }
        for group in user {
            for option in group.split(separator: ",").map(String.init) where !option.isEmpty {
                let key = option.split(separator: "=", maxSplits: 1).first.map(String.init) ?? option
                switch key {
                case "ro", "rw", "allow_other", "allow_root", "fsname", "subtype", "dev", "nodev", "suid", "nosuid",
                    "exec", "noexec", "atime", "noatime", "sync", "async", "dirsync":
                    if !options.contains(option) { options.append(option) }
                case "default_permissions":
                    continue
                default:
                    throw MountError.unknownOption(option)
                }
            }
        }
        return options
    }
}
