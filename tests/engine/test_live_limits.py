"""test_live_limits.py - live limits (`sluice limits`) and the shipped
provider profiles (`sluice sites`, `sluice site-of`).

A running sluiced takes a `limits set` without a reload: status.json shows
the new limit and deliveries to the site follow it; `limits unset` lifts it
again; a clamp given --for ends by itself.  `limits show --effective`
names the layer of each value (profile < sluiced.conf < live), `site-of`
finds the shipped Gmail profile from a dnsmasq-served MX (resolution only:
nothing connects but to 127.0.0.1), and a sub-account's admin may lower
its own rate but not raise it (77, audited).

usage: /usr/bin/python3 test_live_limits.py SLUICED SLUICE SINK
"""
import json
import os
import subprocess
import time

import peers
from peers import PeerTest

MSG = "From: s@sender.test\nSubject: l\n\nbody\n"


class LiveLimits(PeerTest):

    def site_conf(self, dns, port, extra=""):
        conf = self.write_config(dns=dns, smtp_port=port)
        with open(conf, "a") as f:
            f.write("\n[site rt]\nmx = *.rt.test\n" + extra)
        return conf

    def status_site(self, name):
        try:
            with open(self.path("spool", "status.json")) as f:
                st = json.load(f)
        except (OSError, ValueError):
            return None
        for s in st.get("sites", []):
            if s["name"] == name:
                return s
        return None

    def wait_site(self, name, pred, what):
        peers.wait_for(lambda: (self.status_site(name) is not None and
                                pred(self.status_site(name))), 30, what)

    def test_set_mid_run_then_unset(self):
        port = peers.free_port()
        dns = self.start_dns({"a.rt.test": [(10, "127.0.0.1")]})
        self.start_sink(port, listen="127.0.0.1")
        conf = self.site_conf(dns, port)
        first = self.inject("s@sender.test",
                            ["f%d@a.rt.test" % i for i in range(30)], MSG)
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.wait_events(lambda ev: sum(e["type"] == "delivered"
                                        for e in ev) >= 30, 60,
                         "unlimited run delivered")
        self.wait_site("rt", lambda s: s["max_rate"] == "", "site rt")

        # clamp the running engine: no reload, seen in status.json
        r = self.sluice("limits", "set", "site", "rt", "max_rate=2/s")
        self.assertIn("set site rt max_rate=2/s", r.stdout.decode())
        self.wait_site("rt", lambda s: s["max_rate"] == "2/s" and
                       s["live_limits"] == {"max_rate": "2/s"},
                       "live max_rate in status")
        # one recipient per message: the rate counts recipients, and one
        # message to 40 takes 40 slots at once
        t0 = time.monotonic()   # the clamp is in force from here on
        second = []
        for i in range(40):
            second += self.inject("s@sender.test", ["s%d@a.rt.test" % i], MSG)
        self.wait_events(lambda ev: sum(e["type"] == "delivered" and
                                        e["rcpt"].startswith("s")
                                        for e in ev) >= 8, 60,
                         "clamped deliveries")
        n = sum(e["type"] == "delivered" and e["rcpt"].startswith("s")
                for e in self.event_log())
        t1 = time.monotonic()   # every one counted was sent before this
        # GCRA at 2/s: one at once, then one every 0.5 s, so at most
        # 2 * (t1 - t0) + 1 were sent between t0 and t1 (a slow machine
        # only makes t1 later); and the clamp held back the rest
        self.assertLessEqual(n, 2 * (t1 - t0) + 2,
                             "%d deliveries in %.2fs at 2/s" % (n, t1 - t0))
        self.assertLess(n, 40, "the clamp did not hold")
        self.assertEqual(self.status_site("rt")["max_rate"], "2/s")

        # lifted: the rest goes at once (unlimited), status says so
        self.sluice("limits", "unset", "site", "rt")
        self.wait_site("rt", lambda s: s["max_rate"] == "" and
                       s["live_limits"] == {}, "unset in status")
        self.wait_events(lambda ev: sum(e["type"] == "delivered"
                                        for e in ev) >= 70, 60,
                         "all delivered after unset")
        p.stop(20)
        self.assert_terminal_once(first + second)
        audit = self.sluice("audit", "list").stdout.decode()
        self.assertIn("limits set", audit)
        self.assertIn("site rt max_rate=2/s", audit)
        self.assertIn("limits unset", audit)

    def test_clamp_for_ends_by_itself(self):
        port = peers.free_port()
        dns = self.start_dns({"a.rt.test": [(10, "127.0.0.1")]})
        self.start_sink(port, listen="127.0.0.1")
        conf = self.site_conf(dns, port)
        self.inject("s@sender.test", ["x@a.rt.test"], MSG)
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.wait_site("rt", lambda s: s["delivered"] >= 1, "site rt")
        # long enough to be seen applied on a slow machine, short enough
        # for the test to watch it end
        self.sluice("limits", "set", "site", "rt", "max_connections=1",
                    "--for", "10s")
        shown = json.loads(self.sluice("limits", "show", "--json").stdout)
        self.assertEqual([(x["kind"], x["name"], x["key"], x["value"])
                          for x in shown],
                         [("site", "rt", "max_connections", "1")])
        self.assertGreater(shown[0]["expires_ms"], 0)
        self.wait_site("rt", lambda s: s["max_connections"] == 1 and
                       s["live_limits"] == {"max_connections": "1"},
                       "clamp in status")
        st = json.loads(self.sluice("status", "--json").stdout)
        row = [r for r in st["rows"] if r["name"] == "rt"][0]
        self.assertEqual(row["live_limits"], {"max_connections": "1"})
        # ends by itself: gone from `limits show` and from status.json
        peers.wait_for(lambda: json.loads(self.sluice(
            "limits", "show", "--json").stdout) == [], 60, "clamp ended",
                       interval=0.5)
        self.wait_site("rt", lambda s: s["max_connections"] == 10 and
                       s["live_limits"] == {}, "clamp ended in status")
        p.stop(20)

    def test_precedence_and_site_of(self):
        # gm.test's MX is Google's host name, served by the test's
        # dnsmasq: resolved, never connected to
        dns = self.start_dns({"plain.test": [(10, "127.0.0.1")]},
                             extra=["mx-host=gm.test,aspmx.l.google.com,5"])
        conf = self.write_config(dns=dns)
        with open(conf, "a") as f:
            f.write("\n[site gmail]\nmax_connections = 3\n")
        env = dict(os.environ, SLUICE_CONFIG=conf)

        def run(*args, check=True):
            r = subprocess.run([self.bin["sluice"], "--spool",
                                self.path("spool")] + list(args), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=60)
            if check:
                self.assertEqual(r.returncode, 0, r.stderr)
            return r

        sites = json.loads(run("sites", "--json").stdout)
        gm = [s for s in sites if s["name"] == "gmail"][0]
        self.assertEqual(gm["from"], "profile+ini")
        self.assertEqual(gm["max_connections"], 3)
        self.assertIn("*.l.google.com", gm["mx"])
        self.assertTrue({"microsoft", "yahoo", "icloud", "comcast", "gmx",
                         "orange", "mailru", "yandex", "qq", "zoho"}
                        <= {s["name"] for s in sites})

        of = json.loads(run("site-of", "gm.test", "--json").stdout)
        self.assertEqual(of["site"], "gmail")
        self.assertEqual(of["mx"][0]["host"], "aspmx.l.google.com")
        of = json.loads(run("site-of", "plain.test", "--json").stdout)
        self.assertIsNone(of["site"])

        run("limits", "set", "site", "gmail", "max_rate=5/s")
        eff = json.loads(run("limits", "show", "--effective", "gm.test",
                             "--json").stdout)
        lim = eff["limits"]
        self.assertEqual((lim["max_rate"]["value"], lim["max_rate"]["layer"]),
                         ("5/s", "live"))
        self.assertEqual((lim["max_connections"]["value"],
                          lim["max_connections"]["layer"]), ("3", "ini"))
        self.assertEqual((lim["max_messages_per_connection"]["value"],
                          lim["max_messages_per_connection"]["layer"]),
                         ("100", "profile"))
        self.assertEqual(lim["max_connection_rate"]["layer"], "profile")
        self.assertEqual(lim["max_rcpts_per_message"]["layer"], "default")
        # the live value gone: the profile's again
        run("limits", "unset", "site", "gmail", "max_rate")
        lim = json.loads(run("limits", "show", "--effective", "gm.test",
                             "--json").stdout)["limits"]
        self.assertEqual((lim["max_rate"]["value"], lim["max_rate"]["layer"]),
                         ("1200/min", "profile"))
        # a value the file's rule refuses is refused here too
        r = run("limits", "set", "site", "gmail", "max_rate=fast",
                check=False)
        self.assertEqual(r.returncode, 64)
        self.assertIn("max_rate: 'fast' is not N/s", r.stderr.decode())

    def as_user(self, user, *args):
        env = dict(os.environ, SLUICE_PWHASH_FAST="1", SLUICE_CONFIG="")
        if user:
            env["SLUICE_USER"] = user
            env["SLUICE_PASSWORD"] = "pw-" + user
        return subprocess.run([self.bin["sluice"], "--spool",
                               self.path("spool")] + list(args), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=60, input=("pw-x").encode())

    def test_sub_account_may_only_lower(self):
        self.sluice("account", "create", "master")
        self.sluice("account", "create", "shop", "--rate-cap", "100/s")
        r = subprocess.run([self.bin["sluice"], "--spool", self.path("spool"),
                            "user", "add", "root", "--account", "master",
                            "--role", "owner", "--password-stdin"],
                           env=dict(os.environ, SLUICE_PWHASH_FAST="1",
                                    SLUICE_CONFIG=""), input=b"pw-root",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([self.bin["sluice"], "--spool", self.path("spool"),
                            "user", "add", "sam", "--account", "shop",
                            "--role", "admin", "--password-stdin"],
                           env=dict(os.environ, SLUICE_PWHASH_FAST="1",
                                    SLUICE_CONFIG="", SLUICE_USER="root",
                                    SLUICE_PASSWORD="pw-root"),
                           input=b"pw-sam", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr)
        # lowering its own account's rate: allowed
        r = self.as_user("sam", "limits", "set", "account", "shop",
                         "max_rate=10/s")
        self.assertEqual(r.returncode, 0, r.stderr)
        # raising it (above the live 10/s): refused, audited
        r = self.as_user("sam", "limits", "set", "account", "shop",
                         "max_rate=50/s")
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn("may only lower", r.stderr.decode())
        # unsetting raises it back: refused too; a site is the master's
        r = self.as_user("sam", "limits", "unset", "account", "shop")
        self.assertEqual(r.returncode, 77, r.stderr)
        r = self.as_user("sam", "limits", "set", "domain", "x.test",
                         "max_rate=1/s")
        self.assertEqual(r.returncode, 77, r.stderr)
        shown = json.loads(self.as_user("root", "limits", "show",
                                        "--json").stdout)
        self.assertEqual([(x["kind"], x["key"], x["value"], x["who"])
                          for x in shown],
                         [("account", "max_rate", "10/s", "sam")])
        # the master's admin may raise it
        r = self.as_user("root", "limits", "set", "account", "shop",
                         "max_rate=500/s")
        self.assertEqual(r.returncode, 0, r.stderr)
        audit = self.as_user("root", "audit", "list").stdout.decode()
        self.assertRegex(audit, r"sam.*limits set \(lower\).*max_rate=50/s"
                         r".*refused")
        self.assertRegex(audit, r"sam.*limits set .*max_rate=10/s -> ok")


if __name__ == "__main__":
    peers.main()
