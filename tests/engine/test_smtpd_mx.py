"""test_smtpd_mx.py - sluiced's SMTP listener as the bounce domain's MX.

A campaign of shop's goes out through sluiced (bounce_domain
bounce.sluice.test: every message's return path is b-TOKEN@ there) to
the sink, which gives the test each delivery's VERP address and
Message-ID.  Then, with no AUTH:
- a DSN (the Gmail sample of tests/tools/feedback) to the VERP address of
  one delivery is answered 250 only once recorded: the delivery (already
  delivered) keeps its one terminal event, the late bounce is in the
  audit trail ("feedback ingest") and the address is on shop's
  suppression list;
- an ARF complaint to feedback_address (fbl@bounce.sluice.test) is taken
  and suppresses its recipient;
- a VERP address with a changed token is refused at RCPT (550 5.7.1) and
  nothing is recorded for it;
- any other recipient is refused (550 5.7.1, smtplib and swaks): no
  relay without AUTH, and a client that authenticates may still send.

usage: /usr/bin/python3 test_smtpd_mx.py SLUICED SLUICE SINK
"""
import json
import os
import re
import smtplib
import subprocess

import peers
from peers import wait_for
from smtpd_setup import SmtpdBase

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                       "tools", "feedback")
BOUNCE = "bounce.sluice.test"
CONTACTS = ["gm@sink.test", "ya@sink.test", "fo@sink.test"]


class SmtpdMx(SmtpdBase):

    def campaign(self):
        csv = self.path("news.csv")
        with open(csv, "w") as f:
            f.write("email\n" + "\n".join(CONTACTS) + "\n")
        self.sluice("list", "create", "news", "--account", "shop")
        self.sluice("list", "import", "news", csv, "--account", "shop")
        html = self.path("t.html")
        with open(html, "w") as f:
            f.write("<p>Hi</p><a href=\"{{unsubscribe_url}}\">u</a>")
        out = self.sluice("campaign", "create", "c1", "--account", "shop",
                          "--list", "news", "--from",
                          "Shop <news@shop.test>", "--subject", "Hello",
                          "--html", html, "--config", self.conf,
                          "--json").stdout
        self.sluice("campaign", "send", str(json.loads(out)["id"]))

    def sent(self):
        """rcpt -> (VERP address, Message-ID) of every captured message."""
        out = {}
        for frm, rcpts, data in self.sink.captures():
            m = re.search(rb"\r\nMessage-ID: <([^>]+)>", data, re.I)
            for r in rcpts:
                out[r] = (frm, m.group(1).decode() if m else "")
        return out

    def sample(self, name, rcpt, verp, msgid):
        with open(os.path.join(SAMPLES, name), "rb") as f:
            text = f.read().decode("latin-1")
        return (text.replace("@@VERP@@", verp).replace("@@RCPT@@", rcpt)
                .replace("@@RDOM@@", rcpt.split("@")[1])
                .replace("@@MSGID@@", msgid)
                .replace("@@FBID@@", "1:2:1:sluice")
                .replace("\r\n", "\n").replace("\n", "\r\n")
                ).encode("latin-1")

    def suppressed(self):
        out = self.sluice("suppress", "list", "--account", "shop",
                          "--json").stdout
        return set(r["email"] for r in json.loads(out))

    def test_bounce_domain_mx(self):
        self.start(bounce_domain=BOUNCE)
        self.campaign()
        sent = wait_for(lambda: (lambda s: s if len(s) == 3 else None)(
            self.sent()), 60, "the campaign's 3 deliveries")
        verp, msgid = sent["gm@sink.test"]
        self.assertTrue(verp.startswith("b-") and
                        verp.endswith("@" + BOUNCE), verp)
        s = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30)
        s.ehlo("mx.google.example")
        # a DSN to the VERP address: 250 once recorded
        s.mail("")
        code, _ = s.rcpt(verp)
        self.assertEqual(code, 250)
        code, text = s.data(self.sample("gmail.eml", "gm@sink.test", verp,
                                        msgid))
        self.assertEqual(code, 250, text)
        # delivered already (the sink took it): a late bounce
        self.assertIn(b"late-bounce", text)
        self.assertIn("gm@sink.test", self.suppressed())
        evs = [e for e in self.spool_events() if e["rcpt"] == "gm@sink.test"]
        # still one terminal event; the bounce is in the audit trail
        self.assertEqual([e["type"] for e in evs], ["delivered"])
        fb = [l for l in self.audit_lines() if "feedback ingest" in l]
        self.assertEqual(len(fb), 1, fb)
        self.assertIn("gm@sink.test", fb[0])
        self.assertIn("late-bounce bad-mailbox 5.1.1 by verp; suppressed",
                      fb[0])
        # an ARF complaint to the feedback address
        yverp, ymsgid = sent["ya@sink.test"]
        s.mail("")
        code, _ = s.rcpt("fbl@" + BOUNCE)
        self.assertEqual(code, 250)
        code, text = s.data(self.sample("arf-yahoo.eml", "ya@sink.test",
                                        yverp, ymsgid))
        self.assertEqual(code, 250, text)
        self.assertIn("ya@sink.test", self.suppressed())
        # a forged token: refused at RCPT, nothing recorded
        fverp, _ = sent["fo@sink.test"]
        i = 5
        forged = fverp[:i] + ("a" if fverp[i] != "a" else "b") + fverp[i + 1:]
        s.mail("")
        code, text = s.rcpt(forged)
        self.assertEqual(code, 550)
        self.assertTrue(text.startswith(b"5.7.1"), text)
        # anything else without AUTH: no relay
        code, text = s.rcpt("someone@sink.test")
        self.assertEqual(code, 550)
        self.assertTrue(text.startswith(b"5.7.1"), text)
        code, text = s.rcpt("other@" + BOUNCE)
        self.assertEqual(code, 550)
        s.rset()
        s.quit()
        self.assertNotIn("fo@sink.test", self.suppressed())
        evs = [e for e in self.spool_events() if e["rcpt"] == "fo@sink.test"]
        self.assertEqual([e["type"] for e in evs], ["delivered"])
        r = subprocess.run(["/usr/bin/swaks", "--server",
                            "127.0.0.1:%d" % self.smtp_port, "--to",
                            "someone@sink.test", "--from", "x@evil.test"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        out = r.stdout.decode()
        self.assertRegex(out, r"<\*\* 550 5\.7\.1", out[-2000:])
        # a client that authenticates still sends
        s = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30)
        s.login("shop", self.key)
        self.assertEqual(s.sendmail("news@shop.test", ["after@sink.test"],
                                    self.message(to="after@sink.test")), {})
        s.quit()
        self.delivered_to("after@sink.test")


if __name__ == "__main__":
    peers.main()
