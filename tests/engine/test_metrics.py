"""test_metrics.py - GET /metrics and /metrics.json agree with the spool.

A run with delivered, bounced and deferred outcomes over six domains and
two accounts (signing with DKIM), metrics_sites = 3 and
metrics_accounts = 1: /metrics, read by python3-prometheus-client's text
parser, counts each outcome as the spool does (`sluice spool info` and
`sluice spool events`), by bounce category and per account; the site
family shows at most three sites (the three with the most mail) plus
site="other", and its series add up to the totals; the queue depth shows
the deferred mail; the latency histogram counts every terminal outcome;
the commit and DKIM histograms have counted; /metrics.json holds the same
families, samples and values; POST and a query string are refused with
405 and 400.

usage: /usr/bin/python3 test_metrics.py SLUICED SLUICE SINK
"""
import collections
import http.client
import json

from prometheus_client.parser import text_string_to_metric_families

import peers
from peers import PeerTest

# mail per domain: dom0 gets 1 recipient, dom5 gets 6 (distinct volumes, so
# the top three are dom5, dom4, dom3)
NDOM = 6
TOP = 3
# families whose values do not move once the run is over
STABLE = ("sluice_outcomes_total", "sluice_outcomes_by_category_total",
          "sluice_site_outcomes_total", "sluice_account_outcomes_total",
          "sluice_delivery_latency_seconds", "sluice_queue_depth",
          "sluice_spool_deliveries", "sluice_dkim_sign_seconds",
          "sluice_webhook_backlog_events", "sluice_start_time_seconds")


def key(sample):
    return (sample[0], tuple(sorted(sample[1].items())))


