"""test_campaign_times.py - honest campaign times: ETA, finished, rate.

One sluiced sends a campaign over four domains: fast.test at a high
max_rate and three slow ones at a low max_rate.  The limits, not the
machine, set the pace, so what the test expects is computed from the
limits and the queued counts:
- early on, `campaign show` gives an ETA within a tolerance of the time the
  slowest domain needs for what it still holds at its limit, and names
  that domain as the slowest site (text and --json eta / eta_basis);
- a paused campaign shows ETA "paused", and so does one with mail a
  paused domain holds (naming it);
- after completion, `finished` is the time of the campaign's last terminal
  event in the event log (to the second), also when the first show comes
  seconds later, and a second show later does not move it;
- after a cancel, the rate of `sluice status` (header and status.json's
  "rate") drops to 0 within a few seconds.

usage: /usr/bin/python3 test_campaign_times.py SLUICED SLUICE SINK
"""
import calendar
import json
import os
import re
import signal
import time

import peers
from peers import PeerTest

FAST = "fast.test"
SLOW = ["slow1.test", "slow2.test", "slow3.test"]
FAST_RATE = 100.0       # per second
SLOW_RATE = 4.0
N_FAST = 60
N_SLOW = 40             # each: 10 s at SLOW_RATE
TOLERANCE = 3.0         # seconds either side


