import Glibc

extension FSError {
    /// Maps a failed system call's errno to the error a filesystem caller can act on.
    static func fromErrno(_ code: Int32, _ context: String) -> FSError {
        switch code {
        case ENOSPC, EDQUOT: .noSpace
        case ENOENT: .notFound
        case EEXIST: .exists
        case EACCES: .permissionDenied
        case EPERM: .notPermitted
        default: .io("\(context): \(String(cString: strerror(code)))")
        }
    }
}
