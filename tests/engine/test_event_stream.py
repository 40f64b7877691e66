"""test_event_stream.py - the event stream's informational events and
fields (issue 18): reception, complaint, and id / time / message_id /
names on every line of the event log.

sluiced listens for SMTP (with bounce_domain, so it is also the MX for
reports) and delivers to a sink:
- a message of 2 recipients sent through the listener with AUTH is one
  "reception" event (its first recipient, "smtp: 2 recipients", the
  account's name), and both deliveries' terminal events carry the same
  message_id as the reception;
- a campaign goes out, and an ARF complaint (the Yahoo sample of
  tests/tools/feedback) about one of its deliveries is a "complaint"
  event with feedback_type "abuse", the campaign's and account's names,
  while the delivery keeps its one terminal event and the spool's
  counters do not move;
- mail to the List-Unsubscribe mailto address of a campaign message
  (unsub-TOKEN@..., no AUTH) suppresses the contact (source "mailto") and
  is an "unsubscribed" event; a forged token is refused at RCPT;
- after a restart of sluiced every line, old and new, matches the spool
  and carries the same spool identity in its id.

usage: /usr/bin/python3 test_event_stream.py SLUICED SLUICE SINK
"""
import json
import os
import re
import smtplib

import peers
from peers import wait_for
from smtpd_setup import SmtpdBase

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                       "tools", "feedback")
BOUNCE = "bounce.sluice.test"
CONTACTS = ["gm@sink.test", "ya@sink.test"]


