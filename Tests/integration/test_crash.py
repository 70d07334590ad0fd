"""kill -9 of the daemon while writers write, close, fsync and rename-over files.

After a remount every file whose close(2), fsync(2) or rename(2) returned before the kill has
exactly the bytes its writer recorded at that moment; a write in flight shows either its old or
its new content, never a mix; the store opens and `cairn fsck` and SQLite's integrity_check are
clean. (SEMANTICS.md: "Crash safety".)
"""
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import unittest

from cairnfs import CairnMount

WRITER = r'''
import hashlib, os, random, sys
root, log_path, ident, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = random.Random(seed)
log = open(log_path, "a", buffering=1)
n = 0
try:
    while True:
        k = rng.randrange(4)
        path = os.path.join(root, f"w{ident}_{k}")
        size = rng.choice([0, 10, 4000, 70000, 300000, 1500000])
        data = bytes(rng.getrandbits(8) for _ in range(min(size, 64))) * (size // 64 + 1)
        data = data[:size] + f"#{ident}-{n}".encode()
        digest = hashlib.sha256(data).hexdigest()
        log.write(f"begin {path} {digest}\n")
        if rng.random() < 0.5:
            with open(path, "wb") as f:
                f.write(data)
        else:
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, path)
        log.write(f"done {path} {digest}\n")
        n += 1
except OSError:
    pass
'''


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class CrashTests(unittest.TestCase):
    def test_kill9_during_writes_loses_nothing_closed(self):
        for round_ in range(2):
            with self.subTest(round=round_):
                self.crash_round(seed=round_)

    def crash_round(self, seed):
        m = CairnMount()
        self.addCleanup(m.close)
        logs = [os.path.join(m.base, f"log{i}") for i in range(4)]
        writers = [
            subprocess.Popen([sys.executable, "-c", WRITER, m.path, logs[i], str(i), str(seed * 10 + i)])
            for i in range(4)
        ]
        time.sleep(2.5)

        def stop_writers():
            # Writers still running after the kill only fail (ENOTCONN); stop them before the
            # dead mount is detached so none writes into the directory underneath.
            time.sleep(0.2)
            for w in writers:
                w.kill()
                w.wait(timeout=30)

        m.kill9(before_detach=stop_writers)

        m.mount()
        checked = 0
        for log in logs:
            last_done, in_flight = {}, {}
            with open(log) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) != 3:
                        continue  # a line cut by the end of the writer
                    kind, path, digest = parts
                    if kind == "begin":
                        in_flight[path] = digest
                    else:
                        last_done[path] = digest
                        in_flight.pop(path, None)
            for path, digest in last_done.items():
                allowed = {digest}
                if path in in_flight:
                    allowed.add(in_flight[path])
                self.assertTrue(os.path.exists(path), f"{path} vanished after the crash")
                self.assertIn(sha(path), allowed, f"{path} has bytes no writer recorded (seed {seed})")
                checked += 1
        self.assertGreater(checked, 4, "the writers made too little progress to test anything")

        m.unmount()
        fsck = m.cairn("fsck", "--json", check=False)
        report = json.loads(fsck.stdout)
        self.assertTrue(report["clean"], report["problems"])
        self.assertEqual(fsck.returncode, 0)
        con = sqlite3.connect(os.path.join(m.store, "cairn.db"))
        self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        con.close()


if __name__ == "__main__":
    unittest.main()
