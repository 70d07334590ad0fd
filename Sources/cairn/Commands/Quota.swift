import ArgumentParser
import CairnCore
import Foundation

struct Quota: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show or set a workspace's quota: bytes of current versions, and files.",
        discussion: """
            The quota counts the current versions of the workspace's live files (a file with \
            several names once) and its live files and directories; history is shown beside it \
            and not counted. The first write, close or fsync that would go past it fails with \
            EDQUOT ("Disk quota exceeded"), and nothing committed is touched; truncating or \
            deleting brings the workspace back under. `df` on a mount of the workspace shows the \
            quota. SIZE: bytes, or with K, M, G, T (powers of 1024).
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The workspace.") var workspace: String
    @Argument(help: "The limit on bytes (e.g. 500M, 20G).") var size: String?
    @Option(help: "The limit on files and directories.") var files: Int64?
    @Flag(help: "Remove the workspace's quota.") var none = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try reporting {
            let report: QuotaReport
            if none || size != nil || files != nil {
                let bytes = try size.map(Self.parseSize)
                guard
                    let r = try storeOptions.perform(
                        .setQuota(workspace: workspace, bytes: none ? nil : bytes, files: none ? nil : files)
                    ).quota
                else { throw CLIError(message: "the store did not answer") }
                report = r
            } else {
                let store = try storeOptions.openReadOnly()
                defer { store.close() }
                report = try FileSystem(readOnly: store).quotaReport(of: store.workspace(named: workspace))
            }
            if json { return try printJSON(report) }
            let bytes = report.limitBytes.map { "of \(formatBytes($0))" } ?? "(no limit)"
            let files = report.limitFiles.map { "of \($0)" } ?? "(no limit)"
            print(
                "\(report.workspace): \(formatBytes(report.usedBytes)) used \(bytes); \(report.usedFiles) files \(files)"
            )
            print("history (not counted): \(formatBytes(report.historyBytes)) named by all versions")
        }
    }

    static func parseSize(_ text: String) throws -> Int64 {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        let upper = text.uppercased().replacingOccurrences(of: "B", with: "").replacingOccurrences(of: "I", with: "")
        if let unit = upper.last.flatMap({ units[$0] }), let n = Int64(upper.dropLast()), n >= 0,
            n <= Int64.max / unit
        {
            return n * unit
        }
        guard let n = Int64(upper), n >= 0 else {
            throw CLIError(message: "'\(text)' is not a size; use bytes, or 500M, 20G", code: .usage)
        }
        return n
    }
}
