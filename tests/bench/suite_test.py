#!/usr/bin/python3
"""suite_test.py - `make bench` end to end at a tiny size: bench/suite.py
runs sluice, Postfix (with the OpenDKIM milter) and the raw ceiling on W1,
W2 and W5 with a few hundred messages each, plus a small scale run, and
what a benchmarker reads is checked: every system delivered every message
(W5: delivered + bounced), the signed workload was verified by dkimpy for
both MTAs, the ratios are computed, the JSON names machine and commands,
the SVG plot and the RESULTS.md section are written and a second run
replaces that section instead of adding one.  A bad workload name is a
usage error (64).

usage: suite_test.py BUILD_DIR
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SUITE = os.path.join(HERE, "..", "..", "bench", "suite.py")
BUILD = None


class Suite(unittest.TestCase):

    def run_suite(self, d, *extra):
        argv = ["/usr/bin/python3", SUITE, "--build", BUILD,
                "--fraction", "0.003", "--runs", "1",
                "--json", os.path.join(d, "suite.json"),
                "--svg", os.path.join(d, "plot.svg"),
                "--md", os.path.join(d, "RESULTS.md")] + list(extra)
        return subprocess.run(argv, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=600)

    def test_suite(self):
        with tempfile.TemporaryDirectory(prefix="sluice-suite-test-") as d:
            with open(os.path.join(d, "RESULTS.md"), "w") as f:
                f.write("# Results\n\nintro\n\n## Older figures\n\nkept\n")
            r = self.run_suite(d, "--workloads", "W1,W2,W5",
                               "--scale", "20000", "--scale-hold", "3")
            out = r.stdout.decode()
            self.assertEqual(r.returncode, 0, out[-4000:])
            doc = json.load(open(os.path.join(d, "suite.json")))
            self.assertEqual(doc["machine"]["cpus"], os.cpu_count())
            self.assertTrue(doc["machine"]["postfix"])
            self.assertEqual(list(doc["workloads"]), ["W1", "W2", "W5"])
            for name, w in doc["workloads"].items():
                n = w["n"]
                self.assertEqual(n, 300, name)
                run = w["runs"][0]
                for s in ("sluice", "postfix", "ceiling"):
                    f = run[s]
                    self.assertNotIn("problems", f, (name, s, f))
                    self.assertGreater(f["msg_per_s"], 0, (name, s))
                    self.assertGreater(f["cpu_us_per_msg"], 0, (name, s))
                    self.assertGreater(f["peak_mb"], 0, (name, s))
                    self.assertIn(s, w["summary"])
                    self.assertTrue(w["commands"][s]["timed"], (name, s))
                for s in ("sluice", "postfix"):
                    if w["realistic_sink"]:
                        # the sink refused some for good: they bounced
                        self.assertGreater(run[s]["bounced"], 0, (name, s))
                        self.assertEqual(run[s]["delivered"] +
                                         run[s]["bounced"], n, (name, s))
                    else:
                        self.assertEqual(run[s]["delivered"], n, (name, s))
                ratio = run["sluice"]["msg_per_s"] / \
                    run["postfix"]["msg_per_s"]
                self.assertAlmostEqual(run["sluice_over_postfix"], ratio,
                                       places=2)
                self.assertIn("sluice_over_ceiling", w["summary"])
            checks = doc["workloads"]["W2"]["checks"]
            for s in ("sluice", "postfix"):
                self.assertIn("verified by dkimpy (rsa-sha256)", checks[s])
            self.assertIn("unsigned", doc["workloads"]["W1"]["checks"]
                          ["postfix"])
            self.assertIn("smtpd_milters",
                          doc["workloads"]["W2"]["commands"]["postfix"]
                          ["main.cf"])
            sc = doc["scale"]
            self.assertEqual(sc["recipients"], 20000, sc)
            self.assertGreater(sc["spool_du_kb"], 0)
            self.assertIsNotNone(sc["first_delivery_ms_from_start"])
            svg = open(os.path.join(d, "plot.svg")).read()
            self.assertIn("<svg", svg)
            for label in ("W1", "W2", "W5", "sluice", "postfix", "ceiling"):
                self.assertIn(label, svg)
            md = open(os.path.join(d, "RESULTS.md")).read()
            self.assertIn("## Older figures\n\nkept", md)
            self.assertEqual(md.count("<!-- suite:begin"), 1)
            self.assertIn("plot.svg", md)
            for label in ("**W1**", "**W2**", "**W5**"):
                self.assertIn(label, md)

            # a second run rewrites its own section, nothing else
            r = self.run_suite(d, "--workloads", "W1", "--systems",
                               "sluice,ceiling", "--scale", "0")
            self.assertEqual(r.returncode, 0, r.stdout.decode()[-3000:])
            md = open(os.path.join(d, "RESULTS.md")).read()
            self.assertEqual(md.count("<!-- suite:begin"), 1)
            self.assertEqual(md.count("<!-- suite:end -->"), 1)
            self.assertNotIn("**W2**", md)
            self.assertIn("## Older figures\n\nkept", md)

    def test_short_process_memory(self):
        """A command that ends before the first memory sample is still
        measured: its peak RSS comes from wait4 (through GNU time), not
        from sampling, so the figure does not depend on how fast the
        machine runs it."""
        sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
        from suite_tree import Tree
        with tempfile.TemporaryDirectory(prefix="sluice-tree-test-") as d:
            tree = Tree(d)
            # touches 64 MiB, then exits at once
            r = tree.run(["/usr/bin/python3", "-c",
                          "b = bytearray(64 << 20)"], name="short")
            self.assertEqual(r["rc"], 0)
            res = tree.finish()
            self.assertGreaterEqual(res["max_rss_kb"], 64 * 1024, res)
            # and not the harness's own image: a tiny command stays small
            tree = Tree(d)
            tree.run(["/bin/true"], name="tiny")
            res = tree.finish()
            self.assertGreater(res["max_rss_kb"], 0, res)
            self.assertLess(res["max_rss_kb"], 8 * 1024, res)

    def test_usage(self):
        r = subprocess.run(["/usr/bin/python3", SUITE, "--workloads", "W9"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 64, r.stdout)


if __name__ == "__main__":
    BUILD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
