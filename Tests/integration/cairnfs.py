"""Fixtures for tests that mount Cairn for real and drive it with real programs.

Every mount a test makes is unmounted, even when the test fails: `CairnMount` is a context
manager, and a process-wide `atexit` hook detaches anything still mounted.
"""
import atexit
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAIRN = os.environ.get("CAIRN_BIN") or os.path.join(ROOT, ".build", "debug", "cairn")

_live = set()


def _cleanup():
    for mount in list(_live):
        mount.close()


atexit.register(_cleanup)


def process_alive(pid):
    """Whether `pid` runs: a zombie (exited, not yet reaped by whoever adopted it) does not."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def run(*args, check=True, env=None, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, env=env, **kw)


class CairnMount:
    """A store in a temporary directory, mounted by its own daemon process."""

    def __init__(self, workspace="default", options=(), store=None, base=None, joins=False):
        """`joins`: another mount of the same store runs, so unmounting this one leaves the
        daemon running."""
        self.joins = joins
        self.base = base or tempfile.mkdtemp(prefix="cairn-it-")
        self.store = store or os.path.join(self.base, "store")
        self.path = os.path.join(self.base, "mnt")
        self.workspace = workspace
        self.options = list(options)
        self.env = dict(os.environ, CAIRN_STORE=self.store)
        os.makedirs(self.path, exist_ok=True)
        if not os.path.exists(os.path.join(self.store, "cairn.db")):
            self.cairn("init")
        self.mount()

    def cairn(self, *args, check=True):
        return run(CAIRN, *args, check=check, env=self.env)

    def mount(self):
        args = ["mount", self.path, "--workspace", self.workspace]
        for o in self.options:
            args += ["-o", o]
        self.cairn(*args)
        _live.add(self)

    def daemon_pid(self):
        status = json.loads(self.cairn("status", "--json").stdout)
        return status["daemon"]["pid"] if status.get("daemon") else None

    def unmount(self):
        result = self.cairn("unmount", self.path, check=False)
        if result.returncode != 0:
            self.detach()
        if not self.joins:
            self._wait_daemon_gone()
        _live.discard(self)

    def kill9(self, before_detach=None, pid=None):
        """Kills the daemon as a crash would, and clears the dead mount. `before_detach` runs
        while the dead mount is still in place (so clients see ENOTCONN, not the directory
        under it). `pid`: the daemon's, looked up beforehand so the kill follows the last
        operation at once."""
        pid = pid or self.daemon_pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
        if before_detach:
            before_detach()
        self.detach()
        self._wait_daemon_gone()
        _live.discard(self)

    def detach(self):
        subprocess.run(["fusermount3", "-uz", self.path], capture_output=True)

    def _wait_daemon_gone(self):
        sock = os.path.join(self.store, "daemon.lock")
        for _ in range(200):
            # The daemon holds an exclusive flock on daemon.lock while it lives.
            try:
                import fcntl
                with open(sock, "a") as f:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(f, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                time.sleep(0.05)
            except FileNotFoundError:
                return
        raise AssertionError("the cairn daemon did not exit")

    def remount(self):
        self.unmount()
        self.mount()

    def close(self):
        if self in _live:
            try:
                self.unmount()
            except Exception:
                self.detach()
                _live.discard(self)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def p(self, *parts):
        return os.path.join(self.path, *parts)


class MountedTestCase(unittest.TestCase):
    """One fresh mount per test."""

    def setUp(self):
        self.m = CairnMount()
        self.addCleanup(self.m.close)

    def p(self, *parts):
        return self.m.p(*parts)
