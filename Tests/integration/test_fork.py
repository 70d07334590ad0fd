"""Forks through the CLI and two mounts: the fork starts as its parent was, nothing is copied
until used, and later writes on either side never show in the other, also after a crash."""
import json
import os
import subprocess

from cairnfs import CairnMount, MountedTestCase
from test_history import tree


class ForkTests(MountedTestCase):
    def test_a_fork_is_isolated_both_ways_and_shares_its_bytes(self):
        os.makedirs(self.p("src", "lib"))
        for i in range(30):
            with open(self.p("src", "lib", f"m{i}.py"), "w") as f:
                f.write(f"def f{i}():\n    return {i}\n" * 50)
        with open(self.p("data.bin"), "wb") as f:
            f.write(os.urandom(3 << 20))
        os.symlink("src/lib/m1.py", self.p("main.py"))
        before = tree(self.m.path)

        out = json.loads(self.m.cairn("workspace", "fork", "default", "exp", "--json").stdout)
        self.assertEqual(out["workspace"], "exp")
        status = json.loads(self.m.cairn("status", "--json").stdout)
        exp = next(w for w in status["workspaces"] if w["workspace"] == "exp")
        self.assertEqual((exp["parent"], exp["pendingDirectories"]), ("default", 1), "nothing copied at fork time")

        fork = CairnMount(workspace="exp", store=self.m.store, base=self.m.base + "-exp", joins=True)
        self.addCleanup(fork.close)
        self.assertEqual(tree(fork.path), before)

        # Each side changes: add, rewrite, delete, rename.
        with open(self.p("src", "lib", "m0.py"), "a") as f:
            f.write("# parent's change\n")
        os.remove(self.p("src", "lib", "m2.py"))
        subprocess.run(["cp", "-a", fork.p("src"), fork.p("src-copy")], check=True)
        with open(fork.p("data.bin"), "r+b") as f:
            f.write(b"fork's bytes")
        os.rename(fork.p("src", "lib", "m3.py"), fork.p("m3.py"))
        parent_now = tree(self.m.path)
        fork_now = tree(fork.path)
        self.assertNotIn("src-copy/lib/m0.py", parent_now)
        self.assertIn("src/lib/m3.py", parent_now)
        self.assertEqual(parent_now["data.bin"], before["data.bin"])
        self.assertEqual(fork_now["src/lib/m0.py"], before["src/lib/m0.py"], "the parent's edit stays in the parent")
        self.assertIn("src/lib/m2.py", fork_now)
        self.assertNotEqual(fork_now["data.bin"], before["data.bin"])

        status = json.loads(self.m.cairn("status", "--json").stdout)
        usage = {w["workspace"]: w for w in status["workspaces"]}
        self.assertGreater(usage["exp"]["sharedBytes"], 0)
        self.assertGreaterEqual(usage["exp"]["privateBytes"], 1 << 20, "the rewritten chunk is the fork's alone")
        self.assertIn("fork of default", self.m.cairn("status").stdout)

        # A crash keeps both sides as they were.
        fork.kill9()
        self.m.remount()
        fork.mount()
        self.assertEqual(tree(self.m.path), parent_now)
        self.assertEqual(tree(fork.path), fork_now)
        fsck = self.m.cairn("fsck", check=False)
        self.assertEqual(fsck.returncode, 0, fsck.stdout)

    def test_fork_at_a_past_point_and_bad_names(self):
        with open(self.p("f.txt"), "w") as f:
            f.write("old\n")
        self.m.cairn("snapshot", "create", "default", "s")
        seq = json.loads(self.m.cairn("snapshot", "list", "--json").stdout)[0]["seq"]
        with open(self.p("f.txt"), "w") as f:
            f.write("new\n")
        self.m.cairn("workspace", "fork", "default", "then", "--at", f"@{seq}")
        log = json.loads(self.m.cairn("log", "f.txt", "--workspace", "then", "--json").stdout)
        self.assertEqual([v["cause"] for v in log], ["fork"], "a fork's history starts at the fork")
        self.assertEqual(self.m.cairn("cat", "f.txt", "--workspace", "then").stdout, "old\n")
        fork = CairnMount(workspace="then", store=self.m.store, base=self.m.base + "-then", joins=True)
        self.addCleanup(fork.close)
        with open(fork.p("f.txt")) as f:
            self.assertEqual(f.read(), "old\n")
        dup = self.m.cairn("workspace", "fork", "default", "then", check=False)
        self.assertIn("exists already", dup.stderr)
        missing = self.m.cairn("workspace", "fork", "nope", "x", check=False)
        self.assertIn("no workspace named 'nope'", missing.stderr)
