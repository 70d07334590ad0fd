"""Limits and bad input, as ext4 would answer them: many open files, many files, huge sizes,
long and non-UTF-8 names, extended attribute limits, and a full disk under the store.

The daemon must stay bounded (descriptors, memory) and answer with the right errno, never
EIO, never a hang.
"""
import errno
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from cairnfs import CAIRN, CairnMount, MountedTestCase, process_alive, run

MB = 1024 * 1024


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def note(text):
    """A measured value, shown in the verbose run so a limit's margin is visible."""
    print(f"\n  {text}", file=sys.stderr, end=" ")


def alive(pid):
    return process_alive(pid)


class ResourceBoundTests(MountedTestCase):
    def test_daemon_descriptors_stay_bounded_with_15000_open_files(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 15000
        if hard != resource.RLIM_INFINITY and hard < want + 200:
            self.skipTest(f"hard RLIMIT_NOFILE is {hard}, need {want + 200}")
        target = hard if hard != resource.RLIM_INFINITY else want + 1000
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))

        pid = self.m.daemon_pid()
        self.assertIsNotNone(pid)
        dirs = [self.p(f"d{k}") for k in range(3)]
        for d in dirs:
            os.mkdir(d)
        paths = [os.path.join(dirs[i % 3], f"f{i}") for i in range(want)]
        fds = []
        samples = []

        def close_all():
            while fds:
                try:
                    os.close(fds.pop())
                except OSError:
                    pass

        self.addCleanup(close_all)
        for i, path in enumerate(paths):
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            fds.append(fd)
            os.write(fd, f"file {i}\n".encode())
            if i % 1000 == 999:
                samples.append(fd_count(pid))
        samples.append(fd_count(pid))
        note(f"daemon descriptors with {want} files open: peak {max(samples)}")
        self.assertLess(max(samples), 2000,
                        f"daemon descriptor counts while {want} files were open: {samples}")

        errors = []
        for fd in fds:
            try:
                os.close(fd)
            except OSError as e:
                errors.append(e)
        fds.clear()
        self.assertEqual(errors, [])
        note(f"daemon descriptors after closing them: {fd_count(pid)}")
        self.assertLess(fd_count(pid), 2000)

        bad = []
        for i, path in enumerate(paths):
            with open(path, "rb") as f:
                if f.read() != f"file {i}\n".encode():
                    bad.append(path)
        self.assertEqual(bad, [])
        self.assertTrue(alive(pid))

    def test_daemon_memory_stays_bounded_over_50000_small_files(self):
        pid = self.m.daemon_pid()
        bound = 400 * MB
        samples = [rss_bytes(pid)]
        ndirs, per_dir = 10, 5000
        for d in range(ndirs):
            os.mkdir(self.p(f"d{d}"))
            for i in range(per_dir):
                fd = os.open(self.p(f"d{d}", f"f{i}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                try:
                    os.write(fd, f"small file {d}/{i}\n".encode())
                finally:
                    os.close(fd)
                if i % 2500 == 2499:
                    samples.append(rss_bytes(pid))
        samples.append(rss_bytes(pid))
        # Look every file up and stat it: the daemon's inode table sees all of them.
        count = 0
        for dirpath, _, filenames in os.walk(self.m.path):
            for name in filenames:
                os.stat(os.path.join(dirpath, name))
                count += 1
        self.assertEqual(count, ndirs * per_dir)
        samples.append(rss_bytes(pid))
        with open(self.p("d7", "f4321"), "rb") as f:
            self.assertEqual(f.read(), b"small file 7/4321\n")
        note(f"daemon VmRSS over 50000 files (MB): {[s // MB for s in samples]}")
        self.assertLess(max(samples), bound,
                        f"daemon VmRSS samples (MB): {[s // MB for s in samples]}")


def cpu_ns(pid):
    """Processor time of all of `pid`'s threads so far."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass  # a thread that ended meanwhile
    return total


class IdleTests(MountedTestCase):
    def test_an_idle_daemon_uses_no_processor_time_after_a_burst_of_requests(self):
        # The reader polls the device for a while after each request, and a watcher looks at
        # the request it serves (DeviceReader): once the requests stop, so must both.
        pid = self.m.daemon_pid()
        self.assertIsNotNone(pid)
        for i in range(300):
            with open(self.p(f"f{i}"), "w") as f:
                f.write("x" * i)
        time.sleep(0.5)
        before = cpu_ns(pid)
        time.sleep(2)
        used_ms = (cpu_ns(pid) - before) / 1e6
        note(f"idle daemon used {used_ms:.1f} ms of processor time in 2 s")
        self.assertLess(used_ms, 40)


class HugeSizeTests(MountedTestCase):
    def test_petabyte_truncate_and_sizes_past_the_maximum(self):
        pid = self.m.daemon_pid()
        before = rss_bytes(pid)
        path = self.p("huge")
        open(path, "wb").close()

        os.truncate(path, 10**15)
        self.assertEqual(os.stat(path).st_size, 10**15)
        peak = rss_bytes(pid)

        fd = os.open(path, os.O_RDONLY)
        try:
            self.assertEqual(os.pread(fd, 100, 10**15 - 10), b"\0" * 10)
            self.assertEqual(os.pread(fd, 100, 10**15), b"")
            with self.assertRaises(OSError) as cm:
                os.lseek(fd, 0, os.SEEK_DATA)
            self.assertEqual(cm.exception.errno, errno.ENXIO)
            self.assertEqual(os.lseek(fd, 0, os.SEEK_HOLE), 0)
        finally:
            os.close(fd)

        with self.assertRaises(OSError) as cm:
            os.truncate(path, 2**53 + 1)
        self.assertEqual(cm.exception.errno, errno.EFBIG)
        self.assertEqual(os.stat(path).st_size, 10**15)

        fd = os.open(path, os.O_WRONLY)
        try:
            with self.assertRaises(OSError) as cm:
                os.pwrite(fd, b"x", 2**53)
            self.assertEqual(cm.exception.errno, errno.EFBIG)
        finally:
            os.close(fd)
        self.assertEqual(os.stat(path).st_size, 10**15)

        os.unlink(path)
        self.assertFalse(os.path.exists(path))
        self.assertTrue(alive(pid))
        after = rss_bytes(pid)
        note(f"daemon VmRSS: {before // MB} MB before, {peak // MB} MB after truncate, {after // MB} MB at end")
        self.assertLess(max(peak, after) - before, 64 * MB,
                        f"daemon VmRSS went from {before // MB} MB to {peak // MB} MB, then {after // MB} MB")


class DirectoryAndNameTests(MountedTestCase):
    def test_50000_entries_in_one_directory(self):
        d = self.p("big")
        os.mkdir(d)
        names = [f"entry-{i:05d}" for i in range(50000)]
        for name in names:
            os.mknod(os.path.join(d, name), 0o100644)
        listed = os.listdir(d)
        self.assertEqual(len(listed), len(names))
        self.assertEqual(sorted(listed), names)
        for name in names:
            os.unlink(os.path.join(d, name))
        self.assertEqual(os.listdir(d), [])
        os.rmdir(d)

    def test_255_byte_names_work_and_256_fail(self):
        for name in ["n" * 255, "\u00e9" * 127 + "x"]:  # 255 bytes, ASCII and two-byte UTF-8
            with self.subTest(name=name[:4]):
                self.assertEqual(len(name.encode()), 255)
                path = self.p(name)
                with open(path, "wb") as f:
                    f.write(b"long")
                self.assertEqual(os.stat(path).st_size, 4)
                self.assertIn(name, os.listdir(self.m.path))
                other = self.p("r" * 255)
                os.rename(path, other)
                self.assertFalse(os.path.exists(path))
                with open(other, "rb") as f:
                    self.assertEqual(f.read(), b"long")
                os.unlink(other)
                self.assertEqual(os.listdir(self.m.path), [])
        os.mkdir(self.p("d" * 255))
        os.rmdir(self.p("d" * 255))

        too_long = self.p("n" * 256)
        ops = {
            "open(O_CREAT)": lambda: os.open(too_long, os.O_CREAT | os.O_WRONLY, 0o644),
            "mkdir": lambda: os.mkdir(too_long),
            "stat": lambda: os.stat(too_long),
            "symlink": lambda: os.symlink("target", too_long),
        }
        open(self.p("short"), "w").close()
        ops["rename"] = lambda: os.rename(self.p("short"), too_long)
        ops["link"] = lambda: os.link(self.p("short"), too_long)
        for what, op in ops.items():
            with self.subTest(op=what):
                with self.assertRaises(OSError) as cm:
                    op()
                self.assertEqual(cm.exception.errno, errno.ENAMETOOLONG)
        self.assertEqual(os.listdir(self.m.path), ["short"])

    def test_non_utf8_names_round_trip(self):
        top = os.fsencode(self.m.path)
        names = [b"\xff\xfe name\x01", b"\x80\x81\x82", b"caf\xe9", b"\xc3\x28", b"\xed\xa0\x80 surrogate",
                 b"tab\there\nnewline"]
        for name in names:
            with open(os.path.join(top, name), "wb") as f:
                f.write(name)
        self.assertEqual(sorted(os.listdir(top)), sorted(names))
        self.assertEqual(sorted(os.listdir(self.m.path)), sorted(os.fsdecode(n) for n in names))
        for name in names:
            with open(os.path.join(top, name), "rb") as f:
                self.assertEqual(f.read(), name)
            self.assertEqual(os.stat(os.path.join(top, name)).st_size, len(name))
        os.mkdir(os.path.join(top, b"dir\xfe"))
        os.rename(os.path.join(top, names[0]), os.path.join(top, b"dir\xfe", b"moved\xff"))
        self.assertEqual(os.listdir(os.path.join(top, b"dir\xfe")), [b"moved\xff"])
        self.assertNotIn(names[0], os.listdir(top))
        os.unlink(os.path.join(top, b"dir\xfe", b"moved\xff"))
        os.rmdir(os.path.join(top, b"dir\xfe"))
        for name in names[1:]:
            os.unlink(os.path.join(top, name))
        self.assertEqual(os.listdir(top), [])


class XattrLimitTests(MountedTestCase):
    def assertErrno(self, code, fn, *args):
        with self.assertRaises(OSError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.errno, code,
                         f"{fn.__name__}{args[1:2]}: got {errno.errorcode.get(cm.exception.errno)}, "
                         f"want {errno.errorcode[code]}")

    def test_xattr_limits_and_errors(self):
        path = self.p("x")
        with open(path, "wb") as f:
            f.write(b"data")

        big = bytes(range(256)) * 256
        self.assertEqual(len(big), 65536)
        os.setxattr(path, "user.big", big)
        self.assertEqual(os.getxattr(path, "user.big"), big)
        self.assertErrno(errno.E2BIG, os.setxattr, path, "user.bigger", b"v" * 65537)
        self.assertNotIn("user.bigger", os.listxattr(path))

        long_ok = "user." + "a" * 250  # 255 bytes
        os.setxattr(path, long_ok, b"ok")
        self.assertEqual(os.getxattr(path, long_ok), b"ok")
        too_long = "user." + "a" * 251  # 256 bytes
        self.assertErrno(errno.ERANGE, os.setxattr, path, too_long, b"v")
        self.assertErrno(errno.ERANGE, os.getxattr, path, too_long)

        self.assertErrno(errno.ENODATA, os.getxattr, path, "user.missing")
        self.assertErrno(errno.EEXIST, os.setxattr, path, "user.big", b"new", os.XATTR_CREATE)
        self.assertEqual(os.getxattr(path, "user.big"), big)
        self.assertErrno(errno.ENODATA, os.setxattr, path, "user.missing", b"new", os.XATTR_REPLACE)
        self.assertNotIn("user.missing", os.listxattr(path))
        self.assertErrno(errno.ENODATA, os.getxattr, path, "security.capability")
        self.assertEqual(sorted(os.listxattr(path)), sorted(["user.big", long_ok]))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"data")


class FullDiskTests(unittest.TestCase):
    def _mount_tmpfs(self, size="64m"):
        top = tempfile.mkdtemp(prefix="cairn-enospc-")
        run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", top)

        def unmount_tmpfs():
            if subprocess.run(["umount", top], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", top], capture_output=True)
            shutil.rmtree(top, ignore_errors=True)

        self.addCleanup(unmount_tmpfs)
        return top

    def _kill_daemon_if_alive(self, pid, m):
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)
            m.detach()

    def test_enospc_is_reported_and_the_store_survives(self):
        top = self._mount_tmpfs()
        store = os.path.join(top, "store")
        # A watchdog: a daemon hung on the full disk must not hang the test or its cleanup
        # (it is cancelled after the mount's cleanup has run).
        daemon = {}
        watchdog = threading.Timer(240, lambda: daemon and self._kill_daemon_if_alive(daemon["pid"], daemon["m"]))
        watchdog.daemon = True
        watchdog.start()
        self.addCleanup(watchdog.cancel)
        m = CairnMount(store=store)
        self.addCleanup(m.close)
        pid = m.daemon_pid()
        daemon.update(pid=pid, m=m)

        done = {}      # path -> content of files whose writes, fsync and close all succeeded
        fsynced = {}   # path -> content of files whose fsync succeeded but whose close failed
        failure = {}   # the file that failed: its path and every (call, errno) it saw

        def fill():
            for i in range(200):  # 400 MB into a 64 MB disk: the error must come long before
                path = m.p(f"fill{i:04d}")
                content = os.urandom(2 * MB)  # incompressible, no deduplication
                errors = []
                try:
                    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except OSError as e:
                    failure.update(path=path, errors=[("open", e.errno)])
                    return
                synced = False
                try:
                    for k in range(0, len(content), 256 * 1024):
                        os.write(fd, content[k:k + 256 * 1024])
                except OSError as e:
                    errors.append(("write", e.errno))
                if not errors:
                    try:
                        os.fsync(fd)
                        synced = True
                    except OSError as e:
                        errors.append(("fsync", e.errno))
                try:
                    os.close(fd)
                except OSError as e:
                    errors.append(("close", e.errno))
                if not errors:
                    done[path] = content
                    continue
                if synced:
                    fsynced[path] = content
                failure.update(path=path, errors=errors)
                return
            failure.update(path=None, errors=[])

        t = threading.Thread(target=fill, daemon=True)
        t.start()
        t.join(120)
        if t.is_alive():
            log = _daemon_log(store)
            self._kill_daemon_if_alive(pid, m)
            t.join(10)
            self.fail(f"writing into a full store hung (after {len(done)} files); daemon.log tail:\n{log}")

        seen = [(call, errno.errorcode.get(code, code)) for call, code in failure["errors"]]
        self.assertTrue(seen, "400 MB went into a 64 MB store without an error")
        self.assertEqual({code for _, code in failure["errors"]}, {errno.ENOSPC},
                         f"{failure['path']} (after {len(done)} good files) saw {seen}, want only ENOSPC; "
                         f"daemon.log tail:\n{_daemon_log(store)}")
        self.assertGreater(len(done), 0)
        self.assertTrue(alive(pid), "the daemon died on a full disk")
        self.assertTrue(os.path.exists(failure["path"]))

        # Everything closed before the disk filled, or fsynced, reads back exactly.
        for path, content in list(done.items()) + list(fsynced.items()):
            with open(path, "rb") as f:
                data = f.read()
            self.assertTrue(data == content, f"{path}: read back {len(data)} bytes that differ from "
                                             f"the {len(content)} written")

        # The way out of a full disk: unlink from inside the mount works.
        os.unlink(failure["path"])
        victim = sorted(done)[0]
        os.unlink(victim)
        self.assertFalse(os.path.exists(victim))
        self.assertFalse(os.path.exists(failure["path"]))
        del done[victim]
        fsynced.pop(failure["path"], None)

        m.unmount()
        problems = self._fsck_problems(store)
        self.assertEqual(problems, [], "cairn fsck after ENOSPC reports problems")

        m.mount()
        daemon["pid"] = m.daemon_pid()
        for path, content in done.items():
            with open(path, "rb") as f:
                self.assertTrue(f.read() == content, path)
        self.assertFalse(os.path.exists(victim))
        self.assertEqual(sorted(os.listdir(m.path)), sorted(os.path.basename(p) for p in done))

    def _fsck_problems(self, store):
        """The problems `cairn fsck --json` reports; it must exit 0 when there are none."""
        fsck = run(CAIRN, "fsck", "--json", "--store", store, check=False)
        self.assertIn(fsck.returncode, (0, 4), f"cairn fsck failed: {fsck.stdout}{fsck.stderr}")
        problems = json.loads(fsck.stdout).get("problems", [])
        self.assertEqual(fsck.returncode == 0, problems == [])
        if problems:
            note(f"cairn fsck (exit {fsck.returncode}): {json.dumps(problems)}")
        return problems


def _daemon_log(store, lines=30):
    try:
        with open(os.path.join(store, "daemon.log"), errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"(no daemon.log: {e})"


if __name__ == "__main__":
    unittest.main()
