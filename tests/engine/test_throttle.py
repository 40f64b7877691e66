"""test_throttle.py - per-site throttling in sluiced, against real peers.

Cases (each asserts what an admin would notice):
  MX rollup: ten domains whose MX hosts share one provider (and one
    address) never get more sessions than the [site]'s max_connections,
    and without the [site] the receiver sees too many (the control).
  Rate: a [site] with max_rate = 10/s never gets more than about ten
    recipients in any second, so 60 messages take more than 5 s.
  Backoff: 421 greetings cut the site ("backoff" event with the reply);
    once the receiver is healthy again successes bring it back
    ("recovering", "recovered") and all the mail goes.
  Suspension: a reply matching a strong rule suspends the site: no new
    connection and no delivery until "resume-after-suspend", also when a
    rate timer is running at the time.
  No head-of-line blocking: a site at 2/s with more mail than a
    destination may hold does not hold back twenty other domains.
  status.json: a running sluiced shows the site with its limits and state.
  Reload: SIGHUPs while a site's sessions come and go leave its
    connection count right, so the site is not wedged at its cap.
  -t: [site] and [backoff] mistakes are refused with FILE:LINE.

usage: /usr/bin/python3 test_throttle.py SLUICED SLUICE SINK
"""
import json
import os
import signal
import subprocess
import time

import peers
from peers import PeerTest


