"""flock and fcntl locks shared by every mount of a store: exclusion across mounts, waits that hold
no worker thread and end with EINTR when signalled, F_GETLK, deadlock detection, release when the
holder dies, fencing tokens, and SQLite with writers on two mounts."""
import errno
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from cairnfs import CairnMount, MountedTestCase


def python(code, *args):
    """Starts a Python process running `code` (with `args` in sys.argv[1:])."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


HOLD = """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR)
    kind = sys.argv[2]
    if kind == "flock":
        fcntl.flock(fd, fcntl.LOCK_EX)
    else:
        fcntl.lockf(fd, fcntl.LOCK_EX, int(sys.argv[4]), int(sys.argv[3]))
    print("locked", flush=True)
    sys.stdin.read() if len(sys.argv) < 6 else time.sleep(float(sys.argv[5]))
"""


CLIENT = """
    import fcntl, os, sys
    path = sys.argv[1]
    fd = os.open(path, os.O_RDWR)
    for line in sys.stdin:
        cmd = line.split()
        try:
            if cmd[0] == "lock":
                start, length, wait = int(cmd[1]), int(cmd[2]), cmd[3] == "1"
                fcntl.lockf(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB), length, start)
            elif cmd[0] == "unlock":
                fcntl.lockf(fd, fcntl.LOCK_UN, int(cmd[2]), int(cmd[1]))
            elif cmd[0] == "write":
                os.pwrite(fd, cmd[1].encode(), 0)
            elif cmd[0] == "closeother":
                os.close(os.open(path, os.O_RDONLY))
            print("ok", flush=True)
        except OSError as e:
            print("errno", e.errno, flush=True)
