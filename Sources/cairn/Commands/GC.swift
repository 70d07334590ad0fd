import ArgumentParser
import CairnCore
import Foundation
import Glibc

struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Apply each workspace's retention policy and delete the chunks nothing kept uses.",
        discussion: """
            The default policy keeps every version for 24 hours, then one per hour for 7 days, then \
            one per day for 30 days; a file's current version and every version a snapshot shows \
            are always kept. Change it per workspace with `cairn workspace retention`. Safe while \
            mounts are writing. --dry-run says what would go without changing anything.
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Report what would be released and freed, and change nothing.") var dryRun = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try reporting {
            let terminal = isatty(2) != 0 && !json
            let result = try storeOptions.perform(.collectGarbage(dryRun: dryRun)) { step in
                guard terminal else { return }
                let percent = step.total > 0 ? step.done * 100 / step.total : 100
                FileHandle.standardError.write(Data("\r\(step.phase) \(percent)%   ".utf8))
            }
            if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            guard let s = result.gc else { throw CLIError(message: "the store did not answer") }
            if json { return try printJSON(s) }
            let verb = s.dryRun ? "would release" : "released"
            print(
                "\(verb) \(s.versionsReleased) version(s)\(s.filesForgotten > 0 ? ", forgetting \(s.filesForgotten) deleted file(s)" : "")"
            )
            print(
                "\(s.dryRun ? "would free" : "freed") \(formatBytes(s.bytesFreed)) in \(s.chunksDeleted) chunk(s); \(s.chunksKept) chunk(s) kept"
            )
        }
    }
}

func formatBytes(_ n: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    var value = Double(n)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
}
