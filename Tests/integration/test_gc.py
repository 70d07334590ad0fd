"""gc through the daemon while a program writes: retention releases old versions, chunks nothing
kept names are deleted, and no current file, snapshot or kept version loses a byte."""
import hashlib
import json
import os
import random
import threading
import time

from cairnfs import MountedTestCase
from test_history import tree


class GCTests(MountedTestCase):
    def test_gc_while_writing_keeps_every_current_file_and_snapshot(self):
        self.m.cairn("workspace", "retention", "default", "--keep-all", "0", "--hourly", "0", "--daily", "0")
        shown = json.loads(self.m.cairn("workspace", "retention", "default", "--json").stdout)
        self.assertEqual(shown, {"keep_all": "0s", "hourly": "0s", "daily": "0s"})
        rng = random.Random(5)
        for i in range(10):
            with open(self.p(f"old{i}.bin"), "wb") as f:
                f.write(rng.randbytes(300_000))
        self.m.cairn("snapshot", "create", "default", "kept")
        pinned = tree(self.p(".cairn", "snapshots", "kept"))
        for i in range(5):
            os.remove(self.p(f"old{i}.bin"))

        expected = {}
        stop = threading.Event()
        errors = []

        def writer():
            n = 0
            try:
                while not stop.is_set():
                    name = f"live{n % 7}.bin"
                    data = rng.randbytes(rng.choice([5_000, 200_000, 1_100_000]))
                    with open(self.p(name), "wb") as f:
                        f.write(data)
                    expected[name] = hashlib.sha256(data).hexdigest()
                    n += 1
            except Exception as e:  # reported by the test thread
                errors.append(e)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            summaries = []
            started = time.monotonic()
            while time.monotonic() - started < 3 or len(summaries) < 3:
                summaries.append(json.loads(self.m.cairn("gc", "--json").stdout))
        finally:
            stop.set()
            thread.join()
        self.assertEqual(errors, [])
        self.assertGreater(len(expected), 3, "the writer wrote while gc ran")
        self.assertTrue(any(s["versionsReleased"] > 0 for s in summaries), summaries)
        self.assertTrue(any(s["bytesFreed"] > 0 for s in summaries), summaries)
        for name, digest in expected.items():
            with open(self.p(name), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest, name)
        self.assertEqual(tree(self.p(".cairn", "snapshots", "kept")), pinned, "a snapshot survives gc")

        self.m.remount()  # nothing cached: read it all from the store again
        for name, digest in expected.items():
            with open(self.p(name), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest, name)
        self.assertEqual(tree(self.p(".cairn", "snapshots", "kept")), pinned)
        fsck = self.m.cairn("fsck", check=False)
        self.assertEqual(fsck.returncode, 0, fsck.stdout)

    def test_dry_run_changes_nothing_and_predicts_the_real_run(self):
        for i in range(3):
            with open(self.p("f.bin"), "wb") as f:
                f.write(os.urandom(200_000))
        self.m.cairn("workspace", "retention", "default", "--keep-all", "0", "--hourly", "0", "--daily", "0")
        versions = len(json.loads(self.m.cairn("log", "f.bin", "--json").stdout))
        dry = json.loads(self.m.cairn("gc", "--dry-run", "--json").stdout)
        self.assertTrue(dry["dryRun"])
        self.assertEqual(len(json.loads(self.m.cairn("log", "f.bin", "--json").stdout)), versions)
        real = json.loads(self.m.cairn("gc", "--json").stdout)
        for key in ("versionsReleased", "chunksDeleted", "bytesFreed"):
            self.assertEqual(dry[key], real[key], key)
        self.assertEqual(len(json.loads(self.m.cairn("log", "f.bin", "--json").stdout)), versions - real["versionsReleased"])
        text = self.m.cairn("gc").stdout
        self.assertIn("released 0 version(s)", text)
        self.m.kill9()
        self.m.mount()
        self.assertEqual(len(json.loads(self.m.cairn("log", "f.bin", "--json").stdout)), versions - real["versionsReleased"],
                         "what gc released stays released after a crash")
        fsck = self.m.cairn("fsck", check=False)
        self.assertEqual(fsck.returncode, 0, fsck.stdout)
        bad = self.m.cairn("workspace", "retention", "default", "--daily", "3 days", check=False)
        self.assertIn("not a duration", bad.stderr)
