"""test_delivery.py - sluiced delivers through DNS to real sinks.

Cases: many domains with exact envelopes and bytes (CRLF, dot-stuffing),
MX fallback past a dead address and a 421 greeting, and one delivery to
Postfix's smtp-sink.

usage: /usr/bin/python3 test_delivery.py SLUICED SLUICE SINK
"""
import os
import unittest

import peers
from peers import PeerTest, crlf

NDOM = 50


class Delivery(PeerTest):

    def test_many_domains_exact_bytes(self):
        """50 domains, 150 recipients in 100 transactions: every one
        delivered once, envelopes right, body CRLF-clean and unstuffed."""
        port = peers.free_port()
        doms = ["d%02d.test" % i for i in range(NDOM)]
        addr = {d: "127.0.1.%d" % (i + 1) for i, d in enumerate(doms)}
        dns = self.start_dns({d: [(10, addr[d])] for d in doms})
        sink = self.start_sink(port)
        conf = self.write_config(dns=dns, smtp_port=port)

        # bare LF, bare CR, CRLF, lines that start with dots, a lone dot,
        # no final line end (Date and Message-ID given: nothing is added)
        odd = (b"From: a@sender.test\nSubject: odd endings\r\n"
               b"Date: Tue, 14 Nov 2023 22:13:20 +0000\n"
               b"Message-ID: <odd@sender.test>\r\n\r\n"
               b"line with LF\nline with CR\rline with CRLF\r\n"
               b".leading dot\n..two dots\n.\n \n.\r\n.\r"
               b"\xc3\xa9t\xc3\xa9 8bit\nlast line without end")
        plain = (b"From: b@sender.test\r\nSubject: plain\r\n"
                 b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
                 b"Message-ID: <plain@sender.test>\r\n\r\n"
                 b"hello\r\n.hidden\r\nbye\r\n")
        want = {}   # (sorted rcpts) -> (sender, body)
        ids = []
        ids += self.inject("a@sender.test", ["a@" + d for d in doms], odd)
        for d in doms:
            want[("a@" + d,)] = ("a@sender.test", crlf(odd))
        for d in doms:
            rc = ["b@" + d, "c@" + d]
            ids += self.inject("b@sender.test", rc, plain)
            want[tuple(rc)] = ("b@sender.test", crlf(plain))

        self.run_sluiced(conf, timeout=60)
        term = self.assert_terminal_once(ids)
        self.assertEqual({e["type"] for e in term.values()}, {"delivered"})

        st = sink.stop()
        self.assertEqual(st["bare_lf"], 0)
        self.assertEqual(st["bare_cr"], 0)
        self.assertEqual(st["messages"], 2 * NDOM)
        self.assertEqual(st["recipients"], 3 * NDOM)
        for d in doms:
            self.assertEqual(st["by_addr"][addr[d]]["recipients"], 3, d)
        got = {}
        for sender, rcpts, body in sink.captures():
            key = tuple(sorted(rcpts))
            self.assertNotIn(key, got, "captured twice: %r" % (key,))
            got[key] = (sender, body)
        self.assertEqual(set(got), set(want))
        for k, v in want.items():
            self.assertEqual(got[k][0], v[0], k)
            self.assertEqual(got[k][1], v[1], k)

        # the event log names the domain and the MX of each delivery
        for e in self.event_log():
            dom = e["rcpt"].split("@")[1]
            self.assertEqual(e["domain"], dom)
            self.assertEqual(e["mx"], "mx1." + dom)
            self.assertEqual(e["code"], 250)

    def test_mx_fallback_dead_address(self):
        """MX 10 points where nothing listens, MX 20 at a sink: delivered
        through the second, and the event names it; also when 40
        messages open many sessions at once."""
        port = peers.free_port()
        dns = self.start_dns({"fall.test": [(10, "127.0.0.50"),
                                            (20, "127.0.0.51")],
                              "fall2.test": [(10, "127.0.0.54"),
                                             (20, "127.0.0.51")]})
        sink = self.start_sink(port, listen="127.0.0.51")
        conf = self.write_config(dns=dns, smtp_port=port, retry="1h")
        ids = self.inject("s@sender.test", ["u@fall.test"],
                          "From: s@sender.test\nSubject: x\n\nbody\n")
        many = []
        for i in range(40):
            many += self.inject("s@sender.test", ["u%d@fall2.test" % i],
                                "From: s@sender.test\n"
                                "Subject: %d\n\nbody\n" % i)
        self.run_sluiced(conf)
        term = self.assert_terminal_once(ids + many)
        for d in ids + many:
            self.assertEqual(term[d]["type"], "delivered", term[d])
        self.assertEqual(term[ids[0]]["mx"], "mx2.fall.test")
        log = [e for e in self.event_log() if e["delivery"] == ids[0]]
        self.assertEqual(log[0]["mx"], "mx2.fall.test")
        self.assertEqual(sink.stop()["messages"], 41)

    def test_mx_fallback_greeting_421(self):
        """The first MX greets 421: the next MX gets the mail."""
        port = peers.free_port()
        dns = self.start_dns({"busy.test": [(10, "127.0.0.52"),
                                            (20, "127.0.0.53")]})
        bad = self.start_sink(port, listen="127.0.0.52",
                              args=["--mode", "greet-421"], name="bad")
        good = self.start_sink(port, listen="127.0.0.53", name="good")
        conf = self.write_config(dns=dns, smtp_port=port)
        ids = self.inject("s@sender.test", ["u1@busy.test", "u2@busy.test"],
                          "From: s@sender.test\nSubject: x\n\nbody\n")
        self.run_sluiced(conf)
        term = self.assert_terminal_once(ids)
        for d in ids:
            self.assertEqual(term[d]["type"], "delivered")
            self.assertEqual(term[d]["mx"], "mx2.busy.test")
        self.assertGreaterEqual(bad.stop()["sessions"], 1)
        st = good.stop()
        self.assertEqual(st["messages"], 1)
        self.assertEqual(st["recipients"], 2)

    def test_connection_and_recipient_limits(self):
        """max_rcpts_per_message splits a big recipient list into
        transactions; max_messages_per_connection makes new sessions;
        max_connections is never exceeded at the receiver."""
        port = peers.free_port()
        dns = self.start_dns({"wide.test": [(10, "127.0.0.40")],
                              "reuse.test": [(10, "127.0.0.41")],
                              "narrow.test": [(10, "127.0.0.42")]})
        sink = self.start_sink(port, args=["--max-conn-per-domain", "2"],
                               capture=False)
        conf = self.write_config(dns=dns, smtp_port=port, domains={
            "wide.test": {"max_rcpts_per_message": 100,
                          "max_connections": 2},
            "reuse.test": {"max_connections": 1,
                           "max_messages_per_connection": 3},
            "narrow.test": {"max_connections": 2}})
        ids = self.inject("s@sender.test",
                          ["w%03d@wide.test" % i for i in range(250)],
                          "From: s@sender.test\nSubject: wide\n\nx\n")
        for i in range(10):
            ids += self.inject("s@sender.test", ["r%d@reuse.test" % i],
                               "From: s@sender.test\n"
                               "Subject: reuse %d\n\nx\n" % i)
        for i in range(60):
            ids += self.inject("s@sender.test", ["n%d@narrow.test" % i],
                               "From: s@sender.test\n"
                               "Subject: narrow %d\n\nx\n" % i)
        self.run_sluiced(conf, timeout=60)
        term = self.assert_terminal_once(ids)
        self.assertEqual({e["type"] for e in term.values()}, {"delivered"})
        st = sink.stop()
        wide, reuse, narrow = (st["by_addr"]["127.0.0.%d" % a]
                               for a in (40, 41, 42))
        self.assertEqual(wide["messages"], 3)
        self.assertEqual(wide["recipients"], 250)
        self.assertEqual(reuse["messages"], 10)
        self.assertGreaterEqual(reuse["sessions"], 4)
        self.assertEqual(reuse["max_concurrency"], 1)
        self.assertEqual(narrow["messages"], 60)
        self.assertLessEqual(narrow["max_concurrency"], 2)
        self.assertEqual(st["conn_limit_violations"], 0)

    def test_sessions_follow_transactions(self):
        """One message for 250 recipients at one domain is 3 transactions:
        sluiced opens sessions for transactions, not for recipients, so it
        never opens more than 3 (and quits none unused)."""
        port = peers.free_port()
        dns = self.start_dns({"wide.test": [(10, "127.0.0.43")]})
        sink = self.start_sink(port, capture=False)
        conf = self.write_config(dns=dns, smtp_port=port)
        ids = self.inject("s@sender.test",
                          ["w%03d@wide.test" % i for i in range(250)],
                          "From: s@sender.test\nSubject: wide\n\nx\n")
        self.run_sluiced(conf)
        self.assert_terminal_once(ids)
        st = sink.stop()
        self.assertEqual(st["messages"], 3)
        self.assertLessEqual(st["sessions"], 3)

    def postfix(self, args, rcpts):
        """Deliver one message for rcpts to Postfix's smtp-sink started
        with args; returns its dump."""
        port = peers.free_port()
        conf = self.write_config(smtp_port=port, domains={
            "pf.test": {"route": "127.0.0.1:%d" % port}})
        pf = self.start_smtp_sink(port, args)
        body = b"From: s@sender.test\nSubject: to postfix\n\nline\n.dot\n"
        ids = self.inject("s@sender.test", rcpts, body)
        self.run_sluiced(conf)
        term = self.assert_terminal_once(ids)
        for d in ids:
            self.assertEqual(term[d]["type"], "delivered")
            self.assertEqual(term[d]["code"], 250)
        pf.stop()
        dumps = os.listdir(pf.dump_dir)
        self.assertEqual(len(dumps), 1, dumps)
        with open(os.path.join(pf.dump_dir, dumps[0]), "rb") as f:
            data = f.read()
        for r in rcpts:
            self.assertIn(("<%s>" % r).encode(), data)
        # smtp-sink dumps with LF line ends, unstuffed
        self.assertIn(b"\nline\n.dot\n", data)
        return data

    def test_postfix_smtp_sink(self):
        """One multi-recipient delivery to Postfix's smtp-sink."""
        data = self.postfix([], ["x@pf.test", "y@pf.test"])
        self.assertIn(b"X-Client-Proto: ESMTP", data)

    def test_postfix_no_pipelining(self):
        """smtp-sink without PIPELINING: commands one at a time."""
        self.postfix(["-p"], ["x@pf.test", "y@pf.test", "z@pf.test"])

    def test_postfix_helo_only(self):
        """smtp-sink refusing EHLO with 5xx: HELO, then plain SMTP."""
        data = self.postfix(["-f", "EHLO"], ["x@pf.test", "y@pf.test"])
        self.assertIn(b"X-Client-Proto: SMTP", data)


if __name__ == "__main__":
    peers.main()
