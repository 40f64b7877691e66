"""test_message.py - the message rules on the way in and out, and SMTPUTF8.

`sluice inject` refuses an empty message, a NUL byte, a message without
From: and one whose header does not parse: exit 65 with the reason, and
nothing is queued.  A message without Date: and Message-ID: reaches the
sink with both added (parsed with Python's email package); one that has
them keeps them.  A stored message that breaks the rules (written by an
older sluice; enqueue_raw stores it) bounces 5.6.0 and never reaches the
wire.  SMTPUTF8 (RFC 6531/6532): a UTF-8 sender or recipient and an
8-bit header go with the SMTPUTF8 parameter to a server that offers it;
to a server without it a UTF-8 recipient bounces 5.6.7, an 8-bit Subject
goes as RFC 2047 encoded words (the 7-bit form), and a UTF-8 address in
the header bounces 5.6.7.

usage: /usr/bin/python3 test_message.py SLUICED SLUICE SINK
       ($SLUICE_ENQUEUE_RAW: the enqueue_raw test tool)
"""
import email
import email.policy
import email.utils
import os
import re
import subprocess
import time

import peers
from peers import PeerTest

GOOD = b"From: s@sender.test\nSubject: fine\n\nbody\n"


class Message(PeerTest):

    def inject_file(self, data, *args):
        f = self.path("msg-%d.eml" % time.monotonic_ns())
        with open(f, "wb") as fh:
            fh.write(data)
        return self.sluice("inject", "--from", "s@sender.test", "--to",
                           "u@rcpt.test", *(list(args) + [f]), check=False)

    def test_inject_refusals(self):
        self.inject("s@sender.test", ["u@rcpt.test"], GOOD)
        before = self.spool_info()["deliveries"]
        huge = b"From: s@sender.test\n" + b"X-Filler: 0123456789\n" * 60000
        cases = [
            (b"", "the message is empty"),
            (b"From: s@sender.test\nSubject: nul\n\nbody \x00 here\n",
             "NUL byte"),
            (b"Subject: no sender\n\nbody\n", "no From: header"),
            (b"From: s@sender.test\nSubject: x\nbody without the empty "
             b"line\n", "header line 3 is not a header field"),
            (b"From: s@sender.test\nFrom: t@sender.test\n\nbody\n",
             "2 From: headers"),
            (huge + b"\nbody\n", "no end of the header within"),
        ]
        for data, why in cases:
            r = self.inject_file(data)
            err = r.stderr.decode()
            self.assertEqual(r.returncode, 65, (why, err))
            self.assertIn("refused: ", err)
            self.assertIn(why, err)
            self.assertEqual(r.stdout, b"", why)
        # standard input too
        r = subprocess.run([self.bin["sluice"], "--spool", self.path("spool"),
                            "inject", "--from", "s@sender.test", "--to",
                            "u@rcpt.test", "-"], input=b"no header at all\n",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        self.assertEqual(r.returncode, 65, r.stderr)
        self.assertIn(b"header line 1 is not a header field", r.stderr)
        # an 8-bit address that is not UTF-8 (Latin-1) is no address
        f = self.path("good.eml")
        with open(f, "wb") as fh:
            fh.write(GOOD)
        r = subprocess.run([self.bin["sluice"], "--spool", self.path("spool"),
                            "inject", "--from", "s@sender.test", "--to",
                            b"caf\xe9@rcpt.test", f], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 64, r.stderr)
        self.assertIn(b"invalid recipient address", r.stderr)
        info = self.spool_info()
        self.assertEqual(info["deliveries"], before)
        self.assertEqual(info["counts"]["queued"], 1)

    def test_date_and_message_id_added(self):
        port = peers.free_port()
        dns = self.start_dns({"rcpt.test": [(10, "127.0.0.1")]})
        sink = self.start_sink(port, listen="127.0.0.1")
        conf = self.write_config(dns=dns, smtp_port=port)
        bare = b"From: Sender <s@sender.test>\nTo: u@rcpt.test\n" \
               b"Subject: bare\n\nno date, no id\n"
        given = b"From: s@sender.test\r\nDate: Tue, 14 Nov 2023 22:13:20 " \
                b"+0000\r\nMessage-ID: <mine@sender.test>\r\nSubject: " \
                b"given\r\n\r\nkeep them\r\n"
        self.inject("s@sender.test", ["a@rcpt.test", "b@rcpt.test"], bare)
        self.inject("s@sender.test", ["c@rcpt.test"], bare)
        self.inject("s@sender.test", ["d@rcpt.test"], given)
        self.run_sluiced(conf)
        got = {}
        for _, rcpts, raw in sink.captures():
            for r in rcpts:
                got[r] = raw
        self.assertEqual(sorted(got), ["a@rcpt.test", "b@rcpt.test",
                                       "c@rcpt.test", "d@rcpt.test"])
        ids = set()
        for r in ("a@rcpt.test", "c@rcpt.test"):
            m = email.message_from_bytes(got[r], policy=email.policy.default)
            self.assertEqual(str(m["Subject"]), "bare")
            self.assertEqual(len(m.get_all("Date")), 1)
            self.assertEqual(len(m.get_all("Message-ID")), 1)
            when = email.utils.parsedate_to_datetime(str(m["Date"]))
            self.assertIsNotNone(when.tzinfo, m["Date"])
            self.assertLess(abs(time.time() - when.timestamp()), 86400,
                            m["Date"])
            mid = str(m["Message-ID"])
            self.assertRegex(mid, r"^<[0-9a-f]{32}@[A-Za-z0-9.-]+\.[a-z]+>$")
            ids.add(mid)
            self.assertEqual(m.get_content().rstrip(), "no date, no id")
            # added at the end of the header, before the empty line
            head = got[r].split(b"\r\n\r\n", 1)[0].split(b"\r\n")
            self.assertEqual([h.split(b":")[0] for h in head],
                             [b"From", b"To", b"Subject", b"Date",
                              b"Message-ID"])
        self.assertEqual(len(ids), 2, "one Message-ID per injected message")
        self.assertEqual(got["a@rcpt.test"], got["b@rcpt.test"])
        self.assertEqual(got["d@rcpt.test"], given)

    def test_stored_message_breaking_rules_bounces(self):
        port = peers.free_port()
        dns = self.start_dns({"rcpt.test": [(10, "127.0.0.1")]})
        sink = self.start_sink(port, listen="127.0.0.1")
        conf = self.write_config(dns=dns, smtp_port=port)
        raw = os.environ["SLUICE_ENQUEUE_RAW"]
        ids = {}
        for name, data in (("nul", b"From: s@sender.test\nSubject: nul\n\n"
                                   b"a\x00b\n"),
                           ("empty", b""),
                           ("nofrom", b"Subject: old\n\nbody\n")):
            f = self.path(name + ".eml")
            with open(f, "wb") as fh:
                fh.write(data)
            out = subprocess.run([raw, self.path("spool"), "s@sender.test",
                                  name + "@rcpt.test", f], check=True,
                                 stdout=subprocess.PIPE, timeout=60).stdout
            ids[name] = int(out)
        good = self.inject("s@sender.test", ["ok@rcpt.test"], GOOD)
        self.run_sluiced(conf)
        term = self.assert_terminal_once(list(ids.values()) + good)
        self.assertEqual(term[good[0]]["type"], "delivered")
        for name, want in (("nul", "NUL byte"), ("empty", "empty"),
                           ("nofrom", "no From: header")):
            e = term[ids[name]]
            self.assertEqual(e["type"], "bounced", e)
            self.assertEqual(e["enhanced"], "5.6.0", e)
            self.assertIn(want, e["text"])
        caps = sink.captures()
        self.assertEqual([c[1] for c in caps], [["ok@rcpt.test"]])
        self.assertEqual(sink.stats()["messages"], 1)

    def test_smtputf8(self):
        port = peers.free_port()
        dns = self.start_dns({"utf8.test": [(10, "127.0.0.95")],
                              "plain.test": [(10, "127.0.0.96")]})
        utf8 = self.start_sink(port, "127.0.0.95", name="utf8")
        plain = self.start_sink(port, "127.0.0.96", ["--no-smtputf8"],
                                name="plain")
        conf = self.write_config(dns=dns, smtp_port=port)
        who = "\u7528\u6237"   # a UTF-8 local part
        subject = "Gr\u00fc\u00dfe aus K\u00f6ln"
        msg8 = ("From: s@sender.test\nSubject: %s\n\nHallo\n"
                % subject).encode()
        to8 = ("From: s@sender.test\nTo: %s@plain.test\nSubject: x\n\nb\n"
               % who).encode()
        ids = {}
        ids["from8"] = self.inject(who + "@sender.test", ["a@utf8.test"],
                                   ("From: %s@sender.test\nSubject: a\n\nb\n"
                                    % who).encode())[0]
        ids["rcpt8"] = self.inject("s@sender.test", [who + "@utf8.test"],
                                   GOOD)[0]
        ids["rcpt8_plain"] = self.inject("s@sender.test",
                                         [who + "@plain.test"], GOOD)[0]
        ids["hdr8"] = self.inject("s@sender.test", ["h@utf8.test"], msg8)[0]
        ids["hdr8_plain"] = self.inject("s@sender.test", ["h@plain.test"],
                                        msg8)[0]
        ids["addr8_plain"] = self.inject("s@sender.test", ["t@plain.test"],
                                         to8)[0]
        self.run_sluiced(conf)
        term = self.assert_terminal_once(ids.values())
        for k in ("from8", "rcpt8", "hdr8", "hdr8_plain"):
            self.assertEqual(term[ids[k]]["type"], "delivered", term[ids[k]])
        for k in ("rcpt8_plain", "addr8_plain"):
            e = term[ids[k]]
            self.assertEqual(e["type"], "bounced", e)
            self.assertEqual(e["enhanced"], "5.6.7", e)
            self.assertIn("SMTPUTF8 required", e["text"])

        caps = {}
        for sender, rcpts, data, params in (utf8.captures(params=True) +
                                            plain.captures(params=True)):
            caps[rcpts[0]] = (sender, data, params)
        self.assertEqual(sorted(caps), sorted(
            ["a@utf8.test", who + "@utf8.test", "h@utf8.test",
             "h@plain.test"]))
        sender, _, params = caps["a@utf8.test"]
        self.assertEqual(sender, who + "@sender.test")
        self.assertIn("SMTPUTF8", params)
        self.assertIn("SMTPUTF8", caps[who + "@utf8.test"][2])
        # 8-bit header: SMTPUTF8 and 8BITMIME, the header as it was
        _, data, params = caps["h@utf8.test"]
        self.assertIn("SMTPUTF8", params)
        self.assertIn("BODY=8BITMIME", params)
        self.assertIn(("Subject: " + subject).encode(), data)
        # without SMTPUTF8: the 7-bit form, encoded words in the header
        _, data, params = caps["h@plain.test"]
        self.assertNotIn("SMTPUTF8", params)
        head = data.split(b"\r\n\r\n", 1)[0]
        self.assertTrue(all(b < 0x80 for b in head), head)
        self.assertRegex(head, re.compile(rb"Subject: .*=\?utf-8\?",
                                          re.I | re.S))
        m = email.message_from_bytes(data, policy=email.policy.default)
        self.assertEqual(str(m["Subject"]), subject)
        self.assertEqual(plain.stats()["messages"], 1)


if __name__ == "__main__":
    peers.main()
