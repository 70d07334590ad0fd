"""The stigmergy example (examples/pipeline): three agents coordinated only through files,
cairn watch and flock, on two mounts of one store; the risk agent killed halfway and restarted
still yields exactly one risk report and one summary."""
import json
import os
import signal
import subprocess
import time

from cairnfs import CAIRN, ROOT, CairnMount, MountedTestCase

EXAMPLE = os.path.join(ROOT, "examples", "pipeline")


class PipelineTests(MountedTestCase):
    def setUp(self):
        super().setUp()
        self.env = dict(self.m.env, PATH=os.path.dirname(CAIRN) + ":" + os.environ["PATH"])
        os.makedirs(self.p("deal"))

    def agent(self, name, cwd, **extra):
        return subprocess.Popen([os.path.join(EXAMPLE, name)], cwd=cwd, env=dict(self.env, **extra),
                                start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def versions(self, path):
        return json.loads(self.m.cairn("log", self.p(path), "--json").stdout)

    def test_the_pipeline_runs_in_order(self):
        out = subprocess.run([os.path.join(EXAMPLE, "run.sh"), self.p("deal")], env=self.env, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("# Summary\n# Glossary\n# Risks\nterms reviewed: 2\n", out.stdout)
        actors = {e["actor"] for e in json.loads(self.m.cairn("log", "--json", "--limit", "100").stdout)}
        self.assertTrue({"research", "risk", "summary"} <= actors)

    def test_a_risk_agent_killed_halfway_and_restarted_publishes_once(self):
        other = CairnMount(store=self.m.store, base=self.m.base + "-b", joins=True)
        self.addCleanup(other.close)
        summary = self.agent("summary.sh", other.p("deal"))          # on the other mount
        risk = self.agent("risk.sh", self.p("deal"), RISK_DELAY="30")
        self.addCleanup(lambda: [os.killpg(p.pid, signal.SIGKILL) for p in (summary, risk) if p.poll() is None])
        research = self.agent("research.sh", self.p("deal"))
        research.communicate(timeout=30)
        self.assertEqual(research.returncode, 0)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.p("deal", ".risk.md.tmp")) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(os.path.exists(self.p("deal", ".risk.md.tmp")), "the risk agent is halfway")
        os.killpg(risk.pid, signal.SIGKILL)
        risk.communicate()
        self.assertFalse(os.path.exists(self.p("deal", "risk.md")))
        again = self.agent("risk.sh", self.p("deal"))
        _, err = again.communicate(timeout=30)
        self.assertEqual(again.returncode, 0, err)
        _, err = summary.communicate(timeout=30)
        self.assertEqual(summary.returncode, 0, err)
        with open(other.p("deal", "summary.md")) as f:
            text = f.read()
        self.assertEqual(text.count("# Risks"), 1)
        self.assertEqual(len(self.versions("deal/risk.md")), 1, "one risk report, published once")
        self.assertEqual(len(self.versions("deal/summary.md")), 1)
        # A third start finds the report and does nothing.
        third = self.agent("risk.sh", self.p("deal"))
        third.communicate(timeout=30)
        self.assertEqual(third.returncode, 0)
        self.assertEqual(len(self.versions("deal/risk.md")), 1)
