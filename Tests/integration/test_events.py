"""Change events: `cairn watch` (filters, consumers that resume with no gap and no duplicate) and
`.cairn/events`, a file whose reads wait for the next change (cat, head -n 1, grep -m1 are
watchers), through a second mount of the same store."""
import json
import os
import signal
import subprocess
import time

from cairnfs import CAIRN, CairnMount, MountedTestCase


class EventTests(MountedTestCase):
    def setUp(self):
        super().setUp()
        self.other = CairnMount(store=self.m.store, base=self.m.base + "-b", joins=True)
        self.addCleanup(self.other.close)

    def watch(self, *args):
        return subprocess.Popen([CAIRN, "watch", *args], env=self.m.env, stdout=subprocess.PIPE, text=True)

    def write(self, name, text="x"):
        with open(self.p(name), "w") as f:
            f.write(text)

    def test_head_n1_of_cairn_events_on_another_mount_gets_the_next_change(self):
        head = subprocess.Popen(["head", "-n", "1", self.other.p(".cairn", "events")], stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        self.assertIsNone(head.poll(), "the read waits for a change")
        started = time.monotonic()
        self.write("glossary.md", "terms\n")
        line = json.loads(head.communicate(timeout=5)[0])
        self.assertLess(time.monotonic() - started, 1)
        self.assertEqual((line["kind"], line["path"], line["workspace"]), ("create", "glossary.md", "default"))

    def test_parked_event_readers_and_ctrl_c(self):
        readers = [subprocess.Popen(["cat", self.p(".cairn", "events")], stdout=subprocess.DEVNULL) for _ in range(18)]
        self.addCleanup(lambda: [r.kill() for r in readers])
        time.sleep(0.5)
        started = time.monotonic()
        self.assertEqual(subprocess.run(["ls", self.other.path], capture_output=True).returncode, 0)
        self.write("f")
        self.assertLess(time.monotonic() - started, 1, "the mount answers while 18 readers wait")
        for r in readers:
            r.send_signal(signal.SIGINT)
        for r in readers:
            self.assertEqual(r.wait(timeout=5), -signal.SIGINT, "Ctrl-C ends a waiting read at once")
        grep = subprocess.Popen(["grep", "-m1", '"kind":"delete"', self.other.p(".cairn", "events")],
                                stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        os.remove(self.p("f"))
        self.assertIn('"path":"f"', grep.communicate(timeout=5)[0])

    def test_watch_filters_and_a_consumer_resumes_with_no_gap_and_no_duplicate(self):
        os.makedirs(self.p("docs"))
        start = json.loads(self.m.cairn("log", "--json", "--limit", "1").stdout)[0]["seq"]
        for i in range(10):
            self.write(f"docs/n{i}.md", str(i))
        self.write("other.txt")
        first = self.watch("--consumer", "agent", "--since", str(start), "--count", "4", "--json", "--kind",
                           "write", self.p("docs"))
        lines = first.communicate(timeout=10)[0].splitlines()
        second = self.watch("--consumer", "agent", "--count", "6", "--json", "--kind", "write", self.p("docs"))
        lines += second.communicate(timeout=10)[0].splitlines()
        events = [json.loads(l) for l in lines]
        self.assertEqual([e["path"] for e in events], [f"docs/n{i}.md" for i in range(10)])
        self.assertTrue(all(e["kind"] == "write" for e in events))
        self.assertEqual(len({e["seq"] for e in events}), 10)
        glob = self.watch("--since", str(start), "--count", "1", "*.txt")
        self.assertIn("create default:other.txt", glob.communicate(timeout=10)[0])

    def test_a_live_watch_sees_a_change_made_through_another_mount(self):
        live = self.watch("--json", "--workspace", "default")
        self.addCleanup(lambda: (live.kill(), live.wait()))
        time.sleep(0.5)
        started = time.monotonic()
        with open(self.other.p("report.md"), "w") as f:
            f.write("risk\n")
        seen = [json.loads(live.stdout.readline()) for _ in range(2)]
        self.assertLess(time.monotonic() - started, 1)
        self.assertEqual([e["kind"] for e in seen], ["create", "write"])
        self.assertEqual(seen[1]["cause"], "close")


class CoherenceTests(MountedTestCase):
    def test_changes_through_one_mount_show_in_another_at_once(self):
        other = CairnMount(store=self.m.store, base=self.m.base + "-b", joins=True)
        self.addCleanup(other.close)
        with open(self.p("shared.txt"), "w") as f:
            f.write("first\n")
        with open(other.p("shared.txt")) as f:
            self.assertEqual(f.read(), "first\n")  # now cached by the other mount
        with open(self.p("shared.txt"), "w") as f:
            f.write("second, longer\n")
        started = time.monotonic()
        with open(other.p("shared.txt")) as f:
            self.assertEqual(f.read(), "second, longer\n")
        self.assertEqual(os.stat(other.p("shared.txt")).st_size, 15)
        os.remove(self.p("shared.txt"))
        while os.path.exists(other.p("shared.txt")) and time.monotonic() - started < 2:
            time.sleep(0.01)
        self.assertLess(time.monotonic() - started, 1, "the removal shows in the other mount within 1 s")
