"""Webhooks: each event POSTed, signed, in seq order, at least once, through a receiver that is
down for a while and a daemon killed in between; events that keep failing go to the dead-letter
list and can be sent again."""
import hashlib
import hmac
import http.server
import json
import os
import threading
import time

from cairnfs import MountedTestCase


class Receiver:
    """A local HTTP endpoint that records what it is sent, or answers 503 while `down`."""

    def __init__(self):
        self.events = []
        self.down = False
        self.fail_path = None
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event = json.loads(body)
                if receiver.down or (event.get("path"), event.get("kind")) == (receiver.fail_path, "write"):
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.events.append((event, dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count, timeout=15):
        deadline = time.monotonic() + timeout
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return [e for e, _, _ in self.events]

    def close(self):
        self.server.shutdown()


class WebhookTests(MountedTestCase):
    def setUp(self):
        os.environ["CAIRN_WEBHOOK_RETRY_SECONDS"] = "0.05"
        self.addCleanup(os.environ.pop, "CAIRN_WEBHOOK_RETRY_SECONDS")
        super().setUp()
        self.receiver = Receiver()
        self.addCleanup(self.receiver.close)

    def add(self, *args):
        return json.loads(self.m.cairn("webhook", "add", self.receiver.url, "--json", *args).stdout)["id"]

    def write(self, name):
        with open(self.p(name), "w") as f:
            f.write(name)

    def test_events_arrive_signed_in_order_through_an_outage_and_a_crash(self):
        hook = self.add("--kind", "write", "--secret", "s3cret")
        self.assertEqual(self.m.cairn("webhook", "test", str(hook)).stdout.strip(), "HTTP 200")
        self.receiver.events.clear()
        self.write("a.txt")
        got = self.receiver.wait_for(1)
        self.assertEqual([(e["kind"], e["path"]) for e in got], [("write", "a.txt")])
        _, headers, body = self.receiver.events[0]
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        self.assertEqual(headers["X-Cairn-Signature"], expected)
        self.assertEqual(headers["X-Cairn-Event"], str(got[0]["seq"]))

        self.receiver.down = True
        for name in ("b.txt", "c.txt", "d.txt"):
            self.write(name)
        time.sleep(0.3)
        self.m.kill9()            # nothing delivered yet, and the daemon dies
        self.m.mount()
        self.write("e.txt")
        self.receiver.down = False
        got = self.receiver.wait_for(5)
        self.assertEqual([e["path"] for e in got], ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"])
        seqs = [e["seq"] for e in got]
        self.assertEqual(seqs, sorted(seqs))

    def test_an_event_that_keeps_failing_goes_to_the_dead_letter_list(self):
        hook = self.add()
        self.receiver.fail_path = "bad.txt"
        self.write("bad.txt")
        bad = json.loads(self.m.cairn("log", "bad.txt", "--json").stdout)[0]["seq"]
        self.write("next.txt")
        deadline = time.monotonic() + 20
        dead = []
        while not dead and time.monotonic() < deadline:
            dead = [d for d in json.loads(self.m.cairn("webhook", "deliveries", "--json").stdout) if d["state"] == "dead"]
            time.sleep(0.1)
        self.assertEqual([(d["seq"], d["attempts"]) for d in dead], [(bad, 8)])
        paths = [e["path"] for e in self.receiver.wait_for(2)]
        self.assertIn("next.txt", paths, "the webhook moved on")
        self.receiver.fail_path = None
        out = self.m.cairn("webhook", "retry", str(dead[0]["id"])).stdout
        self.assertIn("delivered", out)
        self.assertIn(bad, [e["seq"] for e, _, _ in self.receiver.events])
        listed = json.loads(self.m.cairn("webhook", "list", "--json").stdout)
        self.assertEqual([h["id"] for h in listed], [hook])
        self.m.cairn("webhook", "remove", str(hook))
        self.assertEqual(json.loads(self.m.cairn("webhook", "list", "--json").stdout), [])
        bad_url = self.m.cairn("webhook", "add", "ftp://x", check=False)
        self.assertIn("not an http:// or https:// URL", bad_url.stderr)
