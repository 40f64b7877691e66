"""test_inflight_bytes.py - max_inflight_bytes bounds the composed mail
sluiced holds (issue 22).

A campaign of 300 recipients over 30 domains whose message is about
200 KB, sent with max_inflight_bytes = 2MB: every recipient gets it exactly
once (at the sink and in the spool), and the most bytes of composed mail
held at once (sluice_inflight_bytes_peak in /metrics) stayed under the cap
plus one message.  Without the cap each destination composes several
messages ahead, some 15 MB here.  Messages larger than the cap (3 MB
against 1MB) still go, one at a time.

usage: /usr/bin/python3 test_inflight_bytes.py SLUICED SLUICE SINK
"""
import http.client
import json

from prometheus_client.parser import text_string_to_metric_families

import peers
from peers import PeerTest

NRCPT = 300
NDOM = 30
MB = 1 << 20
# a composed message is a little more than what the sink stores: the
# DKIM-Signature the sink keeps too, dot-stuffing and the final ".\r\n"
# it does not
SLACK = 4096


class InflightBytes(PeerTest):

    def metrics(self, port):
        """{sample name: value} of /metrics' unlabelled samples, and
        "delivered": the delivered outcomes counted."""
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            c.request("GET", "/metrics")
            r = c.getresponse()
            body = r.read()
            self.assertEqual(r.status, 200, body)
        finally:
            c.close()
        out = {"delivered": 0}
        for f in text_string_to_metric_families(body.decode()):
            for s in f.samples:
                if not s.labels:
                    out[s.name] = s.value
                elif s.name == "sluice_outcomes_total" and \
                        s.labels.get("outcome") == "delivered":
                    out["delivered"] = s.value
        return out

    def run_until_done(self, conf, http_port, n):
        """Run sluiced until no delivery is queued and n were delivered;
        returns the gauges of /metrics then (read before sluiced stops:
        --exit-when-empty would race the scrape)."""
        p = self.start_sluiced(conf, exit_when_empty=False)

        def done():
            if not p.alive():
                raise peers.PeerError("sluiced exited: " + p.output()[-2000:])
            return self.spool_info()["counts"]["queued"] == 0
        peers.wait_for(done, 120, "every delivery ended", interval=0.5)
        # the metrics snapshot is published once a second: wait for one
        # taken after the last outcome (the peak only grows)
        peers.wait_for(lambda: self.metrics(http_port)["delivered"] >= n,
                       30, "metrics after the run", interval=0.2)
        m = self.metrics(http_port)
        self.assertEqual(m["sluice_inflight_bytes"], 0, "all sent, none held")
        self.assertEqual(p.stop(15), 0, p.output()[-2000:])
        return m

    def check_sink(self, sink, want_rcpts):
        """Each recipient got exactly one message; returns the largest."""
        got = {}
        largest = 0
        for _sender, rcpts, data in sink.captures():
            for r in rcpts:
                got[r] = got.get(r, 0) + 1
            largest = max(largest, len(data))
        self.assertEqual(set(got), set(want_rcpts))
        self.assertEqual([r for r, n in got.items() if n != 1], [],
                         "delivered more than once")
        return largest

    def test_campaign_under_cap(self):
        port = peers.free_port()
        doms = ["d%02d.test" % i for i in range(NDOM)]
        emails = ["c%03d@%s" % (i, doms[i % NDOM]) for i in range(NRCPT)]
        self.shop_list(emails)
        # about 200 KB of text, lines short enough for any receiver
        line = "All the news of the season, line %05d, in plain words.\n"
        text = "".join(line % i for i in range(3600))
        for name, body in (("t.txt", text), ("t.html", "<html><body><pre>" +
                                             text + "</pre></body></html>")):
            with open(self.path(name), "w") as f:
                f.write(body[:100 * 1024] + "\n")
        r = self.sluice("campaign", "create", "big", "--account", "shop",
                        "--list", "news", "--from", "Shop <news@shop.test>",
                        "--subject", "Big news", "--html", self.path("t.html"),
                        "--text", self.path("t.txt"), "--json")
        cid = str(json.loads(r.stdout)["id"])
        sink = self.start_sink(port, listen="127.0.0.1")
        dns = self.start_dns({d: [(10, "127.0.0.1")] for d in doms})
        http_port = peers.free_port()
        conf = self.write_config(dns=dns, smtp_port=port,
                                 unsubscribe_host="u.shop.test",
                                 max_inflight_bytes="2MB",
                                 http_listen="127.0.0.1:%d" % http_port)
        self.sluice("campaign", "send", cid)
        m = self.run_until_done(conf, http_port, NRCPT)

        largest = self.check_sink(sink, emails)
        ids = {e["delivery"] for e in self.spool_events() if e["delivery"]}
        self.assertEqual(len(ids), NRCPT)
        ends = self.assert_terminal_once(ids)
        self.assertEqual({e["type"] for e in ends.values()}, {"delivered"})

        self.assertGreater(largest, 190 * 1024, "the messages are ~200 KB")
        self.assertEqual(m["sluice_inflight_bytes_max"], 2 * MB)
        peak = m["sluice_inflight_bytes_peak"]
        self.assertGreaterEqual(peak, largest, "the gauge counts messages")
        self.assertLessEqual(peak, 2 * MB + largest + SLACK,
                             "held more than the cap plus one message")

    def test_message_larger_than_cap(self):
        port = peers.free_port()
        doms = ["a.test", "b.test"]
        sink = self.start_sink(port, listen="127.0.0.1")
        dns = self.start_dns({d: [(10, "127.0.0.1")] for d in doms})
        http_port = peers.free_port()
        conf = self.write_config(dns=dns, smtp_port=port,
                                 max_inflight_bytes="1MB",
                                 http_listen="127.0.0.1:%d" % http_port)
        body = "".join("A large message, line %06d of its body.\n" % i
                       for i in range(75000))  # about 3 MB
        rcpts = ["big@%s" % d for d in doms]
        ids = []
        for r in rcpts:
            ids += self.inject("sender@shop.test", [r],
                               "From: sender@shop.test\nTo: %s\n"
                               "Subject: large\n\n%s" % (r, body))
        m = self.run_until_done(conf, http_port, len(rcpts))

        largest = self.check_sink(sink, rcpts)
        self.assertGreater(largest, 3 * MB - 200 * 1024)
        ends = self.assert_terminal_once(ids)
        self.assertEqual({e["type"] for e in ends.values()}, {"delivered"})
        peak = m["sluice_inflight_bytes_peak"]
        self.assertGreaterEqual(peak, largest)
        # one at a time: the cap is less than one of them
        self.assertLessEqual(peak, 1 * MB + largest + SLACK)


if __name__ == "__main__":
    peers.main()
