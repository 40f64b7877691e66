"""test_many_domains.py - many destinations with a few messages each.

A campaign of 2,000 single-recipient messages over 400 domains (5 each,
listed round-robin so a domain's mail is spread over the whole list), all
routed by MX to one sluice-sink: every recipient gets its message once,
sluiced opens at most 1.2 connections per domain (a domain's 5 messages go
on one connection, pipelined, rather than one connection per message), and
no connection goes up without carrying a transaction.  At the global
connection cap, an idle session with nothing to send gives its slot up to
a domain with mail waiting for one.

The counts do not depend on the machine's speed: the whole campaign is
queued before sluiced starts and fits in one claim (max_inflight), so each
domain has all its mail in hand when its first connection opens; a
connection opens only for a transaction that is then kept for it until it
is ready (engine/dest.c), so however fast or slow the other sessions run,
none takes that mail from under it; and idle_timeout is long enough that
no session waiting for its bodies to be composed gives up first.

usage: /usr/bin/python3 test_many_domains.py SLUICED SLUICE SINK
"""
import json

import peers
from peers import PeerTest

NDOMAINS = 400
PER_DOMAIN = 5


class ManyDomains(PeerTest):

    def test_one_connection_per_domain(self):
        doms = ["d%d.test" % i for i in range(NDOMAINS)]
        emails = ["u%d@%s" % (i, doms[i % NDOMAINS])
                  for i in range(NDOMAINS * PER_DOMAIN)]
        self.shop_list(emails)
        html = self.path("t.html")
        with open(html, "w") as f:
            f.write("<html><body><p>Hello from the shop</p><a href=\""
                    "{{unsubscribe_url}}\">leave</a></body></html>\n")
        r = self.sluice("campaign", "create", "wide", "--account", "shop",
                        "--list", "news", "--from", "Shop <news@shop.test>",
                        "--subject", "Hi", "--html", html, "--json")
        cid = str(json.loads(r.stdout)["id"])
        port = peers.free_port()
        sink = self.start_sink(port, listen="127.0.0.1")
        dns = self.start_dns({d: [(10, "127.0.0.1")] for d in doms})
        # a session parked while its domain's bodies are being composed
        # must not reach its idle timeout on a slow machine (it would
        # close with nothing sent and another would open): the idle wait
        # is long; sessions idle at the end close when sluiced drains
        conf = self.write_config(dns=dns, smtp_port=port,
                                 unsubscribe_host="u.shop.test",
                                 idle_timeout="60s")
        r = json.loads(self.sluice("campaign", "send", cid, "--json").stdout)
        self.assertEqual(r.get("recipients", r.get("queued")), len(emails), r)
        self.run_sluiced(conf, timeout=120)
        st = sink.stop()

        got = {}
        for _sender, rcpts, _raw in sink.captures():
            for rc in rcpts:
                got[rc] = got.get(rc, 0) + 1
        self.assertEqual(set(got), set(emails), "not every recipient mailed")
        twice = [a for a, n in got.items() if n != 1]
        self.assertFalse(twice, "mailed more than once: %r" % twice[:5])
        self.assertEqual(st["messages"], len(emails), st)
        # a domain's five go together: at most 1.2 connections a domain
        self.assertLessEqual(st["sessions"], NDOMAINS * 12 // 10,
                             "%d connections for %d domains"
                             % (st["sessions"], NDOMAINS))
        # every connection carried mail (none opened for mail that another
        # session took meanwhile)
        self.assertEqual(st["sessions_without_mail"], 0, st)
        self.assertEqual(st["current_sessions"], 0, st)

    def test_idle_slot_goes_to_waiting_domain(self):
        """At the global connection cap (1 here), a session parked idle
        with nothing to send gives its slot up to a domain whose mail
        waits for one, rather than hold it for idle_timeout (an hour
        here: without the hand-over b.test would wait that long)."""
        port = peers.free_port()
        sink = self.start_sink(port, listen="127.0.0.1")
        dns = self.start_dns({d: [(10, "127.0.0.1")]
                              for d in ("a.test", "b.test")})
        conf = self.write_config(dns=dns, smtp_port=port, max_connections=1,
                                 idle_timeout="1h")
        body = "From: s@shop.test\r\nSubject: x\r\n\r\nhello\r\n"
        # queued before sluiced starts: an inject beside a sluiced still
        # creating the spool could find its lock file without data.mdb
        self.inject("s@shop.test", ["u@a.test"], body)
        p = self.start_sluiced(conf, exit_when_empty=False)
        peers.wait_for(lambda: sink.stats()["messages"] == 1, 60,
                       "a.test's message at the sink")
        # a.test's session is now idle with nothing to send, and holds the
        # one slot
        self.inject("s@shop.test", ["u@b.test"], body)
        peers.wait_for(lambda: sink.stats()["messages"] == 2, 60,
                       "b.test's message at the sink")
        p.stop(15)
        st = sink.stop()
        self.assertEqual(st["by_domain"]["b.test"]["messages"], 1, st)
        self.assertEqual(st["sessions"], 2, st)
        self.assertEqual(st["sessions_without_mail"], 0, st)
        self.assertLessEqual(st["max_concurrency"], 1, st)


if __name__ == "__main__":
    peers.main()
