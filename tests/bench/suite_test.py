#!/usr/bin/python3
"""suite_test.py - `make bench` end to end at a tiny size: bench/suite.py
runs sluice, Postfix (with the OpenDKIM milter) and the raw ceiling on W1,
W2, W5 and W7 with a few hundred messages each, plus a small scale run,
and what a benchmarker reads is checked: every system delivered every
message (W5: delivered + bounced), the signed workload was verified by
dkimpy for both MTAs, the ratio and the shares of the ceiling are
computed, the ceiling had several senders, the sink's CPU per message and
the harness's CPU are given for each system, all of a system's processes
shared the suite's session (one scheduler autogroup), W5 tells the first
pass (every recipient tried once) from the retry tail, W7 counts the
connections and transactions the sink saw and every domain got a
connection, the JSON names machine and commands,
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
            r = self.run_suite(d, "--workloads", "W1,W2,W5,W7",
                               "--scale", "20000", "--scale-hold", "3")
            out = r.stdout.decode()
            self.assertEqual(r.returncode, 0, out[-4000:])
            doc = json.load(open(os.path.join(d, "suite.json")))
            self.assertEqual(doc["machine"]["cpus"], os.cpu_count())
            self.assertTrue(doc["machine"]["postfix"])
            self.assertEqual(list(doc["workloads"]),
                             ["W1", "W2", "W5", "W7"])
            for name, w in doc["workloads"].items():
                n = w["n"]
                self.assertEqual(n, 150 if name == "W7" else 300, name)
                run = w["runs"][0]
                for s in ("sluice", "postfix", "ceiling"):
                    f = run[s]
                    self.assertNotIn("problems", f, (name, s, f))
                    self.assertGreater(f["msg_per_s"], 0, (name, s))
                    self.assertGreater(f["cpu_us_per_msg"], 0, (name, s))
                    self.assertGreater(f["peak_mb"], 0, (name, s))
                    self.assertGreater(f["sink_cpu_us_per_msg"], 0, (name, s))
                    self.assertGreaterEqual(f["harness_cpu_s"], 0, (name, s))
                    self.assertIn("harness_cores", f)
                    # Postfix's master and OpenDKIM did not leave the
                    # suite's session (0: a kernel without autogroups)
                    self.assertLessEqual(f["autogroups"], 1, (name, s))
                    self.assertIn(s, w["summary"])
                    self.assertTrue(w["commands"][s]["timed"], (name, s))
                    if s != "ceiling":
                        self.assertAlmostEqual(
                            f["share_of_ceiling"], f["msg_per_s"] /
                            run["ceiling"]["msg_per_s"], places=2)
                self.assertEqual(len(w["commands"]["ceiling"]["timed"]), 4)
                self.assertEqual(run["ceiling"]["sender_procs"], 4)
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
                self.assertIn("share_of_ceiling", w["summary"]["sluice"])
            for s in ("sluice", "postfix"):
                f = doc["workloads"]["W5"]["runs"][0][s]
                # every recipient was tried once in the first pass, and
                # the 451s were tried again after it or during it
                self.assertEqual(f["rcpt_first"], 300, (s, f))
                self.assertEqual(f["rcpt_untracked"], 0, (s, f))
                self.assertGreater(f["rcpt_retries"], 0, (s, f))
                self.assertGreater(f["first_pass_s"], 0, (s, f))
                self.assertGreaterEqual(f["tail_s"], 0, (s, f))
                # first_pass_s is rounded to the millisecond: a fast first
                # pass moves the quotient by up to half a millisecond's
                # share of it, so the check is relative
                rate = 300 / f["first_pass_s"]
                self.assertAlmostEqual(f["first_pass_msg_per_s"], rate,
                                       delta=0.0006 / f["first_pass_s"] *
                                       rate + 0.5)
            w7 = doc["workloads"]["W7"]
            self.assertEqual(w7["domains"], 30)
            for s in ("sluice", "postfix", "ceiling"):
                f = w7["runs"][0][s]
                self.assertEqual(f["transactions"], 150, (s, f))
                self.assertGreaterEqual(f["connections"], 1, (s, f))
                self.assertLessEqual(f["smtp_sessions"], f["connections"])
                self.assertAlmostEqual(
                    f["messages_per_connection"], 150 / f["connections"],
                    places=1)
            for s in ("sluice", "postfix"):
                f = w7["runs"][0][s]
                # 5 recipients in each of the 30 domains: each one's MX
                # had at least one connection
                self.assertEqual(f["domains_connected"], 30, (s, f))
                self.assertGreaterEqual(f["connections"], 30, (s, f))
                self.assertAlmostEqual(f["connections_per_domain"],
                                       f["connections"] / 30.0, places=2)
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
            for label in ("W1", "W2", "W5", "W7", "sluice", "postfix",
                          "ceiling"):
                self.assertIn(label, svg)
            md = open(os.path.join(d, "RESULTS.md")).read()
            self.assertIn("## Older figures\n\nkept", md)
            self.assertEqual(md.count("<!-- suite:begin"), 1)
            self.assertIn("plot.svg", md)
            for label in ("**W1**", "**W2**", "**W5**", "**W7**",
                          "share of the ceiling", "sink CPU µs/msg",
                          "W5 sluice: first pass", "W7 postfix: ",
                          "connections per domain", "The harness's own CPU"):
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
