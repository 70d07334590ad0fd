"""Differential test: the same random filesystem operations on a Cairn mount and on a plain
directory of the local disk (ext4), compared result by result and errno by errno.

Each seed drives a reproducible sequence of operation records such as
`('rename2', 'a/b', 'c', 2)`, chosen from the reference tree's current state (mostly existing
paths, sometimes missing or malformed ones). Each record runs on the Cairn mount, then on the
reference directory; return values, bytes read, stat fields and errno names must be equal.
Every CHECK_EVERY steps, every REMOUNT_EVERY steps after a remount of Cairn, and at the end,
the whole trees are compared: names, types, modes, sizes, contents, symlink targets, nlink,
which names share an inode, and `user.*` xattrs.

Never compared, because they legitimately differ: inode numbers, times, directory sizes,
st_blocks, and the limits SEMANTICS.md documents as Cairn's own (8 PiB files, 64 KiB xattr
values, 1 MiB of xattrs per inode; the test stays below ext4's smaller limits).

    CAIRN_DIFF_SEED=7          run only seed 7 (a comma list runs several; default 1,2,3)
    CAIRN_DIFF_OPS=5000        operations per seed (default 2000)

A failure prints the seed, the step, the diverging operation with both results, and the
operations before it (with the ext4 result) to reproduce it.
"""
import ctypes
import errno
import hashlib
import inspect
import os
import subprocess
import random
import stat
import unittest

from cairnfs import CairnMount

OPS = int(os.environ.get("CAIRN_DIFF_OPS") or 2000)
SEEDS = [int(s) for s in (os.environ.get("CAIRN_DIFF_SEED") or "1,2,3").split(",") if s.strip()]
CHECK_EVERY = 250  # full-tree comparison period, in steps
REMOUNT_EVERY = 500  # close every descriptor, remount Cairn, compare the trees again
HISTORY = 20  # operations shown in a failure message

NAMES = ["a", "b", "c", "d", "e", "f", "g"]
# Rarely: names that are not plain ASCII words (spaces, newline, UTF-8, bytes that are not UTF-8).
ODD_NAMES = ["sp ace", "new\nline", "\u00fcn\u00efc\u00f8de", os.fsdecode(b"\xff\xfe-raw"), "-dash", "..dots", "quo'te\"s"]
XATTRS = ["user.a", "user.b", "user.c", "user.long." + "x" * 40]
ODD_XATTRS = ["user.sp ace", "user." + os.fsdecode(b"\xff\xfe"), "user.\u00fc"]
MODES = [0o644, 0o600, 0o755, 0o700, 0o777, 0o000, 0o444, 0o640, 0o4755, 0o2755, 0o1777, 0o2775]
MAX_DEPTH = 3
MAX_HANDLES = 8
# Symlink targets never contain "..": following one can never leave the tree under test.
MISSING_ABS = "/proc/cairn-diff-nonexistent"

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
AT_FDCWD = -100
_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(src, dst, flags):
    fn = getattr(_libc, "renameat2", None)
    if fn is not None:
        rc = fn(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), ctypes.c_uint(flags))
    else:  # glibc < 2.28: the raw system call (x86_64 316, aarch64 276)
        nr = {"x86_64": 316, "aarch64": 276}[os.uname().machine]
        rc = _libc.syscall(nr, AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), ctypes.c_uint(flags))
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), src, None, dst)


FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 0x01, 0x02, 0x10
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]


def fallocate(fd, mode, offset, length):
    if _libc.fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def payload(n, dseed):
    return random.Random(dseed).randbytes(n)


OPEN_FLAGS = [(getattr(os, n), n) for n in (
    "O_WRONLY", "O_RDWR", "O_CREAT", "O_EXCL", "O_TRUNC", "O_APPEND", "O_DIRECTORY", "O_NOFOLLOW")]


def flag_names(flags):
    names = [n for v, n in OPEN_FLAGS if flags & v]
    if not flags & (os.O_WRONLY | os.O_RDWR):
        names.insert(0, "O_RDONLY")
    return "|".join(names)


