"""test_campaign.py - campaigns rendered and sent by sluiced.

A list imported from CSV, a campaign with merge fields sent through
sluiced to a capturing sink: every message personalised (subject, html and
text), with List-Unsubscribe (one-click), Feedback-ID, a unique Message-ID
and a VERP return path, signed with the account's key (dkimpy and
opendkim-testmsg); an address suppressed after the send is not mailed and
its delivery ends as expired; the campaign ends done with every recipient
terminal once.  One-click unsubscribe (RFC 8058) at sluiced's endpoint
stops a contact's queued mail (an entry added by the contact's account).  Pause parks the queued mail within a second and resume
lets it flow again; a kill -9 in the middle never leaves the campaign done
with mail unsent, and a restart finishes it; cancel ends the rest.

usage: /usr/bin/python3 test_campaign.py SLUICED SLUICE SINK
"""
import email
import email.policy
import json
import os
import re
import signal
import sys
import time
import unittest
import urllib.error
import urllib.request

import peers
from peers import PeerTest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "dkim"))
import verifiers  # noqa: E402

DOMS = ["d0.test", "d1.test", "d2.test"]


class Campaign(PeerTest):

    def setup_account(self, ncontacts, extra_rows=()):
        """master + shop with a verified shop.test (key s1) and a list
        'news' of ncontacts contacts spread over DOMS."""
        self.sluice("account", "create", "master")
        self.sluice("account", "create", "shop")
        self.sluice("domain", "add", "shop.test", "--account", "shop",
                    "--selector", "s1")
        self.sluice("domain", "verify", "shop.test", "--force")
        rows = ["email,first,city"]
        self.contacts = {}
        for i in range(ncontacts):
            addr = "c%03d@%s" % (i, DOMS[i % len(DOMS)])
            first = "Zoë" if i == 0 else "Name%d" % i
            rows.append("%s,%s,City %d" % (addr, first, i))
            self.contacts[addr] = first
        rows += list(extra_rows)
        csv = self.path("news.csv")
        with open(csv, "w") as f:
            f.write("\n".join(rows) + "\n")
        self.sluice("list", "create", "news", "--account", "shop")
        self.sluice("list", "import", "news", csv, "--account", "shop")
        html = self.path("t.html")
        with open(html, "w") as f:
            f.write("<html><body><p>Hello {{first|friend}} from "
                    "{{city}}</p><a href=\"{{unsubscribe_url}}\">leave</a>"
                    "</body></html>\n")
        text = self.path("t.txt")
        with open(text, "w") as f:
            f.write("Hello {{first|friend}} from {{city}}\n")
        r = self.sluice("campaign", "create", "welcome", "--account", "shop",
                        "--list", "news", "--from", "Shop <news@shop.test>",
                        "--subject", "Hi {{first|friend}}", "--html", html,
                        "--text", text, "--json")
        self.cid = str(json.loads(r.stdout)["id"])
        key = os.path.join(self.path("spool"), "dkim", "shop.test", "s1.key")
        self.records = {"s1._domainkey.shop.test": verifiers.key_txt(key)}

    def show(self):
        return json.loads(self.sluice("campaign", "show", self.cid,
                                      "--json").stdout)

    def config(self, port, **keys):
        dns = self.start_dns({d: [(10, "127.0.0.1")] for d in DOMS})
        return self.write_config(dns=dns, smtp_port=port,
                                 allow_unsigned=False,
                                 unsubscribe_host="u.shop.test", **keys)

    def campaign_ids(self):
        """Delivery ids of the campaign, from the spool's events (an
        unsubscribed event names the campaign but no delivery)."""
        return {e["delivery"] for e in self.spool_events()
                if str(e.get("campaign")) == self.cid and e["delivery"]}

    def test_send_personalised_and_signed(self):
        port = peers.free_port()
        self.setup_account(30)
        sink = self.start_sink(port, listen="127.0.0.1")
        conf = self.config(port)
        r = json.loads(self.sluice("campaign", "send", self.cid,
                                   "--json").stdout)
        self.assertEqual(r.get("recipients", r.get("queued")), 30, r)
        # unsubscribed after the send: its queued mail must not go out
        gone = "c007@%s" % DOMS[7 % 3]
        self.sluice("suppress", "add", gone, "--account", "shop")
        self.run_sluiced(conf, timeout=60)

        caps = sink.captures()
        got = {}
        for sender, rcpts, raw in caps:
            self.assertEqual(len(rcpts), 1)
            self.assertNotIn(rcpts[0], got, "mailed twice")
            got[rcpts[0]] = (sender, raw)
        self.assertEqual(set(got), set(self.contacts) - {gone})
        mids, verps = set(), set()
        for addr, (sender, raw) in got.items():
            m = email.message_from_bytes(raw, policy=email.policy.default)
            first = self.contacts[addr]
            self.assertEqual(str(m["Subject"]), "Hi " + first)
            self.assertEqual(str(m["To"]), addr)
            body = m.get_body(("plain",)).get_content()
            self.assertIn("Hello %s from City" % first, body)
            html = m.get_body(("html",)).get_content()
            self.assertIn("Hello %s from City" % first, html)
            self.assertIn("https://u.shop.test/u/", html)
            lu = str(m["List-Unsubscribe"])
            self.assertRegex(lu, r"<mailto:unsub-[a-z0-9]+@shop\.test>")
            self.assertIn("<https://u.shop.test/u/", lu)
            self.assertEqual(str(m["List-Unsubscribe-Post"]),
                             "List-Unsubscribe=One-Click")
            self.assertTrue(str(m["Feedback-ID"]).startswith(self.cid + ":"))
            mids.add(str(m["Message-ID"]))
            self.assertRegex(sender, r"^b-[a-z0-9]+@shop\.test$")
            verps.add(sender)
            self.assertTrue(all(len(x) <= 998 for x in raw.split(b"\r\n")))
        self.assertEqual(len(mids), len(got), "Message-IDs repeat")
        self.assertEqual(len(verps), len(got), "VERP senders repeat")
        with verifiers.Verifiers(self.path("verify"), self.records) as v:
            res = v.verify(sorted((a, r) for a, (_, r) in got.items()))
        for r_ in res:
            self.assertTrue(r_.ok, r_.describe())
            self.assertEqual(r_.nsigs, 1)

        ids = self.campaign_ids()
        self.assertEqual(len(ids), 30)
        term = self.assert_terminal_once(ids)
        dropped = [e for e in term.values() if e["type"] == "suppressed"]
        self.assertEqual([e["rcpt"] for e in dropped], [gone])
        self.assertIn("suppressed", dropped[0]["text"])
        self.assertFalse([e for e in term.values() if e["type"] == "expired"])
        st = self.show()
        self.assertEqual(st["state"], "done", st)
        self.assertEqual(st["delivered"], 29)

    def test_pause_resume_kill_cancel(self):
        port = peers.free_port()
        self.setup_account(240)
        sink = self.start_sink(port, listen="127.0.0.1")
        # slow enough to act in the middle: 3 domains at 10/s each
        conf = self.config(port, pause_recheck="1s")
        with open(conf, "a") as f:
            f.write("\n[domain default]\nmax_rate = 10/s\n")
        self.sluice("campaign", "send", self.cid)
        p = self.start_sluiced(conf, exit_when_empty=False)

        def delivered():
            return len([e for e in self.event_log()
                        if e["type"] == "delivered"])
        peers.wait_for(lambda: delivered() >= 20, 30, "20 deliveries")
        self.sluice("campaign", "pause", self.cid)
        time.sleep(1.5)          # within a second, plus jobs in flight
        at_pause = delivered()
        time.sleep(2.0)
        self.assertLessEqual(delivered(), at_pause + 3,
                             "mail kept flowing after the pause")
        self.assertEqual(self.show()["state"], "paused")
        t0 = time.monotonic()
        self.sluice("campaign", "resume", self.cid)
        peers.wait_for(lambda: delivered() > at_pause + 5, 10,
                       "deliveries after resume")
        self.assertLess(time.monotonic() - t0, 5)

        # a pause that ends by itself: held, then sluiced resumes it
        r = self.sluice("campaign", "pause", self.cid, "--for", "4s")
        self.assertIn(b"paused for 4s", r.stdout)
        st = self.show()
        self.assertEqual(st["state"], "paused", st)
        self.assertGreater(st["paused_until"], time.time(), st)
        time.sleep(1.5)
        held = delivered()
        time.sleep(1.0)
        self.assertLessEqual(delivered(), held + 3,
                             "mail kept flowing in a pause --for")
        peers.wait_for(lambda: self.show()["state"] == "sending", 20,
                       "sluiced resuming the campaign once its pause ended")
        self.assertIsNone(self.show()["paused_until"])
        peers.wait_for(lambda: delivered() > held + 5, 20,
                       "deliveries after the pause ended")
        audit = json.loads(self.sluice("audit", "list", "--json").stdout)
        self.assertTrue([a for a in audit
                         if a.get("action") == "campaign resume" and
                         a.get("user") == "sluiced"], audit[-5:])

        # kill -9 in the middle: the campaign is not done, nothing lost
        peers.wait_for(lambda: delivered() >= 120, 40, "120 deliveries")
        p.signal(signal.SIGKILL)
        p.wait(10)
        st = self.show()
        self.assertNotEqual(st["state"], "done", st)
        self.assertGreater(st["queued"], 0, st)
        p = self.start_sluiced(conf, exit_when_empty=True, name="sluiced2")
        self.assertEqual(p.wait(120), 0, p.output()[-2000:])
        st = self.show()
        self.assertEqual(st["state"], "done", st)
        ids = self.campaign_ids()
        self.assertEqual(len(ids), 240)
        # a crash may repeat a delivery, never lose one
        self.assert_terminal_once(ids, log=False)
        mailed = {rcpts[0] for _, rcpts, _ in sink.captures()}
        self.assertEqual(mailed, set(self.contacts))

        # cancel: a second campaign to the same list ends early
        html = self.path("t.html")
        r = self.sluice("campaign", "create", "second", "--account", "shop",
                        "--list", "news", "--from", "Shop <news@shop.test>",
                        "--subject", "Again", "--html", html, "--json")
        self.cid = str(json.loads(r.stdout)["id"])
        self.sluice("campaign", "send", self.cid)
        p = self.start_sluiced(conf, exit_when_empty=True, name="sluiced3")
        peers.wait_for(lambda: len([e for e in self.event_log()
                                    if e["type"] == "delivered" and
                                    str(e.get("campaign")) == self.cid])
                       >= 10, 30, "second campaign under way")
        self.sluice("campaign", "cancel", self.cid)
        self.assertEqual(p.wait(30), 0, p.output()[-2000:])
        ids = self.campaign_ids()
        term = self.assert_terminal_once(ids, log=False)
        self.assertEqual(len(term), 240)
        cancelled = [e for e in term.values() if e["type"] == "cancelled"]
        self.assertGreater(len(cancelled), 100)
        self.assertFalse([e for e in term.values() if e["type"] == "expired"])
        st = self.show()
        self.assertEqual((st["cancelled"], st["expired"]),
                         (len(cancelled), 0), st)
        self.assertTrue(all("cancelled" in e["text"] for e in cancelled))
        self.assertEqual(self.show()["state"], "cancelled")

    def test_cancel_scheduled(self):
        """A campaign sent with --schedule +2h and cancelled before its
        time: sluiced ends every one of its queued recipients at once
        ("cancelled", "campaign cancelled"), none is mailed, and campaign
        show counts no recipient queued."""
        port = peers.free_port()
        self.setup_account(80)
        self.sluice("campaign", "update", self.cid, "--schedule", "+2h")
        sink = self.start_sink(port, listen="127.0.0.1")
        conf = self.config(port)
        r = json.loads(self.sluice("campaign", "send", self.cid,
                                   "--json").stdout)
        self.assertEqual(r.get("recipients", r.get("queued")), 80, r)
        st = self.show()
        self.assertEqual(st["state"], "scheduled", st)
        self.assertEqual(st["queued"], 80, st)
        self.sluice("campaign", "cancel", self.cid)
        self.assertEqual(self.show()["state"], "cancelled")
        # sluiced must see nothing left to do within its run: it exits
        # only once every row has its terminal event
        self.run_sluiced(conf, timeout=60)
        ids = self.campaign_ids()
        self.assertEqual(len(ids), 80)
        term = self.assert_terminal_once(ids)
        for e in term.values():
            self.assertEqual(e["type"], "cancelled", e)
            self.assertIn("campaign cancelled", e["text"])
        self.assertEqual(sink.captures(), [])
        self.assertEqual(sink.stats()["messages"], 0)
        st = self.show()
        self.assertEqual(st["state"], "cancelled", st)
        self.assertEqual(st["queued"], 0, st)
        self.assertEqual(st["cancelled"], 80, st)
        self.assertEqual(st["expired"], 0, st)

        # the same with sluiced running when the cancel comes: the mail
        # made due by the cancel is ended, none of it is sent
        html = self.path("t.html")
        r = self.sluice("campaign", "create", "later", "--account", "shop",
                        "--list", "news", "--from", "Shop <news@shop.test>",
                        "--subject", "Later", "--html", html,
                        "--schedule", "+2h", "--json")
        self.cid = str(json.loads(r.stdout)["id"])
        self.sluice("campaign", "send", self.cid)
        status = os.path.join(self.path("spool"), "status.json")
        if os.path.exists(status):
            os.unlink(status)
        p = self.start_sluiced(conf, exit_when_empty=False, name="sluiced2")
        # sluiced is up and has read the controls once
        peers.wait_for(lambda: os.path.exists(status), 30, "status.json")
        self.sluice("campaign", "cancel", self.cid)

        def ended(ev):
            return len([e for e in ev if e["type"] == "cancelled" and
                        str(e.get("campaign")) == self.cid]) >= 80
        self.wait_events(ended, 30, "the second campaign's 80 ends")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(20), 0, p.output()[-2000:])
        term = self.assert_terminal_once(self.campaign_ids(), log=False)
        self.assertEqual(len(term), 80)
        self.assertEqual({e["type"] for e in term.values()}, {"cancelled"})
        self.assertEqual(sink.captures(), [])
        self.assertEqual(self.show()["queued"], 0)

    def test_one_click_unsubscribe(self):
        """POST /u/TOKEN to sluiced's endpoint suppresses the contact at
        once and stops its queued mail; GET only shows a form; a forged
        token is refused."""
        port = peers.free_port()
        http = peers.free_port()
        self.setup_account(60)
        sink = self.start_sink(port, listen="127.0.0.1")
        conf = self.config(port, http_listen="127.0.0.1:%d" % http)
        with open(conf, "a") as f:
            f.write("\n[domain default]\nmax_rate = 5/s\n")
        # the last contacts go out last: unsubscribe one of them mid-way
        target = "c059@%s" % DOMS[59 % 3]
        pv = self.sluice("campaign", "preview", self.cid, "--contact",
                         target).stdout.decode()
        token = re.search(r"/u/([a-z0-9]+)>", pv).group(1)
        self.sluice("campaign", "send", self.cid)
        p = self.start_sluiced(conf, exit_when_empty=True)
        peers.wait_for(lambda: len([e for e in self.event_log()
                                    if e["type"] == "delivered"]) >= 3,
                       30, "first deliveries")
        url = "http://127.0.0.1:%d/u/" % http
        page = urllib.request.urlopen(url + token, timeout=5).read()
        self.assertIn(b"<form method=\"post\"", page)
        st = json.loads(self.sluice("suppress", "list", "--account", "shop",
                                    "--json").stdout)
        self.assertEqual(json.dumps(st).count(target), 0,
                         "a GET must not unsubscribe")
        body = b"List-Unsubscribe=One-Click"
        r = urllib.request.urlopen(urllib.request.Request(
            url + token, data=body, method="POST"), timeout=5)
        self.assertEqual(r.status, 200)
        forged = token[:-1] + ("a" if token[-1] != "a" else "b")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(urllib.request.Request(
                url + forged, data=body, method="POST"), timeout=5)
        self.assertEqual(cm.exception.code, 400)
        st = self.sluice("suppress", "list", "--account", "shop",
                         "--json").stdout.decode()
        self.assertIn(target, st)
        self.assertIn("one-click", st)
        # shop's contact unsubscribed: shop's entry on the master's list
        self.assertEqual([e["added_by"] for e in json.loads(st)
                          if e["email"] == target], ["shop"])
        self.assertEqual(p.wait(120), 0, p.output()[-2000:])
        mailed = {rcpts[0] for _, rcpts, _ in sink.captures()}
        self.assertNotIn(target, mailed)
        self.assertEqual(len(mailed), 59)
        term = self.assert_terminal_once(self.campaign_ids())
        dropped = [e for e in term.values() if e["type"] == "suppressed"]
        self.assertEqual([e["rcpt"] for e in dropped], [target])
        # its own counter: campaign show tells it from mail that timed out
        st = self.show()
        self.assertEqual((st["suppressed_in_queue"], st["expired"],
                          st["cancelled"], st["delivered"]), (1, 0, 0, 59), st)
        self.assertEqual(st["state"], "done", st)
        acct = json.loads(self.sluice("account", "show", "shop",
                                      "--json").stdout)["counts"]
        self.assertEqual((acct["suppressed"], acct["expired"],
                          acct["cancelled"], acct["delivered"]),
                         (1, 0, 0, 59), acct)
        # the click is an "unsubscribed" event (informational: no delivery
        # named, no counter), in the log with the stream's fields
        self.assert_log_matches_spool()
        unsub = [e for e in self.event_log() if e["type"] == "unsubscribed"]
        self.assertEqual(len(unsub), 1, unsub)
        u = unsub[0]
        self.assertEqual((u["rcpt"], u["campaign"], u["delivery"], u["text"],
                          u["campaign_name"], u["account_name"]),
                         (target, int(self.cid), 0, "one-click", st["name"],
                          "shop"), u)
        sup = [e for e in self.event_log() if e["type"] == "suppressed"]
        self.assertEqual(sup[0]["campaign_name"], st["name"], sup)


if __name__ == "__main__":
    peers.main()
