"""The CLI and the daemon's lifecycle: mount errors, a second mount joining the daemon, SIGTERM,
history commands, actors."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
from unittest import mock

from cairnfs import CAIRN, CairnMount, MountedTestCase, process_alive, run


class MountErrorTests(unittest.TestCase):
    def setUp(self):
        self.m = CairnMount()
        self.addCleanup(self.m.close)

    def mount_error(self, target):
        r = self.m.cairn("mount", target, check=False)
        self.assertNotEqual(r.returncode, 0)
        return r.stderr

    def test_missing_mountpoint(self):
        self.assertIn("does not exist", self.mount_error(os.path.join(self.m.base, "nope")))

    def test_mountpoint_not_a_directory(self):
        f = os.path.join(self.m.base, "file")
        open(f, "w").close()
        self.assertIn("not a directory", self.mount_error(f))

    def test_already_mounted(self):
        self.assertIn("already a mountpoint", self.mount_error(self.m.path))

    def test_unknown_option(self):
        other = os.path.join(self.m.base, "other")
        os.mkdir(other)
        r = self.m.cairn("mount", other, "-o", "bogus_option", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("unknown mount option 'bogus_option'", r.stderr)

    def test_not_permitted_for_an_unprivileged_user(self):
        other = os.path.join(self.m.base, "other")
        os.mkdir(other)
        # A user who owns neither the store nor the mountpoint cannot mount.
        r = subprocess.run(
            ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", CAIRN, "mount", "--store",
             self.m.store, other], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("you may not use the store", r.stderr)

    def test_missing_store(self):
        r = run(CAIRN, "status", "--store", os.path.join(self.m.base, "nostore"), check=False)
        self.assertEqual(r.returncode, 3)
        self.assertIn("cairn init", r.stderr)


class DaemonTests(unittest.TestCase):
    def test_second_mount_joins_the_running_daemon(self):
        with CairnMount() as m:
            m.cairn("workspace", "create", "team")
            second = os.path.join(m.base, "team")
            os.mkdir(second)
            r = m.cairn("mount", second, "--workspace", "team")
            self.assertIn("joined the running daemon", r.stdout)
            status = json.loads(m.cairn("status", "--json").stdout)
            self.assertEqual(len(status["daemon"]["mounts"]), 2)
            with open(os.path.join(second, "t.txt"), "w") as f:
                f.write("team file\n")
            self.assertFalse(os.path.exists(m.p("t.txt")), "workspaces are separate trees")
            m.cairn("unmount", second)
            status = json.loads(m.cairn("status", "--json").stdout)
            self.assertEqual([x["mountpoint"] for x in status["daemon"]["mounts"]], [os.path.realpath(m.path)])
            self.assertEqual(m.cairn("cat", "t.txt", "--workspace", "team").stdout, "team file\n")

    def test_mount_right_after_the_last_unmount_starts_a_new_daemon(self):
        with CairnMount() as m:
            for i in range(5):
                with open(m.p(f"f{i}"), "w") as f:
                    f.write(str(i))
                m.cairn("unmount", m.path)
                m.cairn("mount", m.path)  # the old daemon may still be exiting
                with open(m.p(f"f{i}")) as f:
                    self.assertEqual(f.read(), str(i))

    def test_store_is_private_to_its_owner(self):
        with CairnMount() as m:
            self.assertEqual(os.stat(m.store).st_mode & 0o777, 0o700)

    def test_unmount_through_another_store_leaves_a_live_mount_alone(self):
        with CairnMount() as m:
            other = os.path.join(m.base, "other-store")
            run(CAIRN, "init", env=dict(os.environ, CAIRN_STORE=other))
            r = run(CAIRN, "unmount", m.path, check=False, env=dict(os.environ, CAIRN_STORE=other))
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("another store", r.stderr)
            with open(m.p("still.txt"), "w") as f:
                f.write("served\n")
            with open(m.p("still.txt")) as f:
                self.assertEqual(f.read(), "served\n")

    def test_cli_after_a_crash_sees_what_the_daemon_answered_for(self):
        with CairnMount() as m:
            pid = m.daemon_pid()
            for i in range(20):
                with open(m.p(f"c{i}.txt"), "w") as f:
                    f.write(f"closed {i}\n")
            # Killed right after the last close: its commit is most likely still to come.
            m.kill9(pid=pid)
            # No remount: the CLI applies the journal the dead daemon left.
            for i in range(20):
                self.assertEqual(m.cairn("cat", f"c{i}.txt").stdout, f"closed {i}\n")
            self.assertEqual(m.cairn("fsck", check=False).returncode, 0)

    def test_sigterm_commits_open_files_and_unmounts(self):
        with CairnMount() as m:
            f = open(m.p("open.txt"), "w")
            f.write("written, never closed\n")
            f.flush()  # in the daemon now, but no close: no version yet
            pid = m.daemon_pid()
            os.kill(pid, signal.SIGTERM)
            for _ in range(200):
                if not process_alive(pid):
                    break
                time.sleep(0.05)
            self.assertFalse(process_alive(pid), "the daemon did not exit on SIGTERM")
            try:
                f.close()
            except OSError:
                pass
            m.detach()
            m.mount()
            with open(m.p("open.txt")) as g:
                self.assertEqual(g.read(), "written, never closed\n")


class ReadYourWritesTests(unittest.TestCase):
    def test_a_command_right_after_a_close_sees_it(self):
        # The daemon holds changes for their group commit (here up to 3 s, so that the test can
        # tell); a command reading the store asks it to commit first, so a script's next line
        # never misses its last write.
        with mock.patch.dict(os.environ, {"CAIRN_COMMIT_DELAY_MS": "3000"}):
            m = CairnMount()
        self.addCleanup(m.close)
        path = m.p("tally.txt")
        for n in range(1, 4):
            with open(path, "w") as f:
                f.write(f"{n}\n")
            log = json.loads(m.cairn("log", path, "--json").stdout)
            self.assertEqual(len([v for v in log if v["size"] > 0]), n, f"versions after write {n}")
            self.assertEqual(m.cairn("cat", path).stdout, f"{n}\n")

    def test_daemon_settings_out_of_range_are_refused_with_their_limits(self):
        for name, value, limits in (("CAIRN_COMMIT_DELAY_MS", "0", "1 to 10000"),
                                    ("CAIRN_POLL_US", "10001", "0 to 10000"),
                                    ("CAIRN_POLL_US", "fast", "0 to 10000")):
            base = tempfile.mkdtemp(prefix="cairn-it-")
            self.addCleanup(shutil.rmtree, base, True)
            with mock.patch.dict(os.environ, {name: value}):
                with self.assertRaises(subprocess.CalledProcessError, msg=f"{name}={value}") as refused:
                    CairnMount(base=base)
            self.assertIn(name, refused.exception.stderr)
            self.assertIn(limits, refused.exception.stderr)
            self.assertFalse(os.path.ismount(os.path.join(base, "mnt")))


class HistoryCommandTests(MountedTestCase):
    def test_log_and_cat_show_every_version_with_its_actor(self):
        path = self.p("notes.md")
        subprocess.run(["sh", "-c", f"echo one > {path}"], check=True, env=dict(os.environ, CAIRN_AGENT="agent-a"))
        subprocess.run(["sh", "-c", f"echo two > {path}.tmp && mv {path}.tmp {path}"], check=True,
                       env=dict(os.environ, CAIRN_AGENT="agent-b"))
        log = json.loads(self.m.cairn("log", path, "--json").stdout)
        writes = [v for v in log if v["size"] > 0]
        self.assertEqual([v["actor"] for v in writes], ["agent-b", "agent-a"])
        self.assertEqual(self.m.cairn("cat", path, "--version", str(writes[1]["version"])).stdout, "one\n")
        self.assertEqual(self.m.cairn("cat", path).stdout, "two\n")
        os.unlink(path)
        log = json.loads(self.m.cairn("log", "notes.md", "--json").stdout)
        self.assertGreaterEqual(len([v for v in log if v["size"] > 0]), 2)

    def test_status_reports_store_figures(self):
        with open(self.p("a"), "wb") as f:
            f.write(os.urandom(3 << 20))
        with open(self.p("b"), "wb") as f, open(self.p("a"), "rb") as g:
            f.write(g.read())
        stats = json.loads(self.m.cairn("status", "--json").stdout)["statistics"]
        self.assertEqual(stats["liveFiles"], 2)
        self.assertEqual(stats["chunkBytes"], 3 << 20, "the copy is deduplicated")
        self.assertGreaterEqual(stats["dedupRatio"], 2.0)
        # The index, once it has caught up: two files, both binary.
        deadline = time.monotonic() + 30
        while True:
            index = json.loads(self.m.cairn("status", "--json").stdout)["index"]
            if index["backlog"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual((index["backlog"], index["formats"]), (0, {"binary": 2}))
        self.assertIn("index      2 files", self.m.cairn("status").stdout)


class LargeFileTests(MountedTestCase):
    def test_files_over_4_gib_and_o_direct(self):
        path = self.p("big")
        with open(path, "wb") as f:
            f.seek(5 << 30)
            f.write(b"tail of a 5 GiB file")
        self.assertEqual(os.stat(path).st_size, (5 << 30) + 20)
        with open(path, "rb") as f:
            f.seek(5 << 30)
            self.assertEqual(f.read(), b"tail of a 5 GiB file")
            f.seek(1 << 30)
            self.assertEqual(f.read(16), b"\0" * 16)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        try:
            import mmap
            buf = mmap.mmap(-1, 4096)
            os.lseek(fd, 5 << 30, os.SEEK_SET)
            n = os.readv(fd, [buf])
            self.assertEqual(buf[:20], b"tail of a 5 GiB file")
            self.assertEqual(n, 20)
        finally:
            os.close(fd)


if __name__ == "__main__":
    unittest.main()


class CoherenceTests(unittest.TestCase):
    def test_changes_through_one_mount_show_at_once_in_another(self):
        with CairnMount() as m:
            other = os.path.join(m.base, "other")
            os.mkdir(other)
            m.cairn("mount", other)
            try:
                seen = os.path.join(other, "new.txt")
                self.assertFalse(os.path.exists(seen))  # the other mount now caches "no such name"
                with open(m.p("new.txt"), "w") as f:
                    f.write("hello\n")
                os.chmod(m.p("new.txt"), 0o600)
                time.sleep(0.2)  # invalidations are sent asynchronously
                self.assertTrue(os.path.exists(seen), "a name created through one mount is visible in the other")
                self.assertEqual(os.stat(seen).st_mode & 0o777, 0o600, "attributes are not stale")
                with open(seen) as f:
                    self.assertEqual(f.read(), "hello\n")
                os.unlink(m.p("new.txt"))
                time.sleep(0.2)
                self.assertFalse(os.path.exists(seen), "a removal is visible in the other mount")
            finally:
                m.cairn("unmount", other)
