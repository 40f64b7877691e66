"""test_report_weekly.py - the weekly report mail (issue 21).

A real sluiced delivers to sluice-sink:

- an account with report_weekly = yes and report_to whose last report
  went out three weeks ago (sluiced was down since) gets last week's
  report at once when sluiced starts, and only that one: one mail at the
  sink to the report address, multipart with a text summary and the HTML
  page (well-formed, self-contained, naming the account and last week);
  an account that never had one gets last week's too;
- after two small campaigns (shop 6 recipients, other 3),
  `sluice report send-weekly --account shop` mails the report of the last
  7 days: its numbers are shop's (equal to `sluice report summary`'s for
  the same days), not other's;
- after a restart, nothing is sent again: the last week's mail and the
  request are remembered in the spool;
- report_weekly without addresses, or a bad value, is a config error.

usage: /usr/bin/python3 test_report_weekly.py SLUICED SLUICE SINK
"""
import datetime
import email
import email.policy
import json
import os
import subprocess
import xml.etree.ElementTree as ET

import peers
from incident_base import IncidentTest
from peers import wait_for

RCPT, REPORTS = "rcpt.test", "reports.test"
HOSTILE = "<script>alert(1)</script>"
SVG_NS = "http://www.w3.org/2000/svg"


def monday(d):
    return d - datetime.timedelta(days=d.weekday())


