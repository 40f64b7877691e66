"""test_hygiene.py - bounce categories and inline list hygiene in sluiced.

A campaign of the sub-account shop (which shares the master's suppression
list) goes to the sink with scripted recipients: permfail* (550 5.1.1 user
unknown), tempfail* (451 4.3.0), quota* (452 4.2.2 mailbox full) and
block* (554 5.7.1 blocked).  Afterwards exactly the hard bounces and the
quota address (soft_bounce_limit = 2 deferrals in a row) are on the list,
with their reasons, source "smtp" and added by shop (whose contacts
bounced, though the list is the master's); the blocks and the tempfail
are not.
A site rules file (bounce_rules =) is used before the shipped defaults: it
turns the sink's block reply into spam-related.  A second campaign to the
same list skips the suppressed addresses at send and never mails them.

usage: /usr/bin/python3 test_hygiene.py SLUICED SLUICE SINK
"""
import json
import unittest

import peers
from peers import PeerTest

DOMS = ["d0.test", "d1.test"]
GOOD = ["ok%d@%s" % (i, DOMS[i % 2]) for i in range(4)]
HARD = ["permfail1@d0.test", "permfail2@d1.test"]
SOFT = ["quota1@d1.test"]
TEMP = ["tempfail1@d0.test"]
BLOCK = ["block1@d0.test", "block2@d1.test"]


