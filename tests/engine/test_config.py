"""test_config.py - sluiced -t and SIGHUP reloads.

Cases: -t accepts a good file (exit 0) and refuses unknown keys, unknown
sections and bad values with exit 78 and "FILE:LINE: reason" naming the
right line; so are a key given twice, a NUL byte, an overlong line, a
section name libinih would cut, an indented line continuing a one-line
key, a dns_servers entry that is no IP address, and files or directories
that keys name but that are not there (tls_ca_file, dkim_keys,
bounce_rules, the directories of event_log and status_file).  A domains
list may go on over indented lines, and a dns_servers list with blanks
and an address without a port works for delivery.

SIGHUP with a broken file keeps the running configuration, and with a
good one applies a changed route and a removed route to the very next
message.

DKIM keys of domains verified in the spool (`sluice domain verify`) pass
the same mode check as the configuration's: a key group or others may
read makes -t and the start exit 78 naming the file and the chmod; at
0600, -t counts it and sluiced signs with it (dkimpy and
opendkim-testmsg verify); a key turned world-readable (and replaced)
under a running sluiced is refused on SIGHUP, and the key in memory
keeps signing: the refused file is never read.

--help: `sluiced --help` describes every option and exits 0, a bad option
exits 64; `sluice CMD [SUB] --help` exits 0 without opening a spool that
is not there.

usage: /usr/bin/python3 test_config.py SLUICED SLUICE SINK
"""
import hashlib
import os
import shutil
import signal
import subprocess
import sys

import peers
from peers import PeerTest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "dkim"))
import verifiers  # noqa: E402

MSG = "From: s@sender.test\nSubject: hup\n\nbody\n"


