"""Quotas: the first write, close or fsync past a workspace's limit fails with EDQUOT and nothing
committed is touched; exactly at the limit is allowed; truncating brings it back under; df shows it."""
import errno
import json
import os
import subprocess

from cairnfs import MountedTestCase

LIMIT = 100_000


class QuotaTests(MountedTestCase):
    def setUp(self):
        super().setUp()
        with open(self.p("base.txt"), "wb") as f:
            f.write(b"b" * 40_000)
        out = json.loads(self.m.cairn("quota", "default", str(LIMIT), "--files", "5", "--json").stdout)
        self.assertEqual((out["limitBytes"], out["usedBytes"]), (LIMIT, 40_000))

    def test_exactly_at_the_limit_then_one_byte_over_then_truncate_back_under(self):
        fd = os.open(self.p("big.bin"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, b"x" * 60_000)                     # 40,000 + 60,000: exactly the limit
            with self.assertRaises(OSError) as ctx:
                os.write(fd, b"y")                          # one byte over
            self.assertEqual(ctx.exception.errno, errno.EDQUOT)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.assertEqual(os.path.getsize(self.p("big.bin")), 60_000)
        with open(self.p("base.txt"), "rb") as f:
            self.assertEqual(f.read(), b"b" * 40_000, "what was committed is untouched")
        with open(self.p("big.bin"), "r+b") as f:
            f.truncate(10_000)                              # back under
        with open(self.p("more.bin"), "wb") as f:
            f.write(b"z" * 50_000)                          # 40,000 + 10,000 + 50,000
        usage = json.loads(self.m.cairn("quota", "default", "--json").stdout)
        self.assertEqual(usage["usedBytes"], LIMIT)
        self.assertGreater(usage["historyBytes"], usage["usedBytes"], "history is shown, not counted")

    def test_files_limit_and_df(self):
        for i in range(3):                                  # root + base.txt + 3 = 5 inodes
            open(self.p(f"n{i}"), "w").close()
        with self.assertRaises(OSError) as ctx:
            open(self.p("one-too-many"), "w").close()
        self.assertEqual(ctx.exception.errno, errno.EDQUOT)
        os.remove(self.p("n0"))
        open(self.p("fits-again"), "w").close()
        df = subprocess.run(["df", "-B1", "--output=size,used", self.m.path], capture_output=True, text=True).stdout
        size = int(df.split()[-2])
        self.assertLessEqual(abs(size - LIMIT), 4096, df)
        self.m.cairn("quota", "default", "--none")
        open(self.p("unlimited"), "w").close()
