"""Write-only descriptors bypass the kernel's page cache (direct I/O): what other descriptors
and mappings of the same file read through the cache stays what was written."""
import mmap
import os
import unittest

from cairnfs import MountedTestCase


class PageCacheTests(MountedTestCase):
    def test_readers_see_writes_made_through_a_write_only_descriptor(self):
        path = self.p("shared.log")
        with open(path, "wb") as f:
            f.write(b"a" * 10000)
        reader = os.open(path, os.O_RDONLY)
        self.addCleanup(os.close, reader)
        self.assertEqual(os.pread(reader, 10000, 0), b"a" * 10000)  # now in the page cache
        mapped = open(path, "rb")
        self.addCleanup(mapped.close)
        view = mmap.mmap(mapped.fileno(), 0, prot=mmap.PROT_READ)
        self.addCleanup(view.close)
        self.assertEqual(view[4096:4106], b"a" * 10)

        writer = os.open(path, os.O_WRONLY)
        os.pwrite(writer, b"b" * 10, 4096)
        self.assertEqual(os.pread(reader, 10, 4096), b"b" * 10)
        self.assertEqual(view[4096:4106], b"b" * 10)
        # An append lands in the last page, which the reader has cached with the old end.
        appender = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.write(appender, b"c" * 100)
        self.assertEqual(os.fstat(reader).st_size, 10100)
        self.assertEqual(os.pread(reader, 200, 9950), b"a" * 50 + b"c" * 100)
        os.close(appender)
        os.close(writer)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"a" * 4096 + b"b" * 10 + b"a" * (10000 - 4106) + b"c" * 100)

    def test_a_file_written_write_only_reads_back_whole_through_a_new_descriptor(self):
        path = self.p("big.bin")
        block = os.urandom(1 << 20)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for i in range(8):
            os.write(fd, i.to_bytes(8, "little") + block[8:])
        os.close(fd)
        with open(path, "rb") as f:
            for i in range(8):
                self.assertEqual(f.read(1 << 20), i.to_bytes(8, "little") + block[8:])


if __name__ == "__main__":
    unittest.main()
