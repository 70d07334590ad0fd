"""Every claim in SEMANTICS.md names a test, and every named test exists."""
import os
import re
import unittest

from cairnfs import ROOT


def find_test(file_name, test_name):
    for top in ("Tests",):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            if file_name in files:
                with open(os.path.join(dirpath, file_name)) as f:
                    text = f.read()
                pattern = rf"def {re.escape(test_name)}\(" if file_name.endswith(".py") else rf"func {re.escape(test_name)}\("
                return re.search(pattern, text) is not None
    return False


class SemanticsDocTests(unittest.TestCase):
    def test_every_named_test_exists(self):
        with open(os.path.join(ROOT, "SEMANTICS.md")) as f:
            doc = f.read()
        refs = re.findall(r"\[test: ([\w.]+)::(\w+)\]", doc)
        self.assertGreater(len(refs), 20)
        missing = [f"{file}::{name}" for file, name in refs if not find_test(file, name)]
        self.assertEqual(missing, [])


if __name__ == "__main__":
    unittest.main()
