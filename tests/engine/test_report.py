"""test_report.py - `sluice report` against the spool's events.

One scripted run of sluiced to the sink: shop's campaign (delivered,
bad-mailbox and policy bounces, deferrals that end expired, an address
suppressed after the send) and a message injected for the sub-account
other (delivered and bounced).  Then every count of `sluice report ...
--json` equals what the event log says: the platform's summary, each day
and hour, the campaign, each site and sending domain, each account, and
billing; `account usage` and `campaign show` say the same "sent".  A
viewer of other sees its own mail only and is refused shop's; the
master's view has every account and their total; --csv has a header row
and the same numbers; bad days and unknown accounts exit 64 and 66.

usage: /usr/bin/python3 test_report.py SLUICED SLUICE SINK
"""
import collections
import csv
import io
import json
import os
import subprocess

import peers
from peers import PeerTest

DOMS = ["d0.test", "d1.test"]
COUNTS = ["queued", "attempted", "delivered", "bounced", "expired",
          "complained", "unsubscribed", "suppressed", "cancelled",
          "deferred", "opened", "clicked", "sent"]


def expect(events):
    """The counts README's definitions give for a list of log events."""
    n = collections.Counter(e["type"] for e in events)
    cats = collections.Counter(e["category"] for e in events
                               if e["type"] == "bounced")
    out = {
        # every recipient queued ends in exactly one terminal event
        "queued": sum(n[t] for t in ("delivered", "bounced", "expired",
                                     "suppressed", "cancelled")),
        "attempted": sum(1 for e in events if e.get("attempts") == 1 and
                         e["type"] in ("delivered", "deferred", "bounced")),
        "delivered": n["delivered"], "bounced": n["bounced"],
        "expired": n["expired"], "complained": n["complaint"],
        "unsubscribed": n["unsubscribed"], "suppressed": n["suppressed"],
        "cancelled": n["cancelled"], "deferred": n["deferred"],
        "opened": n["open"], "clicked": n["click"],
        "sent": n["delivered"] + n["bounced"],
        "bounced_by_category": dict(cats),
    }
    first = sum(1 for e in events
                if e["type"] == "delivered" and e.get("attempts") == 1)
    out["first_attempt_rate"] = (first / n["delivered"] if n["delivered"]
                                 else None)
    return out