class Weekly(IncidentTest):

    def mails(self, sink, rcpt):
        """The parsed messages at the sink for rcpt, in arrival order."""
        out = []
        for frm, to, data in sink.captures():
            if rcpt in to:
                out.append(email.message_from_bytes(
                    data, policy=email.policy.default))
        return out

    def parts(self, msg):
        """The text summary and the HTML page of a report mail."""
        self.assertEqual(msg.get_content_type(), "multipart/mixed")
        parts = list(msg.iter_parts())
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "text/html"])
        text, page = parts[0].get_content(), parts[1].get_content()
        # the page is one well-formed document that fetches nothing
        root = ET.fromstring(page.split("\n", 1)[1])
        self.assertTrue(root.findall(".//{http://www.w3.org/2000/svg}svg")
                        or "No mail in this period" in page)
        self.assertNotIn("<script", page)
        self.assertNotRegex(page, r"\s(src|href)=")
        return text, page

    def summary(self, account, frm, to):
        r = self.sluice("report", "summary", "--account", account, "--from",
                        str(frm), "--to", str(to), "--json")
        return json.loads(r.stdout)["summary"]

    def test_weekly_mail(self):
        port = peers.free_port()
        dns = self.start_dns({d: [(10, "127.0.0.1")]
                              for d in (RCPT, REPORTS)})
        sink = self.start_sink(port, listen="127.0.0.1")
        self.accounts("shop", "other", "third")
        shop, other = self.account_id("shop"), self.account_id("other")
        third = self.account_id("third")
        boss, ops = "boss@" + REPORTS, "ops@" + REPORTS
        t3 = "t3@" + REPORTS
        # the order matters below: accounts are looked at in this order
        conf = self.write_config(
            dns=dns, smtp_port=port, dkim_sign="no",
            accounts={shop: {"report_weekly": "yes", "report_to": boss,
                             "alert_to": "alerts@" + REPORTS},
                      third: {"report_weekly": "yes", "report_to": t3},
                      other: {"alert_to": ops}})
        # shop's last report went out three weeks ago (sluiced was down
        # since): one report, last week's, catches up; third never had one
        today = datetime.datetime.now(datetime.timezone.utc).date()
        old = (monday(today) - datetime.timedelta(days=14) -
               datetime.date(1970, 1, 1)).days
        subprocess.run([os.environ["SLUICE_CURSOR_PUT"], self.path("spool"),
                        "report.weekly.%d" % shop, str(old)], check=True,
                       timeout=30)
        self.campaign("shop", "winter",
                      ["s%d@%s" % (i, RCPT) for i in range(6)], lst="wl")
        self.campaign("other", HOSTILE,
                      ["o%d@%s" % (i, RCPT) for i in range(3)], lst="ol")
        p = self.start_sluiced(conf, exit_when_empty=False)

        # at start: last week's report, once, to report_to (not alert_to)
        last_mon = monday(today) - datetime.timedelta(days=7)
        last_sun = monday(today) - datetime.timedelta(days=1)
        first = wait_for(lambda: self.mails(sink, boss) or None, 60,
                         "last week's report at the sink")[0]
        self.assertEqual(first["Subject"],
                         "[sluice] report for account shop, %s to %s"
                         % (last_mon, last_sun))
        text, page = self.parts(first)
        self.assertIn("sluice report for account shop, %s to %s"
                      % (last_mon, last_sun), text)
        self.assertIn("account shop", page)
        self.assertIn("No mail in this period", page)
        m3 = wait_for(lambda: self.mails(sink, t3), 60, "third's report")
        self.assertEqual(m3[0]["Subject"],
                         "[sluice] report for account third, %s to %s"
                         % (last_mon, last_sun))

        # the campaigns and the report mail (shop's own mail) delivered
        wait_for(lambda: len(sink.captures()) == 11 or None, 60,
                 "9 campaign mails and the 2 reports at the sink")
        week = today - datetime.timedelta(days=6)
        wait_for(lambda: self.summary("shop", week, today)["delivered"] == 7
                 or None, 30, "shop's 7 deliveries in the report")

        # sluice report --html: the page of the same selection
        out = self.path("shop.html")
        r = self.sluice("report", "--html", out, "--account", "shop",
                        "--from", str(week), "--to", str(today))
        self.assertEqual(r.stdout.decode().strip(), out)
        with open(out) as f:
            page = f.read()
        root = ET.fromstring(page.split("\n", 1)[1])
        tds = [(td.text or "").strip() for td in root.iter("td")]
        i = tds.index("delivered")
        self.assertEqual(tds[i + 1], "7")
        self.assertIn("winter", tds)
        self.assertNotIn(HOSTILE, page)  # other's campaign is not shop's
        charts = [e for e in root.findall(".//{%s}svg" % SVG_NS)
                  if e.get("class") == "chart"]
        self.assertEqual(len(charts), 4)
        # the master's page: every account, the hostile name as text
        r = self.sluice("report", "campaigns", "--html", out)
        with open(out) as f:
            page = f.read()
        root = ET.fromstring(page.split("\n", 1)[1])
        self.assertIn(HOSTILE, [(td.text or "").strip()
                                for td in root.iter("td")])
        self.assertNotIn(HOSTILE, page)
        self.assertIn("&lt;script&gt;", page)
        bad = self.sluice("report", "--html", self.path("no", "x.html"),
                          check=False)
        self.assertEqual(bad.returncode, 73, bad.stderr)
        bad = self.sluice("report", "--html", out, "--json", check=False)
        self.assertEqual(bad.returncode, 64, bad.stderr)

        # send-weekly: the last 7 days' report of shop, with shop's numbers
        self.sluice("report", "send-weekly", "--account", "shop")
        mails = wait_for(lambda: len(self.mails(sink, boss)) == 2 and
                         self.mails(sink, boss), 60, "the requested report")
        self.assertEqual(mails[1]["Subject"],
                         "[sluice] report for account shop, %s to %s"
                         % (week, today))
        text, page = self.parts(mails[1])
        self.assertRegex(text, r"delivered\s+7\r?\n")
        self.assertRegex(text, r"sent\s+7\r?\n")
        root = ET.fromstring(page.split("\n", 1)[1])
        tds = [(td.text or "").strip() for td in root.iter("td")]
        self.assertEqual(tds[tds.index("delivered") + 1], "7")
        self.assertIn("winter", tds)
        # other has no report_weekly: sent on request only, to alert_to
        self.assertEqual(self.mails(sink, ops), [])
        self.sluice("report", "send-weekly", "--account", "other")
        m = wait_for(lambda: self.mails(sink, ops), 60, "other's report")
        text, page = self.parts(m[0])
        self.assertRegex(text, r"delivered\s+3\r?\n")
        self.assertIn("account other", page)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page)
        audit = self.sluice("audit", "list").stdout.decode()
        self.assertIn("report send-weekly", audit)
        bad = self.sluice("report", "send-weekly", check=False)
        self.assertEqual(bad.returncode, 64, bad.stderr)
        bad = self.sluice("report", "send-weekly", "--account", "nobody",
                          check=False)
        self.assertEqual(bad.returncode, 66, bad.stderr)
        # with the configuration at hand, an account without addresses
        # is refused (sluiced would have nowhere to send it)
        bad = self.sluice("--config", conf, "report", "send-weekly",
                          "--account", "master", check=False)
        self.assertEqual(bad.returncode, 78, bad.stderr)
        self.assertIn(b"has no report_to nor alert_to", bad.stderr)

        # a restart sends neither last week's report nor a request again:
        # a new request of other's is served after shop's checks (accounts
        # are looked at in the configuration's order, one job at a time)
        self.stop(p)
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.sluice("report", "send-weekly", "--account", "other")
        wait_for(lambda: len(self.mails(sink, ops)) == 2 or None, 60,
                 "other's second report")
        wait_for(lambda: self.summary("other", week, today)["queued"] ==
                 self.summary("other", week, today)["delivered"] or None,
                 30, "other's mail all delivered")
        self.stop(p)
        self.assertEqual(len(self.mails(sink, boss)), 2)
        self.assertEqual(len(self.mails(sink, t3)), 1)
        self.assertEqual(self.mails(sink, "alerts@" + REPORTS), [])
        self.assertEqual(len(sink.captures()), 14)


    def test_config_errors(self):
        """report_weekly without addresses, or a bad value, is refused by
        sluiced -t with the line and the reason (exit 78)."""
        for keys, why in (({"report_weekly": "yes"},
                           "[account 7] report_weekly = yes needs report_to "
                           "(or alert_to)"),
                          ({"report_weekly": "weekly"},
                           "report_weekly: 'weekly' is not yes or no"),
                          ({"report_to": "boss"},
                           "report_to: 'boss' is not a list of addresses")):
            conf = self.write_config(accounts={7: keys})
            r = subprocess.run([self.bin["sluiced"], "-t", "-c", conf],
                               capture_output=True, timeout=30)
            self.assertEqual(r.returncode, 78, r.stderr)
            self.assertIn(why, r.stderr.decode())
        conf = self.write_config(accounts={7: {"report_weekly": "yes",
                                               "alert_to": "a@b.test"}})
        r = subprocess.run([self.bin["sluiced"], "-t", "-c", conf],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    peers.main()