"""


class LockClient:
    """A process that holds a descriptor of `path` and runs lock commands sent one per line."""

    def __init__(self, path):
        self.p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CLIENT), path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def read(self):
        return self.p.stdout.readline().strip()

    def ask(self, line):
        self.send(line)
        return self.read()

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class LockTests(MountedTestCase):
    def setUp(self):
        super().setUp()
        self.other = CairnMount(store=self.m.store, base=self.m.base + "-b", joins=True)
        self.addCleanup(self.other.close)
        with open(self.p("f"), "wb") as f:
            f.write(b"0" * 100)

    def hold(self, path, kind="flock", start=0, length=0, seconds=None):
        args = [path, kind, str(start), str(length)] + ([str(seconds)] if seconds is not None else [])
        p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLD), *args], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        self.assertEqual(p.stdout.readline().strip(), "locked")
        self.addCleanup(lambda: (p.kill(), p.wait()))
        return p

    def test_flock_excludes_across_mounts_and_parked_waiters_hold_no_worker(self):
        holder = self.hold(self.p("f"))
        posix = self.hold(self.p("f"), kind="posix", start=0, length=0)
        # More blocked waiters than the daemon has worker threads (16): flock and F_SETLKW.
        waiters = [subprocess.Popen(["flock", "-x", self.other.p("f"), "-c", "sleep 0.01"]) for _ in range(10)]
        waiters += [python("""
            import fcntl, os, sys
            fd = os.open(sys.argv[1], os.O_RDWR)
            fcntl.lockf(fd, fcntl.LOCK_EX)
        """, self.other.p("f")) for _ in range(8)]
        self.addCleanup(lambda: [w.kill() for w in waiters])
        time.sleep(0.5)
        self.assertTrue(all(w.poll() is None for w in waiters), "everyone waits for the holders")
        started = time.monotonic()
        self.assertEqual(subprocess.run(["ls", self.m.path], capture_output=True).returncode, 0)
        nb = subprocess.run(["flock", "-n", "-x", self.other.p("f"), "-c", "true"])
        self.assertEqual(nb.returncode, 1, "a non-blocking attempt fails at once")
        waiters[0].send_signal(signal.SIGTERM)
        self.assertEqual(waiters[0].wait(timeout=1), -signal.SIGTERM, "a signalled waiter ends at once")
        self.assertLess(time.monotonic() - started, 1, "the mount answers while waiters are parked")
        holder.stdin.close()  # the holders exit: their locks go
        posix.stdin.close()
        for w in waiters[1:]:
            w.communicate(timeout=20)
            self.assertEqual(w.returncode, 0)

    def test_posix_ranges_and_getlk(self):
        a = self.hold(self.p("f"), kind="posix", start=0, length=10)
        probe = python("""
            import fcntl, os, struct, sys
            fd = os.open(sys.argv[1], os.O_RDWR)
            req = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 5, 10, 0)
            got = struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, req))
            print(got[0] == fcntl.F_WRLCK, got[2], got[3], got[4])
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 10)   # bytes 10-19: free
            print("second range ok")
        """, self.other.p("f"))
        out, err = probe.communicate(timeout=10)
        self.assertEqual(out.split("\n")[:2], [f"True 0 10 {a.pid}", "second range ok"], err)

        a.stdin.close()
        a.wait()

    def test_a_wait_that_would_deadlock_fails_with_edeadlk(self):
        p = LockClient(self.p("f"))
        q = LockClient(self.other.p("f"))
        self.addCleanup(p.close)
        self.addCleanup(q.close)
        self.assertEqual(p.ask("lock 0 10 0"), "ok")   # P holds 0-9 through mount A
        self.assertEqual(q.ask("lock 10 10 0"), "ok")  # Q holds 10-19 through mount B
        q.send("lock 0 10 1")                          # Q waits for P's range...
        time.sleep(0.3)
        self.assertEqual(p.ask("lock 10 10 1"), f"errno {errno.EDEADLK}", "...so P may not wait for Q's")
        self.assertEqual(p.ask("unlock 0 10"), "ok")
        self.assertEqual(q.read(), "ok", "Q gets the range P released")

    def test_a_signalled_waiter_gets_eintr_and_leaves_the_queue(self):
        holder = self.hold(self.p("f"))
        waiter = python("""
            import fcntl, os, signal, sys, time
            def stop(*_): raise TimeoutError()
            signal.signal(signal.SIGALRM, stop)
            fd = os.open(sys.argv[1], os.O_RDWR)
            signal.setitimer(signal.ITIMER_REAL, 0.5)
            started = time.monotonic()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                print("granted")
            except TimeoutError:
                print("interrupted after", round(time.monotonic() - started, 1))
        """, self.other.p("f"))
        out, _ = waiter.communicate(timeout=10)
        self.assertEqual(out.strip(), "interrupted after 0.5")
        holder.stdin.close()
        holder.wait()
        got = subprocess.run(["flock", "-w", "2", "-x", self.other.p("f"), "-c", "true"])
        self.assertEqual(got.returncode, 0, "the interrupted waiter left no trace in the queue")

    def test_the_lock_of_a_killed_holder_goes_with_it(self):
        holder = self.hold(self.p("f"), kind="posix", start=0, length=0)
        holder.kill()
        started = time.monotonic()
        got = subprocess.run(["flock", "-w", "5", "-x", self.other.p("f"), "-c", "true"])
        self.assertEqual(got.returncode, 0)
        posix = python("""
            import fcntl, os, sys
            fd = os.open(sys.argv[1], os.O_RDWR)
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            print("ok")
        """, self.other.p("f"))
        self.assertEqual(posix.communicate(timeout=5)[0].strip(), "ok")
        self.assertLess(time.monotonic() - started, 1)

    def test_lock_xattr_shows_the_holder_and_a_growing_token(self):
        tokens = []
        for _ in range(2):
            holder = self.hold(self.p("f"))
            value = os.getxattr(self.other.p("f"), "user.cairn.lock").decode()
            self.assertIn(f"pid={holder.pid}", value)
            self.assertIn("kind=flock mode=exclusive", value)
            tokens.append(int(value.split("token=")[1].split()[0]))
            holder.stdin.close()
            holder.wait()
        self.assertGreater(tokens[1], tokens[0])
        self.assertNotIn("user.cairn.lock", os.listxattr(self.p("f")))
        with self.assertRaises(OSError) as ctx:
            os.getxattr(self.p("f"), "user.cairn.lock")
        self.assertEqual(ctx.exception.errno, errno.ENODATA)

    def test_a_writer_whose_lock_was_lost_is_fenced_off(self):
        p = LockClient(self.p("f"))
        q = LockClient(self.other.p("f"))
        self.addCleanup(p.close)
        self.addCleanup(q.close)
        self.assertEqual(p.ask("lock 0 0 1"), "ok")
        self.assertEqual(p.ask("write A1"), "ok")
        self.assertEqual(p.ask("closeother"), "ok")   # POSIX: closing any descriptor drops the lock
        self.assertEqual(q.ask("lock 0 0 1"), "ok")   # granted to another owner, with a larger token
        self.assertEqual(p.ask("write A2"), f"errno {errno.ENOLCK}")
        self.assertEqual(q.ask("write B1"), "ok")
        q.close()
        with open(self.p("f"), "rb") as f:
            self.assertEqual(f.read(2), b"B1")

    def test_sqlite_with_writers_on_two_mounts(self):
        db = self.p("shared.db")
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE t (writer TEXT, n INTEGER)")
        con.commit()
        con.close()
        code = """
            import sqlite3, sys
            con = sqlite3.connect(sys.argv[1], timeout=30)
            for i in range(150):
                with con:
                    con.execute("INSERT INTO t VALUES (?, ?)", (sys.argv[2], i))
            print("done")
        """
        writers = [python(code, self.p("shared.db"), "a"), python(code, self.other.p("shared.db"), "b")]
        for w in writers:
            out, err = w.communicate(timeout=120)
            self.assertEqual(out.strip(), "done", err)
        con = sqlite3.connect(self.other.p("shared.db"))
        self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        self.assertEqual(con.execute("SELECT writer, count(*) FROM t GROUP BY writer ORDER BY writer").fetchall(),
                         [("a", 150), ("b", 150)])
        con.close()


class CliLockTests(MountedTestCase):
    def test_cairn_lock_holds_a_store_wide_flock_while_its_command_runs(self):
        from cairnfs import CAIRN
        import json
        with open(self.p("report.md"), "w") as f:
            f.write("draft\n")
        held = subprocess.Popen([CAIRN, "lock", self.p("report.md"), "--", "sh", "-c", "sleep 1.5; exit 3"],
                                env=self.m.env, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (held.kill(), held.wait()))
        self.assertIn("flock-style exclusive lock", held.stderr.readline())
        busy = subprocess.run(["flock", "-n", "-x", self.p("report.md"), "-c", "true"])
        self.assertEqual(busy.returncode, 1, "a flock on the mount waits for the CLI's lock")
        locks = json.loads(self.m.cairn("locks", "--json").stdout)
        self.assertEqual([(l["path"], l["kind"], l["mode"], l["place"]) for l in locks],
                         [("report.md", "flock", "exclusive", "cli")])
        with open(self.p(".cairn", "locks")) as f:
            listing = f.read()
        self.assertIn("default:report.md\tflock exclusive 0-", listing)
        refused = self.m.cairn("lock", self.p("report.md"), "--wait", "0.2", "--", "true", check=False)
        self.assertEqual(refused.returncode, 1)
        self.assertIn("still locked after 0.2 seconds", refused.stderr)
        self.assertEqual(held.wait(timeout=10), 3, "the command's exit status")
        free = subprocess.run(["flock", "-n", "-x", self.p("report.md"), "-c", "true"])
        self.assertEqual(free.returncode, 0, "the lock went with the command")
        self.assertEqual(self.m.cairn("locks").stdout.strip(), "no locks held")
        with open(self.p(".cairn", "locks")) as f:
            self.assertEqual(f.read(), "")


class LockEdgeTests(MountedTestCase):
    def setUp(self):
        super().setUp()
        with open(self.p("f"), "wb") as f:
            f.write(b"0" * 100)

    def test_a_lock_taken_right_after_a_close_stays_held(self):
        a = LockClient(self.p("f"))
        b = LockClient(self.p("f"))
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        for _ in range(30):
            self.assertEqual(a.ask("lock 0 0 1"), "ok")
            self.assertEqual(a.ask("closeother"), "ok")      # drops a's lock, as close(2) does
            self.assertEqual(a.ask("lock 0 0 1"), "ok")      # and a takes it again at once
            self.assertEqual(b.ask("lock 0 0 0"), f"errno {errno.EAGAIN}", "the new lock must hold")
            self.assertEqual(a.ask("unlock 0 0"), "ok")

    def test_locks_of_other_ranges_or_an_unlock_of_ones_own_do_not_fence(self):
        a = LockClient(self.p("f"))
        b = LockClient(self.p("f"))
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        self.assertEqual(a.ask("lock 0 10 1"), "ok")
        self.assertEqual(b.ask("lock 50 10 1"), "ok")    # another range, a larger token
        self.assertEqual(a.ask("write A1"), "ok")
        self.assertEqual(a.ask("unlock 0 10"), "ok")     # given up, not lost
        self.assertEqual(b.ask("lock 0 100 1"), "ok")
        self.assertEqual(a.ask("write A2"), "ok", "writing without a lock is allowed (advisory locks)")
