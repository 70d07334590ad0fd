import ArgumentParser
import CairnCore
import Foundation
import Glibc

struct Fsck: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the store: SQLite integrity, every reference, every chunk's hash and size.",
        discussion: "Exit status: 0 clean, 4 problems found, 3 the store cannot be opened.")

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Skip reading back every chunk (faster).") var skipBlobs = false
    @Flag(help: "Print the result as JSON.") var json = false

    struct Report: Encodable {
        var clean: Bool
        var problems: [Problem]
    }

    func run() throws {
        try reporting {
            let store = try storeOptions.openReadOnly()
            defer { store.close() }
            let tty = isatty(2) != 0 && !json
            let problems = try store.check(verifyBlobs: !skipBlobs) { done, total in
                guard tty, total > 0, done % 256 == 0 || done == total else { return }
                FileHandle.standardError.write(Data("\rchecking chunks \(done)/\(total)".utf8))
                if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
            }
            if json {
                try printJSON(Report(clean: problems.isEmpty, problems: problems))
            } else if problems.isEmpty {
                print("clean: no problems found")
            } else {
                for p in problems { print(p) }
                print("\(problems.count) problem(s) found")
            }
            if !problems.isEmpty { throw ExitCode(CLIError.Code.problemsFound.rawValue) }
        }
    }
}