class EventStream(SmtpdBase):

    def campaign(self):
        csv = self.path("news.csv")
        with open(csv, "w") as f:
            f.write("email\n" + "\n".join(CONTACTS) + "\n")
        self.sluice("list", "create", "news", "--account", "shop")
        self.sluice("list", "import", "news", csv, "--account", "shop")
        html = self.path("t.html")
        with open(html, "w") as f:
            f.write("<p>Hi</p><a href=\"{{unsubscribe_url}}\">u</a>")
        out = self.sluice("campaign", "create", "autumn", "--account",
                          "shop", "--list", "news", "--from",
                          "Shop <news@shop.test>", "--subject", "Hello",
                          "--html", html, "--config", self.conf,
                          "--json").stdout
        cid = json.loads(out)["id"]
        self.sluice("campaign", "send", str(cid))
        return cid

    def arf(self, rcpt, verp, msgid):
        with open(os.path.join(SAMPLES, "arf-yahoo.eml"), "rb") as f:
            text = f.read().decode("latin-1")
        return (text.replace("@@VERP@@", verp).replace("@@RCPT@@", rcpt)
                .replace("@@RDOM@@", rcpt.split("@")[1])
                .replace("@@MSGID@@", msgid)
                .replace("@@FBID@@", "1:2:1:sluice")
                .replace("\r\n", "\n").replace("\n", "\r\n")
                ).encode("latin-1")

    def sent(self):
        """rcpt -> (VERP address, Message-ID) of captured campaign mail."""
        out = {}
        for frm, rcpts, data in self.sink.captures():
            m = re.search(rb"\r\nMessage-ID: <([^>]+)>", data, re.I)
            for r in rcpts:
                if r in CONTACTS:
                    out[r] = (frm, m.group(1).decode() if m else "")
        return out

    def mailto(self, rcpt):
        """The List-Unsubscribe mailto address of rcpt's campaign mail."""
        for _, rcpts, data in self.sink.captures():
            if rcpt in rcpts:
                m = re.search(rb"<mailto:(unsub-[a-z2-7]+@[^>]+)>", data)
                return m.group(1).decode()
        raise AssertionError("no campaign message to %s" % rcpt)

    def suppressed(self):
        out = self.sluice("suppress", "list", "--account", "shop",
                          "--json").stdout
        return {r["email"]: r for r in json.loads(out)}

    def counts(self):
        return json.loads(self.sluice("spool", "info", "--json")
                          .stdout)["counts"]

    def test_reception_complaint_fields(self):
        self.start(bounce_domain=BOUNCE)

        # reception: one event per message accepted by the listener
        s = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30)
        s.ehlo("client.test")
        s.login("shop", self.key)
        s.sendmail("news@shop.test", ["r1@sink.test", "r2@sink.test"],
                   self.message(to="r1@sink.test"))
        s.quit()
        self.delivered_to("r1@sink.test")
        self.delivered_to("r2@sink.test")

        def ended(ev):
            return len([e for e in ev if e.get("rcpt") in
                        ("r1@sink.test", "r2@sink.test") and
                        e.get("type") == "delivered"]) == 2
        self.wait_events(ended, 60, "both recipients delivered")
        log = self.event_log()
        rec = [e for e in log if e["type"] == "reception"]
        self.assertEqual(len(rec), 1, rec)
        r = rec[0]
        self.assertEqual((r["rcpt"], r["text"], r["account_name"],
                          r["campaign"], r["campaign_name"]),
                         ("r1@sink.test", "smtp: 2 recipients", "shop", 0,
                          None), r)
        self.assertIsInstance(r["message_id"], int)
        dl = [e for e in log if e["type"] == "delivered"]
        self.assertEqual({e["message_id"] for e in dl}, {r["message_id"]},
                         dl)
        self.assertEqual(min(e["delivery"] for e in dl), r["delivery"])
        # informational: the counters count the two deliveries only
        c = self.counts()
        self.assertEqual((c["enqueued"], c["delivered"], c["queued"]),
                         (2, 2, 0), c)

        # complaint: an ARF report about a campaign delivery
        cid = self.campaign()
        sent = wait_for(lambda: (lambda x: x if len(x) == 2 else None)(
            self.sent()), 60, "the campaign's 2 deliveries")
        self.wait_events(lambda ev: len([e for e in ev if e.get("rcpt") in
                                         CONTACTS and e["type"] ==
                                         "delivered"]) == 2,
                         60, "the campaign delivered")
        before = self.counts()
        verp, msgid = sent["ya@sink.test"]
        s = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30)
        s.ehlo("mx.yahoo.example")
        s.mail("")
        code, _ = s.rcpt("fbl@" + BOUNCE)
        self.assertEqual(code, 250)
        code, text = s.data(self.arf("ya@sink.test", verp, msgid))
        self.assertEqual(code, 250, text)
        s.quit()
        self.wait_events(lambda ev: any(e["type"] == "complaint"
                                        for e in ev), 30,
                         "the complaint in the log")
        comp = [e for e in self.event_log() if e["type"] == "complaint"]
        self.assertEqual(len(comp), 1, comp)
        c = comp[0]
        self.assertEqual((c["rcpt"], c["feedback_type"], c["campaign"],
                          c["campaign_name"], c["account_name"],
                          c["message_id"]),
                         ("ya@sink.test", "abuse", cid, "autumn", "shop",
                          None), c)
        # the delivery keeps its one terminal event, the counters stay
        evs = [e for e in self.spool_events() if e["delivery"] ==
               c["delivery"]]
        self.assertEqual([e["type"] for e in evs], ["delivered",
                                                    "complaint"])
        self.assertEqual(self.counts(), before)
        self.assert_terminal_once([e["delivery"] for e in evs[:1]])

        # unsubscribed by mail: the List-Unsubscribe mailto, no AUTH
        addr = self.mailto("gm@sink.test")
        local, dom = addr.split("@")
        forged = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + dom
        s = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30)
        s.ehlo("mail.example")
        s.mail("gm@sink.test")
        code, _ = s.rcpt(forged)
        self.assertEqual(code, 550)
        code, _ = s.rcpt(addr)
        self.assertEqual(code, 250)
        code, text = s.data(b"Subject: unsubscribe\r\n\r\nplease\r\n")
        self.assertEqual((code, text), (250, b"2.0.0 Ok: unsubscribed"))
        s.quit()
        sup = self.suppressed()
        self.assertIn("gm@sink.test", sup)
        self.assertEqual(sup["gm@sink.test"]["source"], "mailto", sup)
        self.wait_events(lambda ev: any(e["type"] == "unsubscribed"
                                        for e in ev), 30,
                         "the unsubscribe in the log")
        un = [e for e in self.event_log() if e["type"] == "unsubscribed"]
        self.assertEqual(len(un), 1, un)
        self.assertEqual((un[0]["rcpt"], un[0]["text"], un[0]["campaign"],
                          un[0]["campaign_name"], un[0]["delivery"]),
                         ("gm@sink.test", "mailto", cid, "autumn", 0), un)
        self.assertEqual(self.counts(), before)
        ids = {e["id"] for e in self.event_log() if "seq" in e}

        # a restart: the same ids for the old lines, the same identity for
        # the new ones, every line the spool's event
        self.sluiced.signal(15)
        self.assertEqual(self.sluiced.wait(30), 0)
        self.sluiced = self.start_sluiced(self.conf, exit_when_empty=False,
                                          name="sluiced2")
        self.wait_listening()
        s = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30)
        s.ehlo("client.test")
        s.login("shop", self.key)
        s.sendmail("news@shop.test", ["r3@sink.test"],
                   self.message(to="r3@sink.test"))
        s.quit()
        self.wait_events(lambda ev: any(e.get("rcpt") == "r3@sink.test" and
                                        e["type"] == "delivered"
                                        for e in ev), 60, "r3 delivered")
        lines = [e for e in self.event_log() if "seq" in e]
        self.assertLessEqual(ids, {e["id"] for e in lines})
        self.assertEqual(len([e for e in lines
                              if e["type"] == "reception"]), 2)
        spool = self.assert_log_matches_spool()
        self.assertFalse([e for e in spool if e["type"] == "expired"])


if __name__ == "__main__":
    peers.main()
