"""test_smtpd.py - sluiced's SMTP listener with real clients: Python's
smtplib and swaks, for every reply the listener promises.

- AUTH PLAIN and LOGIN with an account name and a send key: 250 after
  DATA, the message delivered (Message-ID and Date added) as that
  account's mail; EHLO offers PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
  ENHANCEDSTATUSCODES and AUTH (loopback).
- MAIL without AUTH 530 5.7.0; a wrong key, a read-scope key, a viewer's
  key, a key of another account 535 5.7.8, each audited; after
  smtp_auth_failures failures the address gets 454 4.7.0 even with the
  right key; a From: domain not verified for the account 550 5.7.1.
- 452 4.5.3 past smtp_max_recipients; 552 5.3.4 for SIZE= over
  max_message_size and for a message over it without SIZE=.
- 421 4.7.0 at greeting over smtp_max_clients.
- STARTTLS: without it (smtp_auth_clear_networks = none) no AUTH is
  offered and AUTH is 538 5.7.11; after it AUTH and sending work.
- smtp_relay_networks: a client there sends without AUTH as
  smtp_default_account; one elsewhere gets 530 (never an open relay).
- A suppressed recipient and one the receiver refuses both get 250; the
  first ends expired ("suppressed"), the second bounced, as events.
- A spool that is full answers 452 4.3.1 and keeps what it answered 250.
- SMTPUTF8: a UTF-8 recipient is taken and delivered.
- Protocol errors: a bare LF in the data 550 5.6.0 (smtplib with bytes,
  swaks --no-data-fixup), an overlong command 500 5.5.2, a client idle
  past smtp_command_timeout 421 4.4.2.
- The account's daily cap holds mail taken over SMTP: with a cap of 2,
  two of three messages go, the third waits in the spool.

usage: /usr/bin/python3 test_smtpd.py SLUICED SLUICE SINK
"""
import json
import re
import smtplib
import socket
import ssl
import subprocess

import peers
from peers import wait_for
from smtpd_setup import SmtpdBase

SWAKS = "/usr/bin/swaks"