class Hygiene(PeerTest):

    def setup_account(self):
        self.shop_list(GOOD + HARD + SOFT + TEMP + BLOCK)
        with open(self.path("t.html"), "w") as f:
            f.write("<p>Hello <a href=\"{{unsubscribe_url}}\">x</a></p>\n")

    def campaign(self, name):
        r = self.sluice("campaign", "create", name, "--account", "shop",
                        "--list", "news", "--from", "Shop <news@shop.test>",
                        "--subject", "Hi", "--html", self.path("t.html"),
                        "--json")
        cid = str(json.loads(r.stdout)["id"])
        r = json.loads(self.sluice("campaign", "send", cid, "--json").stdout)
        return cid, r

    def suppressions(self, account):
        r = self.sluice("suppress", "list", "--account", account, "--json")
        return {s["email"]: s for s in json.loads(r.stdout)}

    def test_campaign_hygiene(self):
        port = peers.free_port()
        self.setup_account()
        rules = self.path("site.rules")
        with open(rules, "w") as f:
            f.write("# the sink's block reply counts as a spam block here\n"
                    "spam-related 554 5.7.1 /blocked \\(policy\\)/\n")
        sink = self.start_sink(port, listen="127.0.0.1", capture=True)
        dns = self.start_dns({d: [(10, "127.0.0.1")] for d in DOMS})
        conf = self.write_config(dns=dns, smtp_port=port, max_age="6s",
                                 allow_unsigned=False,
                                 unsubscribe_host="u.shop.test",
                                 bounce_rules=rules, soft_bounce_limit=2,
                                 soft_bounce_days=7)
        cid, r = self.campaign("first")
        self.assertEqual(r.get("recipients", r.get("queued")), 10, r)
        self.run_sluiced(conf, timeout=90)

        ev = {}
        for e in self.event_log():
            ev.setdefault(e["rcpt"], []).append(e)
        for a in HARD:
            self.assertEqual([(e["type"], e["category"]) for e in ev[a]],
                             [("bounced", "bad-mailbox")])
        for a in BLOCK:
            self.assertEqual([(e["type"], e["category"]) for e in ev[a]],
                             [("bounced", "spam-related")])
        quota = ev[SOFT[0]]
        self.assertEqual([(e["type"], e["category"]) for e in quota[:2]],
                         [("deferred", "quota-issues")] * 2)
        # the next attempt finds it suppressed and does not send
        self.assertEqual(quota[-1]["type"], "suppressed", quota)
        self.assertIn("suppressed", quota[-1]["text"])
        self.assertEqual(len([e for e in quota if e["type"] == "deferred"]),
                         2, quota)

        supp = self.suppressions("shop")
        self.assertEqual(set(supp), set(HARD + SOFT))
        for a in HARD:
            self.assertEqual(supp[a]["reason"], "hard bounce: bad-mailbox")
            self.assertEqual(supp[a]["source"], "smtp")
        self.assertEqual(supp[SOFT[0]]["reason"],
                         "soft bounce: quota-issues x2")
        # shop's contacts bounced: shop's entries on the master's list
        for a in HARD + SOFT:
            self.assertEqual(supp[a]["added_by"], "shop", supp[a])
        # shop shares the master's list: the same entries there
        self.assertEqual(set(self.suppressions("master")), set(HARD + SOFT))

        first_mailed = {rc for _, rcpts, _ in sink.captures() for rc in rcpts}
        self.assertEqual(first_mailed, set(GOOD))

        # a second campaign skips them at send and never mails them
        cid2, r = self.campaign("second")
        self.assertEqual(r["suppressed"], 3, r)
        self.assertEqual(r.get("recipients", r.get("queued")), 7, r)
        self.run_sluiced(conf, timeout=90, name="sluiced2")
        ev2 = [e for e in self.event_log() if str(e.get("campaign")) == cid2]
        self.assertEqual({e["rcpt"] for e in ev2},
                         set(GOOD + TEMP + BLOCK))
        mailed = [rc for _, rcpts, _ in sink.captures() for rc in rcpts]
        self.assertEqual(sorted(mailed), sorted(GOOD * 2))
        self.assertEqual(set(self.suppressions("shop")), set(HARD + SOFT))

    def test_classify_cli(self):
        r = self.sluice("bounces", "classify",
                        "550 5.1.1 <a@b.example>: user unknown", "--json")
        j = json.loads(r.stdout)
        self.assertEqual((j["category"], j["code"], j["enhanced"],
                          j["source"]), ("bad-mailbox", 550, "5.1.1",
                                         "default"))
        self.assertTrue(j["match"].startswith("default #"), j)
        # a multi-line Gmail reply, text output
        r = self.sluice("bounces", "classify",
                        "550-5.7.1 Our system has detected an unusual rate "
                        "of\r\n550 5.7.1 unsolicited mail originating from "
                        "your IP address.")
        self.assertIn("category  spam-related", r.stdout.decode())
        rules = self.path("site.rules")
        with open(rules, "w") as f:
            f.write("# mine\nquota-issues 4xx * /full/\n")
        r = self.sluice("bounces", "classify", "--rules", rules, "--json",
                        "452 4.2.2 mailbox full")
        self.assertEqual(json.loads(r.stdout)["match"], rules + ":2")
        with open(rules, "a") as f:
            f.write("\nno-such-category * * *\n")
        r = self.sluice("bounces", "rules", "--rules", rules, check=False)
        self.assertEqual(r.returncode, 78)
        self.assertIn(rules + ":4: unknown category", r.stderr.decode())
        r = self.sluice("bounces", "classify", "hello", check=False)
        self.assertEqual(r.returncode, 64)
        # the checks of sluiced's own reply parser: a code that changes
        # between lines, a line after the last one, a 1xx code
        for bad in ("550-5.1.1 a\r\n551 5.1.1 b", "550 a\r\n550 b",
                    "150 wait"):
            r = self.sluice("bounces", "classify", bad, check=False)
            self.assertEqual(r.returncode, 64, bad)
            self.assertIn(b"is not an SMTP reply", r.stderr)
        # an enhanced code of another class than the reply's is text
        r = self.sluice("bounces", "classify", "--json",
                        "550 4.2.2 mailbox full")
        j = json.loads(r.stdout)
        self.assertEqual((j["code"], j["enhanced"], j["text"]),
                         (550, "", "4.2.2 mailbox full"))
        # sluiced -t refuses the broken file with its line
        conf = self.write_config(bounce_rules=rules)
        p = self._proc([self.bin["sluiced"], "-t", "-c", conf], "check")
        self.assertEqual(p.wait(10), 78)
        self.assertIn(":4: unknown category", p.output())


if __name__ == "__main__":
    peers.main()