def kind_of(mode):
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink")):
        if test(mode):
            return name
    return "other:%o" % stat.S_IFMT(mode)


def sig(st):
    """The stat fields that must match: never inode numbers, times, st_blocks, or a directory's size."""
    k = kind_of(st.st_mode)
    return (k, "%o" % stat.S_IMODE(st.st_mode), st.st_nlink, None if k == "dir" else st.st_size,
            st.st_uid, st.st_gid)


def short(value, limit=160):
    if isinstance(value, (bytes, bytearray)):
        return "<%d bytes sha %s>" % (len(value), hashlib.sha256(value).hexdigest()[:10])
    if isinstance(value, tuple):
        return "(" + ", ".join(short(v, limit) for v in value) + ("," if len(value) == 1 else "") + ")"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def describe(rec):
    """`pwrite(h3, offset=4096, n=100, dseed=7)`: the record, readable (h3 is descriptor handle 3)."""
    kind, args = rec[0], rec[1:]
    names = list(inspect.signature(getattr(Differ, "op_" + kind)).parameters)[2:]
    shown = []
    for name, a in zip(names, args):
        if name in ("hid", "src_hid", "dst_hid"):
            text = "h%d" % a
        elif kind == "open" and name == "flags":
            text = flag_names(a)
        elif name == "mode" and kind != "fallocate":
            text = "0o%o" % a
        elif kind == "rename2" and name == "flags":
            text = {0: "0", 1: "NOREPLACE", 2: "EXCHANGE", 3: "NOREPLACE|EXCHANGE"}.get(a, str(a))
        elif isinstance(a, str) and len(a) > 60:
            text = repr(a[:20] + "...(%d chars)" % len(a))
        else:
            text = repr(a)
        shown.append(text if name in ("rel", "hid") or kind == "rename" else "%s=%s" % (name, text))
    return "%s(%s)" % (kind, ", ".join(shown))


