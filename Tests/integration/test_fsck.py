"""cairn fsck names what is damaged (the file and its versions) and --repair fixes only what
loses nothing."""
import json
import os
import sqlite3

from cairnfs import MountedTestCase


class FsckTests(MountedTestCase):
    def blob_files(self):
        found = set()
        root = os.path.join(self.m.store, "blobs")
        for fan in os.listdir(root):
            if len(fan) == 2:
                found |= {os.path.join(root, fan, name) for name in os.listdir(os.path.join(root, fan))}
        return found

    def write(self, name, data):
        before = self.blob_files()
        with open(self.p(name), "wb") as f:
            f.write(data)
        self.m.remount()  # the chunks are in the store, and the store is committed
        return sorted(self.blob_files() - before)

    def fsck(self, *args):
        result = self.m.cairn("fsck", "--json", *args, check=False)
        return result.returncode, json.loads(result.stdout)

    def test_fsck_names_a_flipped_byte_a_missing_chunk_and_a_dangling_entry(self):
        os.makedirs(self.p("docs"))
        flipped = self.write("docs/a.bin", os.urandom(2 << 20))
        removed = self.write("b.bin", os.urandom(2 << 20))
        with open(self.p("c.txt"), "w") as f:
            f.write("c\n")
        self.assertEqual(self.fsck()[0], 0)
        self.m.unmount()

        os.chmod(flipped[0], 0o644)
        with open(flipped[0], "r+b") as f:
            f.seek(1000)
            byte = f.read(1)
            f.seek(1000)
            f.write(bytes([byte[0] ^ 0xFF]))
        os.remove(removed[1])
        db = sqlite3.connect(os.path.join(self.m.store, "cairn.db"))
        db.execute("DELETE FROM inodes WHERE id = (SELECT inode FROM dentries WHERE name = CAST('c.txt' AS BLOB))")
        db.commit()
        db.close()

        code, report = self.fsck()
        self.assertEqual(code, 4)
        by_kind = {p["kind"]: p for p in report["problems"]}
        self.assertEqual(by_kind["corruptChunk"]["paths"], ["default:docs/a.bin"])
        self.assertTrue(by_kind["corruptChunk"]["versions"])
        self.assertEqual(by_kind["missingChunk"]["paths"], ["default:b.bin"])
        self.assertEqual(by_kind["danglingEntry"]["paths"], ["default:c.txt"])
        text = self.m.cairn("fsck", check=False).stdout
        self.assertIn("affects default:docs/a.bin", text)

        # Nothing here can be repaired without losing data: --repair leaves it all reported.
        code, report = self.fsck("--repair")
        self.assertEqual(code, 4)
        self.assertEqual({p["kind"] for p in report["problems"]}, {"corruptChunk", "missingChunk", "danglingEntry"})

    def test_repair_fixes_link_counts_and_deletes_unreferenced_chunks(self):
        with open(self.p("f.txt"), "w") as f:
            f.write("f\n")
        os.makedirs(self.p("d", "e"))
        self.m.unmount()
        db = sqlite3.connect(os.path.join(self.m.store, "cairn.db"))
        db.execute("UPDATE inodes SET nlink = 7 WHERE id = (SELECT inode FROM dentries WHERE name = CAST('f.txt' AS BLOB))")
        db.execute("UPDATE inodes SET nlink = 9 WHERE id = (SELECT inode FROM dentries WHERE name = CAST('d' AS BLOB))")
        db.commit()
        db.close()
        stray = os.path.join(self.m.store, "blobs", "ab", "ab" + "0" * 62)
        with open(stray, "wb") as f:
            f.write(b"a chunk a crash left behind")

        code, report = self.fsck()
        self.assertEqual(code, 4)
        self.assertEqual(sorted(p["paths"][0] for p in report["problems"]), ["default:d", "default:f.txt"])
        self.assertEqual(report["reclaimable_chunks"], 1)

        code, report = self.fsck("--repair")
        self.assertEqual(code, 0, report)
        self.assertEqual(report["repaired"]["linkCountsFixed"], 2)
        self.assertEqual(report["reclaimable_chunks"], 0)
        self.assertFalse(os.path.exists(stray))
        self.m.mount()
        self.assertEqual(os.stat(self.p("f.txt")).st_nlink, 1)
        self.assertEqual(os.stat(self.p("d")).st_nlink, 3)
        with open(self.p("f.txt")) as f:
            self.assertEqual(f.read(), "f\n")
