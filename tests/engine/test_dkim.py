"""test_dkim.py - sluiced signs what it delivers, and only with the right key.

Every message the sinks capture is checked by two independent verifiers,
dkimpy and opendkim-testmsg, against TXT records served by dnsmasq
(tests/dkim/verifiers.py; every signature of a dual-signed message on its
own).  Shapes: folded headers, empty body, no final
line end with bare LFs, a line over 998 octets, a raw UTF-8 subject, an
8-bit body, multipart/alternative, leading dots; rsa-sha256 alone,
ed25519-sha256 alone and both on one message; a From: subdomain signed by
its verified parent.  A second sink offers no 8BITMIME: what it receives is
7-bit and still verifies.

Tenancy: a message is signed only with a key of its own account's verified
domain.  Another account's domain, a verified domain without a key, and an
account with no domains are all held back (deferred) with the reason in
the event log; an account that allows unsigned mail is delivered unsigned;
a message without From: is bounced.  A key readable by others is refused
by `sluiced -t` and by a reload, which keeps the running keys; a key added
and loaded by SIGHUP signs the held-back mail on its next try.

usage: /usr/bin/python3 test_dkim.py SLUICED SLUICE SINK
  with SLUICE_DKIM_TOOL (tests/dkim's dkim_sign_tool) in the environment.
"""
import hashlib
import os
import re
import signal
import time
import subprocess
import sys
import unittest

import peers
from peers import PeerTest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "dkim"))
import verifiers  # noqa: E402

TOOL = os.environ.get("SLUICE_DKIM_TOOL", "")

# domain -> [(selector, algorithm)] keys made for the test
KEYS = {
    "dual.test": [("rsa1", "rsa"), ("ed1", "ed25519")],
    "rsa.test": [("s2048", "rsa")],
    "ed.test": [("e1", "ed25519")],
    "other.test": [("o1", "rsa")],
}


def msg(frm, subject, body, extra=b""):
    return (b"From: " + frm + b"\r\nTo: someone@dest.test\r\n"
            b"Subject: " + subject + b"\r\n"
            b"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
            b"Message-ID: <" + hashlib.sha1(subject).hexdigest().encode() +
            b"@sluice.test>\r\n" + extra + b"\r\n" + body)


