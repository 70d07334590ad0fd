"""Full-text search: a corpus of real text (the project's own sources and generated documents)
written through a mount; known-item queries that must rank their file in the top 3; an edit, a
rename and a delete followed once the index has caught up; a kill -9 while indexing, after which
the caught-up index answers exactly as a rebuilt one does."""
import json
import os
import random
import shutil
import sqlite3
import subprocess
import time

from cairnfs import CairnMount, MountedTestCase
from test_permissions import USER, as_user, ensure_user

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# (file, content): documents whose words a person would remember, hidden among the corpus.
KNOWN = {
    "contracts/2026/acme-q3.md": "# Master services agreement\n\nThe Q3 contract with Acme Corporation covers "
                                 "warehouse robotics maintenance, signed by Alice Moreau on 14 July.\n",
    "notes/standup-0412.txt": "Standup: Bogdan is blocked on the flaky kafka consumer rebalancing test; "
                              "Priya pairs with him after lunch.\n",
    "data/inventory.csv": "sku,name,quantity\nA-1001,titanium hex bolts,4200\nA-1002,copper grommets,180\n",
    "site/about.html": "<html><head><style>p{color:red}</style></head><body><p>Our bakery in "
                       "Lisbon bakes sourdough p&atilde;o and pastel de nata every morning.</p>"
                       "<script>var tracking='kafka';</script></body></html>",
    "config/service.json": json.dumps({"service": "geocoder", "upstream": "nominatim", "retries": 7}),
}

QUERIES = [
    ("acme contract robotics", "contracts/2026/acme-q3.md"),
    ("\"Alice Moreau\"", "contracts/2026/acme-q3.md"),
    ("kafka rebalancing", "notes/standup-0412.txt"),
    ("titanium bolts", "data/inventory.csv"),
    ("sourdough Lisbon", "site/about.html"),
    ("nominatim", "config/service.json"),
    ("geocod*", "config/service.json"),
    ("bakery NOT robotics", "site/about.html"),
    ("MetadataWriter group commit", "src/Persistence/MetadataWriter.swift"),
    ("fencing token lock lost", None),  # any hit: the sources speak of it
]


