"""Views of the past through the mount: `.cairn/at/<when>/` shows the workspace exactly as it was,
read-only, under node ids of its own, readable only by those who may read the file today."""
import datetime
import errno
import hashlib
import json
import os
import random
import time

from cairnfs import CAIRN, MountedTestCase
from test_permissions import as_user, ensure_user


def tree(top):
    """Every path below `top` with what it is: a directory, a symlink's target or a file's hash."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            if os.path.islink(path):
                found[rel] = "-> " + os.readlink(path)
            elif os.path.isdir(path):
                found[rel] = f"dir {os.stat(path).st_mode & 0o7777:o}"
            else:
                with open(path, "rb") as f:
                    found[rel] = f"{os.stat(path).st_mode & 0o7777:o} " + hashlib.sha256(f.read()).hexdigest()
    return found


def moment():
    """Now, as a name in `.cairn/at` (ISO-8601 UTC with microseconds)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class HistoryViewTests(MountedTestCase):
    def test_at_shows_exactly_the_tree_of_each_moment(self):
        rng = random.Random(11)
        captured = []
        for step in range(12):
            files = [os.path.relpath(os.path.join(d, f), self.m.path)
                     for d, _, fs in os.walk(self.m.path) for f in fs]
            dirs = [os.path.relpath(d, self.m.path) for d, _, _ in os.walk(self.m.path)]
            action = rng.choice(["write", "write", "rewrite", "rename", "delete", "mkdir", "chmod", "symlink"])
            if action == "write" or not files:
                with open(self.p(rng.choice(dirs), f"f{step}"), "wb") as f:
                    f.write(os.urandom(rng.randrange(0, 200_000)))
            elif action == "rewrite":
                with open(self.p(rng.choice(files)), "r+b") as f:
                    f.seek(rng.randrange(0, 1000))
                    f.write(b"rewritten")
            elif action == "rename":
                os.rename(self.p(rng.choice(files)), self.p(rng.choice(dirs), f"renamed{step}"))
            elif action == "delete":
                os.unlink(self.p(rng.choice(files)))
            elif action == "mkdir":
                os.mkdir(self.p(rng.choice(dirs), f"d{step}"))
            elif action == "chmod":
                os.chmod(self.p(rng.choice(files)), rng.choice([0o600, 0o644, 0o755]))
            else:
                os.symlink(f"target-{step}", self.p(rng.choice(dirs), f"l{step}"))
            time.sleep(0.02)
            captured.append((moment(), tree(self.m.path)))
            time.sleep(0.02)
        for when, expected in captured:
            self.assertEqual(tree(self.p(".cairn", "at", when)), expected, f"the tree at {when}")
        # The past is in the store, not in the daemon: after a crash every moment reads the same
        # (once the last group commit is past: SEMANTICS.md, within 20 ms).
        time.sleep(0.1)
        self.m.kill9()
        self.m.mount()
        for when, expected in captured:
            self.assertEqual(tree(self.p(".cairn", "at", when)), expected, f"the tree at {when}, after kill -9")

    def test_cairn_is_hidden_read_only_and_apart_from_the_live_tree(self):
        with open(self.p("doc"), "w") as f:
            f.write("first\n")
        time.sleep(0.02)
        then = moment()
        time.sleep(0.02)
        with open(self.p("doc"), "w") as f:
            f.write("second\n")
        self.assertNotIn(".cairn", os.listdir(self.m.path))
        self.assertEqual(sorted(os.listdir(self.p(".cairn"))), ["at", "events", "locks", "search", "snapshots", "versions"])
        self.assertEqual(os.listdir(self.p(".cairn", "at")), [])
        past = self.p(".cairn", "at", then, "doc")
        with open(past) as f:
            self.assertEqual(f.read(), "first\n")
        self.assertNotEqual(os.stat(past).st_ino, os.stat(self.p("doc")).st_ino)
        for attempt in (lambda: open(past, "w"), lambda: os.unlink(past), lambda: os.mkdir(past + "-dir"),
                        lambda: os.chmod(past, 0o600), lambda: os.rename(past, past + "2"),
                        lambda: os.mkdir(self.p(".cairn", "x"))):
            with self.assertRaises(OSError) as caught:
                attempt()
            self.assertEqual(caught.exception.errno, errno.EROFS)
        with self.assertRaises(FileNotFoundError):
            os.stat(self.p(".cairn", "at", "not-a-time"))

    def test_the_past_is_readable_only_by_who_may_read_it_today(self):
        ensure_user()
        os.chmod(self.m.base, 0o755)
        with open(self.p("report"), "w") as f:
            f.write("once public\n")
        os.chmod(self.p("report"), 0o644)
        time.sleep(0.02)
        then = moment()
        time.sleep(0.02)
        past = self.p(".cairn", "at", then, "report")
        self.assertEqual(as_user("cat", past).stdout, "once public\n")
        os.chmod(self.p("report"), 0o600)
        denied = as_user("cat", past)
        self.assertNotEqual(denied.returncode, 0)
        self.assertIn("Permission denied", denied.stderr)


