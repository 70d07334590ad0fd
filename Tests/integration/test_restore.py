"""Snapshots, restore and rollback from the CLI, seen through a real mount: what comes back is
byte for byte what was there, the kernel's caches never show the replaced state, and every
restore can be undone."""
import json
import os
import shutil
import subprocess
import time

from cairnfs import CAIRN, MountedTestCase
from test_history import tree


class RestoreTests(MountedTestCase):
    def make_project(self):
        top = self.p("proj")
        os.makedirs(os.path.join(top, "src", "deep"))
        for i in range(20):
            with open(os.path.join(top, "src", f"f{i}.txt"), "w") as f:
                f.write(f"file {i}\n" * (i + 1))
        with open(os.path.join(top, "src", "deep", "blob.bin"), "wb") as f:
            f.write(os.urandom(3 << 20))
        os.symlink("src/f1.txt", os.path.join(top, "link"))
        os.link(os.path.join(top, "src", "f2.txt"), os.path.join(top, "hard"))
        subprocess.run(["setfattr", "-n", "user.color", "-v", "blue", os.path.join(top, "src", "f3.txt")], check=True)
        os.chmod(os.path.join(top, "src", "f4.txt"), 0o600)
        return top

    def snapshot(self, name):
        out = json.loads(self.m.cairn("snapshot", "create", "default", name, "--json").stdout)
        self.assertEqual(out["name"], name)
        return out["seq"]

    def test_rm_rf_then_restore_brings_back_every_file_with_its_history(self):
        top = self.make_project()
        before = tree(top)
        seq = self.snapshot("before-rm")
        shutil.rmtree(top)
        self.assertFalse(os.path.exists(top))  # the kernel now caches "no such name"

        out = json.loads(self.m.cairn("restore", top, "--at", f"@{seq}", "--json").stdout)
        self.assertEqual(out["removed"], 0)
        self.assertGreaterEqual(out["bytes"], 3 << 20)
        self.assertTrue(os.path.isdir(top), "the restored name is visible at once")
        self.assertEqual(tree(top), before)
        self.assertEqual(os.stat(os.path.join(top, "hard")).st_ino, os.stat(os.path.join(top, "src", "f2.txt")).st_ino)
        color = subprocess.run(["getfattr", "--only-values", "-n", "user.color", os.path.join(top, "src", "f3.txt")],
                               capture_output=True, text=True)
        self.assertEqual(color.stdout, "blue")
        log = json.loads(self.m.cairn("log", os.path.join(top, "src", "f5.txt"), "--json").stdout)
        self.assertTrue(any(v["seq"] <= seq and v["size"] == len("file 5\n") * 6 for v in log),
                        "the file's history from before the rm is still its history")

    def test_a_restored_file_replaces_what_the_kernel_cached(self):
        path = self.p("notes.md")
        with open(path, "w") as f:
            f.write("good text\n")
        log = json.loads(self.m.cairn("log", path, "--json").stdout)
        with open(path, "w") as f:
            f.write("an agent's mistake, longer than the good text\n")
        with open(path) as f:
            self.assertIn("mistake", f.read())  # now in the page cache
        good = next(v for v in log if v["size"] == 10)
        self.m.cairn("restore", path, "--version", str(good["version"]))
        with open(path) as f:
            self.assertEqual(f.read(), "good text\n")
        self.assertEqual(os.stat(path).st_size, 10)
        newest = json.loads(self.m.cairn("log", path, "--json").stdout)[0]
        self.assertEqual(newest["cause"], "restore")

    def test_snapshots_are_browsable_and_a_rollback_is_undoable(self):
        top = self.make_project()
        self.snapshot("good")
        good = tree(self.m.path)
        with open(os.path.join(top, "src", "f0.txt"), "w") as f:
            f.write("overwritten\n")
        os.rename(os.path.join(top, "src"), self.p("moved"))
        os.remove(os.path.join(top, "link"))
        with open(self.p("junk"), "w") as f:
            f.write("junk\n")
        subprocess.run(["setfattr", "-n", "user.color", "-v", "red", os.path.join(self.p("moved"), "f3.txt")], check=True)
        bad = tree(self.m.path)

        snaps = self.p(".cairn", "snapshots")
        self.assertEqual(os.listdir(snaps), ["good"])
        self.assertEqual(tree(os.path.join(snaps, "good")), good)
        color = subprocess.run(["getfattr", "--only-values", "-n", "user.color",
                                os.path.join(snaps, "good", "proj", "src", "f3.txt")], capture_output=True, text=True)
        self.assertEqual(color.stdout, "blue", "a view of the past shows the xattrs of then")
        self.assertNotIn(".cairn", os.listdir(self.m.path))

        out = json.loads(self.m.cairn("rollback", "default", "--to", "good", "--json").stdout)
        self.assertEqual(tree(self.m.path), good)
        safety = out["safetySnapshot"]
        self.assertTrue(safety.startswith("before-rollback-"))
        listed = json.loads(self.m.cairn("snapshot", "list", "--json").stdout)
        self.assertEqual([s["name"] for s in listed], ["good", safety])
        self.assertEqual(sorted(os.listdir(snaps)), sorted(["good", safety]))

        self.m.cairn("rollback", "default", "--to", safety)
        self.assertEqual(tree(self.m.path), bad, "the rollback is undone")

        self.m.cairn("snapshot", "delete", "default", "good")
        self.assertFalse(os.path.exists(os.path.join(snaps, "good")))
        wrong = self.m.cairn("rollback", "default", "--to", "good", check=False)
        self.assertNotEqual(wrong.returncode, 0)
        self.assertIn("no snapshot named 'good'", wrong.stderr)

    def test_restore_and_snapshots_work_without_a_daemon_and_survive_a_crash(self):
        with open(self.p("a.txt"), "w") as f:
            f.write("one\n")
        seq = self.snapshot("one")
        with open(self.p("a.txt"), "w") as f:
            f.write("two\n")
        self.m.unmount()
        self.m.cairn("restore", "a.txt", "--at", f"@{seq}")
        self.m.cairn("snapshot", "create", "default", "offline")
        self.m.mount()
        with open(self.p("a.txt")) as f:
            self.assertEqual(f.read(), "one\n")
        self.assertIn("offline", os.listdir(self.p(".cairn", "snapshots")))

        pid = self.m.daemon_pid()
        self.m.cairn("restore", "a.txt", "--snapshot", "offline")
        with open(self.p("b.txt"), "w") as f:
            f.write("b\n")
        self.m.cairn("rollback", "default", "--to", "one")
        self.m.kill9(pid=pid)
        self.m.mount()
        self.assertEqual(sorted(os.listdir(self.m.path)), ["a.txt"], "the rollback removed b.txt, durably")
        self.assertEqual(len(json.loads(self.m.cairn("snapshot", "list", "default", "--json").stdout)), 3)
        fsck = self.m.cairn("fsck", check=False)
        self.assertEqual(fsck.returncode, 0, fsck.stdout + fsck.stderr)

    def test_bad_requests_say_what_to_do(self):
        usage = self.m.cairn("restore", "x", check=False)
        self.assertEqual(usage.returncode, 2)
        self.assertIn("--version, --at or --snapshot", usage.stderr)
        missing = self.m.cairn("restore", self.p("never"), "--at", "-1m", check=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("did not exist", missing.stderr)
        self.m.cairn("snapshot", "create", "default", "s")
        dup = self.m.cairn("snapshot", "create", "default", "s", check=False)
        self.assertIn("already", dup.stderr)
        slash = self.m.cairn("snapshot", "create", "default", "a/b", check=False)
        self.assertIn("'/'", slash.stderr)


class TrashLogDiffTests(MountedTestCase):
    def test_trash_lists_what_was_deleted_and_its_command_brings_it_back(self):
        os.makedirs(self.p("proj", "sub"))
        for name in ("proj/a.txt", "proj/sub/b.txt", "loose.txt"):
            with open(self.p(name), "w") as f:
                f.write(name + "\n")
        before = tree(self.p("proj"))
        os.remove(self.p("loose.txt"))
        shutil.rmtree(self.p("proj"))
        with open(self.p("kept.txt"), "w") as f:
            f.write("saved over\n")
        os.replace(self.p("kept.txt"), self.p("kept2.txt"))

        items = json.loads(self.m.cairn("trash", "--json").stdout)
        self.assertEqual([i["path"] for i in items], ["proj", "loose.txt"], "a removed tree shows once, newest first")
        self.assertEqual(items[0]["kind"], "directory")
        import shlex
        command = shlex.split(items[0]["restore"])
        self.assertEqual(command[:2], ["cairn", "restore"])
        self.m.cairn(*command[1:])
        self.assertEqual(tree(self.p("proj")), before)
        self.assertEqual([i["path"] for i in json.loads(self.m.cairn("trash", "--json").stdout)], ["loose.txt"])
        self.assertIn("cairn restore", self.m.cairn("trash").stdout)

    def test_workspace_log_shows_each_change_with_its_path_and_actor(self):
        os.makedirs(self.p("docs"))
        with open(self.p("docs", "a.txt"), "w") as f:
            f.write("a\n")
        os.rename(self.p("docs", "a.txt"), self.p("docs", "b.txt"))
        os.remove(self.p("docs", "b.txt"))
        env = dict(self.m.env, CAIRN_AGENT="reviewer")
        out = subprocess.run([CAIRN, "log", "--json"], cwd=self.p("docs"),
                             env=env, capture_output=True, text=True, check=True)
        changes = json.loads(out.stdout)
        kinds = [(c["kind"], c["path"]) for c in changes[:4]]
        self.assertEqual(kinds, [("delete", "docs/b.txt"), ("rename", "docs/b.txt"), ("write", "docs/a.txt"),
                                 ("create", "docs/a.txt")])
        self.assertEqual(changes[1]["old_path"], "docs/a.txt")
        self.assertEqual(changes[2]["cause"], "close")
        self.assertGreater(changes[0]["seq"], changes[1]["seq"])
        older = json.loads(self.m.cairn("log", "--json", "--before", str(changes[1]["seq"]), "--limit", "1").stdout)
        self.assertEqual([c["kind"] for c in older], ["write"])
        self.m.cairn("snapshot", "create", "default", "mark")
        newest = json.loads(self.m.cairn("log", "--json", "--limit", "1").stdout)[0]
        self.assertEqual((newest["kind"], newest["cause"]), ("snapshot", "mark"))

    def test_diff_shows_text_changes_and_says_when_binary_differs(self):
        path = self.p("notes.txt")
        with open(path, "w") as f:
            f.write("alpha\nbeta\ngamma\n")
        with open(path, "w") as f:
            f.write("alpha\nBETA\ngamma\ndelta\n")
        last = self.m.cairn("diff", path).stdout
        self.assertIn("-beta\n", last)
        self.assertIn("+BETA\n", last)
        self.assertIn("+delta\n", last)
        self.assertIn("--- a/notes.txt", last)
        versions = json.loads(self.m.cairn("log", path, "--json").stdout)
        first = next(v for v in versions if v["size"] == 17)["version"]
        same = json.loads(self.m.cairn("diff", path, str(first), str(first), "--json").stdout)
        self.assertTrue(same["identical"])
        self.assertIsNone(same.get("diff"))
        with open(path, "wb") as f:
            f.write(b"\x00\x01binary")
        binary = self.m.cairn("diff", path, str(first)).stdout
        self.assertIn("binary versions", binary)
        missing = self.m.cairn("diff", path, "999999", check=False)
        self.assertIn("has no version 999999", missing.stderr)
