import ArgumentParser
import CairnCore
import Foundation
import Glibc

struct Cat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a file's content, now or at a version shown by `cairn log`.")

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The file.") var path: String
    @Option(help: "The version (from `cairn log`); default: the current one.") var version: Int64?
    @Option(help: "The workspace (default: the mount's, else 'default').") var workspace: String?

    func run() throws {
        try reporting {
            let found = try PathHistory(path, workspace: workspace, storeOptions: storeOptions)
            defer { found.store.close() }
            let (fs, target, history) = (found.fs, found.target, found.versions)
            let chosen: VersionRecord
            if let version {
                guard let v = history.first(where: { $0.id == version }) else {
                    throw CLIError(message: "'\(target.relative)' has no version \(version); see `cairn log \(path)`")
                }
                chosen = v
            } else {
                chosen = history[0]
            }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            var offset: Int64 = 0
            while true {
                let n = try fs.read(version: chosen, offset: offset, into: buffer)
                if n == 0 { break }
                var done = 0
                while done < n {
                    let w = write(1, buffer.baseAddress! + done, n - done)
                    if w <= 0 { throw ExitCode(1) }
                    done += w
                }
                offset += Int64(n)
            }
        }
    }
}
