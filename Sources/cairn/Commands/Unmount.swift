import ArgumentParser
import CairnMount
import Foundation
import Glibc

struct Unmount: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Unmount a Cairn mount after committing its open files.",
        discussion: "A mount whose daemon died (kill -9) is detached with fusermount3 -uz.")

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The mountpoint.") var mountpoint: String

    func run() throws {
        try reporting {
            let path = URL(fileURLWithPath: mountpoint).standardizedFileURL.path
            if let response = DaemonClient.send(
                ControlRequest(op: .unmount, mountpoint: path), storePath: storeOptions.path)
            {
                if response.ok {
                    try waitUntilGone(path)
                    print("unmounted \(path)")
                    return
                }
                guard isDeadMount(path) else { throw CLIError(message: response.error ?? "the daemon refused") }
            }
            guard PathArgument.cairnMounts().contains(where: { $0.point == path }) || isFuseMount(path) else {
                throw CLIError(message: "\(path) is not a Cairn mount")
            }
            // This store's daemon does not serve it: detach it only if it is dead; a live mount
            // belongs to another store's daemon, and detaching it would cut off its open files.
            guard isDeadMount(path) else {
                throw CLIError(
                    message:
                        "\(path) is served by a running Cairn daemon of another store than \(storeOptions.path); "
                        + "pass that store with --store or CAIRN_STORE")
            }
            let status = run("/bin/fusermount3", ["-uz", path])
            guard status == 0 || run("/bin/umount", ["-l", path]) == 0 else {
                throw CLIError(message: "could not detach \(path); try `fusermount3 -uz \(path)` as its owner or root")
            }
            print("detached \(path) (its daemon was not running)")
        }
    }

    /// A FUSE mount whose daemon is gone answers every access with ENOTCONN.
    private func isDeadMount(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) != 0 && errno == ENOTCONN
    }

    private func isFuseMount(_ path: String) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return false }
        return text.split(separator: "\n").contains { line in
            let f = line.split(separator: " ")
            return f.count > 2 && f[1] == path && f[2].hasPrefix("fuse")
        }
    }

    private func waitUntilGone(_ path: String) throws {
        for _ in 0..<100 {
            if !isFuseMount(path) { return }
            usleep(50_000)
        }
        throw CLIError(
            message: "\(path) is still mounted after 5 s; a process may still use it (see `fuser -vm \(path)`)")
    }

    private func run(_ tool: String, _ args: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        do { try p.run() } catch { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }
}