def unix(text):
    """Unix seconds of "YYYY-MM-DDTHH:MM:SSZ"."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


class CampaignTimes(PeerTest):

    def setUp(self):
        super().setUp()
        self.saved_config = os.environ.get("SLUICE_CONFIG")

    def tearDown(self):
        if self.saved_config is None:
            os.environ.pop("SLUICE_CONFIG", None)
        else:
            os.environ["SLUICE_CONFIG"] = self.saved_config
        super().tearDown()

    def setup_campaign(self, name, rcpts):
        csv = self.path(name + ".csv")
        with open(csv, "w") as f:
            f.write("email\n" + "\n".join(rcpts) + "\n")
        self.sluice("list", "create", name, "--account", "shop")
        self.sluice("list", "import", name, csv, "--account", "shop")
        html = self.path("t.html")
        with open(html, "w") as f:
            f.write("<p>hello</p>\n")
        r = self.sluice("campaign", "create", name, "--account", "shop",
                        "--list", name, "--from", "Shop <news@shop.test>",
                        "--subject", "times", "--html", html, "--json")
        return str(json.loads(r.stdout)["id"])

    def show(self, cid):
        return json.loads(self.sluice("campaign", "show", cid,
                                      "--json").stdout)

    def left_by_domain(self, cid):
        """The campaign's queued recipients per domain, from the spool."""
        out = self.sluice("queue", "summary", "--by", "domain", "--json")
        left = {d: 0 for d in [FAST] + SLOW}
        # per domain of this campaign: summary has no campaign filter,
        # but only this campaign's mail is queued for these domains
        for g in json.loads(out.stdout)["groups"]:
            if g["name"] in left:
                left[g["name"]] = g["queued"]
        return left

    def status(self):
        return json.loads(self.sluice("status", "--json").stdout)

    def test_campaign_times(self):
        port = peers.free_port()
        doms = [FAST] + SLOW
        dns = self.start_dns({d: [(10, "127.0.0.1")] for d in doms})
        sink = self.start_sink(port, listen="127.0.0.1")
        limits = {FAST: {"max_rate": "%d/s" % FAST_RATE}}
        limits.update({d: {"max_rate": "%d/s" % SLOW_RATE} for d in SLOW})
        conf = self.write_config(dns=dns, smtp_port=port, domains=limits,
                                 pause_recheck="1s")
        # the tools read sluiced.conf as an admin's would (for the limits
        # of a site sluiced has not described yet)
        os.environ["SLUICE_CONFIG"] = conf
        self.sluice("account", "create", "master")
        self.sluice("account", "create", "shop")
        self.sluice("domain", "add", "shop.test", "--account", "shop",
                    "--selector", "s1")
        self.sluice("domain", "verify", "shop.test", "--force")
        rcpts = ["f%03d@%s" % (i, FAST) for i in range(N_FAST)]
        for d in SLOW:
            rcpts += ["s%03d@%s" % (i, d) for i in range(N_SLOW)]
        cid = self.setup_campaign("news", rcpts)
        self.sluice("campaign", "send", cid)
        p = self.start_sluiced(conf, exit_when_empty=False)

        # --- early: the slowest site decides, at its limit
        def fast_done():
            return self.left_by_domain(cid)[FAST] == 0
        peers.wait_for(fast_done, 20, "fast.test sent", interval=0.1)
        before = time.time()
        left0 = self.left_by_domain(cid)
        j = self.show(cid)
        text = self.sluice("campaign", "show", cid).stdout.decode()
        left1 = self.left_by_domain(cid)
        after = time.time()
        slow_left0 = max(left0[d] for d in SLOW)
        slow_left1 = max(left1[d] for d in SLOW)
        self.assertGreater(slow_left1, SLOW_RATE * 4,
                           "too little left to judge: %r" % left1)
        self.assertTrue(j["eta"], j)
        eta = unix(j["eta"])
        lo = before + slow_left1 / SLOW_RATE - TOLERANCE
        hi = after + slow_left0 / SLOW_RATE + TOLERANCE
        self.assertTrue(lo <= eta <= hi, "eta %s not in [%s, %s]: %r"
                        % (eta, lo, hi, j["eta_basis"]))
        basis = j["eta_basis"]
        self.assertEqual(basis["kind"], "site", basis)
        self.assertIn(basis["what"], SLOW, basis)
        self.assertAlmostEqual(basis["rate_per_s"], SLOW_RATE, places=3)
        m = re.search(r"^eta\s+(\S+) \(slowest: site (\S+), (\d+) left at "
                      r"([0-9.]+)/s\)$", text, re.M)
        self.assertTrue(m, text)
        self.assertIn(m.group(2), SLOW, text)
        self.assertEqual(float(m.group(4)), SLOW_RATE, text)
        self.assertTrue(lo <= unix(m.group(1)) <= hi + 1, text)

        # --- paused: no time, "paused"
        self.sluice("campaign", "pause", cid)
        j = self.show(cid)
        self.assertEqual(j["state"], "paused")
        self.assertEqual(j["eta"], "paused", j)
        self.assertEqual(j["eta_basis"]["kind"], "paused", j["eta_basis"])
        text = self.sluice("campaign", "show", cid).stdout.decode()
        self.assertRegex(text, r"(?m)^eta\s+paused ")
        self.sluice("campaign", "resume", cid)
        # a paused site holding some of it: paused too, and named
        self.sluice("pause", "domain", SLOW[1], "--reason", "test")
        j = self.show(cid)
        self.assertEqual(j["state"], "sending")
        self.assertEqual(j["eta"], "paused", j)
        self.assertEqual((j["eta_basis"]["kind"], j["eta_basis"]["what"]),
                         ("paused", SLOW[1]), j["eta_basis"])
        self.sluice("resume", "domain", SLOW[1])

        # --- finished: the last terminal event's time, not the show's
        def ended():
            evs = [e for e in self.event_log()
                   if str(e.get("campaign")) == cid and
                   e["type"] in ("delivered", "bounced", "expired",
                                 "suppressed", "cancelled")]
            return evs if len(evs) == len(rcpts) else None
        evs = peers.wait_for(ended, 40, "every recipient ended", interval=0.2)
        last = max(e["time_ms"] for e in evs) // 1000
        while time.time() < last + 2.5:   # the old code took the show's time
            time.sleep(0.2)
        j = self.show(cid)
        self.assertEqual(j["state"], "done", j)
        self.assertEqual(unix(j["finished"]), last, j)
        self.assertIsNone(j["eta"], j)
        time.sleep(1.1)
        j2 = self.show(cid)
        self.assertEqual(j2["finished"], j["finished"])
        text = self.sluice("campaign", "show", cid).stdout.decode()
        self.assertRegex(text, r"(?m)^finished\s+%s$" % re.escape(j["finished"]))

        # --- cancel: the status rate drops to 0 within a few seconds
        more = []
        for d in SLOW:
            more += ["m%03d@%s" % (i, d) for i in range(N_SLOW)]
        cid2 = self.setup_campaign("more", more)
        self.sluice("campaign", "send", cid2)

        def rate():
            st = self.status()
            return st["sluiced"]["rate"] if st["sluiced"]["running"] else None
        peers.wait_for(lambda: (rate() or 0) > 0, 20, "a rate above 0",
                       interval=0.1)
        self.sluice("campaign", "cancel", cid2)
        t0 = time.time()
        peers.wait_for(lambda: rate() == 0, 8, "the rate at 0 after cancel",
                       interval=0.1)
        self.assertLess(time.time() - t0, 8)
        st = self.status()
        for row in st["rows"]:
            if row["live"]:
                self.assertEqual(row["rate"], 0, row)
        head = self.sluice("status").stdout.decode().splitlines()[0]
        self.assertIn("rate 0/s", head)
        # what the rate says: the sink gets nothing more
        def received():
            return len([f for f in os.listdir(sink.capture_dir)
                        if f.endswith(".eml")])
        n = received()
        time.sleep(1.5)
        self.assertEqual(received(), n, "the sink still receives")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(20), 0, p.output()[-2000:])

if __name__ == "__main__":
    peers.main()
