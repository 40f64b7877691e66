"""test_dkim_rotation.py - a sending domain's DKIM selectors in a running
sluiced: dual signing and key rotation through `sluice domain key`.

A sub-account's domain rot.test starts with one rsa selector (r1), verified
over DNS; an ed25519 key made earlier with `sluice dkim keygen` is adopted
by `domain key add` (e1) and stays pending.  dnsmasq publishes both
records, as the admin would at their DNS provider.

  - pending keys do not sign: the first message carries r1's signature
    only;
  - `domain verify` (while sluiced runs, no reload or signal) verifies e1
    too: sluiced picks it up by itself and the next message carries two
    signatures, rsa-sha256 s=r1 and ed25519-sha256 s=e1;
  - `domain key retire --selector r1 --after 2s`: once the date has passed
    sluiced says so in its log without any command, and the next message
    carries e1's signature only.

Every captured message is checked by dkimpy and opendkim-testmsg
(tests/dkim/verifiers.py), each signature on its own, against the records
dnsmasq serves.  Waits are for conditions with generous deadlines; nothing
is timed.

usage: /usr/bin/python3 test_dkim_rotation.py SLUICED SLUICE SINK
"""
import json
import os
import re
import signal
import sys

import peers
from peers import PeerTest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "dkim"))
import verifiers  # noqa: E402


def msg(subject):
    return (b"From: Shop <news@rot.test>\r\nTo: someone@dest.test\r\n"
            b"Subject: " + subject + b"\r\n"
            b"Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
            b"Message-ID: <" + subject.replace(b" ", b".") +
            b"@rot.test>\r\n\r\nHello from the rotation test.\r\n")


def signatures(raw):
    """(a=, s=, d=) of every DKIM-Signature field, top down."""
    head = re.sub(rb"\r\n[ \t]+", b" ", raw.split(b"\r\n\r\n", 1)[0])
    out = []
    for line in head.split(b"\r\n"):
        if not line.lower().startswith(b"dkim-signature:"):
            continue
        tags = dict((m.group(1).decode(), m.group(2).decode())
                    for m in re.finditer(rb"[; :]([a-z]+)=([^;\s]+)", line))
        out.append((tags.get("a"), tags.get("s"), tags.get("d")))
    return out


def txt_line(name, value):
    """A dnsmasq txt-record line, the value cut into 255-octet strings."""
    parts = [value[i:i + 255] for i in range(0, len(value), 255)]
    return "txt-record=%s,%s" % (name, ",".join('"%s"' % p for p in parts))


class Rotation(PeerTest):

    def deliver(self, p, name, sink):
        """Inject one message of shop, wait for its delivery; its bytes as
        the sink captured them."""
        ids = self.inject("x@bounce.test", [name + "@dest.test"],
                          msg(name.encode()), account="shop")
        self.wait_events(lambda evs: any(e["type"] == "delivered" and
                                         e["delivery"] == ids[0]
                                         for e in evs), 30, name)
        got = {rcpts[0].split("@")[0]: raw
               for _, rcpts, raw in sink.captures()}
        self.assertIn(name, got, p.output()[-2000:])
        return got[name]

    def test_dual_signing_and_rotation(self):
        port = peers.free_port()
        spool = self.path("spool")
        self.sluice("account", "create", "master")
        self.sluice("account", "create", "shop")
        self.sluice("domain", "add", "rot.test", "--account", "shop",
                    "--selector", "r1")
        # a key made apart, then adopted by `domain key add`
        self.sluice("dkim", "keygen", "rot.test", "--selector", "e1",
                    "--algo", "ed25519")
        keys = {s: os.path.join(spool, "dkim", "rot.test", s + ".key")
                for s in ("r1", "e1")}
        records = {"%s._domainkey.rot.test" % s: verifiers.key_txt(k)
                   for s, k in keys.items()}
        dns = self.start_dns({"dest.test": [(10, "127.0.0.1")]},
                             extra=[txt_line(n, v)
                                    for n, v in records.items()])
        self.sluice("domain", "verify", "rot.test", "--dns-server", dns)
        r = json.loads(self.sluice("--json", "domain", "key", "add",
                                   "rot.test", "--selector", "e1", "--algo",
                                   "ed25519").stdout)
        self.assertFalse(r["key_created"], r)
        self.assertEqual(r["state"], "pending")
        sink = self.start_sink(port, listen="127.0.0.1")
        conf = self.write_config(dns=dns, smtp_port=port,
                                 allow_unsigned=False)
        p = self.start_sluiced(conf, exit_when_empty=False)
        captured = []

        # e1 is pending: r1 alone signs
        raw = self.deliver(p, "pending", sink)
        self.assertEqual(signatures(raw), [("rsa-sha256", "r1", "rot.test")])
        captured.append(("pending", raw))

        # verified while sluiced runs: both sign, no reload asked for
        r = self.sluice("domain", "verify", "rot.test", "--dns-server", dns)
        self.assertIn(b"selector e1 verified", r.stdout)
        peers.wait_for(lambda: "2 DKIM keys for 1 domains" in p.output(), 30,
                       "sluiced loads the verified key")
        raw = self.deliver(p, "dual", sink)
        self.assertEqual(sorted(signatures(raw)),
                         [("ed25519-sha256", "e1", "rot.test"),
                          ("rsa-sha256", "r1", "rot.test")])
        captured.append(("dual", raw))

        # r1 retires two seconds from now; nothing else is done
        self.sluice("domain", "key", "retire", "rot.test", "--selector",
                    "r1", "--after", "2s")
        peers.wait_for(lambda: "DKIM selector r1 of rot.test retired"
                       in p.output(), 60, "r1's retire date passing")
        raw = self.deliver(p, "retired", sink)
        self.assertEqual(signatures(raw),
                         [("ed25519-sha256", "e1", "rot.test")])
        captured.append(("retired", raw))
        listed = json.loads(self.sluice("--json", "domain", "key", "list",
                                        "rot.test").stdout)
        self.assertEqual({k["selector"]: k["state"]
                          for k in listed["selectors"]},
                         {"r1": "retired", "e1": "active"})

        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(20), 0, p.output()[-2000:])
        with verifiers.Verifiers(self.path("verify"), records) as v:
            results = v.verify(captured)
        for (name, _), res in zip(captured, results):
            self.assertTrue(res.ok, res.describe())
        self.assertEqual([res.nsigs for res in results], [1, 2, 1])


if __name__ == "__main__":
    peers.main()