class Report(PeerTest):

    def as_user(self, user, *args, stdin=None):
        env = dict(os.environ, SLUICE_PWHASH_FAST="1", SLUICE_CONFIG="")
        env.pop("SLUICE_API_KEY", None)
        if user:
            env["SLUICE_USER"] = user
            env["SLUICE_PASSWORD"] = "pw-" + user
        r = subprocess.run([self.bin["sluice"], "--spool",
                            self.path("spool")] + list(args), env=env,
                           input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        if stdin is not None:
            self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def report(self, user, *args):
        r = self.as_user(user, "report", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def assert_counts(self, row, events, what):
        want = expect(events)
        got = {k: row[k] for k in COUNTS}
        self.assertEqual(got, {k: want[k] for k in COUNTS}, what)
        self.assertEqual(row["bounced_by_category"],
                         want["bounced_by_category"], what)
        if want["first_attempt_rate"] is None:
            self.assertIsNone(row["first_attempt_rate"], what)
        else:
            self.assertAlmostEqual(row["first_attempt_rate"],
                                   want["first_attempt_rate"], 6, what)
        if row["delivered"]:
            lat = row["latency_ms"]
            self.assertTrue(0 <= lat["p50"] <= lat["p90"] <= lat["p99"],
                            (what, lat))
        else:
            self.assertIsNone(row["latency_ms"], what)

    def setup_run(self):
        port = peers.free_port()
        self.sluice("account", "create", "master")
        for acct in ("shop", "other"):
            self.sluice("account", "create", acct)
            dom = acct + ".test"
            self.sluice("domain", "add", dom, "--account", acct,
                        "--selector", "s1")
            self.sluice("domain", "verify", dom, "--force")
        rcpts = ["c%02d@%s" % (i, DOMS[i % 2]) for i in range(8)]
        rcpts += ["permfail-a@d0.test", "block-b@d1.test",
                  "tempfail-c@d1.test", "tempfail-d@d0.test",
                  "gone@d1.test"]
        with open(self.path("news.csv"), "w") as f:
            f.write("email\n" + "\n".join(rcpts) + "\n")
        self.sluice("list", "create", "news", "--account", "shop")
        self.sluice("list", "import", "news", self.path("news.csv"),
                    "--account", "shop")
        with open(self.path("t.html"), "w") as f:
            f.write("<p>Hello</p>\n")
        r = self.sluice("campaign", "create", "spring", "--account", "shop",
                        "--list", "news", "--from", "Shop <news@shop.test>",
                        "--subject", "Spring", "--html", self.path("t.html"),
                        "--json")
        self.cid = json.loads(r.stdout)["id"]
        self.sluice("campaign", "send", str(self.cid))
        self.sluice("suppress", "add", "gone@d1.test", "--account", "shop")
        self.inject("news@other.test", ["o1@d0.test", "o2@d1.test",
                                        "permfail-o@d1.test"],
                    "From: news@other.test\nSubject: o\n\nbody\n",
                    account="other")
        self.start_sink(port, listen="127.0.0.1", capture=False)
        dns = self.start_dns({d: [(10, "127.0.0.1")] for d in DOMS})
        # tempfail recipients are retried each second and expire at 4 s
        conf = self.write_config(dns=dns, smtp_port=port, max_age="4s",
                                 retry="1s")
        self.run_sluiced(conf, timeout=40)
        self.events = [e for e in self.event_log() if "seq" in e]
        types = collections.Counter(e["type"] for e in self.events)
        # the mix the report is checked on
        for t in ("delivered", "bounced", "deferred", "expired",
                  "suppressed"):
            self.assertGreater(types[t], 0, types)

    def test_report_equals_events(self):
        self.setup_run()
        ev = self.events
        # users: root owns the master, olga views other
        self.as_user(None, "user", "add", "root", "--account", "master",
                     "--role", "owner", "--password-stdin", stdin=b"pw-root")
        self.as_user("root", "user", "add", "olga", "--account", "other",
                     "--role", "viewer", "--password-stdin", stdin=b"pw-olga")

        # the master: the whole platform, each account and the total
        summ = json.loads(self.report("root", "summary", "--json").stdout)
        self.assertIsNone(summ["account"])
        self.assert_counts(summ["summary"], ev, "summary")
        full = json.loads(self.report("root", "accounts", "--json").stdout)
        self.assertEqual(full["total"], summ["summary"])
        names = [a["account"] for a in full["accounts"]]
        self.assertEqual(sorted(names), ["master", "other", "shop"])
        for a in full["accounts"]:
            self.assert_counts(a, [e for e in ev if e.get("account_name") ==
                                   a["account"]], a["account"])
        # leaderboard order: delivered, descending
        dl = [a["delivered"] for a in full["accounts"]]
        self.assertEqual(dl, sorted(dl, reverse=True))
        # billing: sent per month and account
        bill = {(b["month"], b["account"]): b["sent"]
                for b in full["billing"]}
        for a in full["accounts"]:
            sent = sum(v for (m, acct), v in bill.items()
                       if acct == a["account"])
            self.assertEqual(sent, a["sent"], bill)

        # each day and hour add up to the events of that day and hour
        for part, key, cut in (("daily", "day", 10), ("hourly", "hour", 13)):
            rows = json.loads(self.report("root", part, "--json")
                              .stdout)[part]
            seen = 0
            for row in rows:
                mine = [e for e in ev if e["time"][:cut] == row[key][:cut]]
                self.assert_counts(row, mine, (part, row[key]))
                seen += len(mine)
            self.assertEqual(seen, len(ev), part)

        # the campaign, the sites (one per recipient domain here) and the
        # sending domains
        camps = json.loads(self.report("root", "campaigns", "--json")
                           .stdout)["campaigns"]
        self.assertEqual([(c["campaign"], c["campaign_id"], c["account"])
                          for c in camps], [("spring", self.cid, "shop")])
        self.assert_counts(camps[0], [e for e in ev
                                      if e.get("campaign") == self.cid],
                           "campaign")
        sites = json.loads(self.report("root", "sites", "--json")
                           .stdout)["sites"]
        for s in sites:
            mine = [e for e in ev if e.get("domain") == s["site"] and
                    e["type"] in ("delivered", "bounced", "deferred")]
            for k in ("delivered", "bounced", "deferred"):
                self.assertEqual(s[k], sum(1 for e in mine if e["type"] == k),
                                 (s["site"], k))
        for k in COUNTS:
            self.assertEqual(sum(s[k] for s in sites), summ["summary"][k], k)
        self.assertEqual({s["site"] for s in sites if s["delivered"]},
                         set(DOMS))
        doms = json.loads(self.report("root", "domains", "--json")
                          .stdout)["domains"]
        for d in doms:
            acct = d["domain"].split(".")[0]
            self.assert_counts(d, [e for e in ev
                                   if e.get("account_name") == acct],
                               d["domain"])
        self.assertEqual(sorted(d["domain"] for d in doms),
                         ["other.test", "shop.test"])

        # "sent" once: account usage and campaign show agree with it
        use = json.loads(self.as_user("root", "account", "usage", "master",
                                      "--days", "2", "--json").stdout)
        self.assertEqual(sum(d["total"]["sent"] for d in use["days"]),
                         summ["summary"]["sent"], use)
        show = json.loads(self.as_user("root", "campaign", "show",
                                       str(self.cid), "--json").stdout)
        self.assertEqual(show["sent"], camps[0]["sent"], show)
        self.assertEqual(show["delivered"], camps[0]["delivered"], show)

        # a viewer of other: its own mail, nothing of shop's
        own = json.loads(self.report("olga", "summary", "--json").stdout)
        self.assertEqual(own["account"], "other")
        other_ev = [e for e in ev if e.get("account_name") == "other"]
        self.assert_counts(own["summary"], other_ev, "other")
        acc = json.loads(self.report("olga", "accounts", "--json").stdout)
        self.assertEqual([a["account"] for a in acc["accounts"]], ["other"])
        self.assertEqual(json.loads(self.report("olga", "campaigns",
                                                "--json").stdout)
                         ["campaigns"], [])
        self.assertEqual([d["domain"] for d in json.loads(
            self.report("olga", "domains", "--json").stdout)["domains"]],
            ["other.test"])
        r = self.as_user("olga", "report", "summary", "--account", "shop")
        self.assertEqual(r.returncode, 77, r.stderr)
        audit = self.as_user("root", "audit", "list").stdout.decode()
        self.assertRegex(audit, r"olga.*report.*refused")

        # CSV: a header row and the JSON's numbers
        r = self.report("root", "accounts", "--csv")
        rows = list(csv.DictReader(io.StringIO(r.stdout.decode())))
        self.assertEqual(len(rows), 3)
        byname = {a["account"]: a for a in full["accounts"]}
        for row in rows:
            j = byname[row["account"]]
            for k in COUNTS:
                self.assertEqual(int(row[k]), j[k], (row["account"], k))
            self.assertEqual(int(row["bounced_bad_mailbox"]),
                             j["bounced_by_category"].get("bad-mailbox", 0))
        r = self.report("root", "summary", "--csv")
        lines = r.stdout.decode().splitlines()
        self.assertEqual(len(lines), 2)
        self.assertTrue(lines[0].startswith("account,from,to,queued,"))

        # the text form names the counts too
        out = self.report("root", "summary").stdout.decode()
        self.assertRegex(out, r"delivered\s+%d\n" %
                         summ["summary"]["delivered"])

        # bad input: documented exit codes
        for args, code in ((["summary", "--from", "2026-02-30"], 64),
                           (["summary", "--from", "2026-12-01", "--to",
                             "2026-11-01"], 64),
                           (["summary", "--account", "nobody"], 66),
                           (["weekly"], 64)):
            r = self.as_user("root", "report", *args)
            self.assertEqual(r.returncode, code, (args, r.stderr))


if __name__ == "__main__":
    peers.main()
