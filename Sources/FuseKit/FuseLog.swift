import Glibc

/// Diagnostics from the binding go straight to fd 2: glibc's `stderr` is not usable in Swift 6
/// mode, and the binding must not depend on a logging framework.
public enum FuseLog {
    public static func write(_ message: String) {
        let line = "fusekit: " + message + "\n"
        line.utf8CString.withUnsafeBufferPointer { buf in
            _ = Glibc.write(2, buf.baseAddress, buf.count - 1)
        }
    }
}
