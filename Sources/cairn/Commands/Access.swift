import ArgumentParser
import CairnCore
import Foundation

extension Role: ExpressibleByArgument {}

struct GrantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant", abstract: "Give a user, a group or an agent a role in a workspace.",
        discussion: """
            PRINCIPAL: user:NAME, uid:N, group:NAME, gid:N, agent:NAME, or everyone (every \
            user without a grant of their own or of their groups). ROLE: reader (read), \
            writer (read and change), admin (also grant, revoke, transfer). Unix mode bits still \
            apply on top. Once a workspace has a grant to a user or a group, users without one \
            get nothing; a grant to an agent (the CAIRN_AGENT of the calling process) only \
            narrows what its user may do: actor names are labels within a user, not a security \
            boundary. Applies within a second to every request, also on descriptors already open.
            """)
    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The workspace.") var workspace: String
    @Argument(help: "user:NAME, uid:N, group:NAME, gid:N, agent:NAME or everyone.") var principal: String
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
    @Argument(help: "user:NAME, uid:N, group:NAME, gid:N, agent:NAME or everyone.") var principal: String

    func run() throws {
        try reporting {
            _ = try storeOptions.perform(.revoke(workspace: workspace, principal: principal))
            print("\(principal) has no grant in '\(workspace)' any more")
        }
    }
}

struct Access: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show who may do what in a workspace, or the store's default for new workspaces.",
        discussion: """
            Without a workspace, shows (or with --set-default, sets) the role new workspaces \
            give every user without a grant: writer (Unix mode bits decide) unless set; a \
            workspace created later starts with that role granted to `everyone`, which its \
            admins can change with `cairn grant WS everyone ROLE`. Setting it takes root or the \
            store's owner.
            """)
    @OptionGroup var storeOptions: StoreOptions
    @Argument(help: "The workspace.") var workspace: String?
    @Option(help: "Set the store's default role for new workspaces (reader, writer, admin or none).")
    var setDefault: Role?
    @Flag(help: "Print the result as JSON.") var json = false

    struct Output: Encodable {
        var workspace: String
        var owner_uid: UInt32
        var grants: [Grant]
        var others: Role
    }

    func run() throws {
        try reporting {
            if let setDefault {
                if workspace != nil { throw ValidationError("--set-default applies to the store, not to a workspace") }
                _ = try storeOptions.perform(.setDefaultRole(setDefault))
            }
            let store = try storeOptions.openReadOnly()
            defer { store.close() }
            let fs = try FileSystem(readOnly: store)
            guard let workspace else {
                let role = try fs.storeDefaultRole()
                if json { return try printJSON(["default_role": role.rawValue]) }
                return print("new workspaces give users without a grant: \(role.rawValue)")
            }
            let ws = try store.workspace(named: workspace)
            let grants = try fs.grants(in: ws)
            let others = FileSystem.othersRole(Dictionary(uniqueKeysWithValues: grants.map { ($0.principal, $0.role) }))
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