class Smtpd(SmtpdBase):

    def swaks(self, *args, source=None):
        argv = [SWAKS, "--server", "127.0.0.1:%d" % self.smtp_port,
                "--timeout", "30", "--suppress-data"] + list(args)
        if source:
            argv += ["--local-interface", source]
        r = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120)
        return r.returncode, r.stdout.decode("utf-8", "replace")

    def assert_swaks(self, out, code, enhanced=None):
        pat = r"<[-~*]{1,3}\s+%d%s" % (code, (" " + re.escape(enhanced))
                                         if enhanced else "")
        self.assertTrue(re.search(pat, out), "swaks did not see %d %s:\n%s"
                        % (code, enhanced or "", out[-3000:]))

    def smtp(self, source=None):
        s = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30,
                         source_address=(source, 0) if source else None)
        s.ehlo("client.test")
        return s

    def shop_id(self):
        return json.loads(self.sluice("account", "show", "shop",
                                      "--json").stdout)["id"]

    def test_submit(self):
        self.start()
        s = self.smtp()
        for ext in ("pipelining", "size", "8bitmime", "smtputf8",
                    "enhancedstatuscodes", "auth"):
            self.assertTrue(s.has_extn(ext), ext)
        self.assertEqual(s.esmtp_features["auth"].split(), ["PLAIN", "LOGIN"])
        s.user, s.password = "shop", self.key
        code, _ = s.auth("PLAIN", s.auth_plain)
        self.assertEqual(code, 235)
        refused = s.sendmail("news@shop.test", ["one@sink.test"],
                             self.message(to="one@sink.test"))
        self.assertEqual(refused, {})
        s.quit()
        s = self.smtp()
        s.user, s.password = "shop", self.key
        code, _ = s.auth("LOGIN", s.auth_login)
        self.assertEqual(code, 235)
        s.mail("news@news.shop.test")  # a child of shop.test: aligned
        s.rcpt("two@sink.test")
        code, text = s.data(self.message(frm="news@news.shop.test",
                                         to="two@sink.test"))
        self.assertEqual(code, 250)
        self.assertRegex(text.decode(), r"^2\.0\.0 Ok: queued as \d+")
        s.quit()
        body = self.delivered_to("one@sink.test")
        self.assertRegex(body, rb"\r\nMessage-ID: <[0-9a-f]{32}@mx\.sluice\.test>")
        self.assertIn(b"\r\nDate: ", body)
        self.delivered_to("two@sink.test")
        for how in ("PLAIN", "LOGIN"):
            rc, out = self.swaks("--from", "news@shop.test", "--to",
                                 "sw-%s@sink.test" % how.lower(),
                                 "--h-From", "news@shop.test", "--auth", how,
                                 "--auth-user", "shop",
                                 "--auth-password", self.key)
            self.assertEqual(rc, 0, out)
            self.assert_swaks(out, 235, "2.7.0")
            self.assert_swaks(out, 250, "2.0.0 Ok: queued as")
            self.delivered_to("sw-%s@sink.test" % how.lower())
        shop = self.shop_id()
        evs = [e for e in self.spool_events() if e["type"] == "delivered"]
        self.assertEqual(len(evs), 4)
        self.assertTrue(all(e["account"] == shop for e in evs), evs)

    def test_refusals(self):
        self.start(smtp_auth_failures=4, smtp_max_recipients=3,
                   max_message_size=4096)
        # no AUTH: 530
        s = self.smtp()
        with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
            s.sendmail("news@shop.test", ["x@sink.test"], self.message())
        self.assertEqual(cm.exception.smtp_code, 530)
        self.assertTrue(cm.exception.smtp_error.startswith(b"5.7.0"))
        s.quit()
        rc, out = self.swaks("--from", "news@shop.test", "--to", "x@sink.test")
        self.assertNotEqual(rc, 0)
        self.assert_swaks(out, 530, "5.7.0")
        # a From: domain that is not shop's: 550 5.7.1
        s = self.smtp()
        s.login("shop", self.key)
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            s.sendmail("news@acme.test", ["x@sink.test"],
                       self.message(frm="news@acme.test"))
        self.assertEqual(cm.exception.smtp_code, 550)
        self.assertIn(b"5.7.1", cm.exception.smtp_error)
        self.assertIn(b"acme.test", cm.exception.smtp_error)
        # too many recipients: the 4th gets 452 4.5.3
        refused = s.sendmail("news@shop.test",
                             ["r%d@sink.test" % i for i in range(4)],
                             self.message())
        self.assertEqual(list(refused), ["r3@sink.test"])
        self.assertEqual(refused["r3@sink.test"][0], 452)
        self.assertTrue(refused["r3@sink.test"][1].startswith(b"4.5.3"))
        # SIZE= over the limit (smtplib sends it): 552 5.3.4
        big = self.message(body=("y" * 70 + "\r\n") * 80)
        with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
            s.sendmail("news@shop.test", ["big@sink.test"], big)
        self.assertEqual(cm.exception.smtp_code, 552)
        self.assertTrue(cm.exception.smtp_error.startswith(b"5.3.4"))
        # without SIZE=: the data itself, 552 5.3.4 after it
        s.rset()
        s.mail("news@shop.test")
        s.rcpt("big@sink.test")
        code, text = s.data(big)
        self.assertEqual(code, 552)
        self.assertTrue(text.startswith(b"5.3.4"))
        s.quit()
        msgfile = self.path("big.eml")
        with open(msgfile, "w") as f:
            f.write(big)
        rc, out = self.swaks("--from", "news@shop.test", "--to",
                             "a@sink.test,b@sink.test,c@sink.test,d@sink.test",
                             "--auth", "PLAIN", "--auth-user", "shop",
                             "--auth-password", self.key, "--data", msgfile)
        self.assert_swaks(out, 452, "4.5.3")
        self.assert_swaks(out, 552, "5.3.4")
        rc, out = self.swaks("--from", "news@acme.test", "--to", "a@sink.test",
                             "--h-From", "news@acme.test", "--auth", "PLAIN",
                             "--auth-user", "shop", "--auth-password",
                             self.key)
        self.assert_swaks(out, 550, "5.7.1")
        # bad keys: 535 5.7.8, audited with the reason
        bad = [("shop", self.key[:-1] + ("0" if self.key[-1] != "0" else "1")),
               ("shop", self.read_key), ("shop", self.viewer_key)]
        for user, key in bad:
            s = self.smtp()
            s.user, s.password = user, key
            with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                s.auth("PLAIN", s.auth_plain)
            self.assertEqual(cm.exception.smtp_code, 535)
            self.assertTrue(cm.exception.smtp_error.startswith(b"5.7.8"))
            s.close()
        rc, out = self.swaks("--auth", "LOGIN", "--auth-user", "acme",
                             "--auth-password", self.key, "--to",
                             "x@sink.test", "--quit-after", "AUTH")
        self.assert_swaks(out, 535, "5.7.8")
        audit = "\n".join(self.audit_lines())
        for why in ("unknown API key", "scope viewer",
                    "needs role sender; carol has viewer",
                    "API key 1 is not for account acme"):
            self.assertIn(why, audit)
        self.assertEqual(audit.count("smtp auth"), 5, audit)
        # the 4th failure locked the address: even the right key is 454
        self.assertIn("locked out of AUTH", audit)
        s = self.smtp()
        s.user, s.password = "shop", self.key
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            s.auth("LOGIN", s.auth_login)
        self.assertEqual(cm.exception.smtp_code, 454)
        self.assertTrue(cm.exception.smtp_error.startswith(b"4.7.0"))
        s.close()
        rc, out = self.swaks("--auth", "PLAIN", "--auth-user", "shop",
                             "--auth-password", self.key, "--to",
                             "x@sink.test", "--quit-after", "AUTH")
        self.assert_swaks(out, 454, "4.7.0")
        # of all that, only the message of r0..r2 was queued
        self.assertEqual(self.spool_info()["deliveries"], 3)

    def test_max_clients(self):
        self.start(smtp_max_clients=2)
        a, b = self.smtp(), self.smtp()
        with self.assertRaises(smtplib.SMTPConnectError) as cm:
            smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30)
        self.assertEqual(cm.exception.smtp_code, 421)
        self.assertTrue(cm.exception.smtp_error.startswith(b"4.7.0"))
        rc, out = self.swaks("--to", "x@sink.test", "--quit-after", "CONNECT")
        self.assert_swaks(out, 421, "4.7.0")
        a.quit()
        # a place came free: served again
        def served():
            try:
                c = smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30)
                c.quit()
                return True
            except smtplib.SMTPConnectError:
                return False
        wait_for(served, 20, "a free client slot")
        b.quit()

    def test_starttls(self):
        self.start(tls=True, smtp_auth_clear_networks="none")
        s = self.smtp()
        self.assertTrue(s.has_extn("starttls"))
        self.assertFalse(s.has_extn("auth"))
        code, text = s.docmd("AUTH", "PLAIN " + self.auth_plain("shop",
                                                                self.key))
        self.assertEqual(code, 538)
        self.assertTrue(text.startswith(b"5.7.11"))
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo("client.test")
        self.assertFalse(s.has_extn("starttls"))
        self.assertTrue(s.has_extn("auth"))
        s.login("shop", self.key)
        self.assertEqual(s.sendmail("news@shop.test", ["tls@sink.test"],
                                    self.message(to="tls@sink.test")), {})
        s.quit()
        self.delivered_to("tls@sink.test")
        rc, out = self.swaks("--to", "x@sink.test", "--auth", "PLAIN",
                             "--auth-user", "shop", "--auth-password",
                             self.key)
        self.assertNotEqual(rc, 0)
        self.assertIn("Host did not advertise authentication", out)
        rc, out = self.swaks("--tls", "--from", "news@shop.test", "--to",
                             "swtls@sink.test", "--h-From", "news@shop.test",
                             "--auth", "LOGIN", "--auth-user", "shop",
                             "--auth-password", self.key)
        self.assertEqual(rc, 0, out)
        self.assert_swaks(out, 220, "2.0.0")
        self.assert_swaks(out, 250, "2.0.0 Ok: queued as")
        self.delivered_to("swtls@sink.test")

    def test_relay_networks(self):
        self.start(smtp_relay_networks="127.0.0.2/32",
                   smtp_default_account="shop")
        s = self.smtp(source="127.0.0.2")
        self.assertEqual(s.sendmail("news@shop.test", ["relay@sink.test"],
                                    self.message(to="relay@sink.test")), {})
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            s.sendmail("news@acme.test", ["relay@sink.test"],
                       self.message(frm="news@acme.test"))
        self.assertEqual(cm.exception.smtp_code, 550)
        s.quit()
        self.delivered_to("relay@sink.test")
        ev = [e for e in self.spool_events() if e["rcpt"] == "relay@sink.test"]
        self.assertEqual(ev[0]["account"], self.shop_id())
        rc, out = self.swaks("--from", "news@shop.test", "--to",
                             "swrelay@sink.test", "--h-From",
                             "news@shop.test", source="127.0.0.2")
        self.assertEqual(rc, 0, out)
        self.assert_swaks(out, 250, "2.0.0 Ok: queued as")
        # any other client: no relay
        s = self.smtp(source="127.0.0.3")
        with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
            s.sendmail("news@shop.test", ["relay@sink.test"], self.message())
        self.assertEqual(cm.exception.smtp_code, 530)
        s.quit()
        rc, out = self.swaks("--from", "news@shop.test", "--to",
                             "relay@sink.test", source="127.0.0.3")
        self.assert_swaks(out, 530, "5.7.0")

    def test_suppressed_and_unknown(self):
        self.start()
        self.sluice("suppress", "add", "gone@sink.test", "--account", "shop")
        s = self.smtp()
        s.login("shop", self.key)
        refused = s.sendmail("news@shop.test",
                             ["gone@sink.test", "permfail1@sink.test",
                              "ok@sink.test"], self.message())
        self.assertEqual(refused, {})
        s.quit()
        rc, out = self.swaks("--from", "news@shop.test", "--to",
                             "gone@sink.test", "--h-From", "news@shop.test",
                             "--auth", "PLAIN", "--auth-user", "shop",
                             "--auth-password", self.key)
        self.assert_swaks(out, 250, "2.1.5")
        self.assert_swaks(out, 250, "2.0.0 Ok: queued as")

        def ended():
            evs = {}
            for e in self.spool_events():
                if e["type"] in ("delivered", "bounced", "expired",
                                 "suppressed"):
                    evs.setdefault(e["rcpt"], []).append(e)
            return evs if len(evs) == 3 and len(evs["gone@sink.test"]) == 2 \
                else None
        evs = wait_for(ended, 60, "terminal events of 4 recipients")
        for e in evs["gone@sink.test"]:
            self.assertEqual(e["type"], "suppressed")
            self.assertIn("suppressed", e["text"])
        self.assertEqual(evs["permfail1@sink.test"][0]["type"], "bounced")
        self.assertEqual(evs["ok@sink.test"][0]["type"], "delivered")
        got = [r for _, rcpts, _ in self.sink.captures() for r in rcpts]
        self.assertNotIn("gone@sink.test", got)

    def test_spool_full(self):
        # a 1 MiB map and nowhere to deliver: messages stay
        self.start(sink=False, map_max=1)
        s = self.smtp()
        s.login("shop", self.key)
        body = ("z" * 76 + "\r\n") * 1500   # about 117 KB
        accepted, full = [], None
        for i in range(40):
            rcpt = "fill%d@sink.test" % i
            s.mail("news@shop.test")
            s.rcpt(rcpt)
            code, text = s.data(self.message(to=rcpt, body=body))
            if code == 250:
                accepted.append(rcpt)
                continue
            full = (code, text)
            break
        self.assertIsNotNone(full, "the spool never filled")
        self.assertEqual(full[0], 452)
        self.assertTrue(full[1].startswith(b"4.3.1"), full)
        self.assertTrue(accepted)
        s.quit()
        rc, out = self.swaks("--from", "news@shop.test", "--to",
                             "more@sink.test", "--auth", "PLAIN",
                             "--auth-user", "shop", "--auth-password",
                             self.key, "--body", body)
        self.assert_swaks(out, 452, "4.3.1")
        self.assertTrue(self.sluiced.alive())
        self.sluiced.stop()
        info = self.spool_info()
        self.assertEqual(info["deliveries"], len(accepted))

    def test_smtputf8(self):
        self.start()
        s = self.smtp()
        s.login("shop", self.key)
        rcpt = "jörg@sink.test"
        msg = self.message(to=rcpt, subject="grüße").encode()
        self.assertEqual(s.sendmail("news@shop.test", [rcpt], msg,
                                    mail_options=["SMTPUTF8",
                                                  "BODY=8BITMIME"]), {})
        s.quit()
        body = self.delivered_to(rcpt)
        self.assertIn("grüße".encode(), body)

    def test_protocol_errors(self):
        self.start(smtp_command_timeout="2s")
        s = self.smtp()
        s.login("shop", self.key)
        s.mail("news@shop.test")
        s.rcpt("lf@sink.test")
        code, text = s.data(b"From: news@shop.test\r\nSubject: x\r\n\r\n"
                            b"bare\nline\r\n")
        self.assertEqual(code, 550)
        self.assertTrue(text.startswith(b"5.6.0"), text)
        code, text = s.docmd("NOOP", "x" * 2000)
        self.assertEqual(code, 500)
        self.assertTrue(text.startswith(b"5.5.2"), text)
        # idle: the server speaks first, 421 4.4.2, and closes
        code, text = s.getreply()
        self.assertEqual(code, 421)
        self.assertTrue(text.startswith(b"4.4.2"), text)
        s.close()
        body = self.path("lf.eml")
        with open(body, "wb") as f:
            # as is, with its end (no fixup)
            f.write(b"From: news@shop.test\r\nSubject: x\r\n\r\nbare\nlf"
                    b"\r\n.\r\n")
        rc, out = self.swaks("--from", "news@shop.test", "--to",
                             "lf@sink.test", "--auth", "PLAIN",
                             "--auth-user", "shop", "--auth-password",
                             self.key, "--data", body, "--no-data-fixup")
        self.assert_swaks(out, 550, "5.6.0")
        rc, out = self.swaks("--to", "x@sink.test", "--ehlo", "h" * 2000,
                             "--quit-after", "EHLO")
        self.assert_swaks(out, 500, "5.5.2")
        self.assertNotIn("lf@sink.test",
                         [e["rcpt"] for e in self.spool_events()])

    def test_daily_cap(self):
        self.setup_spool()
        # before sluiced starts: it reads the accounts as it claims
        self.sluice("account", "update", "shop", "--daily-cap", "2")
        self.start(spool=False)
        s = self.smtp()
        s.login("shop", self.key)
        for i in range(3):
            rcpt = "cap%d@sink.test" % i
            self.assertEqual(s.sendmail("news@shop.test", [rcpt],
                                        self.message(to=rcpt)), {})
        s.quit()
        wait_for(lambda: len(self.sink.captures()) >= 2, 30,
                 "two deliveries")
        self.sluiced.stop()
        self.assertEqual(len(self.sink.captures()), 2)
        self.assertEqual(self.spool_info()["counts"]["queued"], 1)


if __name__ == "__main__":
    peers.main()
