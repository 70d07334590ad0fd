import ArgumentParser
import CairnCore
import Foundation
import Glibc

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what changed in a file between two versions, or between a version and now.",
        discussion: """
            With no VERSION: the last change (the version before the current one, against the \
            current one). With one: that version against the current one. With two: the first \
            against the second. VERSIONs are the numbers `cairn log PATH` shows. Text is shown \
            as a unified diff; binary content is only said to differ.
            """)

    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The file: a path in a Cairn mount, or relative to the workspace root.") var path: String
    @Argument(help: "The older version (default: the one before the current one).") var from: Int64?
    @Argument(help: "The newer version (default: the current one).") var to: Int64?
    @Option(help: "The workspace (default: the mount's, else 'default').") var workspace: String?
    @Flag(help: "Print the result as JSON.") var json = false

    /// Both sides are read into memory; larger files are refused rather than exhaust it.
    static let sizeLimit: Int64 = 256 << 20

    struct Side: Encodable {
        var version: Int64
        var seq: Int64
        var time: String
        var size: Int64
        var actor: String
    }

    struct Output: Encodable {
        var path: String
        var from: Side
        var to: Side
        var identical: Bool
        var binary: Bool
        var diff: String?
    }

    func run() throws {
        try reporting {
            let found = try PathHistory(path, workspace: workspace, storeOptions: storeOptions)
            defer { found.store.close() }
            let versions = found.versions
            func pick(_ id: Int64) throws -> VersionRecord {
                guard let v = versions.first(where: { $0.id == id }) else {
                    throw CLIError(message: "'\(found.target.relative)' has no version \(id); see `cairn log \(path)`")
                }
                return v
            }
            let older: VersionRecord
            let newer: VersionRecord
            switch (from, to) {
            case (nil, _):
                guard versions.count > 1 else {
                    throw CLIError(message: "'\(found.target.relative)' has one version only")
                }
                (older, newer) = (versions[1], versions[0])
            case (let a?, nil): (older, newer) = (try pick(a), versions[0])
            case (let a?, let b?): (older, newer) = (try pick(a), try pick(b))
            }
            for v in [older, newer] where v.mode & S_IFMT != S_IFREG {
                throw CLIError(message: "version \(v.id) of '\(found.target.relative)' is not a regular file")
            }
            guard older.size <= Self.sizeLimit, newer.size <= Self.sizeLimit else {
                throw CLIError(
                    message: "a version is larger than \(Self.sizeLimit >> 20) MiB; compare with `cairn cat` and cmp")
            }
            let a = try found.content(of: older)
            let b = try found.content(of: newer)
            let binary = Self.looksBinary(a) || Self.looksBinary(b)
            let name = found.target.relative
            var text: String?
            if a != b && !binary {
                text = try Self.unifiedDiff(
                    a, b, labels: ["a/\(name)\tversion \(older.id)", "b/\(name)\tversion \(newer.id)"])
            }
            let side = { (v: VersionRecord) in
                Side(version: v.id, seq: v.seq, time: isoTime(v.time), size: v.size, actor: v.actor)
            }
            if json {
                return try printJSON(
                    Output(
                        path: name, from: side(older), to: side(newer), identical: a == b, binary: binary, diff: text))
            }
            if a == b {
                print("versions \(older.id) and \(newer.id) of '\(name)' have the same content")
            } else if binary {
                print(
                    "binary versions \(older.id) and \(newer.id) of '\(name)' differ (\(a.count) and \(b.count) bytes)")
            } else if let text {
                FileHandle.standardOutput.write(Data(text.utf8))
            }
        }
    }

    /// As git decides: a NUL byte in the first 8000 bytes.
    static func looksBinary(_ bytes: [UInt8]) -> Bool { bytes.prefix(8000).contains(0) }

    /// `diff -u` of two byte strings, through temporary files only this user can read.
    static func unifiedDiff(_ a: [UInt8], _ b: [UInt8], labels: [String]) throws -> String {
        let files = try [a, b].map { bytes -> String in
            var template = Array((NSTemporaryDirectory() + "/cairn-diff-XXXXXX").utf8CString)
            let fd = mkstemp(&template)
            guard fd >= 0 else {
                throw CLIError(message: "cannot create a temporary file: \(String(cString: strerror(errno)))")
            }
            defer { close(fd) }
            let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            var done = 0
            while done < bytes.count {
                let n = bytes[done...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                guard n > 0 else { throw CLIError(message: "cannot write a temporary file") }
                done += n
            }
            return path
        }
        defer { for f in files { unlink(f) } }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/diff")
        process.arguments = ["-u", "--label", labels[0], "--label", labels[1], files[0], files[1]]
        let pipe = Pipe()
        process.standardOutput = pipe
        do {
            try process.run()
        } catch {
            throw CLIError(message: "cannot run /usr/bin/diff (install the diffutils package): \(error)")
        }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus <= 1 else { throw CLIError(message: "diff failed") }
        return String(decoding: output, as: UTF8.self)
    }
}
