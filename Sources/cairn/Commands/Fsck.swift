import ArgumentParser
import CairnCore
import Foundation
import Glibc

struct Fsck: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the store: SQLite integrity, every reference and link count, every chunk's hash and size.",
        discussion: """
            Each problem names the files (workspace:path) and versions it affects. --repair does \
            only what loses nothing: it recomputes link counts and deletes unreferenced chunks and \
            unused manifests, then checks again. A damaged or missing chunk cannot be repaired: \
            restore the files it names from a version whose chunks are intact (`cairn log`, \
            `cairn restore --version`). Exit status: 0 clean, 4 problems found, 3 the store cannot \
            be opened.
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Skip reading back every chunk (faster).") var skipBlobs = false
    @Flag(help: "Repair what can be repaired without losing anything, then check again.") var repair = false
    @Flag(help: "Print the result as JSON.") var json = false

    struct Output: Encodable {
        var clean: Bool
        var problems: [Problem]
        var reclaimable_chunks: Int
        var reclaimable_bytes: Int64
        var repaired: RepairSummary?
    }

    func run() throws {
        try reporting {
            let terminal = isatty(2) != 0 && !json
            var repaired: RepairSummary?
            if repair {
                repaired = try storeOptions.perform(.repair) { step in
                    if terminal { FileHandle.standardError.write(Data("\rrepairing: \(step.phase)   ".utf8)) }
                }.repair
                if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            }
            let store = try storeOptions.openReadOnly()
            defer { store.close() }
            let report = try store.checkReport(verifyBlobs: !skipBlobs) { done, total in
                guard terminal, total > 0, done % 256 == 0 || done == total else { return }
                FileHandle.standardError.write(Data("\rchecking chunks \(done)/\(total)".utf8))
                if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
            }
            if json {
                try printJSON(
                    Output(
                        clean: report.clean, problems: report.problems, reclaimable_chunks: report.reclaimableChunks,
                        reclaimable_bytes: report.reclaimableBytes, repaired: repaired))
            } else {
                if let repaired {
                    print(
                        "repaired: \(repaired.linkCountsFixed) link count(s); deleted \(repaired.garbage.chunksDeleted) unreferenced chunk(s) (\(formatBytes(repaired.garbage.bytesFreed))) and \(repaired.garbage.manifestsDeleted) unused manifest(s)"
                    )
                }
                for p in report.problems { print(p) }
                if report.reclaimableChunks > 0 {
                    print(
                        "\(report.reclaimableChunks) unreferenced chunk(s), \(formatBytes(report.reclaimableBytes)): `cairn fsck --repair` or `cairn gc` deletes them"
                    )
                }
                print(report.clean ? "clean: no problems found" : "\(report.problems.count) problem(s) found")
            }
            if !report.clean { throw ExitCode(CLIError.Code.problemsFound.rawValue) }
        }
    }
}