def first_difference(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return "; ".join("%s: %s" % (k, first_difference(a.get(k, "<absent>"), b.get(k, "<absent>")))
                         for k in sorted(set(a) | set(b)) if a.get(k, "<absent>") != b.get(k, "<absent>"))
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        for x, y in zip(a, b):
            if x != y:
                return first_difference(x, y)
    if isinstance(a, (bytes, bytearray)) and isinstance(b, (bytes, bytearray)):
        n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return "bytes differ at offset %d (cairn len %d, ext4 len %d): cairn %r, ext4 %r" % (
            n, len(a), len(b), bytes(a[n:n + 16]), bytes(b[n:n + 16]))
    return "cairn %s, ext4 %s" % (short(a, 400), short(b, 400))


# --- whole-tree snapshots ---------------------------------------------------------------

def user_xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        return ("ERR", errno.errorcode.get(e.errno, e.errno))
    out = {}
    for n in sorted(x for x in names if x.startswith("user.")):
        try:
            out[n] = os.getxattr(path, n, follow_symlinks=False)
        except OSError as e:
            out[n] = ("ERR", errno.errorcode.get(e.errno, e.errno))
    return out


def snapshot(top):
    """Everything that must match between the trees, keyed by relative path."""
    entries, inodes = {}, {}
    st = os.lstat(top)  # the root's mode legitimately differs (mkdtemp makes it 0700)
    entries[""] = {"kind": "dir", "nlink": st.st_nlink, "names": tuple(sorted(os.listdir(top))),
                   "xattrs": user_xattrs(top)}
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        for name in sorted(os.listdir(os.path.join(top, rel_dir))):
            rel = os.path.join(rel_dir, name)
            path = os.path.join(top, rel)
            st = os.lstat(path)
            entry = {"stat": sig(st)}
            if stat.S_ISDIR(st.st_mode):
                entry["names"] = tuple(sorted(os.listdir(path)))
                stack.append(rel)
            elif stat.S_ISLNK(st.st_mode):
                entry["target"] = os.readlink(path)
            else:
                with open(path, "rb") as f:
                    entry["content"] = f.read()
                inodes.setdefault(st.st_ino, []).append(rel)
            if not stat.S_ISLNK(st.st_mode):
                entry["xattrs"] = user_xattrs(path)
            entries[rel] = entry
    links = sorted(tuple(sorted(names)) for names in inodes.values() if len(names) > 1)
    return entries, links


def compare_snapshots(cairn, ext4):
    """A list of human-readable differences (empty when the trees match)."""
    (ea, la), (eb, lb) = cairn, ext4
    out = []
    for rel in sorted(set(ea) | set(eb)):
        a, b = ea.get(rel), eb.get(rel)
        if a is None or b is None:
            out.append("/%s: only on %s: %s" % (rel, "ext4" if a is None else "cairn", short(a or b)))
            continue
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                out.append("/%s %s: %s" % (rel, key, first_difference(a.get(key), b.get(key))))
    if la != lb:
        out.append("hard-link groups (names sharing an inode): cairn %s, ext4 %s" % (la, lb))
    return out


# --- executing records on both sides ---------------------------------------------------

class Divergence(AssertionError):
    pass


class Differ:
    """Runs records on side 0 (Cairn) and side 1 (ext4 reference) and compares the results."""

    def __init__(self, cairn_root, ext4_root):
        self.roots = [cairn_root, ext4_root]
        self.handles = {}  # handle id -> [cairn fd, ext4 fd]
        self.log = []

    # Each op_* runs on one side and returns a comparable value, or raises OSError.

    def op_open(self, side, rel, flags, mode, hid):
        fd = os.open(self.path(side, rel), flags, mode)
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            os.close(fd)
            return ("dir", sig(st))
        self.handles.setdefault(hid, [None, None])[side] = fd
        return ("fd", sig(st))

    def op_close(self, side, hid):
        fd = self.fd(side, hid)
        self.handles[hid][side] = None
        return os.close(fd)

    def op_pwrite(self, side, hid, offset, n, dseed):
        return os.pwrite(self.fd(side, hid), payload(n, dseed), offset)

    def op_write(self, side, hid, n, dseed):
        return os.write(self.fd(side, hid), payload(n, dseed))

    def op_pread(self, side, hid, offset, n):
        return os.pread(self.fd(side, hid), n, offset)

    def op_read(self, side, hid, n):
        return os.read(self.fd(side, hid), n)

    def op_lseek(self, side, hid, offset, whence):
        return os.lseek(self.fd(side, hid), offset, whence)

    def op_ftruncate(self, side, hid, length):
        return os.ftruncate(self.fd(side, hid), length)

    def op_fstat(self, side, hid):
        return sig(os.fstat(self.fd(side, hid)))

    def op_fallocate(self, side, hid, mode, offset, length):
        return fallocate(self.fd(side, hid), mode, offset, length)

    def op_copy_range(self, side, src_hid, dst_hid, count, src_offset, dst_offset):
        return os.copy_file_range(self.fd(side, src_hid), self.fd(side, dst_hid), count, src_offset, dst_offset)

    def op_fchmod(self, side, hid, mode):
        return os.chmod(self.fd(side, hid), mode)

    def op_fsetxattr(self, side, hid, name, n, dseed, flags):
        return os.setxattr(self.fd(side, hid), name, payload(n, dseed), flags)

    def op_fgetxattr(self, side, hid, name):
        return os.getxattr(self.fd(side, hid), name)

    def op_fsync(self, side, hid):
        return os.fsync(self.fd(side, hid))

    def op_truncate(self, side, rel, length):
        return os.truncate(self.path(side, rel), length)

    def op_rename(self, side, src, dst):
        return os.rename(self.path(side, src), self.path(side, dst))

    def op_rename2(self, side, src, dst, flags):
        return renameat2(self.path(side, src), self.path(side, dst), flags)

    def op_link(self, side, src, dst, follow):
        return os.link(self.path(side, src), self.path(side, dst), follow_symlinks=follow)

    def op_unlink(self, side, rel):
        return os.unlink(self.path(side, rel))

    def op_mkdir(self, side, rel, mode):
        return os.mkdir(self.path(side, rel), mode)

    def op_rmdir(self, side, rel):
        return os.rmdir(self.path(side, rel))

    def op_chmod(self, side, rel, mode):
        return os.chmod(self.path(side, rel), mode)

    def op_chown(self, side, rel, uid, gid, follow):
        return os.chown(self.path(side, rel), uid, gid, follow_symlinks=follow)

    def op_symlink(self, side, target, rel):
        return os.symlink(target, self.path(side, rel))

    def op_readlink(self, side, rel):
        return os.readlink(self.path(side, rel))

    def op_stat(self, side, rel, follow):
        return sig(os.stat(self.path(side, rel), follow_symlinks=follow))

    def op_listdir(self, side, rel):
        return tuple(sorted(os.listdir(self.path(side, rel))))

    def op_readfile(self, side, rel):
        with open(self.path(side, rel), "rb") as f:
            return f.read()

    def op_setxattr(self, side, rel, name, n, dseed, flags, follow):
        return os.setxattr(self.path(side, rel), name, payload(n, dseed), flags, follow_symlinks=follow)

    def op_getxattr(self, side, rel, name, follow):
        return os.getxattr(self.path(side, rel), name, follow_symlinks=follow)

    def op_listxattr(self, side, rel, follow):
        names = os.listxattr(self.path(side, rel), follow_symlinks=follow)
        return tuple(sorted(n for n in names if n.startswith("user.")))

    def op_removexattr(self, side, rel, name, follow):
        return os.removexattr(self.path(side, rel), name, follow_symlinks=follow)

    # plumbing

    def path(self, side, rel):
        return os.path.join(self.roots[side], rel)

    def fd(self, side, hid):
        fd = self.handles.get(hid, [None, None])[side]
        if fd is None:
            raise OSError(errno.EBADF, "handle %d is not open" % hid)
        return fd

    def live_handles(self):
        return sorted(h for h, fds in self.handles.items() if fds[1] is not None)

    def run_side(self, side, rec):
        try:
            return ("ok", getattr(self, "op_" + rec[0])(side, *rec[1:]))
        except OSError as e:
            return ("ERR", errno.errorcode.get(e.errno, str(e.errno)))

    def apply(self, rec, step=None):
        a = self.run_side(0, rec)
        b = self.run_side(1, rec)
        line = "%5s %s -> %s" % ("#%s" % step if step is not None else "", describe(rec), short(b))
        if a != b:
            line += "   <<< CAIRN: %s" % short(a)
        self.log.append(line)
        if a != b:
            detail = "\n  " + first_difference(a[1], b[1]) if a[0] == b[0] == "ok" else ""
            raise Divergence("%s\n  cairn: %s\n  ext4:  %s%s" % (describe(rec), short(a), short(b), detail))
        return b

    def close_all(self, label):
        for hid in sorted(self.handles):
            fds = self.handles[hid]
            if fds[0] is not None or fds[1] is not None:
                self.apply(("close", hid), step=label)

    def abandon(self):
        """Closes every descriptor without comparing (after a failure)."""
        for fds in self.handles.values():
            for fd in fds:
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
        self.handles.clear()

    def compare_trees(self):
        diffs = compare_snapshots(snapshot(self.roots[0]), snapshot(self.roots[1]))
        if diffs:
            raise Divergence("trees differ:\n  " + "\n  ".join(diffs[:15]))


# --- choosing records ------------------------------------------------------------------

class Generator:
    """Chooses the next records from the reference tree's current state and a seeded RNG."""

    WEIGHTS = {
        "open": 10, "close": 5, "pwrite": 10, "write": 6, "pread": 6, "read": 3, "lseek": 2,
        "ftruncate": 4, "fstat": 4, "fsync": 1, "truncate": 5, "rename": 7, "rename2": 6,
        "link": 4, "unlink": 6, "mkdir": 5, "rmdir": 4, "chmod": 3, "symlink": 4, "readlink": 2,
        "stat": 4, "listdir": 2, "readfile": 5, "setxattr": 5, "getxattr": 3, "listxattr": 2,
        "removexattr": 3, "open_write_unlink": 2, "fallocate": 2, "copy_range": 2, "chown": 2,
        "fchmod": 1, "fsetxattr": 2, "fgetxattr": 2, "big_directory": 0.15,
    }

    def __init__(self, rng, ref_root, differ):
        self.rng = rng
        self.ref = ref_root
        self.differ = differ
        self.next_hid = 1
        self.kinds = list(self.WEIGHTS)
        self.weights = [self.WEIGHTS[k] for k in self.kinds]

    def scan(self):
        self.entries = []  # (rel, kind, depth) for everything but the root, sorted
        stack = [("", 0)]
        while stack:
            rel_dir, depth = stack.pop()
            for name in sorted(os.listdir(os.path.join(self.ref, rel_dir))):
                rel = os.path.join(rel_dir, name)
                k = kind_of(os.lstat(os.path.join(self.ref, rel)).st_mode)
                self.entries.append((rel, k, depth + 1))
                if k == "dir":
                    stack.append((rel, depth + 1))
        self.entries.sort()

    # paths

    def existing(self, kind=None):
        pool = [e for e in self.entries if kind is None or e[1] == kind] or self.entries
        return self.rng.choice(pool)[0] if pool else self.rng.choice(NAMES)

    def name(self):
        return self.rng.choice(ODD_NAMES if self.rng.random() < 0.03 else NAMES)

    def fresh(self):
        """A name in an existing directory: usually new, sometimes already taken."""
        dirs = [""] + [e[0] for e in self.entries if e[1] == "dir" and e[2] < MAX_DEPTH]
        return os.path.join(self.rng.choice(dirs), self.name())

    def odd(self):
        r = self.rng
        f, d = self.existing("file"), self.existing("dir")
        return r.choice([
            f + "/x",  # ENOTDIR
            f + "/",  # trailing slash on a non-directory
            "nodir/x",  # ENOENT in the middle
            d + "/",
            d + "/.",
            "n" * 256,  # ENAMETOOLONG
            os.path.join(r.choice(["", d]), "m" * 255),  # the longest valid name
            self.existing("symlink") + "/" + r.choice(NAMES),  # through a symlink
            self.existing("symlink") + "/",
        ])

    def any_path(self, kind=None):
        r = self.rng.random()
        if r < 0.72:
            return self.existing(kind)
        if r < 0.94:
            return self.fresh()
        return self.odd()

    def new_path(self):
        r = self.rng.random()
        if r < 0.75:
            return self.fresh()
        if r < 0.93:
            return self.existing()
        return self.odd()

    def target(self):
        """A symlink target: relative downward paths, '.', dangling names, rarely odd ones."""
        r = self.rng
        x = r.random()
        if x < 0.45:
            return r.choice(NAMES)
        if x < 0.75:
            return self.existing()
        if x < 0.85:
            return "/".join(r.choice(NAMES) for _ in range(r.randint(2, 3)))
        return r.choice([".", MISSING_ABS, "a/", "./a", "/".join(r.choice(NAMES) * 30 for _ in range(40))])

    # numbers

    def size(self):
        r = self.rng.random()
        if r < 0.5:
            return self.rng.randint(0, 300)
        if r < 0.85:
            return self.rng.randint(0, 20000)
        if r < 0.97:
            return self.rng.randint(60000, 300000)
        return self.rng.randint(1000000, 1500000)

    def offset(self):
        r = self.rng.random()
        if r < 0.3:
            return 0
        if r < 0.75:
            return self.rng.randint(0, 9000)
        if r < 0.97:
            return self.rng.choice([4095, 4096, 4097, 65535, 65536, 131072, 131073, 1 << 20]) + self.rng.randint(-2, 2)
        return self.rng.randint(1 << 20, 3 << 20)

    def length(self, plus):
        """A file length or write offset, rarely negative."""
        if self.rng.random() < 0.02:
            return -1
        return self.offset() + self.rng.choice([0, 0, plus])

    def handle(self):
        live = self.differ.live_handles()
        if live and self.rng.random() < 0.95:
            return self.rng.choice(live)
        return self.next_hid + 7  # never opened: EBADF on both sides

    # records

    def next(self):
        """A list of records (usually one; a scenario is several)."""
        self.scan()
        r = self.rng
        kinds, weights = self.kinds, list(self.weights)
        if len(self.entries) > 70:  # keep the tree small: favour removal
            for k, boost in (("unlink", 4), ("rmdir", 3), ("rename", 1)):
                weights[kinds.index(k)] *= boost
        if len(self.differ.live_handles()) >= MAX_HANDLES:
            weights[kinds.index("close")] *= 20
        kind = r.choices(kinds, weights)[0]
        return getattr(self, "gen_" + kind)()

    def gen_open(self, rel=None):
        r = self.rng
        acc = r.choice([os.O_RDONLY, os.O_WRONLY, os.O_RDWR, os.O_RDWR])
        flags = acc
        if r.random() < 0.6:
            flags |= os.O_CREAT
            if r.random() < 0.3:
                flags |= os.O_EXCL
        for flag, p in ((os.O_TRUNC, 0.12), (os.O_APPEND, 0.2), (os.O_DIRECTORY, 0.03), (os.O_NOFOLLOW, 0.05)):
            if r.random() < p:
                flags |= flag
        if rel is None:
            rel = self.new_path() if flags & os.O_CREAT and r.random() < 0.6 else self.any_path("file")
        hid, self.next_hid = self.next_hid, self.next_hid + 1
        return [("open", rel, flags, r.choice(MODES), hid)]

    def gen_close(self):
        return [("close", self.handle())]

    def gen_pwrite(self):
        return [("pwrite", self.handle(), self.length(0), self.size(), self.rng.getrandbits(32))]

    def gen_write(self):
        return [("write", self.handle(), self.size(), self.rng.getrandbits(32))]

    def gen_pread(self):
        off = -1 if self.rng.random() < 0.02 else self.offset()
        return [("pread", self.handle(), off, self.rng.choice([1, 100, 4096, 70000, 1 << 22]))]

    def gen_read(self):
        return [("read", self.handle(), self.rng.choice([0, 1, 100, 4096, 70000, 1 << 22]))]

    def gen_lseek(self):
        whence = self.rng.choice([os.SEEK_SET, os.SEEK_CUR, os.SEEK_END])
        off = self.rng.choice([0, 0, 10, -10, 5000, self.offset()])
        return [("lseek", self.handle(), off, whence)]

    def gen_ftruncate(self):
        return [("ftruncate", self.handle(), self.length(7))]

    def gen_fstat(self):
        return [("fstat", self.handle())]

    def gen_fallocate(self):
        mode = self.rng.choice([0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE])
        length = self.rng.choice([0, 1, 100, 4096, 5000, 70000, 200000])
        return [("fallocate", self.handle(), mode, self.length(0), length)]

    def gen_copy_range(self):
        # Counts stay under 1 MiB: a shorter copy than asked is allowed and callers loop.
        count = self.rng.choice([0, 1, 100, 4096, 70000, 131072, 300000])
        return [("copy_range", self.handle(), self.handle(), count, self.offset(), self.offset())]

    def gen_fchmod(self):
        return [("fchmod", self.handle(), self.rng.choice(MODES))]

    def gen_fsetxattr(self):
        r = self.rng
        flags = r.choices([0, os.XATTR_CREATE, os.XATTR_REPLACE], [6, 2, 2])[0]
        return [("fsetxattr", self.handle(), self._xname(), r.choice([0, 7, 200]), r.getrandbits(32), flags)]

    def gen_fgetxattr(self):
        return [("fgetxattr", self.handle(), self._xname())]

    def gen_fsync(self):
        return [("fsync", self.handle())]

    def gen_truncate(self):
        return [("truncate", self.any_path("file"), self.length(3))]

    def _pair(self):
        r = self.rng
        src = self.any_path(r.choice([None, None, "file", "dir", "symlink"]))
        x = r.random()
        if x < 0.45:
            dst = self.new_path()
        elif x < 0.85:
            dst = self.existing(r.choice([None, "file", "dir"]))
        elif x < 0.93 and src:
            dst = os.path.join(src, r.choice(NAMES))  # into itself / under a file
        else:
            dst = self.odd()
        return src, dst

    def gen_rename(self):
        return [("rename",) + self._pair()]

    def gen_rename2(self):
        src, dst = self._pair()
        if self.rng.random() < 0.5:
            dst = self.existing()
        flags = self.rng.choices([RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_NOREPLACE | RENAME_EXCHANGE, 0],
                                 [10, 10, 1, 1])[0]
        return [("rename2", src, dst, flags)]

    def gen_link(self):
        src = self.any_path(self.rng.choice(["file", "file", None, "symlink"]))
        return [("link", src, self.new_path(), self.rng.random() < 0.3)]

    def gen_unlink(self):
        return [("unlink", self.any_path(self.rng.choice(["file", "symlink", None])))]

    def gen_mkdir(self):
        return [("mkdir", self.new_path(), self.rng.choice(MODES))]

    def gen_rmdir(self):
        return [("rmdir", self.any_path("dir"))]

    def gen_chmod(self):
        return [("chmod", self.any_path(), self.rng.choice(MODES + [0o7777, 0o6711]))]

    def gen_chown(self):
        ids = [0, 0, 1000, 65534, -1]
        return [("chown", self.any_path(), self.rng.choice(ids), self.rng.choice(ids), self.rng.random() < 0.7)]

    def gen_symlink(self):
        return [("symlink", self.target(), self.new_path())]

    def gen_readlink(self):
        return [("readlink", self.any_path(self.rng.choice(["symlink", "symlink", None])))]

    def gen_stat(self):
        return [("stat", self.any_path(), self.rng.random() < 0.5)]

    def gen_listdir(self):
        return [("listdir", "" if self.rng.random() < 0.2 else self.any_path("dir"))]

    def gen_readfile(self):
        return [("readfile", self.any_path("file"))]

    def _xpath(self):
        r = self.rng.random()
        if r < 0.04:
            return ""
        return self.existing(self.rng.choice(["file", "file", "dir", None])) if r < 0.85 else self.any_path()

    def _xname(self):
        r = self.rng.random()
        if r < 0.95:
            return self.rng.choice(XATTRS)
        if r < 0.98:
            return self.rng.choice(ODD_XATTRS)
        return self.rng.choice(["user." + "k" * 251, "user." + "k" * 250, "user."])

    def gen_setxattr(self):
        r = self.rng
        n = r.choice([0, 1, 10, 100, 255, 256])  # all names at 256 bytes still fit ext4's one block
        flags = r.choices([0, os.XATTR_CREATE, os.XATTR_REPLACE], [6, 2, 2])[0]
        return [("setxattr", self._xpath(), self._xname(), n, r.getrandbits(32), flags, r.random() < 0.8)]

    def gen_getxattr(self):
        return [("getxattr", self._xpath(), self._xname(), self.rng.random() < 0.8)]

    def gen_listxattr(self):
        return [("listxattr", self._xpath(), self.rng.random() < 0.8)]

    def gen_removexattr(self):
        return [("removexattr", self._xpath(), self._xname(), self.rng.random() < 0.8)]

    def gen_big_directory(self):
        """Enough entries, with long names, that listing a directory takes several readdir calls;
        then most of them removed again."""
        r = self.rng
        top = self.fresh()
        names = sorted({"%03d-%s" % (i, "L" * r.randint(1, 200)) for i in range(r.randint(40, 120))})
        recs = [("mkdir", top, 0o755)]
        for name in names:
            hid, self.next_hid = self.next_hid, self.next_hid + 1
            recs += [("open", os.path.join(top, name), os.O_WRONLY | os.O_CREAT, 0o644, hid), ("close", hid)]
        recs.append(("listdir", top))
        keep = set(r.sample(names, min(3, len(names))))
        recs += [("unlink", os.path.join(top, n)) for n in names if n not in keep]
        recs.append(("listdir", top))
        return recs

    def gen_open_write_unlink(self):
        """Open (creating), write, unlink the name, then keep using the descriptor."""
        r = self.rng
        rel = self.fresh() if r.random() < 0.5 else self.existing("file")
        hid = self.next_hid
        recs = self.gen_open(rel)
        flags = recs[0][2] & ~(os.O_DIRECTORY | os.O_WRONLY | os.O_RDONLY) | os.O_RDWR | os.O_CREAT
        recs[0] = ("open", rel, flags, recs[0][3], hid)
        recs.append(("pwrite", hid, self.offset(), self.size(), r.getrandbits(32)))
        recs.append(("unlink", rel))
        recs.append(("fstat", hid))
        recs.append(("pwrite", hid, self.offset(), self.size(), r.getrandbits(32)))
        recs.append(("pread", hid, r.choice([0, self.offset()]), 1 << 22))
        return recs


def run_seed(seed, nops, cairn_root, ext4_root, remount=None):
    """Runs `nops` steps of seed `seed`. Raises AssertionError with a reproduction on divergence."""
    rng = random.Random(seed)
    differ = Differ(cairn_root, ext4_root)
    gen = Generator(rng, ext4_root, differ)
    step = 0
    next_check, next_remount = CHECK_EVERY, REMOUNT_EVERY
    phase = "step"
    try:
        while step < nops:
            for rec in gen.next():
                step += 1
                differ.apply(rec, step)
            if step >= next_check:
                next_check += CHECK_EVERY
                phase = "tree comparison after step"
                differ.compare_trees()
                if remount is not None and step >= next_remount:
                    # What the daemon stored, not what the kernel caches: close, remount, compare.
                    next_remount += REMOUNT_EVERY
                    phase = "closing handles before a remount, after step"
                    differ.close_all("@%d" % step)
                    phase = "tree comparison after a remount, after step"
                    remount()
                    differ.compare_trees()
                phase = "step"
        phase = "closing handles after step"
        differ.close_all("end")
        phase = "final tree comparison after step"
        differ.compare_trees()
        if remount is not None:
            phase = "tree comparison after a remount, after step"
            remount()
            differ.compare_trees()
    except AssertionError as e:
        differ.abandon()
        raise AssertionError(
            "Cairn diverged from ext4: seed %d, %s %d (of %d)\n%s\n\n"
            "last operations (ext4 result; stat results are (type, mode, nlink, size, uid, gid)):\n%s\n\n"
            "reproduce: CAIRN_DIFF_SEED=%d CAIRN_DIFF_OPS=%d python3 -m unittest test_differential -v"
            % (seed, phase, step, nops, e, "\n".join(differ.log[-HISTORY:]), seed, nops)) from None
    except BaseException:
        differ.abandon()
        raise
    return step


def filesystem_type(path):
    """The type of the file system holding `path` (the longest mount point above it)."""
    path, best, kind = os.path.realpath(path), -1, None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")
            fstype = fields[fields.index("-") + 1]
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > best:
                best, kind = len(point), fstype
    return kind


class DifferentialTests(unittest.TestCase):
    def test_random_operations_match_ext4(self):
        old_umask = os.umask(0o022)
        self.addCleanup(os.umask, old_umask)
        for seed in SEEDS:
            with self.subTest(seed=seed):
                with CairnMount() as m:
                    ref = os.path.join(m.base, "ref")  # next to the store: on the local disk
                    os.mkdir(ref)
                    image = None
                    if filesystem_type(ref) != "ext4":
                        image = ref
                        ref = self.mount_ext4(ref, m.base)
                    try:
                        run_seed(seed, OPS, m.path, ref, remount=m.remount)
                    finally:
                        if image:
                            subprocess.run(["umount", image], capture_output=True)

    def mount_ext4(self, ref, base):
        """The reference must be ext4 (its errnos are the oracle): where the temporary directory is
        on another file system (a container's overlay), use an ext4 image on a loop device."""
        image = os.path.join(base, "ref.img")
        with open(image, "wb") as f:
            f.truncate(512 << 20)
        subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True, capture_output=True)
        subprocess.run(["mount", "-o", "loop", image, ref], check=True, capture_output=True)
        self.assertEqual(filesystem_type(ref), "ext4")
        tree = os.path.join(ref, "tree")  # not the image's root, which holds lost+found
        os.mkdir(tree)
        return tree


if __name__ == "__main__":
    unittest.main()
