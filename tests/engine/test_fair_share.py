"""test_fair_share.py - turns between accounts (and between the campaigns
of one account) at a destination they share, against real peers.

Cases (each asserts what a sender would notice):
  Equal shares: two sub-accounts' campaigns (400 and 160 recipients, the
    big one queued first) into one rate-capped domain: in the order the
    receiver saw them, every 40 consecutive deliveries made while both
    still had mail waiting hold 16 to 24 of each account, rather than the
    big account's 400 first and the small one's after.
  Weights: share = 3 for the big account and 1 (the default) for the
    small one: about 3 of 4 for the big one (26 to 34 of each 40).
  Campaigns of one account: two campaigns of one account share its part
    the same way (16 to 24 of each 40).
  Claims: with max_inflight = 400 a destination keeps 100 in memory; the
    big account's mail, claimed first, fills that, and the small one's
    still comes in beside it (16 to 24 of each 40) instead of waiting in
    the spool until the big one's is through.
  -t: share = 0 and share = x are refused with FILE:LINE.

Counts only, from the order of the receiver's captures (the sink numbers
each message it accepts); no clock.

usage: /usr/bin/python3 test_fair_share.py SLUICED SLUICE SINK
"""
import json
import subprocess

import peers
from peers import PeerTest

WINDOW = 40
RATE = "80/s"     # the shared domain's cap: the mail waits, turns show


class FairShare(PeerTest):

    # ------------------------------------------------------------ helpers

    def account(self, name):
        """Sub-account name sending from NAME.test (verified); its id."""
        self.sluice("account", "create", name)
        self.sluice("domain", "add", "%s.test" % name, "--account", name,
                    "--selector", "s1")
        self.sluice("domain", "verify", "%s.test" % name, "--force")
        return json.loads(self.sluice("account", "show", name,
                                      "--json").stdout)["id"]

    def campaign(self, acct, tag, n):
        """A campaign of acct to a list of n contacts at shared.test
        (TAG-<i>@shared.test); its id, the recipients queued."""
        csv = self.path("%s.csv" % tag)
        with open(csv, "w") as f:
            f.write("email\n" + "".join("%s-%04d@shared.test\n" % (tag, i)
                                        for i in range(n)))
        self.sluice("list", "create", tag, "--account", acct)
        self.sluice("list", "import", tag, csv, "--account", acct)
        html = self.path("%s.html" % tag)
        with open(html, "w") as f:
            f.write("<p>Hello from %s</p>\n" % tag)
        r = self.sluice("campaign", "create", tag, "--account", acct,
                        "--list", tag, "--from", "News <news@%s.test>" % acct,
                        "--subject", "news %s" % tag, "--html", html,
                        "--json")
        cid = str(json.loads(r.stdout)["id"])
        r = json.loads(self.sluice("campaign", "send", cid, "--json").stdout)
        self.assertEqual(r.get("recipients", r.get("queued")), n, r)
        return cid

    def run_shared(self, accounts=None, **keys):
        """sluiced to the end against a sink for shared.test capped at
        RATE; the recipients' local parts in the order the sink took
        them."""
        port = peers.free_port()
        dns = self.start_dns({"shared.test": [(10, "127.0.0.83")]})
        sink = self.start_sink(port)
        conf = self.write_config(dns=dns, smtp_port=port, accounts=accounts,
                                 **keys, domains={"shared.test": {
                                     "max_rate": RATE,
                                     "max_connections": "4"}})
        self.run_sluiced(conf, timeout=90)
        sink.stop()
        order = []
        for _, rcpts, _ in sink.captures():   # by the sink's own number
            for r in rcpts:
                order.append(r.split("@")[0].rsplit("-", 1)[0])
        return order

    def assert_turns(self, order, counts, lo, hi, who):
        """Every WINDOW consecutive deliveries while each tag in counts
        still had mail waiting (before the first of them was done) hold
        lo..hi of who; every recipient went exactly once."""
        self.assertEqual(len(order), sum(counts.values()))
        for tag, n in counts.items():
            self.assertEqual(order.count(tag), n, tag)
        both = min(max(i for i, t in enumerate(order) if t == tag) + 1
                   for tag in counts)
        self.assertGreaterEqual(both, 2 * WINDOW,
                                "one account's mail went alone: %s"
                                % "".join(t[0] for t in order[:200]))
        for start in range(0, both - WINDOW + 1):
            got = order[start:start + WINDOW].count(who)
            self.assertTrue(lo <= got <= hi,
                            "deliveries %d..%d hold %d of %s (want %d..%d):"
                            " %s" % (start, start + WINDOW - 1, got, who, lo,
                                     hi, "".join(
                                         t[0] for t in
                                         order[start:start + WINDOW])))

    # -------------------------------------------------------------- cases

    def test_equal_shares(self):
        self.sluice("account", "create", "master")
        self.account("big")
        self.account("small")
        self.campaign("big", "big", 400)        # queued first
        self.campaign("small", "small", 160)
        order = self.run_shared()
        self.assert_turns(order, {"big": 400, "small": 160}, 16, 24, "small")

    def test_weighted_shares(self):
        self.sluice("account", "create", "master")
        big = self.account("big")
        self.account("small")
        self.campaign("big", "big", 400)
        self.campaign("small", "small", 160)
        order = self.run_shared(accounts={big: {"share": "3"}})
        self.assert_turns(order, {"big": 400, "small": 160}, 26, 34, "big")

    def test_campaigns_of_one_account(self):
        self.sluice("account", "create", "master")
        self.account("shop")
        self.account("other")    # makes shop a sub-account like the rest
        self.campaign("shop", "first", 400)
        self.campaign("shop", "second", 160)
        order = self.run_shared()
        self.assert_turns(order, {"first": 400, "second": 160}, 16, 24,
                          "second")

    def test_claim_beside_queued_first(self):
        """max_inflight = 400: the domain keeps 100 in memory, so the big
        account's mail, claimed first, fills it; the small account's
        still comes in beside it rather than waiting in the spool."""
        self.sluice("account", "create", "master")
        self.account("big")
        self.account("small")
        self.campaign("big", "big", 200)
        self.campaign("small", "small", 100)
        order = self.run_shared(max_inflight=400)
        self.assert_turns(order, {"big": 200, "small": 100}, 16, 24, "small")

    def test_share_refused(self):
        """share outside 1..1000 stops sluiced -t with exit 78 and the
        file and line of the key; share = 5 passes."""
        for bad in ("0", "x", "1001"):
            conf = self.write_config(accounts={7: {"share": bad}})
            with open(conf) as f:
                line = f.read().splitlines().index("share = %s" % bad) + 1
            r = subprocess.run([self.bin["sluiced"], "-t", "-c", conf],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=30)
            out = r.stdout.decode()
            self.assertEqual(r.returncode, 78, out)
            self.assertIn("%s:%d: " % (conf, line), out)
            self.assertIn("share: '%s'" % bad, out)
        conf = self.write_config(accounts={7: {"share": "5"}})
        r = subprocess.run([self.bin["sluiced"], "-t", "-c", conf],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout.decode())

if __name__ == "__main__":
    peers.main()