class VersionsViewTests(MountedTestCase):
    def test_versions_shows_one_read_only_file_per_version_named_by_number_time_and_actor(self):
        import re
        import subprocess
        os.makedirs(self.p("docs"))
        for i, agent in enumerate(["agentA", "agentB", "agentA"]):
            env = dict(os.environ, CAIRN_AGENT=agent)
            subprocess.run(["sh", "-c", f"printf 'draft {i}\\n' > {self.p('docs', 'notes.md')}"], env=env, check=True)
        with open(self.p("docs", "gone.txt"), "w") as f:
            f.write("soon deleted\n")
        os.remove(self.p("docs", "gone.txt"))

        view = self.p(".cairn", "versions", "docs", "notes.md")
        names = os.listdir(view)
        log = json.loads(self.m.cairn("log", self.p("docs", "notes.md"), "--json").stdout)
        self.assertEqual(len(names), len(log))
        for name, version in zip(sorted(names), reversed(log)):
            match = re.fullmatch(r"(\d{4})_(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ)_(.+)", name)
            self.assertIsNotNone(match, name)
            self.assertEqual(match.group(3), version["actor"])
            self.assertEqual(match.group(2), version["time"][:19].replace(":", "-") + "Z")
            with open(os.path.join(view, name), "rb") as f:
                self.assertEqual(f.read(), self.m.cairn("cat", self.p("docs", "notes.md"), "--version",
                                                          str(version["version"])).stdout.encode())
        newest = os.path.join(view, sorted(names)[-1])
        with open(newest) as f:
            self.assertEqual(f.read(), "draft 2\n")
        self.assertEqual(sorted(names)[-1].split("_")[-1], "agentA")
        self.assertEqual(os.stat(newest).st_mode & 0o222, 0, "version files are read-only")
        self.assertNotEqual(os.stat(newest).st_ino, os.stat(self.p("docs", "notes.md")).st_ino)
        with self.assertRaises(OSError) as ctx:
            open(newest, "w")
        self.assertIn(ctx.exception.errno, (errno.EROFS, errno.EACCES))

        self.assertEqual(sorted(os.listdir(self.p(".cairn", "versions", "docs"))), ["notes.md"])
        with open(os.path.join(self.p(".cairn", "versions", "docs", "gone.txt"), sorted(
                os.listdir(self.p(".cairn", "versions", "docs", "gone.txt")))[-1])) as f:
            self.assertEqual(f.read(), "soon deleted\n", "a deleted file's versions are reachable by name")
        self.assertFalse(os.path.exists(self.p(".cairn", "versions", "docs", "never")))


class AllWorkspacesMountTests(MountedTestCase):
    def test_every_workspace_root_has_its_own_cairn_in_a_mount_of_them_all(self):
        import subprocess
        self.m.cairn("workspace", "create", "second")
        with open(self.p("a.txt"), "w") as f:
            f.write("default's\n")
        self.m.cairn("snapshot", "create", "default", "snap")
        os.remove(self.p("a.txt"))
        every = os.path.join(self.m.base, "every")
        os.mkdir(every)
        self.m.cairn("mount", every, "--all-workspaces")
        try:
            self.assertEqual(sorted(os.listdir(every)), ["default", "second"])
            self.assertFalse(os.path.exists(os.path.join(every, ".cairn")), "the store root is not a workspace")
            self.assertNotIn(".cairn", os.listdir(os.path.join(every, "default")))
            with open(os.path.join(every, "default", ".cairn", "snapshots", "snap", "a.txt")) as f:
                self.assertEqual(f.read(), "default's\n")
            self.assertEqual(os.listdir(os.path.join(every, "second", ".cairn", "snapshots")), [])
            self.assertEqual(sorted(os.listdir(os.path.join(every, "second", ".cairn"))), ["at", "events", "locks", "search", "snapshots", "versions"])
            a = os.stat(os.path.join(every, "default", ".cairn")).st_ino
            b = os.stat(os.path.join(every, "second", ".cairn")).st_ino
            self.assertNotEqual(a, b, "each workspace's .cairn is a node of its own")
            with self.assertRaises(OSError) as ctx:
                os.mkdir(os.path.join(every, "second", ".cairn", "x"))
            self.assertEqual(ctx.exception.errno, errno.EROFS)
        finally:
            subprocess.run([CAIRN, "unmount", every], env=self.m.env, capture_output=True)
