"""Workspace roles with a real second user: a reader cannot create, write, rename, delete or set
xattrs; a writer can; a grant to an agent only narrows its user; a revoke reaches an open mount
within a second; ownership moves with `workspace transfer`."""
import json
import os
import subprocess
import time

from cairnfs import CairnMount, MountedTestCase
from test_permissions import USER, as_user, ensure_user


class AccessTests(MountedTestCase):
    def setUp(self):
        super().setUp()
        self.user = ensure_user()
        os.chmod(self.m.base, 0o755)
        os.makedirs(self.p("shared"))
        os.chmod(self.p("shared"), 0o777)  # mode bits allow everything: roles decide
        with open(self.p("shared", "doc.txt"), "w") as f:
            f.write("v1\n")
        os.chmod(self.p("shared", "doc.txt"), 0o666)

    def run_as(self, script, agent=None):
        # The actor is read from the environment a process was started with.
        if agent:
            script = f"env CAIRN_AGENT={agent} sh -c \"{script}\""
        return as_user("sh", "-c", f"cd {self.p('shared')} && {script}")

    def test_a_reader_reads_and_cannot_change_anything_a_writer_can(self):
        self.m.cairn("grant", "default", f"user:{USER}", "reader")
        self.assertEqual(self.run_as("cat doc.txt").stdout, "v1\n")
        for script in ("echo x > new.txt", "echo x >> doc.txt", "mv doc.txt moved.txt", "rm doc.txt",
                       "mkdir d", "setfattr -n user.k -v v doc.txt"):
            denied = self.run_as(script)
            self.assertNotEqual(denied.returncode, 0, script)
            self.assertIn("denied", denied.stderr, script)
        with open(self.p("shared", "doc.txt")) as f:
            self.assertEqual(f.read(), "v1\n")
        self.m.cairn("grant", "default", f"user:{USER}", "writer")
        self.assertEqual(self.run_as("echo x > new.txt && mv new.txt moved.txt && rm moved.txt").returncode, 0)
        access = json.loads(self.m.cairn("access", "default", "--json").stdout)
        self.assertEqual([(g["principal"], g["role"]) for g in access["grants"]], [(f"uid:{self.user.pw_uid}", "writer")])
        self.assertEqual(access["others"], "none")

    def test_an_agent_grant_only_narrows_its_user(self):
        self.m.cairn("grant", "default", "agent:summarizer", "reader")
        self.assertEqual(self.run_as("echo a > by-user.txt").returncode, 0, "the user is a writer by default")
        narrowed = self.run_as("echo b > by-agent.txt", agent="summarizer")
        self.assertNotEqual(narrowed.returncode, 0)
        self.m.cairn("grant", "default", "agent:summarizer", "admin")
        self.m.cairn("grant", "default", f"user:{USER}", "reader")
        self.assertNotEqual(self.run_as("echo c > widened.txt", agent="summarizer").returncode, 0,
                            "an agent's grant never widens its user's role")

    def test_a_revoke_reaches_an_open_mount_and_open_descriptors_within_a_second(self):
        self.m.cairn("grant", "default", f"user:{USER}", "writer")
        self.m.cairn("grant", "default", "uid:4242", "reader")  # the workspace keeps a grant
        writer = subprocess.Popen(
            ["setpriv", "--reuid", USER, "--regid", USER, "--init-groups", "python3", "-c",
             "import sys, time\nf = open(sys.argv[1], 'a')\nfor line in sys.stdin:\n"
             "    try:\n        f.write(line); f.flush(); print('ok', flush=True)\n"
             "    except OSError as e:\n        print('errno', e.errno, flush=True)\n",
             self.p("shared", "doc.txt")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (writer.kill(), writer.wait()))
        writer.stdin.write("before\n")
        writer.stdin.flush()
        self.assertEqual(writer.stdout.readline().strip(), "ok")
        self.m.cairn("revoke", "default", f"user:{USER}")
        time.sleep(1.1)
        writer.stdin.write("after\n")
        writer.stdin.flush()
        self.assertEqual(writer.stdout.readline().strip(), "errno 13", "the open descriptor lost its write")
        self.assertNotEqual(self.run_as("cat doc.txt").returncode, 0, "and the user cannot read any more")

    def test_transfer_hands_the_workspace_over(self):
        self.m.cairn("workspace", "transfer", "default", "--to", f"user:{USER}", "--keep-admin")
        access = json.loads(self.m.cairn("access", "default", "--json").stdout)
        self.assertEqual(access["owner_uid"], self.user.pw_uid)
        self.assertIn(("uid:0", "admin"), [(g["principal"], g["role"]) for g in access["grants"]])
        bad = self.m.cairn("grant", "default", "someone", "reader", check=False)
        self.assertIn("not a principal", bad.stderr)

    def test_the_store_default_reaches_new_workspaces_and_a_stranger_reads_only(self):
        self.m.cairn("access", "--set-default", "reader")
        self.assertEqual(json.loads(self.m.cairn("access", "--json").stdout), {"default_role": "reader"})
        self.m.cairn("workspace", "create", "later")
        self.assertEqual(json.loads(self.m.cairn("access", "later", "--json").stdout)["others"], "reader")
        self.assertEqual(json.loads(self.m.cairn("access", "default", "--json").stdout)["others"], "writer")
        later = CairnMount(workspace="later", store=self.m.store, joins=True)
        self.addCleanup(later.close)
        os.chmod(later.base, 0o755)
        os.chmod(later.path, 0o777)
        with open(later.p("notes.txt"), "w") as f:
            f.write("n\n")
        self.assertEqual(as_user("cat", later.p("notes.txt")).stdout, "n\n")
        denied = as_user("sh", "-c", f"echo x > {later.p('mine.txt')}")
        self.assertIn("denied", denied.stderr)
