import CairnCore
import Foundation

/// The daemon's control protocol: one JSON request per line on the store's unix socket
/// (`<store>/daemon.sock`), one JSON response line back.
public struct ControlRequest: Codable, Sendable {
    public enum Operation: String, Codable, Sendable {
        case mount, unmount, status, shutdown, perform, lock, locks, webhookTest, webhookRetry
        /// Commit what the daemon has answered for, before the CLI reads the database itself.
        case commit
    }

    public var op: Operation
    public var mountpoint: String?
    public var workspace: String?
    public var options: [String]?
    public var actor: String?
    /// For `perform`.
    public var action: StoreAction?
    /// For `lock`: the file (relative to the workspace root), the mode, how long to wait
    /// (nil: for ever), and the requesting process.
    public var path: String?
    public var shared: Bool?
    public var wait: Double?
    public var pid: Int32?
    /// For `webhookTest` (a webhook) and `webhookRetry` (a delivery).
    public var id: Int64?

    public init(
        op: Operation, mountpoint: String? = nil, workspace: String? = nil, options: [String]? = nil,
        actor: String? = nil, action: StoreAction? = nil, path: String? = nil, shared: Bool? = nil,
        wait: Double? = nil, pid: Int32? = nil, id: Int64? = nil
    ) {
        self.id = id
        self.action = action
        self.path = path
        self.shared = shared
        self.wait = wait
        self.pid = pid
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
    public var result: StoreActionResult?
    /// A line of progress of a long action; the answer follows later on the same connection.
    public var progress: GCProgress?
    /// For `lock`: the fencing token of the grant. For `locks`: every lock.
    public var token: Int64?
    public var locks: [LockReport]?
    /// For `webhookTest` and `webhookRetry`: the receiver's HTTP status, or why there was none.
    public var httpStatus: Int?
    public var detail: String?
    public var delivery: WebhookDelivery?

    static func progress(_ progress: GCProgress) -> ControlResponse {
        var response = ControlResponse(ok: true, error: nil, status: nil)
        response.progress = progress
        return response
    }

    static func failure(_ message: String) -> ControlResponse {
        ControlResponse(ok: false, error: message, status: nil)
    }
}
