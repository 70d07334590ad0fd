"""The audit log: changes, opens and denials with actor, uid, pid and process; CAIRN_AGENT through
a shell pipeline; a changed row found by `verify` at that row, a log cut short found too."""
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import unittest
from unittest import mock

from cairnfs import CairnMount, MountedTestCase
from test_permissions import USER, as_user, ensure_user


class AuditTests(MountedTestCase):
    def setUp(self):
        import tempfile
        self.head = os.path.join(tempfile.gettempdir(), f"cairn-audit-head-{os.getpid()}-{time.monotonic_ns()}")
        os.environ["CAIRN_AUDIT_HEAD"] = self.head
        self.addCleanup(os.environ.pop, "CAIRN_AUDIT_HEAD")
        self.addCleanup(lambda: os.path.exists(self.head) and os.remove(self.head))
        super().setUp()

    def rows(self, *args):
        deadline = time.monotonic() + 5
        while True:
            out = json.loads(self.m.cairn("audit", "show", "--json", *args).stdout)
            if out or time.monotonic() > deadline:
                return out
            time.sleep(0.05)

    def test_changes_opens_and_denials_are_recorded_with_who_did_them(self):
        env = dict(os.environ, CAIRN_AGENT="pipeline-agent")
        subprocess.run(["sh", "-c", f"echo one | tr a-z A-Z > {self.p('piped.txt')}"], env=env, check=True)
        with open(self.p("piped.txt")) as f:
            f.read()
        writes = self.rows("--path", "piped.txt", "--op", "write")
        self.assertEqual([(r["actor"], r["op"], r["bytes"]) for r in writes][:1], [("pipeline-agent", "write", 4)])
        self.assertEqual(writes[0]["process"], "sh")
        versions = json.loads(self.m.cairn("log", self.p("piped.txt"), "--json").stdout)
        made = [v["version"] for v in versions if v["size"] > 0]
        self.assertEqual(writes[0]["version"], made[0], "the row names the version it made")
        self.assertTrue(self.rows("--path", "piped.txt", "--op", "open-read"))

        ensure_user()
        os.chmod(self.m.base, 0o755)
        os.makedirs(self.p("shared"))
        os.chmod(self.p("shared"), 0o777)
        self.m.cairn("grant", "default", f"user:{USER}", "reader")
        self.assertNotEqual(as_user("sh", "-c", f"echo x > {self.p('shared', 'nope.txt')}").returncode, 0)
        denied = self.rows("--denied")
        self.assertEqual(denied[0]["result"], "denied: needs writer, has reader")
        self.assertEqual(denied[0]["path"], "shared")

    def test_verify_finds_a_changed_row_and_a_log_cut_short(self):
        for i in range(5):
            with open(self.p(f"f{i}"), "w") as f:
                f.write(str(i))
        self.rows()
        self.m.unmount()
        self.assertEqual(self.m.cairn("audit", "verify").returncode, 0)
        db = sqlite3.connect(os.path.join(self.m.store, "audit.db"))
        target = db.execute("SELECT id FROM audit WHERE op = 'write' ORDER BY id LIMIT 1").fetchone()[0]
        db.execute("UPDATE audit SET actor = 'someone else' WHERE id = ?", (target,))
        db.commit()
        bad = self.m.cairn("audit", "verify", "--json", check=False)
        self.assertEqual(bad.returncode, 4)
        self.assertEqual(json.loads(bad.stdout)["firstBadRow"], target)
        # Cutting the end of the log leaves an intact chain: the head outside the store finds it.
        db.execute("DELETE FROM audit WHERE id >= ?", (target,))
        db.commit()
        db.close()
        cut = self.m.cairn("audit", "verify", "--json", check=False)
        self.assertEqual(cut.returncode, 4)
        report = json.loads(cut.stdout)
        self.assertEqual((report.get("firstBadRow"), report["cutShort"]), (None, True))

    def test_the_chain_is_sha256_of_the_previous_hash_and_the_fields_as_documented(self):
        # Recomputed here from the rows, as anyone checking the log without cairn would: each
        # hash is SHA-256 of the previous one (32 zero bytes first) and the row's fields as UTF-8
        # joined by U+001F, a U+001F inside a field counting as a space, NULL as empty.
        for name in ("plain.txt", "odd\x1fname.txt", "ünï.txt"):
            with open(self.p(name), "w") as f:
                f.write(name)
        os.unlink(self.p("plain.txt"))
        self.rows("--op", "unlink")
        self.m.unmount()
        db = sqlite3.connect(os.path.join(self.m.store, "audit.db"))
        self.addCleanup(db.close)
        rows = db.execute(
            "SELECT time_ns, actor, uid, pid, process, op, workspace, path, version, bytes, result, hash "
            "FROM audit ORDER BY id").fetchall()
        self.assertIn("odd\x1fname.txt", [r[7] for r in rows])
        previous = bytes(32)
        for row in rows:
            fields = ["" if v is None else str(v).replace("\x1f", " ") for v in row[:11]]
            previous = hashlib.sha256(previous + "\x1f".join(fields).encode()).digest()
            self.assertEqual(previous, row[11], f"row {row}")
        self.assertEqual(self.m.cairn("audit", "verify").returncode, 0)

    def test_xattrs_links_and_admin_actions_are_recorded_and_reads_can_be_left_out(self):
        with open(self.p("contract.txt"), "w") as f:
            f.write("terms\n")
        subprocess.run(["setfattr", "-n", "user.status", "-v", "signed", self.p("contract.txt")], check=True)
        with open(self.p("draft.txt"), "w") as f:
            f.write("draft\n")
        os.link(self.p("draft.txt"), self.p("copy.txt"))
        self.m.cairn("quota", "default", "10M")
        self.assertEqual(self.rows("--op", "setxattr")[0]["result"], "ok: user.status")
        self.assertEqual(self.rows("--op", "link")[0]["path"], "copy.txt")
        self.assertEqual(self.rows("--op", "quota")[0]["result"], "ok: bytes 10485760, files none")

        reads = lambda: len(self.rows("--path", "contract.txt", "--op", "open-read"))  # noqa: E731
        with open(self.p("contract.txt")) as f:
            f.read()
        before = reads()
        self.assertGreaterEqual(before, 1)
        self.m.cairn("audit", "reads", "default", "off")
        self.assertIn("not audited", self.m.cairn("audit", "reads", "default").stdout)
        with open(self.p("contract.txt")) as f:
            f.read()
        with open(self.p("marker.txt"), "w") as f:  # a later row: the read's would be written by now
            f.write("m")
        self.rows("--path", "marker.txt", "--op", "write")
        self.assertEqual(reads(), before)
        self.assertEqual(self.rows("--op", "audit-reads")[0]["result"], "ok: off")

    def test_a_write_past_the_quota_is_audited_as_a_denial(self):
        self.m.cairn("quota", "default", "4K")
        with self.assertRaises(OSError):
            with open(self.p("big.bin"), "wb") as f:
                f.write(b"x" * 8192)
        denied = self.rows("--denied", "--path", "big.bin")
        self.assertEqual(denied[0]["result"], "denied: over the workspace's quota of bytes")
        self.assertEqual(denied[0]["process"], "python3")

    def test_a_killed_daemon_leaves_a_chain_that_verifies(self):
        # Writers run while the daemon dies: whatever rows reached the store, the head outside
        # it never names one the store lacks.
        writer = subprocess.Popen(
            ["sh", "-c", f"i=0; while :; do echo $i > {self.p('w')}$((i % 50)); cat {self.p('w0')}; "
             "i=$((i+1)); done"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (writer.kill(), writer.wait()))
        time.sleep(1.0)
        self.m.kill9()
        writer.kill()
        writer.wait()
        verified = self.m.cairn("audit", "verify", "--json", check=False)
        self.assertEqual(verified.returncode, 0, verified.stdout + verified.stderr)
        self.assertGreater(json.loads(verified.stdout)["rows"], 20)
        self.m.mount()
        self.assertEqual(self.m.cairn("fsck").returncode, 0)


class AuditCommitTests(unittest.TestCase):
    def test_audit_rows_commit_on_their_own_and_the_head_follows_them(self):
        # With the store's commits every 3 s, a close stays in the daemon's open transaction (a
        # reader of cairn.db does not see its version yet), while its audit row is committed
        # to audit.db with its batch (20 ms) and the head file outside the store names it.
        head = os.path.join(tempfile.mkdtemp(prefix="cairn-it-head-"), "head")
        self.addCleanup(shutil.rmtree, os.path.dirname(head), True)
        with mock.patch.dict(os.environ, {"CAIRN_COMMIT_DELAY_MS": "3000", "CAIRN_AUDIT_HEAD": head}):
            m = CairnMount()
            self.addCleanup(m.close)

        def query(name, sql):
            db = sqlite3.connect(f"file:{m.store}/{name}?mode=ro", uri=True)
            try:
                return db.execute(sql).fetchone()
            finally:
                db.close()

        def versions():
            return query("cairn.db", "SELECT count(*) FROM versions")[0]

        time.sleep(3.5)  # the mount's own changes commit
        before = versions()
        with open(m.p("note.txt"), "w") as f:
            f.write("x\n")
        time.sleep(0.5)  # ten audit batches
        self.assertEqual(versions(), before, "the store's commit is not due yet")
        writes, last = query("audit.db", "SELECT (SELECT count(*) FROM audit WHERE op = 'write' AND path = 'note.txt'), "
                                         "(SELECT max(id) FROM audit)")
        self.assertEqual(writes, 1)
        with open(head) as f:
            self.assertEqual(int(f.read().split()[0]), last)
        verified = json.loads(m.cairn("audit", "verify", "--json").stdout)
        self.assertTrue(verified["intact"], verified)
        self.assertGreater(versions(), before, "a command has the daemon commit what it answered")
