"""How the daemon's workers share the device: one reads at a time (no request wakes the others),
and a request that takes long hands the reading on, so other callers are not held up by it."""
import os
import threading

from cairnfs import MountedTestCase


class WorkerTests(MountedTestCase):
    def test_a_long_request_does_not_hold_up_other_callers(self):
        # An fsync of 96 MiB written and not yet stored: the daemon hashes and stores every
        # chunk before it answers, far longer than the reader keeps the device to itself.
        fd = os.open(self.p("big.bin"), os.O_WRONLY | os.O_CREAT, 0o644)
        self.addCleanup(os.close, fd)
        block = os.urandom(1 << 20)
        for i in range(96):
            os.write(fd, bytes([i]) + block[1:])
        synced = threading.Event()
        sync = threading.Thread(target=lambda: (os.fsync(fd), synced.set()))
        sync.start()
        self.addCleanup(sync.join)
        # Names nobody has: each is a lookup the daemon answers, never the kernel's cache.
        answered_meanwhile = 0
        for i in range(100_000):
            if synced.is_set():
                break
            self.assertFalse(os.path.exists(self.p(f"missing-{i}")))
            if not synced.is_set():
                answered_meanwhile += 1
        sync.join()
        self.assertTrue(synced.is_set())
        self.assertGreater(answered_meanwhile, 10, "the lookups waited for the fsync to be answered")