# name -> (From domain, expected d=, number of signatures, raw message)
SHAPES = {
    "plain": ("dual.test", 2, msg(b"Alice <alice@dual.test>", b"plain",
                                  b"Hello.\r\n")),
    "folded": ("dual.test", 2, (
        b"From: Alice\r\n  <alice@dual.test>\r\nTo: a@dest.test,\r\n"
        b"\tb@dest.test,   \r\n c@dest.test\r\n"
        b"Subject:   a   folded\t subject  \r\n   over lines  \r\n"
        b"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
        b"Reply-To: r@dual.test\r\nList-Unsubscribe: <mailto:u@dual.test>,"
        b"\r\n  <https://dual.test/u/1>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        b"Feedback-ID: 1:2:3:sluice\r\n\r\nbody  with  spaces \t\r\n\r\n\r\n")),
    "empty-body": ("dual.test", 2, msg(b"a@dual.test", b"empty", b"")),
    "bare-lf-no-final": ("rsa.test", 1, (
        b"From: a@rsa.test\nSubject: bare lf\nTo: x@dest.test\n"
        b"Date: Sun, 22 Nov 2026 10:00:00 +0000\n\n"
        b"one\ntwo\r\nthree without end")),
    "long-line": ("ed.test", 1, msg(b"a@ed.test", b"long line",
                                    b"start\r\n" + b"x" * 3000 +
                                    b"\r\nend\r\n")),
    "utf8-subject": ("dual.test", 2, msg(
        b"=?UTF-8?Q?J=C3=B6rg?= <j@dual.test>",
        "Grüße aus Köln ✓".encode(), b"Plain body.\r\n",
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n")),
    "8bit-body": ("rsa.test", 1, msg(
        b"a@rsa.test", b"8bit body",
        "Ünïcödé text, € and ✓\r\n.dot line\r\n".encode(),
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n")),
    "multipart": ("dual.test", 2, msg(
        b"News <news@dual.test>", b"multipart",
        b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"text part\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"\r\n<p>html part</p>\r\n--b1--\r\n",
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/alternative; boundary=\"b1\"\r\n")),
    "dots": ("ed.test", 1, msg(b"a@ed.test", b"dots",
                               b".hidden\r\n..two\r\n.\r\nend\r\n")),
    "subdomain": ("dual.test", 2, msg(b"a@news.dual.test", b"subdomain",
                                      b"From a subdomain.\r\n")),
}
SEVEN_BIT = ("long-line", "utf8-subject", "8bit-body", "plain")


def sig_domains(raw):
    """d= values of every DKIM-Signature header, in order."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    head = re.sub(rb"\r\n[ \t]+", b" ", head)
    out = []
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"dkim-signature:"):
            m = re.search(rb"[; ]d=([^;\s]+)", line)
            out.append(m.group(1).decode() if m else None)
    return out


class Dkim(PeerTest):

    def make_keys(self, root, keys):
        """Make keys under root/DOMAIN/SEL.key; returns TXT records."""
        records = {}
        for dom, sels in keys.items():
            os.makedirs(os.path.join(root, dom), mode=0o700, exist_ok=True)
            for sel, algo in sels:
                path = os.path.join(root, dom, sel + ".key")
                r = subprocess.run([TOOL, "keygen", algo, "2048", path],
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, check=True)
                records["%s._domainkey.%s" % (sel, dom)] = \
                    r.stdout.decode().strip()
        return records

    def check_signed(self, records, captured, expect):
        """Every captured message verifies with both verifiers and has the
        expected signatures; expect maps subject -> (d=, count)."""
        with verifiers.Verifiers(self.path("verify"), records) as v:
            results = v.verify([(n, raw) for n, raw in captured])
        for (name, raw), res in zip(captured, results):
            d, n = expect[name]
            self.assertEqual(sig_domains(raw), [d] * n, name)
            self.assertTrue(res.ok, "%s: %s" % (name, res.describe()))
        return results

    def test_signing_and_tenancy(self):
        port = peers.free_port()
        keys = self.path("keys")
        records = self.make_keys(keys, KEYS)
        dns = self.start_dns({"dest.test": [(10, "127.0.0.1")],
                              "seven.test": [(10, "127.0.0.2")]})
        sink = self.start_sink(port, listen="127.0.0.1")
        sink7 = self.start_sink(port, listen="127.0.0.2",
                                args=["--no-8bitmime"], name="sink7")
        accounts = {
            7: {"domains": "dual.test, rsa.test, ed.test, nokey.test"},
            8: {"domains": "other.test"},
            10: {"allow_unsigned": "yes"},
        }
        conf = self.write_config(dns=dns, smtp_port=port, dkim_keys=keys,
                                 accounts=accounts, allow_unsigned=False)
        r = subprocess.run([self.bin["sluiced"], "-t", "-c", conf],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn(b"5 DKIM keys for 5 domains", r.stdout)

        ids = {}
        for name, (_, _, raw) in SHAPES.items():
            ids[name] = self.inject("x@bounce.test", ["%s@dest.test" % name],
                                    raw, account=7)
        for name in SEVEN_BIT:
            ids["7bit-" + name] = self.inject(
                "x@bounce.test", ["%s@seven.test" % name], SHAPES[name][2],
                account=7)
        held = {
            "tenant": (8, msg(b"a@dual.test", b"tenant", b"not yours\r\n")),
            "nokey": (7, msg(b"a@nokey.test", b"nokey", b"no key yet\r\n")),
            "nodomain": (9, msg(b"a@free.test", b"nodomain", b"who?\r\n")),
        }
        for name, (acct, raw) in held.items():
            ids[name] = self.inject("x@bounce.test", [name + "@dest.test"],
                                    raw, account=acct)
        ids["unsigned"] = self.inject(
            "x@bounce.test", ["unsigned@dest.test"],
            msg(b"a@free.test", b"unsigned", b"plain\r\n"), account=10)
        # a message without an author is refused at the door (65)
        nofrom = self.path("nofrom.eml")
        with open(nofrom, "wb") as f:
            f.write(b"To: x@dest.test\r\nSubject: nofrom\r\n\r\n"
                    b"no author\r\n")
        r = self.sluice("inject", "--account", "7", "--from", "x@bounce.test",
                        "--to", "nofrom@dest.test", nofrom, check=False)
        self.assertEqual(r.returncode, 65, r.stderr)
        self.assertIn(b"no From: header", r.stderr)

        p = self.start_sluiced(conf, exit_when_empty=False)
        delivered = [i for k, v in ids.items() for i in v
                     if k not in held]
        self.wait_events(lambda evs: {e["delivery"] for e in evs
                                      if e["type"] in ("delivered",
                                                       "bounced")}
                         >= set(delivered), 30, "deliveries")
        self.wait_events(lambda evs: {e["delivery"] for e in evs
                                      if e["type"] == "deferred"}
                         >= {ids[k][0] for k in held}, 30, "deferrals")
        evs = self.event_log()
        why = {e["delivery"]: e for e in evs if e["type"] == "deferred"}
        self.assertIn("dual.test is not a verified domain of account 8",
                      why[ids["tenant"][0]]["text"])
        self.assertIn("no DKIM key for nokey.test",
                      why[ids["nokey"][0]]["text"])
        self.assertIn("free.test is not a verified domain of account 9",
                      why[ids["nodomain"][0]]["text"])
        self.assertEqual([e for e in evs if e["type"] == "bounced"], [])

        # what reached the sinks: only the signed shapes and the unsigned
        # account's message; nothing of the held-back ones
        got = {}
        for _, rcpts, raw in sink.captures():
            got[rcpts[0].split("@")[0]] = raw
        self.assertEqual(set(got), set(SHAPES) | {"unsigned"})
        self.assertEqual(sig_domains(got.pop("unsigned")), [])
        got7 = {}
        for _, rcpts, raw in sink7.captures():
            got7[rcpts[0].split("@")[0]] = raw
        self.assertEqual(set(got7), set(SEVEN_BIT))
        for name, raw in got7.items():
            self.assertTrue(all(b < 0x80 for b in raw),
                            "%s reached a 7-bit receiver with 8-bit "
                            "octets" % name)
            self.assertTrue(all(len(line) <= 998
                                for line in raw.split(b"\r\n")), name)
        self.assertTrue(all(len(line) <= 998 for line in
                            got["long-line"].split(b"\r\n")))
        # the 8-bit forms went to the 8BITMIME sink as 8-bit
        self.assertIn("Ünïcödé".encode(), got["8bit-body"])
        captured = sorted(got.items()) + \
            [("7bit-" + n, raw) for n, raw in sorted(got7.items())]
        expect = {n: (d, c) for n, (d, c, _) in SHAPES.items()}
        expect.update({"7bit-" + n: expect[n] for n in SEVEN_BIT})
        self.check_signed(records, captured, expect)

        # a key readable by others: -t refuses it, a reload keeps the
        # running keys
        bad = os.path.join(keys, "nokey.test")
        os.makedirs(bad, mode=0o700)
        records.update(self.make_keys(keys, {"nokey.test": [("n1", "rsa")]}))
        os.chmod(os.path.join(bad, "n1.key"), 0o644)
        r = subprocess.run([self.bin["sluiced"], "-t", "-c", conf],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertEqual(r.returncode, 78, r.stdout)
        self.assertIn(b"n1.key", r.stdout)
        self.assertIn(b"group or others", r.stdout)
        p.signal(signal.SIGHUP)
        peers.wait_for(lambda: "keeping the running configuration and keys"
                       in p.output(), 10, "reload refused")
        # fixed: the reload loads it and the held-back message is signed
        os.chmod(os.path.join(bad, "n1.key"), 0o600)
        p.signal(signal.SIGHUP)
        peers.wait_for(lambda: "6 DKIM keys for 5 domains" in p.output(),
                       10, "reload with the new key")
        self.wait_events(lambda evs: any(e["type"] == "delivered" and
                                         e["delivery"] == ids["nokey"][0]
                                         for e in evs), 30, "nokey delivered")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(20), 0, p.output()[-2000:])
        got = {rcpts[0].split("@")[0]: raw
               for _, rcpts, raw in sink.captures()}
        self.check_signed(records, [("nokey", got["nokey"])],
                          {"nokey": ("nokey.test", 1)})
        # the other tenants' messages never left
        self.assertNotIn("tenant", got)
        self.assertNotIn("nodomain", got)

    def test_signing_off(self):
        """dkim_sign = no: a verified domain with keys still leaves
        unsigned, and nothing is held back for want of a key."""
        port = peers.free_port()
        keys = self.path("keys")
        self.make_keys(keys, {"rsa.test": [("r1", "rsa")]})
        dns = self.start_dns({"dest.test": [(10, "127.0.0.1")]})
        sink = self.start_sink(port, listen="127.0.0.1")
        conf = self.write_config(dns=dns, smtp_port=port, dkim_keys=keys,
                                 dkim_sign="no",
                                 accounts={7: {"domains": "rsa.test"}},
                                 allow_unsigned=False)
        ids = [self.inject("x@bounce.test", ["a@dest.test"],
                           msg(b"a@rsa.test", b"off", b"plain\r\n"),
                           account=7)[0],
               self.inject("x@bounce.test", ["b@dest.test"],
                           msg(b"a@free.test", b"free", b"plain\r\n"),
                           account=9)[0]]
        p = self.start_sluiced(conf)
        self.assertEqual(p.wait(30), 0, p.output()[-2000:])
        self.assertEqual(sorted(e["delivery"] for e in self.event_log()
                                if e["type"] == "delivered"), sorted(ids))
        caps = sink.captures()
        self.assertEqual(len(caps), 2)
        for _, _, raw in caps:
            self.assertEqual(sig_domains(raw), [])

    def test_spool_accounts(self):
        """Accounts and sending domains made with `sluice account` and
        `sluice domain`: mail of a verified domain is signed with the key
        `domain add` made; an unverified one is held back; a daily cap
        holds the rest of the day's mail in the spool; a disabled account's
        mail waits; enabling it (seen within a second) lets it go."""
        port = peers.free_port()
        dns = self.start_dns({"dest.test": [(10, "127.0.0.1")]})
        sink = self.start_sink(port, listen="127.0.0.1")
        self.sluice("account", "create", "master")
        self.sluice("account", "create", "shop")
        self.sluice("account", "create", "capped", "--daily-cap", "3")
        self.sluice("account", "create", "off")
        for dom, acct in (("shop.test", "shop"), ("pending.test", "shop"),
                          ("capped.test", "capped"), ("off.test", "off")):
            self.sluice("domain", "add", dom, "--account", acct,
                        "--selector", "s1")
        for dom in ("shop.test", "capped.test", "off.test"):
            self.sluice("domain", "verify", dom, "--force")
        records = {}
        for dom in ("shop.test", "capped.test", "off.test"):
            path = os.path.join(self.path("spool"), "dkim", dom, "s1.key")
            records["s1._domainkey." + dom] = verifiers.key_txt(path)
        conf = self.write_config(dns=dns, smtp_port=port,
                                 allow_unsigned=False, pause_recheck="2s")
        ids = {}
        ids["shop"] = self.inject("x@bounce.test", ["shop@dest.test"],
                                  msg(b"a@shop.test", b"shop", b"hi\r\n"),
                                  account="shop")
        # a domain not verified yet: refused at injection
        pend = self.path("pending.eml")
        with open(pend, "wb") as f:
            f.write(msg(b"a@pending.test", b"pending", b"no\r\n"))
        r = self.sluice("inject", "--from", "x@bounce.test", "--account",
                        "shop", "--to", "p@dest.test", pend, check=False)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn(b"pending.test", r.stderr)
        capped = [self.inject("x@bounce.test", ["c%d@dest.test" % i],
                              msg(b"a@capped.test", b"cap %d" % i,
                                  b"capped\r\n"), account="capped")[0]
                  for i in range(5)]
        ids["off"] = self.inject("x@bounce.test", ["off@dest.test"],
                                 msg(b"a@off.test", b"off", b"later\r\n"),
                                 account="off")
        self.sluice("account", "disable", "off")
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.wait_events(lambda evs: len([e for e in evs
                                          if e["type"] == "delivered"]) >= 4,
                         30, "four deliveries")
        time.sleep(1.5)
        got = {rcpts[0].split("@")[0]: raw
               for _, rcpts, raw in sink.captures()}
        self.assertIn("shop", got)
        self.assertNotIn("off", got, "a disabled account's mail left")
        self.assertEqual(len([k for k in got if k.startswith("c")]), 3,
                         "the daily cap of 3 let %r through" % sorted(got))
        # the held mail waits in the spool, not bounced or deferred
        evs = self.event_log()
        held = set(capped) | set(ids["off"])
        self.assertFalse([e for e in evs if e["delivery"] in held and
                          e["type"] != "delivered"])
        self.sluice("account", "enable", "off")
        self.wait_events(lambda evs: any(e["delivery"] == ids["off"][0] and
                                         e["type"] == "delivered"
                                         for e in evs), 40, "off delivered")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(20), 0, p.output()[-2000:])
        got = {rcpts[0].split("@")[0]: raw
               for _, rcpts, raw in sink.captures()}
        names = ["shop", "off"] + [k for k in got if k.startswith("c")]
        expect = {"shop": ("shop.test", 1), "off": ("off.test", 1)}
        expect.update({k: ("capped.test", 1) for k in names
                       if k.startswith("c")})
        self.check_signed(records, [(n, got[n]) for n in names], expect)
        # two of the capped account's messages are still queued
        self.assertEqual(self.spool_info()["counts"]["queued"], 2)


if __name__ == "__main__":
    peers.main()
