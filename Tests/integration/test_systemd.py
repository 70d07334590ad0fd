"""The systemd unit template is accepted by systemd-analyze verify."""
import os
import subprocess
import tempfile
import unittest

from cairnfs import CAIRN, ROOT


class SystemdUnitTests(unittest.TestCase):
    def test_unit_template_verifies(self):
        with open(os.path.join(ROOT, "systemd", "cairn@.service")) as f:
            unit = f.read()
        self.assertIn("/usr/local/bin/cairn", unit)
        # Verify the unit as installed, with the binary where `make install` would put it: here,
        # the freshly built one.
        unit = unit.replace("/usr/local/bin/cairn", CAIRN)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "cairn@srv-cairn.service")
            with open(path, "w") as f:
                f.write(unit)
            r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertNotIn("cairn@", r.stderr)


if __name__ == "__main__":
    unittest.main()