def minimal_pdf(text):
    """A one-page PDF showing `text` in Helvetica, with a correct cross-reference table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


class SearchTests(MountedTestCase):
    def write_corpus(self):
        sources = os.path.join(REPO, "Sources", "CairnCore")
        count = 0
        for directory, _, names in os.walk(sources):
            for name in names:
                if name.endswith(".swift"):
                    rel = os.path.relpath(os.path.join(directory, name), sources)
                    os.makedirs(self.p("src", os.path.dirname(rel)), exist_ok=True)
                    shutil.copyfile(os.path.join(directory, name), self.p("src", rel))
                    count += 1
        rng = random.Random(7)
        words = "alpha beta gamma delta ledger invoice meeting draft budget review office plan".split()
        for i in range(150):
            os.makedirs(self.p("generated", str(i % 10)), exist_ok=True)
            with open(self.p("generated", str(i % 10), f"doc{i}.txt"), "w") as f:
                f.write(" ".join(rng.choice(words) for _ in range(300)))
        for rel, text in KNOWN.items():
            os.makedirs(os.path.dirname(self.p(rel)), exist_ok=True)
            with open(self.p(rel), "w") as f:
                f.write(text)
        with open(self.p("blob.bin"), "wb") as f:
            f.write(bytes(range(256)) * 64)
        self.assertGreater(count, 50)

    def wait_indexed(self):
        deadline = time.monotonic() + 60
        while self.m.cairn("index", "status", check=False).returncode != 0:
            self.assertLess(time.monotonic(), deadline, self.m.cairn("index", "status", check=False).stdout)
            time.sleep(0.05)

    def search(self, *args):
        out = self.m.cairn("search", "--json", "--limit", "10", *args, check=False)
        self.assertIn(out.returncode, (0, 1), out.stderr)
        return json.loads(out.stdout)

    def paths(self, *args):
        return [h["path"] for h in self.search(*args)]

    def test_known_items_rank_in_the_top_three_and_changes_follow(self):
        self.write_corpus()
        self.wait_indexed()
        status = json.loads(self.m.cairn("index", "status", "--json").stdout)
        self.assertGreaterEqual(status["formats"]["text"], 150)
        self.assertEqual(status["formats"]["html"], 1)
        self.assertEqual(status["formats"]["binary"], 1)
        for query, expected in QUERIES:
            found = self.paths(query)
            if expected is None:
                self.assertTrue(found, query)
            else:
                self.assertIn(expected, found[:3], f"{query!r} gave {found}")
        # The script and style of a page are not its text; binary files are not indexed.
        self.assertNotIn("site/about.html", self.paths("tracking"))
        hit = self.search("sourdough")[0]
        self.assertIn("«sourdough»", hit["snippet"])
        self.assertEqual(hit["actor"], "root")
        log = json.loads(self.m.cairn("log", self.p("site/about.html"), "--json").stdout)
        self.assertEqual(hit["version"], log[0]["version"], "the hit names the current version")
        # Filters.
        self.assertEqual(self.paths("kafka", "--path", "notes/*"), ["notes/standup-0412.txt"])
        # Words FTS5 cannot parse are searched as phrases; nothing found exits 1.
        self.assertEqual(self.paths("A-1001"), ["data/inventory.csv"])
        self.assertEqual(self.m.cairn("search", "zyzzyvas", check=False).returncode, 1)

        # An edit, a rename and a delete show once the index has caught up.
        before = json.loads(self.m.cairn("log", "--json", "--limit", "1").stdout)[0]["seq"]
        with open(self.p("notes/standup-0412.txt"), "w") as f:
            f.write("Standup: the consumer is fixed; next up is the zeppelin dashboard.\n")
        os.rename(self.p("data/inventory.csv"), self.p("data/stock.csv"))
        os.unlink(self.p("config/service.json"))
        self.wait_indexed()
        self.assertEqual(self.paths("zeppelin"), ["notes/standup-0412.txt"])
        self.assertNotIn("notes/standup-0412.txt", self.paths("kafka"))
        self.assertEqual(self.paths("titanium"), ["data/stock.csv"])
        self.assertEqual(self.paths("nominatim"), [])
        # The workspace as it was before: the old text, names and files.
        self.assertEqual(self.paths("kafka", "--at", f"@{before}"), ["notes/standup-0412.txt"])
        self.assertEqual(self.paths("titanium", "--at", f"@{before}"), ["data/inventory.csv"])
        self.assertEqual(self.paths("nominatim", "--at", f"@{before}"), ["config/service.json"])
        self.assertEqual(self.paths("zeppelin", "--at", f"@{before}"), [])
        past = self.search("kafka", "--at", f"@{before}")[0]
        self.assertIn("«kafka»", past["snippet"])
        # A restore brings the deleted file back into the index.
        versions = json.loads(self.m.cairn("log", "config/service.json", "--json").stdout)
        written = [v["version"] for v in versions if v["size"] > 0]
        self.m.cairn("restore", "config/service.json", "--version", str(written[0]))
        self.wait_indexed()
        self.assertEqual(self.paths("nominatim"), ["config/service.json"])

    def backlog(self):
        """Changes the store has committed that the index has not taken in, read from the files."""
        store = sqlite3.connect(f"file:{self.m.store}/cairn.db?mode=ro", uri=True)
        index = sqlite3.connect(f"file:{self.m.store}/index.db?mode=ro", uri=True)
        try:
            seq = store.execute("SELECT max(seq) FROM events").fetchone()[0]
            return seq - index.execute("SELECT value FROM state WHERE key = 'events'").fetchone()[0]
        finally:
            store.close()
            index.close()

    def test_after_a_kill_during_indexing_the_catch_up_equals_a_rebuild(self):
        self.write_corpus()
        pid = self.m.daemon_pid()
        # Killed while the index is still taking changes in (it runs behind the writes).
        for i in range(1000):
            with open(self.p(f"late{i}.txt"), "w") as f:
                f.write(f"late addition number {i} about the ledger\n")
            time.sleep(0.03)  # committed, 20 ms at most (the index reads committed changes only)
            if self.backlog() > 0:
                break
        self.assertGreater(self.backlog(), 0)
        self.m.kill9(pid=pid)
        self.m.mount()
        self.wait_indexed()
        queries = [q for q, _ in QUERIES] + ["budget", "ledger invoice", "gamma NOT delta"]
        caught_up = {q: self.search(q) for q in queries}
        rebuilt = self.m.cairn("index", "rebuild", "--json")
        self.assertIn("indexing:", rebuilt.stderr)
        self.wait_indexed()
        for q in queries:
            self.assertEqual(self.search(q), caught_up[q], q)
        self.assertTrue(caught_up["budget"])
        self.assertEqual(self.m.cairn("fsck").returncode, 0)

    def test_rebuild_without_a_daemon_builds_it_in_the_command(self):
        with open(self.p("memo.txt"), "w") as f:
            f.write("the archipelago expedition budget\n")
        self.wait_indexed()
        self.m.unmount()
        out = self.m.cairn("index", "rebuild")
        self.assertIn("rebuilt: 1 files", out.stdout)
        found = json.loads(self.m.cairn("search", "archipelago", "--json").stdout)
        self.assertEqual([h["path"] for h in found], ["memo.txt"])
        self.m.mount()

    def test_cairn_search_works_from_ls_and_cat_and_shows_a_user_only_what_it_may_read(self):
        self.write_corpus()
        self.wait_indexed()
        hits = os.listdir(self.p(".cairn", "search", "kafka rebalancing"))
        self.assertEqual(sorted(hits)[0], "01-standup-0412.txt")
        with open(self.p(".cairn", "search", "kafka rebalancing", "01-standup-0412.txt")) as f:
            self.assertIn("Bogdan", f.read())
        self.assertEqual(os.readlink(self.p(".cairn", "search", "titanium", "01-inventory.csv")),
                         "../../../data/inventory.csv")
        self.assertEqual(os.listdir(self.p(".cairn", "search", "zyzzyvas")), [])
        self.assertNotIn("search", os.listdir(self.p()), ".cairn stays unlisted")
        # Another workspace of the store, and a user who may read only this one.
        ensure_user()
        self.m.cairn("workspace", "create", "other")
        other = CairnMount(workspace="other", store=self.m.store, joins=True)
        self.addCleanup(other.close)
        with open(other.p("kafka-secret.txt"), "w") as f:
            f.write("kafka rebalancing secrets of the other team\n")
        with open(self.p("private.txt"), "w") as f:
            f.write("kafka rebalancing, for root's eyes only\n")
        os.chmod(self.p("private.txt"), 0o600)
        for base in (self.m.base, other.base):
            os.chmod(base, 0o755)
        self.m.cairn("grant", "default", f"user:{USER}", "reader")
        self.m.cairn("grant", "other", f"user:{USER}", "none")
        self.wait_indexed()
        self.assertIn("01-kafka-secret.txt", os.listdir(other.p(".cairn", "search", "kafka")))
        self.assertIn("private.txt", " ".join(os.listdir(self.p(".cairn", "search", "kafka"))))
        mine = as_user("ls", self.p(".cairn", "search", "kafka"))
        self.assertEqual(mine.returncode, 0, mine.stderr)
        self.assertEqual(mine.stdout.split(), ["01-standup-0412.txt"])
        theirs = as_user("ls", other.p(".cairn", "search", "kafka"))
        self.assertEqual(theirs.stdout.split(), [], theirs.stderr)

    def test_a_pdf_is_indexed_through_pdftotext(self):
        if not shutil.which("pdftotext"):
            self.skipTest("pdftotext is not installed (scripts/test installs poppler-utils)")
        with open(self.p("paper.pdf"), "wb") as f:
            f.write(minimal_pdf("Photosynthesis in alpine lichens"))
        self.wait_indexed()
        self.assertEqual(self.paths("lichens"), ["paper.pdf"])
        status = json.loads(self.m.cairn("index", "status", "--json").stdout)
        self.assertEqual(status["formats"], {"pdf": 1})
        self.assertTrue(status["pdftotextInstalled"])

    def test_a_forks_files_are_found_once_its_directories_are_used(self):
        os.makedirs(self.p("plans"))
        with open(self.p("plans", "roadmap.md"), "w") as f:
            f.write("migrate the quasar pipeline\n")
        self.wait_indexed()
        self.m.cairn("workspace", "fork", "default", "trial")
        trial = CairnMount(workspace="trial", store=self.m.store, joins=True)
        self.addCleanup(trial.close)
        os.listdir(trial.p("plans"))  # its entries are copied in at first use
        self.wait_indexed()
        self.assertEqual(self.paths("quasar", "--workspace", "trial"), ["plans/roadmap.md"])
        with open(trial.p("plans", "roadmap.md"), "w") as f:
            f.write("abandon the quasar pipeline for the nebula one\n")
        self.wait_indexed()
        self.assertEqual(self.paths("nebula", "--workspace", "trial"), ["plans/roadmap.md"])
        self.assertEqual(self.paths("nebula", "--workspace", "default"), [], "the parent keeps its own text")

    def test_fsynced_renamed_over_and_unreadable_files_and_a_damaged_index(self):
        # Closed after an fsync the index has seen: the close makes no new version.
        with open(self.p("journal.txt"), "w") as f:
            f.write("entry about the walrus migration\n")
            f.flush()
            os.fsync(f.fileno())
            time.sleep(0.4)
        # Saved by renaming a new file over the old one: the old text leaves the index.
        with open(self.p("draft.txt"), "w") as f:
            f.write("first draft mentions the pelican\n")
        self.wait_indexed()
        with open(self.p("draft.txt.tmp"), "w") as f:
            f.write("second draft mentions the heron\n")
        os.rename(self.p("draft.txt.tmp"), self.p("draft.txt"))
        self.wait_indexed()
        self.assertEqual(self.paths("walrus"), ["journal.txt"])
        self.assertEqual(self.paths("pelican"), [])
        self.assertEqual(self.paths("heron"), ["draft.txt"])
        self.assertEqual(json.loads(self.m.cairn("index", "status", "--json").stdout)["files"], 2)
        # A query FTS5 cannot parse (an unterminated quote) is searched as words.
        self.assertEqual(self.paths('"walrus'), ["journal.txt"])

        # A file whose chunk is missing is marked unreadable; the others are indexed.
        with open(self.p("big.txt"), "w") as f:
            f.write("albatross " * 20000)  # beyond the inline size: its chunk is a blob file
        self.wait_indexed()
        self.m.unmount()
        blobs = [os.path.join(d, n) for d, _, names in os.walk(os.path.join(self.m.store, "blobs"))
                 for n in names if "incoming" not in d]
        self.assertEqual(len(blobs), 1)
        os.chmod(blobs[0], 0o644)
        os.unlink(blobs[0])
        self.m.cairn("index", "rebuild")
        status = json.loads(self.m.cairn("index", "status", "--json").stdout)
        self.assertEqual((status["backlog"], status["formats"].get("unreadable")), (0, 1))
        self.assertEqual(self.paths("heron"), ["draft.txt"])
        # A damaged index is set aside and built again when the daemon starts.
        for suffix in ("-wal", "-shm"):
            if os.path.exists(os.path.join(self.m.store, "index.db" + suffix)):
                os.unlink(os.path.join(self.m.store, "index.db" + suffix))
        with open(os.path.join(self.m.store, "index.db"), "wb") as f:
            f.write(b"not a database" * 100)
        self.m.mount()
        self.wait_indexed()
        self.assertEqual(self.paths("walrus"), ["journal.txt"])
        self.assertTrue(any(n.startswith("index.db.damaged-") for n in os.listdir(self.m.store)))
