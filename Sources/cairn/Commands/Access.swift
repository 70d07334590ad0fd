import ArgumentParser
import CairnCore
import Foundation

extension Role: ExpressibleByArgument {}

struct GrantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant", abstract: "Give a user, a group or an agent a role in a workspace.",
        discussion: """
            PRINCIPAL: user:NAME, uid:N, group:NAME, gid:N or agent:NAME. ROLE: reader (read), \
            writer (read and change), admin (also grant, revoke, transfer). Unix mode bits still \
            apply on top. Once a workspace has a grant to a user or a group, users without one \
            get nothing; a grant to an agent (the CAIRN_AGENT of the calling process) only \
            narrows what its user may do: actor names are labels within a user, not a security \
            boundary. Applies within a second to every request, also on descriptors already open.
            """)
    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The workspace.") var workspace: String
    @Argument(help: "user:NAME, uid:N, group:NAME, gid:N or agent:NAME.") var principal: String
    @Argument(help: "reader, writer or admin.") var role: Role

    func run() throws {
        try reporting {
            _ = try storeOptions.perform(.grant(workspace: workspace, principal: principal, role: role))
            print("\(principal) is \(role.rawValue) of '\(workspace)'")
        }
    }
}

struct Revoke: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Take a principal's grant in a workspace away.")
    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The workspace.") var workspace: String
    @Argument(help: "user:NAME, uid:N, group:NAME, gid:N or agent:NAME.") var principal: String

    func run() throws {
        try reporting {
            _ = try storeOptions.perform(.revoke(workspace: workspace, principal: principal))
            print("\(principal) has no grant in '\(workspace)' any more")
        }
    }
}

struct Access: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show who may do what in a workspace.")
    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The workspace.") var workspace: String
    @Flag(help: "Print the result as JSON.") var json = false

    struct Output: Encodable {
        var workspace: String
        var owner_uid: UInt32
        var grants: [Grant]
        var others: Role
    }

    func run() throws {
        try reporting {
            let store = try storeOptions.openReadOnly()
            defer { store.close() }
            let ws = try store.workspace(named: workspace)
            let grants = try FileSystem(readOnly: store).grants(in: ws)
            let others: Role = grants.contains { !$0.principal.hasPrefix("agent:") } ? .none : FileSystem.defaultRole
            if json {
                return try printJSON(Output(workspace: ws.name, owner_uid: ws.owner, grants: grants, others: others))
            }
            print("owner     uid:\(ws.owner) (admin)")
            for g in grants {
                print("\(g.principal.padding(toLength: 9, withPad: " ", startingAt: 0)) \(g.role.rawValue)")
            }
            print("others    \(others.rawValue)\(others == .writer ? " (Unix mode bits decide)" : "")")
        }
    }
}