class Config(PeerTest):

    def check(self, path):
        r = subprocess.run([self.bin["sluiced"], "-t", "-c", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        return r.returncode, r.stdout.decode() + r.stderr.decode()

    def test_check_mode(self):
        good = self.write_config(dns="127.0.0.1:53", smtp_port=2525,
                                 domains={"a.test": {"route": "127.0.0.9:25",
                                                     "tls": "required"}})
        rc, out = self.check(good)
        self.assertEqual(rc, 0, out)
        with open(good) as f:
            text = f.read()
        nlines = text.count("\n")
        bad = [
            # (appended text, line of the error within it, word)
            ("[sluiced]\nretry_forever = yes\n", 2, "retry_forever"),
            ("[sluiced]\nmax_connections = lots\n", 2, "max_connections"),
            ("[sluiced]\nmax_inflight_bytes = 64MiB\n", 2,
             "max_inflight_bytes: '64MiB' is not a size"),
            ("[sluiced]\nretry = 1s, 0s\n", 2, "retry"),
            ("[sluiced]\ntimeout_data = soon\n", 2, "timeout_data"),
            ("[domain b.test]\ntls = maybe\n", 2, "tls"),
            ("[domain b.test]\nroute = bad host!\n", 2, "route"),
            ("[domain b.test]\nmax_rcpts_per_message = 0\n", 2,
             "max_rcpts_per_message"),
            # an unknown section is reported at its first key
            ("\n[smtpd]\nport = 25\n", 3, "smtpd"),
            ("this is not ini\n", 1, "syntax"),
            # [alert NAME] (incidents)
            ("[alert x]\nsignal = bounces\n", 2, "signal"),
            ("[alert x]\nthreshold = 150%\n", 2, "threshold"),
            ("[alert x]\nwindow = 90s\n", 2, "window"),
            ("[alert x]\naction = reboot\n", 2, "action"),
            ("[alert x]\nscope = world\n", 2, "scope"),
            ("[alert x]\nsignal = block_rate\nscope = site\n"
             "threshold = 1%\naction = pause_campaign\n", 2, "does not fit"),
            ("[alert x]\nscope = site\nthreshold = 1%\n", 2,
             "needs signal and scope"),
            # the gauges: each its scope and unit
            ("[alert x]\nsignal = spool_full\nscope = site\n"
             "threshold = 80%\n", 2, "spool_full is counted per engine"),
            ("[alert x]\nsignal = block_rate\nscope = campaign\n"
             "threshold = 5000\n", 2, "block_rate needs a fraction"),
            ("[alert x]\nsignal = backoff_floor\nscope = site\n"
             "threshold = 6m\nwindow = 5m\n", 2, "up to the window (300s)"),
            ("[alert x]\nsignal = webhook_backlog\nscope = webhook\n"
             "threshold = 100\nmin_volume = 5\n", 2, "min_volume"),
            ("[alert x]\nsignal = disk_full\nscope = engine\n"
             "threshold = 90%\naction = pause_account\n", 2, "does not fit"),
            ("[alert x]\nthreshold = 5 events\n", 2, "threshold"),
            # escalation and the breaker's resume
            ("[alert x]\nescalate_after = soon\n", 2,
             "escalate_after: 'soon' is not a duration"),
            ("[alert x]\nescalate_threshold = 0\n", 2,
             "escalate_threshold: '0' is not a fraction"),
            ("[alert x]\nresume = auto\n", 2,
             "resume: 'auto' is not manual or probe"),
            ("[alert x]\nprobe_after = 2d\n", 2,
             "probe_after: '2d' is not a duration"),
            ("[alert x]\nsignal = block_rate\nscope = campaign\n"
             "threshold = 10%\nresume = probe\n", 2, "needs a pause action"),
            ("[alert x]\nsignal = block_rate\nscope = campaign\n"
             "threshold = 10%\nescalate_threshold = 5%\n", 2,
             "escalate_threshold must be above"),
            ("[account 3]\nalert_to = nobody\n", 2, "alert_to"),
            ("[sluiced]\nalert_command = relative.sh\n", 2, "alert_command"),
        ]
        for i, (extra, at, word) in enumerate(bad):
            path = self.path("bad%d.conf" % i)
            with open(path, "w") as f:
                f.write(text + extra)
            rc, out = self.check(path)
            self.assertEqual(rc, 78, "%r: %s" % (extra, out))
            self.assertIn("%s:%d: " % (path, nlines + at), out, extra)
            self.assertIn(word, out, extra)
        # a missing file and a missing spool are errors too
        rc, out = self.check(self.path("nope.conf"))
        self.assertEqual(rc, 78, out)
        path = self.path("nospool.conf")
        with open(path, "w") as f:
            f.write("[sluiced]\nehlo_hostname = a.test\n")
        rc, out = self.check(path)
        self.assertEqual(rc, 78, out)
        self.assertIn("spool", out)

    def test_check_refuses_what_was_accepted(self):
        """Every case here exited 0 (or 78 without the line) before."""
        good = self.write_config(smtp_port=2525)
        with open(good) as f:
            text = f.read()
        n = text.count("\n")
        junk = self.path("junk.pem")
        with open(junk, "w") as f:
            f.write("not a certificate\n")
        long_section = "d" * 50 + ".test"
        bad = [
            # (appended text, line of the error within it, words in it)
            ("[sluiced]\ntls_ca_file = /nonexistent/ca.pem\n"
             "[domain b.test]\ntls = required\ntls_verify = yes\n", 2,
             ["tls_ca_file", "/nonexistent/ca.pem", "No such file"]),
            ("[sluiced]\ntls_ca_file = %s\n" % junk, 2,
             ["tls_ca_file", junk, "CA certificate"]),
            ("[sluiced]\ndkim_keys = /nonexistent/keys\n", 2,
             ["dkim_keys", "/nonexistent/keys", "No such file"]),
            ("[sluiced]\nbounce_rules = /nonexistent/rules\n", 2,
             ["bounce_rules", "/nonexistent/rules"]),
            ("[sluiced]\nstatus_file = /nonexistent/dir/status.json\n", 2,
             ["status_file", "/nonexistent/dir"]),
            ("[sluiced]\nstatus_file = %s\n" % self.dir, 2,
             ["status_file", "is a directory"]),
            ("[sluiced]\ndns_servers = 999.1.1.1:53\n", 2,
             ["dns_servers", "999.1.1.1:53"]),
            ("[sluiced]\ndns_servers = dns.example:53\n", 2,
             ["dns_servers", "dns.example:53"]),
            ("[domain b.test]\nmax_connections = 5\x00junk\n", 2, ["NUL"]),
            ("[domain b.test]\ntls = off\ntls = required\n", 3,
             ["'tls' is given twice in [domain b.test]",
              "first at line %d" % (n + 2)]),
            ("[sluiced]\nsmtp_port = 26\n", 2,
             ["'smtp_port' is given twice", "first at line 4"]),
            # libinih cuts lines at 200 bytes: the rest was read as a line
            # of its own, and the errors after it were off by one
            ("[domain b.test]\n# " + "x" * 300 + "\nbogus = 1\n", 2,
             ["longer than 199"]),
            ("[domain b.test]\nroute = " + "a" * 250 + "\n", 2,
             ["longer than 199"]),
            ("[domain %s]\nmax_connections = 3\n" % long_section, 1,
             ["section name longer than 49"]),
            ("[domain b.test]\nmax_connections = 5\n  6\n", 3,
             ["continues 'max_connections'"]),
            ("[domain default]\nbogus = 1\n", 2,
             ["unknown key 'bogus' in [domain default]"]),
            ("[sluiced]\nspool_check = sometimes\n", 2,
             ["spool_check", "yes or no"]),
            ("[sluiced]\nspool_min_free = lots\n", 2,
             ["spool_min_free", "MiB"]),
        ]
        for i, (extra, at, words) in enumerate(bad):
            with self.subTest(case=i, text=extra[:60]):
                path = self.path("bad%d.conf" % i)
                with open(path, "w") as f:
                    f.write(text + extra)
                rc, out = self.check(path)
                self.assertEqual(rc, 78, out)
                self.assertIn("%s:%d: " % (path, n + at), out)
                for w in words:
                    self.assertIn(w, out)
                self.assertNotIn("(null)", out)
        # the directory of event_log (a key of the base file)
        path = self.write_config(smtp_port=2525, name="ev.conf",
                                 event_log="/nonexistent/dir/ev.jsonl")
        rc, out = self.check(path)
        self.assertEqual(rc, 78, out)
        self.assertIn("event_log", out)
        self.assertIn("/nonexistent/dir", out)
        self.assertRegex(out, r"ev\.conf:\d+: ")
        # what is still fine: a domains list over indented lines, match
        # lines in [backoff], a dns_servers list with blanks, no port, IPv6
        path = self.path("ok.conf")
        with open(path, "w") as f:
            f.write(text + "[account 9]\ndomains = a.test,\n  b.test\n"
                    "[backoff]\nmatch = 421 * *\nmatch = 451 * *\n"
                    "[sluiced]\ndns_servers = 127.0.0.1:53, 127.0.0.2 "
                    "[::1]:5353\n")
        rc, out = self.check(path)
        self.assertEqual(rc, 0, out)
        self.assertIn("for 2 domains", out)

    def test_dns_servers_list_delivers(self):
        """A dns_servers list written with blanks reaches c-ares in a form
        it reads (c-ares refuses blanks: sluiced did not start)."""
        port = peers.free_port()
        dns = self.start_dns({"list.test": [(10, "127.0.0.1")]})
        sink = self.start_sink(port, listen="127.0.0.1")
        conf = self.write_config(dns="127.0.0.9:%d, %s" % (self.dns_port, dns),
                                 smtp_port=port, dns_timeout="200ms",
                                 dns_tries="3")
        ids = self.inject("s@sender.test", ["a@list.test"], MSG)
        self.run_sluiced(conf)
        self.assert_terminal_once(ids)
        self.assertEqual([e["type"] for e in self.event_log()
                          if e["delivery"] == ids[0]], ["delivered"])
        self.assertEqual(len(sink.captures()), 1)

    def test_help(self):
        r = subprocess.run([self.bin["sluiced"], "--help"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 0, r.stderr)
        for opt in (b"-c FILE", b"-t", b"-v", b"--progress",
                    b"--exit-when-empty", b"--help"):
            self.assertIn(opt, r.stdout)
        r2 = subprocess.run([self.bin["sluiced"], "-h"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual((r2.returncode, r2.stdout), (0, r.stdout))
        r = subprocess.run([self.bin["sluiced"], "--frobnicate"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 64)
        self.assertIn(b"--frobnicate", r.stderr)
        self.assertIn(b"usage:", r.stderr)
        # sluice: help never opens the spool (it is not there) nor asks
        # who is acting
        nowhere = self.path("no", "spool")
        for args in (["spool", "info"], ["spool", "domains", "--limit", "3"],
                     ["spool", "events"], ["spool", "history", "1"],
                     ["status", "--watch", "2"], ["pause", "domain", "x"],
                     ["paused"], ["inject", "--to", "a@b.test"],
                     ["bounces", "classify"], ["domain", "verify", "x"],
                     ["campaign", "send", "1"]):
            for h in ("--help", "-h"):
                r = subprocess.run([self.bin["sluice"], "--spool", nowhere,
                                    "--as", "nobody"] + args + [h],
                                   stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=30)
                self.assertEqual(r.returncode, 0, "%s %s: %s" % (
                    " ".join(args), h, r.stderr.decode()))
                self.assertIn(b"usage: sluice " + args[0].encode(),
                              r.stdout + r.stderr)
        self.assertFalse(os.path.exists(self.path("no")))

    def test_spool_key_modes(self):
        """A verified domain of the spool: its key is checked like the
        configuration's, at -t, at start and on SIGHUP."""
        port = peers.free_port()
        dns = self.start_dns({"dest.test": [(10, "127.0.0.1")]})
        sink = self.start_sink(port, listen="127.0.0.1")
        self.sluice("account", "create", "shop")
        self.sluice("domain", "add", "shop.test", "--account", "shop",
                    "--selector", "s1")
        self.sluice("domain", "verify", "shop.test", "--force")
        # a second key, never verified so never loaded: bytes to swap in
        self.sluice("domain", "add", "spare.test", "--account", "shop",
                    "--selector", "s1")
        key = os.path.join(self.path("spool"), "dkim", "shop.test", "s1.key")
        spare = os.path.join(self.path("spool"), "dkim", "spare.test",
                             "s1.key")
        old_txt = verifiers.key_txt(key)
        new_txt = verifiers.key_txt(spare)
        self.assertNotEqual(old_txt, new_txt)
        conf = self.write_config(dns=dns, smtp_port=port,
                                 allow_unsigned=False)

        def mail(subject):
            return ("From: a@shop.test\r\nTo: x@dest.test\r\n"
                    "Subject: %s\r\nMessage-ID: <%s@shop.test>\r\n"
                    "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\n"
                    "hello\r\n" % (subject, hashlib.sha1(
                        subject.encode()).hexdigest())).encode()

        first = self.inject("x@bounce.test", ["first@dest.test"],
                            mail("first"), account="shop")

        # readable by others: -t and the start refuse it, with the fix
        os.chmod(key, 0o644)
        rc, out = self.check(conf)
        self.assertEqual(rc, 78, out)
        self.assertIn(key, out)
        self.assertIn("chmod 600 " + key, out)
        self.assertIn("shop.test", out)
        p = self.start_sluiced(conf, name="refused")
        self.assertEqual(p.wait(30), 78, p.output()[-2000:])
        self.assertIn("chmod 600 " + key, p.output())
        self.assertEqual(self.spool_info()["counts"]["queued"], 1)

        # owner-only: -t counts exactly what the daemon loads
        os.chmod(key, 0o600)
        rc, out = self.check(conf)
        self.assertEqual(rc, 0, out)
        self.assertIn("1 DKIM keys for 1 domains", out)
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.wait_events(lambda evs: any(e["delivery"] == first[0] and
                                         e["type"] == "delivered"
                                         for e in evs), 30, "first")

        # the file turns world-readable and holds another key: the reload
        # is refused and logged, and the running key (not the file) signs
        shutil.copyfile(spare, key)
        os.chmod(key, 0o644)
        p.signal(signal.SIGHUP)
        peers.wait_for(lambda: "reload refused" in p.output(), 10,
                       "reload refused")
        self.assertIn("chmod 600 " + key, p.output())
        second = self.inject("x@bounce.test", ["second@dest.test"],
                             mail("second"), account="shop")
        self.wait_events(lambda evs: any(e["delivery"] == second[0] and
                                         e["type"] == "delivered"
                                         for e in evs), 30, "second")

        # fixed: the reload takes the file's key
        os.chmod(key, 0o600)
        p.signal(signal.SIGHUP)
        peers.wait_for(lambda: "configuration reloaded" in p.output(), 10,
                       "reload")
        third = self.inject("x@bounce.test", ["third@dest.test"],
                            mail("third"), account="shop")
        self.wait_events(lambda evs: any(e["delivery"] == third[0] and
                                         e["type"] == "delivered"
                                         for e in evs), 30, "third")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(20), 0, p.output()[-2000:])
        got = {rcpts[0].split("@")[0]: raw
               for _, rcpts, raw in sink.captures()}
        self.assertEqual(sorted(got), ["first", "second", "third"])
        # first and second verify with the old record only, third with the
        # new one only
        for txt, ok, bad in ((old_txt, ("first", "second"), ("third",)),
                             (new_txt, ("third",), ("first", "second"))):
            with verifiers.Verifiers(self.path("verify"),
                                     {"s1._domainkey.shop.test": txt}) as v:
                res = v.verify([(n, got[n]) for n in ok + bad])
            for n, r in zip(ok + bad, res):
                self.assertEqual(r.ok, n in ok, "%s: %s" % (n, r.describe()))

    def test_sighup(self):
        port = peers.free_port()
        dns = self.start_dns({"hup.test": [(10, "127.0.0.92")]})
        sinks = {a: self.start_sink(port, listen=a, name="sink" + a[-2:])
                 for a in ("127.0.0.90", "127.0.0.91", "127.0.0.92")}

        def conf(route):
            doms = {"hup.test": {"route": route}} if route else None
            return self.write_config(dns=dns, smtp_port=port, domains=doms,
                                     idle_timeout="30s")
        path = conf("127.0.0.90")
        n = [0]

        def send():
            n[0] += 1
            return self.inject("s@sender.test", ["u%d@hup.test" % n[0]],
                               MSG)[0]

        def send_and_wait(d=None):
            d = d or send()
            ev = self.wait_events(
                lambda ev: [e for e in ev if e["delivery"] == d], 20,
                "delivery %d" % d)
            self.assertEqual(ev[0]["type"], "delivered", ev)
            return ev[0]["mx"]

        # the spool exists before sluiced starts (a spool created by two
        # processes at once is refused by one of them)
        first = send()
        p = self.start_sluiced(path, exit_when_empty=False)
        self.assertEqual(send_and_wait(first), "127.0.0.90")

        # a broken file: refused, the old route still used
        with open(path, "a") as f:
            f.write("[sluiced]\nbogus_key = 1\n")
        p.signal(signal.SIGHUP)
        peers.wait_for(lambda: "reload refused" in p.output(), 10,
                       "reload refused")
        self.assertIn("%s:" % path, p.output())
        self.assertTrue(p.alive())
        self.assertEqual(send_and_wait(), "127.0.0.90")

        # a changed route applies to the next message, even with a
        # connection to the old route still open
        os.unlink(path)
        conf("127.0.0.91")
        p.signal(signal.SIGHUP)
        peers.wait_for(lambda: p.output().count("configuration reloaded") == 1,
                       10, "reload")
        self.assertEqual(send_and_wait(), "127.0.0.91")

        # the route removed: MX again
        conf(None)
        p.signal(signal.SIGHUP)
        peers.wait_for(lambda: p.output().count("configuration reloaded") == 2,
                       10, "second reload")
        self.assertEqual(send_and_wait(), "mx1.hup.test")

        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(20), 0, p.output()[-3000:])
        self.assert_terminal_once(range(1, n[0] + 1))
        got = {a: s.stop()["messages"] for a, s in sinks.items()}
        self.assertEqual(got, {"127.0.0.90": 2, "127.0.0.91": 1,
                               "127.0.0.92": 1})


if __name__ == "__main__":
    peers.main()
