"""test_failures.py - what sluiced does when DNS or the receiver says no,
says "later", misbehaves or stalls.

Cases: null MX / NXDOMAIN / SERVFAIL; a 421 greeting then success on
retry; per-recipient permfail, block and quota replies; a disconnect after
the final dot until the delivery expires; garbage, multiline-mismatch and
overlong replies beside a healthy domain; a server that drips its greeting.

usage: /usr/bin/python3 test_failures.py SLUICED SLUICE SINK
"""
import signal
import time

import peers
from peers import PeerTest

MSG = "From: s@sender.test\nSubject: t\n\nbody\n"
TERMINAL = ("delivered", "bounced", "expired", "suppressed", "cancelled")


def by_rcpt(events):
    out = {}
    for e in events:
        out.setdefault(e["rcpt"], []).append(e)
    return out


class Failures(PeerTest):

    def stop_sluiced(self, p):
        p.signal(signal.SIGTERM)
        rc = p.wait(20)
        self.assertEqual(rc, 0, p.output()[-3000:])

    def test_dns_outcomes(self):
        """Null MX bounces 5.1.10, NXDOMAIN bounces 5.1.2, SERVFAIL defers
        4.4.3 and stays queued; a good domain beside them is delivered."""
        port = peers.free_port()
        dns = self.start_dns({"good.test": [(10, "127.0.0.60")]},
                             extra=["mx-host=nullmx.test,.,0"],
                             servfail_domains=["servfail.test"])
        sink = self.start_sink(port)
        conf = self.write_config(dns=dns, smtp_port=port)
        ids = {}
        for r in ("u@nullmx.test", "u@nxdomain.test", "u@servfail.test",
                  "u@good.test"):
            ids[r] = self.inject("s@sender.test", [r], MSG)[0]
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.wait_events(lambda ev: len(by_rcpt(ev)) == 4 and
                         len(by_rcpt(ev)["u@servfail.test"]) >= 2, 30,
                         "four outcomes and a retried SERVFAIL")
        self.assertTrue(p.alive())
        self.stop_sluiced(p)

        ev = by_rcpt(self.event_log())
        null, = ev["u@nullmx.test"]
        self.assertEqual((null["type"], null["enhanced"], null["category"]),
                         ("bounced", "5.1.10", "bad-domain"))
        nx, = ev["u@nxdomain.test"]
        self.assertEqual((nx["type"], nx["enhanced"], nx["category"]),
                         ("bounced", "5.1.2", "bad-domain"))
        for e in ev["u@servfail.test"]:
            self.assertEqual((e["type"], e["enhanced"]), ("deferred", "4.4.3"),
                             e)
        self.assertEqual(ev["u@good.test"][0]["type"], "delivered")
        self.assert_terminal_once([ids["u@nullmx.test"], ids["u@nxdomain.test"],
                                   ids["u@good.test"]], queued=1)
        hist = self.history(ids["u@servfail.test"])
        self.assertGreaterEqual(len(hist), 2)
        self.assertEqual({h["type"] for h in hist}, {"deferred"})
        self.assertEqual(sink.stop()["messages"], 1)

    def test_every_mx_dead(self):
        """Both MX hosts refuse connections: the 30 waiting messages are
        deferred at once (4.4.1, connect refused), after a bounded number
        of connection attempts, not retried in a tight loop."""
        port = peers.free_port()
        dns = self.start_dns({"dead.test": [(10, "127.0.0.65"),
                                            (20, "127.0.0.66")]})
        conf = self.write_config(dns=dns, smtp_port=port, retry="1h")
        ids = []
        for i in range(30):
            ids += self.inject("s@sender.test", ["u%d@dead.test" % i], MSG)
        p = self.start_sluiced(conf, exit_when_empty=False, verbose=True)
        self.wait_events(lambda ev: len(ev) >= 30, 20, "30 deferrals")
        time.sleep(1)
        self.stop_sluiced(p)
        ev = self.event_log()
        self.assertEqual(len(ev), 30)
        for e in ev:
            self.assertEqual((e["type"], e["enhanced"]), ("deferred", "4.4.1"))
            self.assertIn("refused", e["text"])
        # both addresses were tried; a few sessions, not thousands
        out = p.output()
        self.assertIn("mx1.dead.test", out)
        self.assertIn("mx2.dead.test", out)
        self.assertLess(out.count("-> closing"), 100)
        self.assertEqual(self.spool_info()["counts"]["queued"], 30)

    def test_tempfail_then_delivered_on_retry(self):
        """A receiver that greets 421 defers the mail; once a working
        receiver is back the retry delivers it, attempts >= 2."""
        port = peers.free_port()
        dns = self.start_dns({"later.test": [(10, "127.0.0.61")]})
        bad = self.start_sink(port, args=["--mode", "greet-421"], name="bad")
        conf = self.write_config(dns=dns, smtp_port=port, retry="1s")
        ids = self.inject("s@sender.test", ["u@later.test"], MSG)
        p = self.start_sluiced(conf)
        self.wait_events(lambda ev: any(e["type"] == "deferred" for e in ev),
                         20, "a deferred event")
        bad.stop()
        good = self.start_sink(port, name="good")
        rc = p.wait(30)
        self.assertEqual(rc, 0, p.output()[-3000:])
        term = self.assert_terminal_once(ids)
        d = term[ids[0]]
        self.assertEqual(d["type"], "delivered")
        self.assertGreaterEqual(d["attempt"], 2)
        log = [e for e in self.event_log() if e["type"] == "delivered"]
        self.assertGreaterEqual(log[0]["attempts"], 2)
        hist = self.history(ids[0])
        self.assertEqual(hist[0]["type"], "deferred")
        self.assertEqual(hist[0]["code"], 421)
        self.assertEqual(hist[-1]["type"], "delivered")
        self.assertEqual(good.stop()["messages"], 1)

    def test_recipient_replies(self):
        """In one transaction: permfail bounces bad-mailbox, block bounces
        policy-related, quota (452) defers, the good one is delivered."""
        port = peers.free_port()
        dns = self.start_dns({"mixed.test": [(10, "127.0.0.62")]})
        sink = self.start_sink(port)
        conf = self.write_config(dns=dns, smtp_port=port, retry="1s")
        rc = ["ok@mixed.test", "permfail1@mixed.test", "block1@mixed.test",
              "quota1@mixed.test"]
        ids = dict(zip(rc, self.inject("s@sender.test", rc, MSG)))
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.wait_events(lambda ev: len(by_rcpt(ev)) == 4 and
                         len(by_rcpt(ev)["quota1@mixed.test"]) >= 2,
                         30, "outcomes and a retried quota")
        self.stop_sluiced(p)
        ev = by_rcpt(self.event_log())
        self.assertEqual([e["type"] for e in ev["ok@mixed.test"]],
                         ["delivered"])
        pf, = ev["permfail1@mixed.test"]
        self.assertEqual((pf["type"], pf["code"], pf["category"]),
                         ("bounced", 550, "bad-mailbox"))
        bl, = ev["block1@mixed.test"]
        self.assertEqual((bl["type"], bl["code"], bl["category"]),
                         ("bounced", 554, "policy-related"))
        for e in ev["quota1@mixed.test"]:
            self.assertEqual((e["type"], e["code"], e["enhanced"]),
                             ("deferred", 452, "4.2.2"))
        self.assert_terminal_once([ids[r] for r in rc[:3]], queued=1)
        st = sink.stop()
        # the first transaction carried the good recipient; retries of the
        # quota recipient alone are refused at RCPT and send no message
        self.assertEqual(st["messages"], 1)
        caps = sink.captures()
        self.assertEqual(caps[0][1], ["ok@mixed.test"])

    def test_disconnect_after_dot_expires_once(self):
        """The receiver drops the connection after the final dot every
        time: deferred (maybe delivered: at-least-once), then expired at
        max_age, with exactly one terminal event."""
        port = peers.free_port()
        dns = self.start_dns({"drop.test": [(10, "127.0.0.63")],
                              "fine.test": [(10, "127.0.0.64")]})
        sink = self.start_sink(port)
        conf = self.write_config(dns=dns, smtp_port=port, retry="1s",
                                 max_age="3s")
        ids = self.inject("s@sender.test", ["disconnect1@drop.test"], MSG)
        ok = self.inject("s@sender.test", ["u@fine.test"], MSG)
        self.run_sluiced(conf, timeout=40)
        term = self.assert_terminal_once(ids + ok)
        self.assertEqual(term[ids[0]]["type"], "expired")
        self.assertEqual(term[ok[0]]["type"], "delivered")
        hist = self.history(ids[0])
        defer = [h for h in hist if h["type"] == "deferred"]
        self.assertGreaterEqual(len(defer), 1)
        for h in defer:
            self.assertIn("lost connection", h["text"])
        self.assertEqual([h["type"] for h in hist if h["type"] in TERMINAL],
                         ["expired"])
        st = sink.stop()
        self.assertGreaterEqual(st["dropped_after_data"], 1)

    def test_protocol_errors_do_not_stop_others(self):
        """Garbage, a multiline reply that changes code and a 100 KB line
        each defer their domain with a protocol error; the healthy domain
        is delivered and sluiced keeps running."""
        port = peers.free_port()
        modes = {"garbage": "127.0.0.70", "multiline-mismatch": "127.0.0.71",
                 "overlong": "127.0.0.72"}
        doms = {m + ".test": [(10, a)] for m, a in modes.items()}
        doms["healthy.test"] = [(10, "127.0.0.73")]
        dns = self.start_dns(doms)
        for m, a in modes.items():
            self.start_sink(port, listen=a, args=["--mode", m], name=m)
        good = self.start_sink(port, listen="127.0.0.73", name="healthy")
        conf = self.write_config(dns=dns, smtp_port=port, retry="1s")
        ids = {}
        for d in doms:
            ids[d] = self.inject("s@sender.test", ["u1@" + d, "u2@" + d], MSG)
        p = self.start_sluiced(conf, exit_when_empty=False)

        def done(ev):
            b = by_rcpt(ev)
            return all(len(b.get("u1@%s.test" % m, [])) >= 2 for m in modes) \
                and "u2@healthy.test" in b
        self.wait_events(done, 30, "two attempts at each broken domain")
        self.assertTrue(p.alive(), "sluiced died")
        self.stop_sluiced(p)
        ev = by_rcpt(self.event_log())
        for m in modes:
            for e in ev["u1@%s.test" % m] + ev["u2@%s.test" % m]:
                self.assertEqual(e["type"], "deferred", e)
                self.assertIn("protocol error", e["text"], e)
        self.assert_terminal_once(ids["healthy.test"],
                                  queued=2 * len(modes))
        self.assertEqual(good.stop()["recipients"], 2)

    def test_size_limit_and_rcpt_timeout(self):
        """A message over the receiver's SIZE bounces 5.3.4 content-related
        without being sent; a RCPT reply slower than timeout_rcpt defers
        with a timeout; a small message to the SIZE-limited host goes."""
        port = peers.free_port()
        dns = self.start_dns({"small.test": [(10, "127.0.0.75")],
                              "stall.test": [(10, "127.0.0.76")]})
        small = self.start_sink(port, listen="127.0.0.75",
                                args=["--max-size", "4096"], name="small")
        stall = self.start_sink(port, listen="127.0.0.76",
                                args=["--slow-ms", "5000"], name="stall")
        conf = self.write_config(dns=dns, smtp_port=port, timeout_rcpt="1s",
                                 retry="1h")
        big = self.inject("s@sender.test", ["big@small.test"],
                          MSG + "x" * 70 + "\n" * 1 + ("y" * 70 + "\n") * 100)
        ok = self.inject("s@sender.test", ["ok@small.test"], MSG)
        slow = self.inject("s@sender.test", ["slow1@stall.test"], MSG)
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.wait_events(lambda ev: len(ev) == 3, 20, "three outcomes")
        self.stop_sluiced(p)
        term = self.assert_terminal_once(big + ok, queued=1)
        b = term[big[0]]
        self.assertEqual((b["type"], b["code"], b["enhanced"]),
                         ("bounced", 552, "5.3.4"))
        self.assertEqual(b["category"], 9)  # content-related
        self.assertEqual(term[ok[0]]["type"], "delivered")
        e, = [e for e in self.event_log() if e["delivery"] == slow[0]]
        self.assertEqual(e["type"], "deferred")
        self.assertIn("timeout", e["text"])
        st = small.stop()
        self.assertEqual((st["messages"], st["oversize"]), (1, 0))
        self.assertEqual(stall.stop()["messages"], 0)

    def test_drip_greeting_times_out(self):
        """A greeting dripped a byte a second is cut by timeout_greeting
        (2s): deferred with "timeout" in the text, in seconds not minutes."""
        port = peers.free_port()
        dns = self.start_dns({"drip.test": [(10, "127.0.0.74")]})
        self.start_sink(port, args=["--mode", "drip"])
        conf = self.write_config(dns=dns, smtp_port=port,
                                 timeout_greeting="2s", retry="1h")
        ids = self.inject("s@sender.test", ["u@drip.test"], MSG)
        t0 = time.monotonic()
        p = self.start_sluiced(conf, exit_when_empty=False)
        ev = self.wait_events(lambda ev: ev, 20, "an outcome")
        took = time.monotonic() - t0
        self.stop_sluiced(p)
        e, = self.event_log()
        self.assertEqual(e["type"], "deferred")
        self.assertIn("timeout", e["text"])
        self.assertIn("greeting", e["text"])
        self.assertLess(took, 15, "timeout_greeting 2s took %.1fs" % took)
        self.assertEqual(self.spool_info()["counts"]["queued"], 1)
        self.assertEqual(len(ids), 1)


if __name__ == "__main__":
    peers.main()
