"""test_tls.py - STARTTLS towards sluice-sink with self-signed certificates.

Cases, in one sluiced run: opportunistic TLS is used and delivers;
tls = required towards a server without STARTTLS defers and sends no mail;
tls_verify = yes against an unknown self-signed certificate defers; and
tls_verify = yes with that certificate's issuer in tls_ca_file and a
matching name delivers.  A server whose STARTTLS handshake fails (it
answers 220, then sends plain text, or closes): with tls = opportunistic
the attempt is deferred with the TLS failure and "without TLS" in the
event, and the next connection delivers in clear; with tls = required
nothing is ever sent in clear.

usage: /usr/bin/python3 test_tls.py SLUICED SLUICE SINK
"""
import signal
import subprocess

import peers
from peers import PeerTest

MSG = "From: s@sender.test\nSubject: tls\n\nsecret\n"


class Tls(PeerTest):

    def make_cert(self, name, cn, san=None):
        cert, key = self.path(name + ".crt"), self.path(name + ".key")
        argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                "-subj", "/CN=" + cn, "-days", "1", "-keyout", key,
                "-out", cert]
        if san:
            argv += ["-addext", "subjectAltName=DNS:" + san]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        return cert, key

    def test_tls_policies(self):
        port = peers.free_port()
        plain_cert, plain_key = self.make_cert("any", "mx.test")
        good_cert, good_key = self.make_cert("good", "mx1.verified.test",
                                             "mx1.verified.test")
        addrs = {"opportunistic.test": "127.0.0.80",
                 "required.test": "127.0.0.81",
                 "unverified.test": "127.0.0.82",
                 "verified.test": "127.0.0.83",
                 "plain.test": "127.0.0.84"}
        dns = self.start_dns({d: [(10, a)] for d, a in addrs.items()})
        tls_any = ["--tls-cert", plain_cert, "--tls-key", plain_key]
        sinks = {
            "opportunistic.test": self.start_sink(
                port, addrs["opportunistic.test"], tls_any, "opp"),
            "required.test": self.start_sink(
                port, addrs["required.test"], tls_any + ["--no-starttls"],
                "nostarttls"),
            "unverified.test": self.start_sink(
                port, addrs["unverified.test"], tls_any, "unverified"),
            "verified.test": self.start_sink(
                port, addrs["verified.test"],
                ["--tls-cert", good_cert, "--tls-key", good_key], "verified"),
            "plain.test": self.start_sink(
                port, addrs["plain.test"], tls_any, "plain"),
        }
        conf = self.write_config(
            dns=dns, smtp_port=port, retry="1s", tls_ca_file=good_cert,
            domains={"required.test": {"tls": "required"},
                     "unverified.test": {"tls": "required",
                                         "tls_verify": "yes"},
                     "verified.test": {"tls": "required",
                                       "tls_verify": "yes"},
                     "plain.test": {"tls": "off"}})
        ids = {d: self.inject("s@sender.test", ["u@" + d], MSG)[0]
               for d in addrs if d != "plain.test"}
        # a 4 MB message with long lines and dot lines, over TLS and clear
        big = (b"From: s@sender.test\nSubject: big\nDate: Tue, 14 Nov "
               b"2023 22:13:20 +0000\nMessage-ID: <big@sender.test>\n\n" +
               b"".join(b".%06d " % i + b"z" * (i % 900) + b"\n"
                        for i in range(8000)))
        big_ids = self.inject("s@sender.test", ["big@opportunistic.test",
                                                "big@plain.test"], big)
        p = self.start_sluiced(conf, exit_when_empty=False)

        def done(ev):
            n = {}
            for e in ev:
                n[e["domain"]] = n.get(e["domain"], 0) + 1
            return n.get("opportunistic.test", 0) >= 2 \
                and n.get("verified.test") and n.get("plain.test") \
                and n.get("required.test", 0) >= 2 \
                and n.get("unverified.test", 0) >= 2
        self.wait_events(done, 40, "outcomes for every TLS domain")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(20), 0, p.output()[-3000:])

        ev = {}
        for e in self.event_log():
            ev.setdefault(e["domain"], []).append(e)
        self.assertEqual([e["type"] for e in ev["opportunistic.test"]],
                         ["delivered", "delivered"])
        self.assertEqual([e["type"] for e in ev["plain.test"]],
                         ["delivered"])
        self.assertEqual([e["type"] for e in ev["verified.test"]],
                         ["delivered"])
        for e in ev["required.test"]:
            self.assertEqual(e["type"], "deferred", e)
            self.assertIn("TLS is required", e["text"])
        for e in ev["unverified.test"]:
            self.assertEqual(e["type"], "deferred", e)
            self.assertIn("verify failed", e["text"])
        self.assert_terminal_once([ids["opportunistic.test"],
                                   ids["verified.test"]] + big_ids, queued=2)

        st = {d: s.stop() for d, s in sinks.items()}
        self.assertGreaterEqual(st["opportunistic.test"]["tls_handshakes"], 1)
        self.assertEqual(st["opportunistic.test"]["messages"], 2)
        self.assertEqual(st["plain.test"]["tls_handshakes"], 0)
        for d in ("opportunistic.test", "plain.test"):
            got = [c for c in sinks[d].captures() if c[1] == ["big@" + d]]
            self.assertEqual(len(got), 1, d)
            self.assertTrue(got[0][2] == peers.crlf(big),
                            "%s: the big message changed in transit" % d)
            self.assertEqual(st[d]["long_lines"], 0, d)
        self.assertGreaterEqual(st["verified.test"]["tls_handshakes"], 1)
        self.assertEqual(st["verified.test"]["messages"], 1)
        # the mail went over TLS: the session saw no clear-text message
        for d in ("required.test", "unverified.test"):
            self.assertEqual(st[d]["messages"], 0, d)
            self.assertEqual(st[d]["recipients"], 0, d)
            self.assertEqual(st[d]["rcpt_tempfail"] + st[d]["rcpt_permfail"],
                             0, d)
            self.assertEqual(sinks[d].captures(), [], d)
        self.assertEqual(st["required.test"]["tls_handshakes"], 0)
        self.assertGreaterEqual(st["required.test"]["sessions"], 2)

    def test_failed_handshake_falls_back(self):
        port = peers.free_port()
        cert, key = self.make_cert("any", "mx.test")
        tls = ["--tls-cert", cert, "--tls-key", key]
        addrs = {"garbage.test": "127.0.0.90", "closes.test": "127.0.0.91",
                 "strict.test": "127.0.0.92"}
        dns = self.start_dns({d: [(10, a)] for d, a in addrs.items()})
        sinks = {
            "garbage.test": self.start_sink(port, addrs["garbage.test"],
                                            tls + ["--mode", "tls-garbage"],
                                            "garbage"),
            "closes.test": self.start_sink(port, addrs["closes.test"],
                                           tls + ["--mode", "tls-close"],
                                           "closes"),
            "strict.test": self.start_sink(port, addrs["strict.test"],
                                           tls + ["--mode", "tls-garbage"],
                                           "strict"),
        }
        conf = self.write_config(
            dns=dns, smtp_port=port, retry="1s",
            domains={"garbage.test": {"tls": "opportunistic"},
                     "closes.test": {"tls": "opportunistic"},
                     "strict.test": {"tls": "required"}})
        ids = {d: self.inject("s@sender.test", ["u@" + d], MSG)[0]
               for d in addrs}
        p = self.start_sluiced(conf, exit_when_empty=False)

        def done(ev):
            got = {}
            for e in ev:
                got.setdefault(e["domain"], []).append(e["type"])
            return "delivered" in got.get("garbage.test", []) \
                and "delivered" in got.get("closes.test", []) \
                and len(got.get("strict.test", [])) >= 3
        self.wait_events(done, 60, "fallback deliveries and strict retries")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(20), 0, p.output()[-3000:])

        ev = {}
        for e in self.event_log():
            ev.setdefault(e["domain"], []).append(e)
        for d in ("garbage.test", "closes.test"):
            types = [e["type"] for e in ev[d]]
            # one attempt with STARTTLS that failed, then clear text
            self.assertEqual(types, ["deferred", "delivered"], ev[d])
            text = ev[d][0]["text"]
            self.assertIn("TLS", text)
            self.assertIn("without TLS", text)
        self.assertIn("lost connection", ev["closes.test"][0]["text"])
        for e in ev["strict.test"]:
            self.assertEqual(e["type"], "deferred", e)
            self.assertNotIn("without TLS", e["text"])
        self.assert_terminal_once([ids["garbage.test"], ids["closes.test"]],
                                  queued=1)
        st = {d: s.stop() for d, s in sinks.items()}
        for d in ("garbage.test", "closes.test"):
            self.assertEqual(st[d]["messages"], 1, d)
            self.assertEqual(st[d]["tls_handshakes"], 0, d)
            self.assertGreaterEqual(st[d]["tls_failures"], 1, d)
            self.assertEqual(len(sinks[d].captures()), 1, d)
        # required: every session tried STARTTLS, none sent mail in clear
        self.assertEqual(st["strict.test"]["messages"], 0)
        self.assertEqual(st["strict.test"]["recipients"], 0)
        self.assertEqual(sinks["strict.test"].captures(), [])
        self.assertGreaterEqual(st["strict.test"]["tls_failures"], 3)
        self.assertEqual(st["strict.test"]["tls_failures"],
                         st["strict.test"]["sessions"])


if __name__ == "__main__":
    peers.main()
