import Foundation

/// The daemon's control protocol: one JSON request per line on the store's unix socket
/// (`<store>/daemon.sock`), one JSON response line back.
public struct ControlRequest: Codable, Sendable {
    public enum Operation: String, Codable, Sendable {
        case mount, unmount, status, shutdown, createWorkspace
    }

    public var op: Operation
    public var mountpoint: String?
    public var workspace: String?
    public var options: [String]?
    public var actor: String?

    public init(
        op: Operation, mountpoint: String? = nil, workspace: String? = nil, options: [String]? = nil,
        actor: String? = nil
    ) {
        self.op = op
        self.mountpoint = mountpoint
        self.workspace = workspace
        self.options = options
        self.actor = actor
    }
}

public struct MountInfo: Codable, Sendable, Equatable {
    public var mountpoint: String
    public var workspace: String?
    public var since: Double
}

public struct DaemonStatus: Codable, Sendable {
    public var pid: Int32
    public var mounts: [MountInfo]
    public var openHandles: Int
}

public struct ControlResponse: Codable, Sendable {
    public var ok: Bool
    public var error: String?
    public var status: DaemonStatus?

    static func failure(_ message: String) -> ControlResponse {
        ControlResponse(ok: false, error: message, status: nil)
    }
}