class Metrics(PeerTest):

    def setUp(self):
        super().setUp()
        port = peers.free_port()
        self.doms = ["dom%d.test" % i for i in range(NDOM)]
        dns = self.start_dns({d: [(10, "127.0.7.%d" % (i + 1))]
                              for i, d in enumerate(self.doms)})
        self.start_sink(port)
        self.sluice("account", "create", "master")
        self.sluice("account", "create", "shop")
        self.sluice("domain", "add", "shop.test", "--account", "shop",
                    "--selector", "s1")
        self.sluice("domain", "verify", "shop.test", "--force")
        self.sluice("domain", "add", "master.test", "--account", "master",
                    "--selector", "m1")
        self.sluice("domain", "verify", "master.test", "--force")
        self.http = peers.free_port()
        self.conf = self.write_config(
            dns=dns, smtp_port=port, retry="1h", metrics_sites=str(TOP),
            metrics_accounts="1", http_listen="127.0.0.1:%d" % self.http)

    def get(self, path, method="GET"):
        c = http.client.HTTPConnection("127.0.0.1", self.http, timeout=30)
        try:
            c.request(method, path)
            r = c.getresponse()
            return r.status, r.getheader("Content-Type"), r.read()
        finally:
            c.close()

    def scrape(self):
        """{family: (type, [(name, labels, value)])} of /metrics."""
        status, ctype, body = self.get("/metrics")
        self.assertEqual(status, 200, body)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        out = {}
        for f in text_string_to_metric_families(body.decode()):
            # the parser names a counter family without its _total
            name = f.name + "_total" if f.type == "counter" else f.name
            out[name] = (f.type, [(s.name, s.labels, s.value)
                                  for s in f.samples])
        return out

    def scrape_json(self):
        status, ctype, body = self.get("/metrics.json")
        self.assertEqual(status, 200, body)
        self.assertEqual(ctype, "application/json")
        doc = json.loads(body)
        return {name: (f["type"], [(s["name"], s["labels"], s["value"])
                                   for s in f["samples"]])
                for name, f in doc["metrics"].items()}

    def values(self, m, family, **match):
        """The samples of family (the family's own name, not _bucket...)
        whose labels include match: {labels tuple: value}."""
        out = {}
        for name, labels, v in m[family][1]:
            if all(labels.get(k) == w for k, w in match.items()):
                out[(name,) + tuple(sorted(labels.items()))] = v
        return out

    def outcome(self, m, family, name, **match):
        return sum(v for k, v in self.values(m, family, **match).items()
                   if k[0] == name)

    def run_mail(self):
        """Inject the run; returns how many recipients of each kind."""
        want = collections.Counter()
        for i, dom in enumerate(self.doms):
            rcpts = []
            for j in range(i + 1):
                kind = ("ok", "permfail", "tempfail")[(i + j) % 3]
                want[kind] += 1
                rcpts.append("%s%d@%s" % (kind, j, dom))
            if i % 2:
                self.inject("news@shop.test", rcpts,
                            "From: news@shop.test\nSubject: m\n\nbody\n",
                            account="shop")
            else:
                self.inject("s@master.test", rcpts,
                            "From: s@master.test\nSubject: m\n\nbody\n",
                            account="master")
        return want

    def settle(self, want):
        """Wait until the spool holds every recipient's first outcome."""
        def settled():
            c = self.spool_info()["counts"]
            return (c["delivered"] == want["ok"] and
                    c["bounced"] == want["permfail"] and
                    c["deferred"] == want["tempfail"])
        peers.wait_for(settled, 60, "every recipient's first outcome",
                       interval=0.2)

    def test_metrics_agree_with_spool(self):
        want = self.run_mail()
        self.start_sluiced(self.conf, exit_when_empty=False)
        self.settle(want)
        counts = self.spool_info()["counts"]
        events = self.spool_events()

        def caught_up():
            try:
                m = self.scrape()
            except (OSError, http.client.HTTPException):
                return False
            return all(self.outcome(m, "sluice_outcomes_total",
                                    "sluice_outcomes_total", outcome=t)
                       == counts[t]
                       for t in ("delivered", "bounced", "deferred",
                                 "expired"))
        peers.wait_for(caught_up, 30, "/metrics to count the spool's events",
                       interval=0.3)
        m = self.scrape()

        # totals: every outcome type, as the spool counts them
        self.assertEqual(m["sluice_outcomes_total"][0], "counter")
        for t in ("delivered", "bounced", "deferred", "expired"):
            self.assertEqual(self.outcome(m, "sluice_outcomes_total",
                                          "sluice_outcomes_total",
                                          outcome=t), counts[t], t)
        self.assertEqual(counts["expired"], 0)
        self.assertGreater(counts["bounced"], 0)

        # by bounce category, as the spool's events say
        cats = collections.Counter((e["type"], e["category"]) for e in events
                                   if e["category"])
        self.assertTrue(cats, "the 550s have a bounce category")
        got = {}
        for (name, *labels), v in self.values(
                m, "sluice_outcomes_by_category_total").items():
            lab = dict(labels)
            got[(lab["outcome"], lab["category"])] = v
        self.assertEqual(sum(got.values()), sum(cats.values()), got)
        self.assertEqual(sorted(k[0] for k in got), sorted(
            t for (t, _c) in cats.keys()))

        # per account: one account labelled (metrics_accounts = 1), the
        # other counted as "other"; the labelled one as the spool says
        accounts = {lab[1] for (_n, *labs), _v in self.values(
            m, "sluice_account_outcomes_total").items()
            for lab in labs if lab[0] == "account"}
        self.assertEqual(len(accounts), 2, accounts)
        self.assertIn("other", accounts)
        (acct,) = accounts - {"other"}
        for t in ("delivered", "bounced", "deferred"):
            mine = sum(1 for e in events
                       if e["type"] == t and str(e["account"]) == acct)
            self.assertEqual(self.outcome(
                m, "sluice_account_outcomes_total",
                "sluice_account_outcomes_total", account=acct, outcome=t),
                mine, (acct, t))
            self.assertEqual(self.outcome(
                m, "sluice_account_outcomes_total",
                "sluice_account_outcomes_total", outcome=t), counts[t], t)

        # per site: at most TOP sites of their own, the TOP busiest, plus
        # "other"; the series add up to the totals
        sites = {dict(labs)["site"] for (_n, *labs), _v in self.values(
            m, "sluice_site_outcomes_total").items()}
        self.assertEqual(sites - {"other"}, set(self.doms[-TOP:]), sites)
        self.assertIn("other", sites)
        for t in ("delivered", "bounced", "deferred"):
            self.assertEqual(self.outcome(
                m, "sluice_site_outcomes_total",
                "sluice_site_outcomes_total", outcome=t), counts[t], t)
            # a site's series counts from when it entered the top
            for dom in self.doms[-TOP:]:
                mine = sum(1 for e in events if e["type"] == t and
                           e["rcpt"].endswith("@" + dom))
                self.assertLessEqual(self.outcome(
                    m, "sluice_site_outcomes_total",
                    "sluice_site_outcomes_total", site=dom, outcome=t),
                    mine, (dom, t))

        # queue depth: the deferred mail waits for its retry an hour away
        depth = {dict(labs)["state"]: v for (_n, *labs), v in self.values(
            m, "sluice_queue_depth").items()}
        self.assertEqual(depth, {"ready": 0, "deferred": want["tempfail"],
                                 "parked": 0})
        self.assertEqual(self.outcome(m, "sluice_spool_deliveries",
                                      "sluice_spool_deliveries",
                                      count="queued"), counts["queued"])

        # latency: one observation per terminal outcome
        self.assertEqual(m["sluice_delivery_latency_seconds"][0], "histogram")
        for t in ("delivered", "bounced"):
            self.assertEqual(self.outcome(
                m, "sluice_delivery_latency_seconds",
                "sluice_delivery_latency_seconds_count", outcome=t),
                counts[t], t)
            self.assertEqual(self.outcome(
                m, "sluice_delivery_latency_seconds",
                "sluice_delivery_latency_seconds_bucket", outcome=t,
                le="+Inf"), counts[t], t)

        # the writer committed, every message was signed
        self.assertGreater(self.outcome(m, "sluice_spool_commit_seconds",
                                        "sluice_spool_commit_seconds_count"),
                           0)
        self.assertGreaterEqual(self.outcome(
            m, "sluice_dkim_sign_seconds", "sluice_dkim_sign_seconds_count"),
            NDOM)
        self.assertGreater(self.outcome(
            m, "sluice_process_resident_memory_bytes",
            "sluice_process_resident_memory_bytes"), 0)
        info = self.spool_info()
        self.assertEqual(self.outcome(m, "sluice_spool_map_size_bytes",
                                      "sluice_spool_map_size_bytes"),
                         info["map_size"])
        self.assertIn("sluice_smtp_sessions", m)
        # no webhook has reported: the family is there without samples
        self.assertEqual(m["sluice_webhook_backlog_events"], ("gauge", []))

        # /metrics.json: the same families, samples and values
        j = self.scrape_json()
        m = self.scrape()
        self.assertEqual(sorted(j), sorted(m))
        for fam in m:
            self.assertEqual(j[fam][0], m[fam][0], fam)
            self.assertEqual(sorted(key(s) for s in j[fam][1]),
                             sorted(key(s) for s in m[fam][1]), fam)
            if fam in STABLE:
                self.assertEqual(sorted((key(s), s[2]) for s in j[fam][1]),
                                 sorted((key(s), s[2]) for s in m[fam][1]),
                                 fam)

    def test_top_site_counts_exactly(self):
        """Once a site is among the top ones, each of its outcomes counts
        in its own series: three more deliveries to the busiest domain
        add three to its series and none to site="other"."""
        want = self.run_mail()
        self.start_sluiced(self.conf, exit_when_empty=False)
        self.settle(want)
        busiest = self.doms[-1]

        def site(m, name):
            return self.outcome(m, "sluice_site_outcomes_total",
                                "sluice_site_outcomes_total", site=name,
                                outcome="delivered")

        def labelled():
            try:
                m = self.scrape()
            except (OSError, http.client.HTTPException):
                return None
            c = self.spool_info()["counts"]
            top = {dict(labs)["site"] for (_n, *labs), _v in self.values(
                m, "sluice_site_outcomes_total").items()} - {"other"}
            done = (self.outcome(m, "sluice_outcomes_total",
                                 "sluice_outcomes_total",
                                 outcome="delivered") == c["delivered"])
            return m if done and busiest in top else None
        before = peers.wait_for(labelled, 60, "the busiest site labelled",
                                interval=0.3)
        self.inject("s@master.test", ["ok%d@%s" % (i, busiest)
                                      for i in range(10, 13)],
                    "From: s@master.test\nSubject: m\n\nbody\n",
                    account="master")
        delivered = want["ok"] + 3

        def counted():
            m = labelled()
            return m if m and self.outcome(
                m, "sluice_outcomes_total", "sluice_outcomes_total",
                outcome="delivered") == delivered else None
        after = peers.wait_for(counted, 60, "three more deliveries counted",
                               interval=0.3)
        self.assertEqual(site(after, busiest), site(before, busiest) + 3)
        self.assertEqual(site(after, "other"), site(before, "other"))

    def test_bad_requests(self):
        self.start_sluiced(self.conf, exit_when_empty=False)

        def up():
            try:
                return self.get("/metrics")[0] == 200
            except OSError:
                return False
        peers.wait_for(up, 30, "sluiced's /metrics")
        for path in ("/metrics", "/metrics.json"):
            status, _ctype, body = self.get(path, "POST")
            self.assertEqual(status, 405, body)
            self.assertIn(b"GET", body)
            status, _ctype, body = self.get(path + "?x")
            self.assertEqual(status, 400, body)
            self.assertIn(b"query", body)
        status, _ctype, _body = self.get("/metrics/x")
        self.assertEqual(status, 404)


if __name__ == "__main__":
    peers.main()
