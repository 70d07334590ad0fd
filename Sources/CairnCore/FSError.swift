/// The one error type of filesystem operations. The adapter maps each case to an errno in one
/// table (`FSError+Errno` in CairnMount); the CLI prints `description`.
public enum FSError: Error, Equatable, CustomStringConvertible, Sendable {
    case notFound
    case exists
    case notDirectory
    case isDirectory
    case notEmpty
    case invalidArgument(String)
    case nameTooLong
    case fileTooLarge
    case noSpace
    case permissionDenied
    /// EACCES, with what the caller lacks.
    case notAllowed(String)
    case notPermitted
    case noAttribute
    case attributeTooLarge
    case bufferTooSmall
    case notSupported
    case readOnly
    case badHandle
    case noData
    case tooManyLinks
    case crossDevice
    /// In use in a way the operation cannot go around; says what to do.
    case busy(String)
    /// Waiting for this lock would wait for ever (EDEADLK).
    case deadlock
    /// The wait was interrupted (EINTR).
    case interrupted
    /// The lock this change was made under was lost and granted to another (ENOLCK).
    case lockLost
    /// The workspace's quota would be exceeded (EDQUOT).
    case quotaExceeded
    case io(String)

    public var description: String {
        switch self {
        case .notFound: "no such file or directory"
        case .exists: "file exists"
        case .notDirectory: "not a directory"
        case .isDirectory: "is a directory"
        case .notEmpty: "directory not empty"
        case .invalidArgument(let why): "invalid argument: \(why)"
        case .nameTooLong: "name longer than 255 bytes"
        case .fileTooLarge: "file larger than Cairn's maximum file size (\(Limits.maxFileSize) bytes)"
        case .noSpace: "no space left on the disk that holds the store; free space, then retry"
        case .permissionDenied: "permission denied"
        case .notAllowed(let why): "permission denied: \(why)"
        case .notPermitted: "operation not permitted"
        case .noAttribute: "no such extended attribute"
        case .attributeTooLarge: "extended attribute too large"
        case .bufferTooSmall: "buffer too small for the answer"
        case .notSupported: "operation not supported"
        case .readOnly: "read-only"
        case .badHandle: "bad file handle"
        case .noData: "no data at or after this offset"
        case .tooManyLinks: "too many links"
        case .crossDevice: "cross-device link"
        case .busy(let why): "busy: \(why)"
        case .deadlock: "waiting for this lock would deadlock"
        case .interrupted: "interrupted"
        case .quotaExceeded: "the workspace's quota is reached; free space in it, or raise it with `cairn quota`"
        case .lockLost:
            "the lock this change was made under was lost and granted to another holder; the change is refused"
        case .io(let why): "I/O error: \(why)"
        }
    }
}