class Throttle(PeerTest):

    # ------------------------------------------------------------ helpers

    def fill(self, n, domains, suffix, prefix="user", size=300, rcpts=1):
        """Queue n generated messages with build/bench/spool-fill:
        recipients PREFIX<i>-<r>@d<i % domains>.SUFFIX."""
        tool = os.path.join(os.path.dirname(os.path.dirname(self.bin["sluice"])),
                            "bench", "spool-fill")
        subprocess.run([tool, "--spool", self.path("spool"), "-n", str(n),
                        "--domains", str(domains), "--size", str(size),
                        "--rcpts-per-msg", str(rcpts), "--prefix", prefix,
                        "--suffix", suffix], check=True, timeout=60)

    def config(self, dns, port, text="", domains=None, **keys):
        """write_config plus raw [site]/[backoff] text appended."""
        path = self.write_config(dns=dns, smtp_port=port, domains=domains,
                                 **keys)
        with open(path, "a") as f:
            f.write("\n" + text)
        return path

    def site_events(self, change=None, site=None):
        return [e for e in self.event_log() if e["type"] == "site" and
                (change is None or e["change"] == change) and
                (site is None or e["site"] == site)]

    def delivered(self, domain_suffix=None):
        return [e for e in self.event_log() if e["type"] == "delivered" and
                (domain_suffix is None or e["domain"].endswith(domain_suffix))]

    # ------------------------------------------------------------ cases

    def rollup_run(self, with_site):
        port = peers.free_port()
        extra = ["local=/big/"]
        for i in range(1, 11):
            extra.append("mx-host=d%d.big,mx%d.bigmail.test,10" % (i - 1, i))
            extra.append("host-record=mx%d.bigmail.test,127.0.0.60" % i)
        dns = self.start_dns(extra=extra)
        sink = self.start_sink(port, args=["--max-conn-per-domain", "3"],
                               capture=False)
        site = ("[site big]\nmx = *.other.example, *.BigMail.TEST\n"
                "max_connections = 3\n") if with_site else ""
        conf = self.config(dns, port, site)
        self.fill(300, 10, "big")
        self.run_sluiced(conf, timeout=90)
        return sink.stop()

    def test_mx_rollup_connection_cap(self):
        """Ten domains on one provider's MX hosts share max_connections = 3:
        all 300 delivered, the receiver never sees a fourth session; the
        control run without the [site] makes it refuse sessions."""
        st = self.rollup_run(with_site=True)
        self.assertEqual(st["messages"], 300)
        self.assertEqual(len(st["by_domain"]), 10)
        a = st["by_addr"]["127.0.0.60"]
        self.assertEqual(st["conn_limit_violations"], 0)
        self.assertLessEqual(a["max_concurrency"], 3)
        self.assertGreaterEqual(a["sessions"], 3)
        self.assertEqual(len(self.delivered(".big")), 300)
        self.assertEqual(self.site_events("backoff"), [],
                         "no throttling reply was ever sent")
        self.assertEqual(self.spool_info()["counts"]["queued"], 0)

    def test_mx_rollup_control(self):
        """Without the [site] each domain may open 10 sessions: the same
        receiver sees more than 3 at once (so the rollup test can fail)."""
        st = self.rollup_run(with_site=False)
        self.assertGreater(st["conn_limit_violations"], 0)
        self.assertGreater(st["by_addr"]["127.0.0.60"]["max_concurrency"], 3)
        # its 421 4.7.0 replies are throttling: each domain backs off
        self.assertTrue(self.site_events("backoff"))

    def test_rate_limit(self):
        """max_rate = 10/s shared by two domains of one site: no second at
        the receiver has more than about ten recipients, and 60 messages
        take at least 5 s (an unthrottled run takes well under 1 s)."""
        port = peers.free_port()
        dns = self.start_dns({"d0.rate": [(10, "127.0.0.61")],
                              "d1.rate": [(10, "127.0.0.61")]},
                             extra=["local=/rate/"])
        sink = self.start_sink(port, args=["--timeline"], capture=False)
        conf = self.config(dns, port, "[site rated]\nmx = mx*.d?.rate\n"
                           "max_rate = 10/s\n")
        self.fill(60, 2, "rate")
        self.run_sluiced(conf, timeout=60)
        st = sink.stop()
        self.assertEqual(st["messages"], 60)
        secs = {}
        for dom in ("d0.rate", "d1.rate"):
            for i, n in enumerate(st["by_domain"][dom]["timeline"]):
                secs[i] = secs.get(i, 0) + n
        busy = [n for n in secs.values() if n]
        self.assertLessEqual(max(busy), 12, "per second: %r" % busy)
        span = st["last_accept_ms"] - st["first_accept_ms"]
        self.assertGreaterEqual(span, 5000, "60 at 10/s took %d ms" % span)
        self.assertGreaterEqual(len(busy), 5)

    def test_backoff_and_recovery(self):
        """A receiver greeting 421 makes the site back off (event with the
        reply text); once it is healthy, successes bring the site back
        step by step to its limits, and every message is delivered."""
        port = peers.free_port()
        dns = self.start_dns({"back.test": [(10, "127.0.0.62")]})
        bad = self.start_sink(port, listen="127.0.0.62",
                              args=["--mode", "greet-421"], name="bad")
        conf = self.config(dns, port, "[backoff]\nrecover_after = 5\n",
                           domains={"back.test": {"max_connections": 4}})
        ids = []
        for i in range(60):
            ids += self.inject("s@sender.test", ["u%d@back.test" % i],
                               "From: s@sender.test\n"
                               "Subject: %d\n\nbody\n" % i)
        p = self.start_sluiced(conf)
        self.wait_events(lambda ev: any(e["type"] == "site" and
                                        e["change"] == "backoff" for e in ev),
                         20, "a backoff event")
        bad.stop()
        good = self.start_sink(port, listen="127.0.0.62", name="good",
                               capture=False)
        self.assertEqual(p.wait(60), 0, p.output()[-3000:])
        term = self.assert_terminal_once(ids)
        self.assertEqual({e["type"] for e in term.values()}, {"delivered"})
        back = self.site_events("backoff", "back.test")
        self.assertEqual(back[0]["code"], 421)
        self.assertIn("service not available", back[0]["text"])
        self.assertLess(back[0]["concurrency"], 4)
        self.assertLess(back[0]["rate_factor"], 1.0)
        self.assertEqual(back[0]["state"], "backoff")
        rec = self.site_events("recovering", "back.test")
        done = self.site_events("recovered", "back.test")
        self.assertTrue(rec, "no recovering event")
        self.assertEqual(len(done), 1, done)
        self.assertGreater(rec[0]["time_ms"], back[-1]["time_ms"])
        self.assertGreaterEqual(done[0]["time_ms"], rec[-1]["time_ms"])
        self.assertEqual(done[0]["state"], "normal")
        self.assertEqual(done[0]["concurrency"], 4)
        self.assertEqual(done[0]["rate_factor"], 1.0)
        # the limit climbs one connection per step
        conc = [e["concurrency"] for e in rec + done]
        self.assertEqual(conc, sorted(conc))
        self.assertEqual(good.stop()["messages"], 60)

    def test_strong_signal_suspends(self):
        """A reply matching suspend_match suspends the site for `suspend`:
        no new connection reaches the receiver until the site resumes,
        and then the waiting mail goes."""
        self.suspend_run({"max_connections": 1})

    def test_strong_signal_suspends_rated(self):
        """The same with a max_rate, whose timer is running when the
        strong reply arrives: the site still resumes after `suspend`."""
        self.suspend_run({"max_connections": 3, "max_rate": "5/s"},
                         "min_rate_factor = 0.5\n")

    def suspend_run(self, limits, backoff=""):
        port = peers.free_port()
        dns = self.start_dns({"susp.test": [(10, "127.0.0.63")]})
        sink = self.start_sink(port, capture=False)
        conf = self.config(dns, port, "[backoff]\nsuspend_match = 451 * *\n"
                           "suspend = 3s\n" + backoff, retry="1h",
                           domains={"susp.test": limits})
        first = self.inject("s@sender.test", ["tempfail@susp.test"],
                            "From: s@sender.test\nSubject: t\n\nbody\n")
        ids = []
        for i in range(10):
            ids += self.inject("s@sender.test", ["u%d@susp.test" % i],
                               "From: s@sender.test\n"
                               "Subject: %d\n\nbody\n" % i)
        p = self.start_sluiced(conf, exit_when_empty=False)
        ev = self.wait_events(
            lambda ev: [e for e in ev if e["type"] == "site" and
                        e["change"] == "suspended"], 20, "suspended")
        susp = ev[0]
        t_seen = time.monotonic()
        before = sink.stats()["by_addr"]["127.0.0.63"]["sessions"]
        # most of the window: the receiver sees no new session
        time.sleep(max(0.0, 2.0 - (time.monotonic() - t_seen)))
        during = sink.stats()["by_addr"]["127.0.0.63"]["sessions"]
        self.assertEqual(during, before, "connected while suspended")
        res = self.wait_events(
            lambda ev: [e for e in ev if e["type"] == "site" and
                        e["change"] == "resume-after-suspend"], 20,
            "resume-after-suspend")[0]
        self.wait_events(lambda ev: len([e for e in ev if e["type"] ==
                                         "delivered"]) >= 10, 30,
                         "the other ten delivered")
        self.assertEqual(p.stop(), 0)
        self.assertEqual(susp["code"], 451)
        self.assertEqual(susp["enhanced"], "4.3.0")
        self.assertEqual(susp["state"], "suspended")
        self.assertGreaterEqual(res["time_ms"] - susp["time_ms"], 2900)
        deliv = [e for e in self.event_log() if e["type"] == "delivered"]
        self.assertEqual(sorted(e["delivery"] for e in deliv), ids)
        # nothing was accepted by the receiver while the site was suspended
        self.assertFalse([e for e in deliv
                          if susp["time_ms"] + 50 < e["time_ms"] <
                          res["time_ms"]], "delivered while suspended")
        self.assertGreater(sink.stop()["by_addr"]["127.0.0.63"]["sessions"],
                           before)
        h = self.history(first[0])
        self.assertNotIn("delivered", [e["type"] for e in h])

    def test_slow_site_over_many_domains_does_not_starve_others(self):
        """A slow site spread over 20 domains holds at most its share of
        the in-flight budget in memory, so the other domains still flow."""
        port = peers.free_port()
        extra = ["local=/slow/", "local=/fast/"]
        for i in range(20):
            extra += ["mx-host=d%d.slow,mx.d%d.slowmail.test,10" % (i, i),
                      "host-record=mx.d%d.slowmail.test,127.0.0.70" % i,
                      "mx-host=d%d.fast,mx.d%d.fast,10" % (i, i),
                      "host-record=mx.d%d.fast,127.0.0.71" % i]
        dns = self.start_dns(extra=extra)
        self.start_sink(port, capture=False)
        conf = self.config(dns, port, "[site slowsite]\nmx = *.slowmail.test\n"
                           "max_rate = 2/s\n", max_inflight=2500)
        self.fill(3000, 20, "slow", size=200)
        self.fill(1000, 20, "fast", size=200)
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.wait_events(lambda ev: len([e for e in ev
                                         if e["type"] == "delivered" and
                                         e["domain"].endswith(".fast")]) >= 1000,
                         60, "every fast domain delivered")
        self.assertLess(len(self.delivered(".slow")), 300)
        p.stop()

    def test_account_rate_cap_and_fair_share(self):
        """[account 7] max_rate = 5/s holds account 7 to five a second on a
        shared domain while account 8's mail (unlimited) goes at once: one
        sender cannot take the destination from the others."""
        port = peers.free_port()
        dns = self.start_dns({"shared.test": [(10, "127.0.0.75")]})
        self.start_sink(port, capture=False)
        conf = self.config(dns, port, "[account 7]\nmax_rate = 5/s\n",
                           domains={"shared.test": {"max_connections": "2"}})
        body = self.path("m.txt")
        with open(body, "w") as f:
            f.write("From: s@sender.test\nSubject: share\n\nbody\n")
        for i in range(15):
            for acct in ("7", "8"):
                self.sluice("inject", "--account", acct, "--from",
                            "s@sender.test", "--to",
                            "a%s-%d@shared.test" % (acct, i), body)
        self.run_sluiced(conf, timeout=60)
        got = self.delivered()
        self.assertEqual(len(got), 30)
        t = {a: sorted(e["time_ms"] for e in got if e["account"] == a)
             for a in (7, 8)}
        # 15 deliveries at 5/s cannot take less than 2.8 s without the cap
        self.assertGreaterEqual(t[7][-1] - t[7][0], 2600)
        # account 8 is not held back behind account 7's budget
        self.assertLess(t[8][-1], t[7][-1] - 1000)

    def test_no_head_of_line_blocking(self):
        """A site held to 2/s with 2500 queued (more than the 2000 a
        destination keeps in memory, and max_inflight = 2500) does not
        hold back 20 other domains: their 1000 messages are delivered
        while the slow site has sent only a few."""
        port = peers.free_port()
        dns = self.start_dns({"d0.slow": [(10, "127.0.0.64")]},
                             extra=["local=/slow/", "local=/fast/"] +
                             ["mx-host=d%d.fast,mx.d%d.fast,10\n"
                              "host-record=mx.d%d.fast,127.0.0.65"
                              % (i, i, i) for i in range(20)])
        sink = self.start_sink(port, capture=False)
        conf = self.config(dns, port, max_inflight=2500, domains={
            "d0.slow": {"max_rate": "2/s"}})
        self.fill(2500, 1, "slow", size=200)   # queued first
        self.fill(1000, 20, "fast", size=200)
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.wait_events(lambda ev: len([e for e in ev if e["type"] ==
                                         "delivered" and
                                         e["domain"].endswith(".fast")])
                         >= 1000, 90, "1000 fast deliveries")
        self.assertEqual(p.stop(), 0)
        fast = self.delivered(".fast")
        slow = self.delivered(".slow")
        self.assertEqual(len(fast), 1000)
        self.assertEqual(len({e["domain"] for e in fast}), 20)
        last_fast = max(e["time_ms"] for e in fast)
        before = [e for e in slow if e["time_ms"] <= last_fast]
        self.assertLess(len(before), 100,
                        "the slow site sent %d before the others finished"
                        % len(before))
        self.assertGreaterEqual(self.spool_info()["counts"]["queued"], 2300)
        st = sink.stop()
        self.assertEqual(st["by_addr"]["127.0.0.65"]["messages"], 1000)

    def test_status_json(self):
        """While sluiced runs, SPOOL/status.json parses and lists the
        site with its domains, max_connections, max_rate and state."""
        port = peers.free_port()
        dns = self.start_dns({"s1.test": [(10, "127.0.0.66")],
                              "s2.test": [(10, "127.0.0.66")]})
        sink = self.start_sink(port, capture=False)
        conf = self.config(dns, port, "[site stat]\nmx = mx1.s?.test\n"
                           "max_connections = 2\nmax_rate = 4/s\n")
        for i in range(20):
            self.inject("s@sender.test", ["u%d@s%d.test" % (i, i % 2 + 1)],
                        "From: s@sender.test\nSubject: %d\n\nbody\n" % i)
        p = self.start_sluiced(conf, exit_when_empty=False)
        path = self.path("spool", "status.json")

        def site():
            try:
                with open(path) as f:
                    doc = json.load(f)
            except (OSError, ValueError):
                return None
            for s in doc["sites"]:
                if s["name"] == "stat" and len(s["domains"]) == 2:
                    return doc, s
            return None
        doc, s = peers.wait_for(site, 20, "site stat in status.json", 0.1)
        self.assertEqual(doc["pid"], p.pid)
        self.assertEqual(s["kind"], "site")
        self.assertEqual(sorted(s["domains"]), ["s1.test", "s2.test"])
        self.assertEqual(s["max_connections"], 2)
        self.assertEqual(s["max_rate"], "4/s")
        self.assertEqual(s["state"], "normal")
        self.assertLessEqual(s["connections"], 2)
        t0 = doc["time_ms"]

        def newer():
            got = site()
            return got if got and got[0]["time_ms"] > t0 else None
        # it is rewritten while the run goes on
        doc2, s2 = peers.wait_for(newer, 10, "a newer status.json", 0.1)
        self.assertGreaterEqual(s2["delivered"], s["delivered"])
        self.assertEqual(p.stop(), 0)
        sink.stop()

    def test_reload_keeps_site_counts(self):
        """SIGHUP while a site's sessions come and go does not lose count
        of them: the site is not left thinking it is at its connection
        cap, and all its mail is delivered."""
        port = peers.free_port()
        dns = self.start_dns({"d%d.rl" % i: [(10, "127.0.0.67")]
                              for i in range(4)}, extra=["local=/rl/"])
        sink = self.start_sink(port, args=["--slow-ms", "100"], capture=False)
        conf = self.config(dns, port, "[site rl]\nmx = mx1.d?.rl\n"
                           "max_connections = 2\n"
                           "max_messages_per_connection = 1\n")
        self.fill(120, 4, "rl", prefix="slow")
        p = self.start_sluiced(conf)
        for _ in range(8):
            self.wait_events(lambda ev: [e for e in ev
                                         if e["type"] == "delivered"], 20,
                             "a delivery")
            p.signal(signal.SIGHUP)
            time.sleep(0.3)
        self.assertEqual(p.wait(90), 0, p.output()[-3000:])
        self.assertEqual(len(self.delivered(".rl")), 120)
        st = sink.stop()
        self.assertLessEqual(st["by_addr"]["127.0.0.67"]["max_concurrency"], 2)

    def test_config_check(self):
        """sluiced -t refuses [site] and [backoff] mistakes with FILE:LINE."""
        good = self.config("127.0.0.1:53", 2525,
                           "[site g]\nmx = *.google.com, *.googlemail.com\n"
                           "max_connections = 20\nmax_rate = 100/min\n"
                           "max_connection_rate = 10/s\n"
                           "[backoff]\nmatch = 421 * *\n"
                           "suspend_match = * 4.7.28 /rate limited/i\n"
                           "decrease = 0.5\nsuspend = 5m\n")
        r = subprocess.run([self.bin["sluiced"], "-t", "-c", good],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout)
        with open(good) as f:
            text = f.read()
        nlines = text.count("\n")
        bad = [("[site x]\nmax_rate = 10/fortnight\n", 2, "max_rate"),
               ("[site x]\nmax_rate = 0/s\n", 2, "max_rate"),
               ("[site x]\nmx = *.x.test\nroute = 127.0.0.1\n", 3, "route"),
               ("[site x]\nmax_connections = 3\n", 2, "no mx"),
               ("[backoff]\nmatch = 42 * *\n", 2, "code"),
               ("[backoff]\nmatch = 421 * /unclosed\n", 2, "REGEX"),
               ("[backoff]\ndecrease = 1.5\n", 2, "decrease"),
               ("[backoff]\nsuspend = 10ms\n", 2, "suspend")]
        for i, (extra, at, word) in enumerate(bad):
            path = self.path("bad%d.conf" % i)
            with open(path, "w") as f:
                f.write(text + extra)
            r = subprocess.run([self.bin["sluiced"], "-t", "-c", path],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
            out = r.stdout.decode()
            self.assertEqual(r.returncode, 78, "%r: %s" % (extra, out))
            self.assertIn("%s:%d: " % (path, nlines + at), out, extra)
            self.assertIn(word, out, extra)


if __name__ == "__main__":
    peers.main()
