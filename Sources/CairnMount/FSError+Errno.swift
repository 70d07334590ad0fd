import CairnCore
import Glibc

extension FSError {
    /// The one table from Cairn's errors to the errno a program sees.
    var errno: Int32 {
        switch self {
        case .notFound: ENOENT
        case .exists: EEXIST
        case .notDirectory: ENOTDIR
        case .isDirectory: EISDIR
        case .notEmpty: ENOTEMPTY
        case .invalidArgument: EINVAL
        case .nameTooLong: ENAMETOOLONG
        case .fileTooLarge: EFBIG
        case .noSpace: ENOSPC
        case .permissionDenied, .notAllowed: EACCES
        case .notPermitted: EPERM
        // getxattr/removexattr of an absent attribute: Linux says ENODATA (== ENOATTR).
        case .noAttribute: ENODATA
        // A value over XATTR_SIZE_MAX: setxattr(2) documents E2BIG.
        case .attributeTooLarge: E2BIG
        // Answer larger than the caller's buffer (getxattr, listxattr, over-long xattr names).
        case .bufferTooSmall: ERANGE
        // Unknown xattr namespaces and fallocate modes: EOPNOTSUPP, as ext4.
        case .notSupported: EOPNOTSUPP
        case .readOnly: EROFS
        case .badHandle: EBADF
        // lseek SEEK_DATA/SEEK_HOLE at or past the end: ENXIO (see man 2 lseek).
        case .noData: ENXIO
        case .tooManyLinks: EMLINK
        case .crossDevice: EXDEV
        case .busy: EBUSY
        case .deadlock: EDEADLK
        case .interrupted: EINTR
        case .lockLost: ENOLCK
        case .quotaExceeded: EDQUOT
        case .io: EIO
        }
    }
}
