import ArgumentParser
import CairnCore
import Foundation
import Glibc

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a store with a workspace named 'default'.")

    @OptionGroup var storeOptions: StoreOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try reporting {
            let store: Store
            do {
                store = try Store.create(at: storeOptions.path, owner: (getuid(), getgid()))
            } catch {
                throw CLIError(message: "\(error)")
            }
            defer { store.close() }
            if json {
                try printJSON(["store": store.path, "uuid": store.identifier, "workspace": "default"])
            } else {
                print("created store \(store.path) (id \(store.identifier)) with workspace 'default'")
                print("next: mkdir -p ~/cairn && cairn mount ~/cairn")
            }
        }
    }
}
