"""Real programs on a real mount: cp -a, tar, git, sqlite3 (python), xattr tools, mmap."""
import hashlib
import mmap
import os
import sqlite3
import stat
import subprocess
import threading
import unittest

from cairnfs import ROOT, MountedTestCase, run


def tree_digest(top):
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            if os.path.islink(path):
                out[rel] = "link:" + os.readlink(path)
            else:
                with open(path, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


class ToolTests(MountedTestCase):
    def test_cp_a_of_a_source_tree_then_diff_r(self):
        src = os.path.join(ROOT, "Sources")
        run("cp", "-a", src, self.p("src"))
        run("diff", "-r", src, self.p("src"))
        self.assertEqual(tree_digest(src), tree_digest(self.p("src")))

    def test_tar_create_and_extract(self):
        src = os.path.join(ROOT, "Sources")
        archive = self.p("a.tar")
        run("tar", "-cf", archive, "-C", ROOT, "Sources")
        os.mkdir(self.p("out"))
        run("tar", "-xf", archive, "-C", self.p("out"))
        self.assertEqual(tree_digest(src), tree_digest(self.p("out", "Sources")))

    def test_git_init_add_commit_clone(self):
        repo = self.p("repo")
        os.mkdir(repo)
        git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-C", repo]
        run(*git[:5], "init", "-q", repo)
        for i in range(20):
            with open(os.path.join(repo, f"f{i}.txt"), "w") as f:
                f.write(f"line {i}\n" * (i + 1))
        run(*git, "add", ".")
        run(*git, "commit", "-qm", "first")
        with open(os.path.join(repo, "f3.txt"), "a") as f:
            f.write("more\n")
        run(*git, "commit", "-qam", "second")
        run("git", "clone", "-q", repo, self.p("clone"))
        log = run("git", "-C", self.p("clone"), "log", "--oneline").stdout.splitlines()
        self.assertEqual(len(log), 2)
        run("git", "-C", self.p("clone"), "fsck", "--strict")
        with open(self.p("clone", "f3.txt")) as f:
            self.assertTrue(f.read().endswith("more\n"))

    def test_sqlite_database_under_concurrent_writers(self):
        path = self.p("db.sqlite")
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE t (writer INTEGER, n INTEGER)")
        con.commit()
        con.close()
        errors = []

        def writer(k):
            try:
                c = sqlite3.connect(path, timeout=30)
                for n in range(50):
                    c.execute("INSERT INTO t VALUES (?, ?)", (k, n))
                    c.commit()
                c.close()
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        c = sqlite3.connect(path)
        self.assertEqual(c.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        self.assertEqual(c.execute("SELECT count(*) FROM t").fetchone()[0], 200)
        c.close()

    def test_setfattr_getfattr(self):
        path = self.p("x")
        open(path, "w").close()
        run("setfattr", "-n", "user.color", "-v", "blue", path)
        out = run("getfattr", "-n", "user.color", "--only-values", path).stdout
        self.assertEqual(out, "blue")
        listing = run("getfattr", "-d", path).stdout
        self.assertIn('user.color="blue"', listing)
        run("setfattr", "-x", "user.color", path)
        self.assertNotEqual(run("getfattr", "-n", "user.color", path, check=False).returncode, 0)

    def test_times_outside_the_range_are_clamped_not_fatal(self):
        path = self.p("t")
        open(path, "w").close()
        run("touch", "-d", "@10000000000", path)  # year 2286: past 64-bit nanoseconds
        os.utime(path, (-(10**12), -(10**12)))  # long before 1677
        os.utime(path, ns=(1_700_000_000_123_456_789, 1_700_000_000_987_654_321))
        st = os.stat(path)
        self.assertEqual(st.st_mtime_ns, 1_700_000_000_987_654_321, "nanoseconds are kept")
        with open(path, "w") as f:
            f.write("the daemon is alive\n")

    def test_special_files_as_root(self):
        os.mkfifo(self.p("fifo"))
        os.mknod(self.p("null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.bind(self.p("sock"))
        s.close()
        self.assertTrue(stat.S_ISFIFO(os.stat(self.p("fifo")).st_mode))
        st = os.stat(self.p("null"))
        self.assertTrue(stat.S_ISCHR(st.st_mode))
        self.assertEqual((os.major(st.st_rdev), os.minor(st.st_rdev)), (1, 3))
        self.assertTrue(stat.S_ISSOCK(os.stat(self.p("sock")).st_mode))
        # Mounts are nodev (libfuse's default for safety), so the node cannot be opened as a device.
        with self.assertRaises(PermissionError):
            open(self.p("null"), "wb")

    def test_shared_mmap_read_and_write(self):
        path = self.p("m")
        with open(path, "wb") as f:
            f.write(b"\0" * 8192)
        with open(path, "r+b") as f:
            mm = mmap.mmap(f.fileno(), 8192)
            mm[100:105] = b"hello"
            mm[5000:5003] = b"abc"
            mm.flush()
            mm.close()
        with open(path, "rb") as f:
            data = f.read()
        self.assertEqual(data[100:105], b"hello")
        self.assertEqual(data[5000:5003], b"abc")
        # The change survives a remount: it was committed at release.
        self.m.remount()
        with open(path, "rb") as f:
            self.assertEqual(f.read()[100:105], b"hello")


if __name__ == "__main__":
    unittest.main()
