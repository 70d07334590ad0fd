/// Limits of Cairn that programs can observe. SEMANTICS.md documents each one.
public enum Limits {
    /// Largest file size: 8 PiB. Larger sizes fail with `EFBIG`.
    public static let maxFileSize: Int64 = 1 << 53
    /// Longest name of one directory entry, in bytes (as ext4).
    public static let maxNameLength = 255
    /// Largest value of one extended attribute (as Linux's XATTR_SIZE_MAX).
    public static let maxXattrValue = 65536
    /// Longest extended attribute name (as Linux's XATTR_NAME_MAX).
    public static let maxXattrName = 255
    /// Largest total size of all names of one inode's extended attributes (as XATTR_LIST_MAX).
    public static let maxXattrList = 65536
    /// Most hard links to one inode (as ext4).
    public static let maxLinks: UInt64 = 65000
}
