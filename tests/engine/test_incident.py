"""test_incident.py - incidents, the circuit breaker and alerts (issue 19).

A real sluiced delivers to sluice-sink, which answers every recipient whose
local part starts with "block" 554 5.7.1 (a policy block):

- a campaign where one provider (prov.test) blocks 40% of its recipients
  crosses a block-rate rule: an incident opens, the campaign is paused by
  sluiced (audited), a webhook with events = incident receives one
  incident event, the alert mail reaches the sink, the alert command gets
  the incident's JSON, and the root cause names the reply and the MX;
  the incident survives a restart (after a person resumes the campaign,
  the rule joins it instead of opening another), is acknowledged, noted
  and resolved by hand, and the month's report has its MTTA and MTTR;
- a complaint burst through `sluice feedback ingest` opens a complaint
  incident for that sub-account only; the other sub-account sees none.

No timing assertions: every wait is for a condition, with a generous
deadline.

usage: /usr/bin/python3 test_incident.py SLUICED SLUICE SINK
"""
import datetime
import json
import os
import re
import signal
import subprocess

import peers
from incident_base import IncidentTest
from peers import wait_for
from webhook_receiver import Receiver

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                       "tools", "feedback")
PROV, CALM, ALERTS = "prov.test", "calm.test", "alerts.test"


class Incident(IncidentTest):

    def test_block_rate_pauses_campaign_alerts_and_survives_restart(self):
        port = peers.free_port()
        dns = self.start_dns({d: [(10, "127.0.0.1")]
                              for d in (PROV, CALM, ALERTS)})
        sink = self.start_sink(port, listen="127.0.0.1")
        self.accounts("shop")
        shop = self.account_id("shop")
        # 40% of prov.test's recipients are blocked; calm.test takes all
        rcpts = ["%s%03d@%s" % ("block" if i % 5 < 2 else "ok", i, PROV)
                 for i in range(100)]
        rcpts += ["c%03d@%s" % (i, CALM) for i in range(100)]
        hook = Receiver(secret="s" * 16 + "incident")
        self.threads.append(hook)
        cmd_out = self.path("alert-command.out")
        cmd = self.path("alert.sh")
        with open(cmd, "w") as f:
            f.write("#!/bin/sh\ncat >> %s\necho >> %s\n" % (cmd_out, cmd_out))
        os.chmod(cmd, 0o755)
        conf = self.write_config(
            dns=dns, smtp_port=port, dkim_sign="no",
            accounts={shop: {"alert_to": "ops@" + ALERTS}},
            domains={PROV: {"max_rate": "5/s"}, CALM: {"max_rate": "5/s"}},
            alert_command=cmd)
        self.add(conf, "\n[alert blocks]\nsignal = block_rate\n"
                 "scope = campaign\nthreshold = 10%%\nmin_volume = 20\n"
                 "window = 5m\nseverity = critical\naction = pause_campaign\n"
                 "auto_resolve = never\n"
                 "\n[webhook ops]\nurl = %s\nsecret = %s\nevents = incident\n"
                 % (hook.url, hook.secret))
        cid = self.campaign("shop", "news", rcpts)
        p = self.start_sluiced(conf, exit_when_empty=False)

        inc = wait_for(lambda: self.incidents() or None, 120,
                       "an incident opened")
        self.assertEqual(len(inc), 1, inc)
        i = inc[0]
        iid = i["id"]
        self.assertEqual((i["rule"], i["signal"], i["scope"], i["scope_name"],
                          i["severity"], i["account"]),
                         ("blocks", "block_rate", "campaign", cid, "critical",
                          shop))
        self.assertGreaterEqual(i["numbers"]["value"], 0.10)
        self.assertGreaterEqual(i["numbers"]["volume"], 20)
        # the root cause names the reply and the provider's MX
        rc = i["root_cause"]
        self.assertIn("554 5.7.1 blocked (policy)", rc["replies"][0]["reply"])
        self.assertEqual(rc["mx"][0]["host"], "mx1." + PROV)
        self.assertEqual(rc["domains"][0]["domain"], PROV)
        self.assertTrue(rc["samples"] and all(
            s["rcpt"].startswith("block") for s in rc["samples"]))
        self.assertGreater(rc["last_ms"], 0)

        # the circuit breaker: the campaign is paused by sluiced
        def paused():
            c = json.loads(self.sluice("campaign", "show", cid,
                                       "--json").stdout)
            return c if c["state"] == "paused" else None
        wait_for(paused, 60, "the campaign paused")
        tl = wait_for(lambda: [t for t in self.show(iid)["timeline"]
                               if t["what"] == "action"] or None, 60,
                      "the action in the timeline")
        self.assertIn("pause_campaign", tl[0]["text"])
        self.assertNotIn("failed", tl[0]["text"])
        audit = self.sluice("audit", "list").stdout.decode()
        self.assertRegex(audit, r"sluiced.*campaign pause")
        self.assertIn("incident open", audit)

        # one webhook event of type incident, signed
        ev = wait_for(lambda: list(hook.events.values()) or None, 60,
                      "the incident event at the webhook")
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual(ev[0]["type"], "incident")
        self.assertIn("opened blocks critical campaign %s" % cid,
                      ev[0]["text"])
        self.assertEqual(hook.bad_sig, 0)

        # the alert mail reaches the sink, the command got the JSON
        def alert_mail():
            for frm, to, data in sink.captures():
                if "ops@" + ALERTS in to:
                    return data
            return None
        mail = wait_for(alert_mail, 60, "the alert mail at the sink")
        self.assertRegex(mail, rb"Subject: \[sluice\] incident %d opened: "
                         rb"blocks" % iid)
        self.assertIn(b"554 5.7.1 blocked (policy)", mail)
        def command_input():
            if not os.path.exists(cmd_out):
                return None
            with open(cmd_out) as f:
                return f.read().strip() or None
        got = wait_for(command_input, 60, "the alert command's input")
        a = json.loads(got)
        self.assertEqual((a["type"], a["change"], a["incident"]["id"]),
                         ("incident", "opened", iid))

        # restart: the incident is read back; a person resumes the
        # campaign, the rule fires again and joins the open incident
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(60), 0, p.output()[-2000:])
        p = self.start_sluiced(conf, exit_when_empty=False, name="sluiced2")
        self.sluice("campaign", "resume", cid)

        def done():
            c = json.loads(self.sluice("campaign", "show", cid,
                                       "--json").stdout)
            return c if c["state"] == "done" else None
        wait_for(done, 180, "the campaign done after the resume")
        inc = self.incidents()
        self.assertEqual([x["id"] for x in inc], [iid], inc)
        self.assertEqual(inc[0]["state"], "open")

        # by hand: ack, assign, note, resolve; audited; the report
        self.sluice("incident", "ack", str(iid))
        self.sluice("incident", "assign", str(iid), "alice")
        self.sluice("incident", "note", str(iid), "list from 2019, removed")
        self.sluice("incident", "resolve", str(iid))
        r = self.sluice("incident", "ack", str(iid), check=False)
        self.assertEqual(r.returncode, 65, r.stderr)
        i = self.show(iid)
        self.assertEqual((i["state"], i["assignee"]), ("resolved", "alice"))
        self.assertEqual([t["what"] for t in i["timeline"]],
                         ["opened", "action", "acknowledged", "assigned",
                          "noted", "resolved"])
        audit = self.sluice("audit", "list").stdout.decode()
        for a in ("incident ack", "incident assign", "incident note",
                  "incident resolve"):
            self.assertIn(a, audit)
        month = datetime.datetime.utcfromtimestamp(
            i["opened_ms"] / 1000).strftime("%Y-%m")
        rep = json.loads(self.sluice("incident", "report", "--month", month,
                                     "--account", "shop", "--json").stdout)
        self.assertEqual((rep["incidents"], rep["acknowledged"],
                          rep["resolved"]), (1, 1, 1), rep)
        self.assertEqual(rep["mttr_s"],
                         (i["resolved_ms"] - i["opened_ms"]) / 1000)
        self.assertEqual(rep["mtta_s"],
                         (i["acknowledged_ms"] - i["opened_ms"]) / 1000)
        # the resolve is an incident event too
        wait_for(lambda: len(hook.events) == 2 or None, 60,
                 "the resolved event at the webhook")
        self.assertIn("resolved", sorted(
            e["text"] for e in hook.events.values())[1])
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(60), 0, p.output()[-2000:])

    def arf(self, rcpt, verp, msgid):
        with open(os.path.join(SAMPLES, "arf-yahoo.eml"), "rb") as f:
            text = f.read().decode("latin-1")
        return (text.replace("@@VERP@@", verp).replace("@@RCPT@@", rcpt)
                .replace("@@RDOM@@", rcpt.split("@")[1])
                .replace("@@MSGID@@", msgid)
                .replace("@@FBID@@", "1:2:1:sluice")
                .replace("\r\n", "\n").replace("\n", "\r\n")
                ).encode("latin-1")

    def test_complaint_burst_opens_for_that_sub_account_only(self):
        port = peers.free_port()
        dns = self.start_dns({CALM: [(10, "127.0.0.1")]})
        sink = self.start_sink(port, listen="127.0.0.1")
        self.accounts("shop", "other")
        shop, other = self.account_id("shop"), self.account_id("other")
        conf = self.write_config(dns=dns, smtp_port=port, dkim_sign="no",
                                 bounce_domain="bounce.test")
        self.add(conf, "\n[alert complaints]\nsignal = complaint_rate\n"
                 "scope = account\nthreshold = 5%\nmin_volume = 10\n"
                 "window = 1h\nseverity = critical\n")
        s_rcpts = ["s%02d@%s" % (i, CALM) for i in range(20)]
        o_rcpts = ["o%02d@%s" % (i, CALM) for i in range(20)]
        self.campaign("shop", "shopnews", s_rcpts)
        self.campaign("other", "othernews", o_rcpts)
        p = self.start_sluiced(conf, exit_when_empty=False)

        def sent():
            out = {}
            for frm, rcpts, data in sink.captures():
                m = re.search(rb"\r\nMessage-ID: <([^>]+)>", data, re.I)
                for r in rcpts:
                    out[r] = (frm, m.group(1).decode())
            return out if len(out) == 40 else None
        got = wait_for(sent, 120, "40 deliveries at the sink")
        # both accounts' deliveries are counted before the complaints
        wait_for(lambda: len([e for e in self.spool_events()
                              if e["type"] == "delivered"]) == 40 or None,
                 60, "40 delivered events")
        self.assertEqual(self.incidents(), [])
        for r in s_rcpts[:3]:
            f = self.path("arf-%s.eml" % r)
            with open(f, "wb") as fh:
                fh.write(self.arf(r, *got[r]))
            self.sluice("feedback", "ingest", f)
        inc = wait_for(lambda: self.incidents() or None, 60,
                       "the complaint incident")
        self.assertEqual(len(inc), 1, inc)
        self.assertEqual((inc[0]["rule"], inc[0]["scope"],
                          inc[0]["scope_name"], inc[0]["account"]),
                         ("complaints", "account", str(shop), shop))
        self.assertEqual(inc[0]["root_cause"]["events"], 3)
        # a sub-account sees its own: none for other, one for shop
        self.assertEqual(self.incidents("--account", "other"), [])
        self.assertEqual([x["id"] for x in
                          self.incidents("--account", "shop")],
                         [inc[0]["id"]])
        self.assertNotEqual(other, shop)
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(60), 0, p.output()[-2000:])

        # roles: a viewer of other sees none of shop's incidents and may
        # not show it; a viewer of shop sees it but may not acknowledge it
        iid = str(inc[0]["id"])
        self.as_user(None, "user", "add", "root", "--account", "master",
                     "--role", "owner", "--password-stdin", stdin=b"pw-root")
        for user, acct in (("olga", "other"), ("sam", "shop")):
            r = self.as_user("root", "user", "add", user, "--account", acct,
                             "--role", "viewer", "--password-stdin",
                             stdin=("pw-" + user).encode())
            self.assertEqual(r.returncode, 0, r.stderr)
        r = self.as_user("olga", "incident", "list", "--json")
        self.assertEqual((r.returncode, json.loads(r.stdout)), (0, []),
                         r.stderr)
        r = self.as_user("olga", "incident", "show", iid)
        self.assertEqual(r.returncode, 77, r.stderr)
        r = self.as_user("sam", "incident", "list", "--json")
        self.assertEqual([x["id"] for x in json.loads(r.stdout)],
                         [inc[0]["id"]], r.stderr)
        r = self.as_user("sam", "incident", "ack", iid)
        self.assertEqual(r.returncode, 77, r.stderr)
        r = self.as_user("root", "incident", "ack", iid)
        self.assertEqual(r.returncode, 0, r.stderr)
        audit = self.as_user("root", "audit", "list").stdout.decode()
        self.assertRegex(audit, r"olga.*incident show.*refused|"
                         r"incident show.*olga.*refused")
        self.assertIn("incident ack", audit)

    def as_user(self, user, *args, stdin=None):
        env = dict(os.environ, SLUICE_PWHASH_FAST="1", SLUICE_CONFIG="")
        if user:
            env["SLUICE_USER"] = user
            env["SLUICE_PASSWORD"] = "pw-" + user
        return subprocess.run([self.bin["sluice"], "--spool",
                               self.path("spool")] + list(args), env=env,
                              input=stdin, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=60)

    def test_deferral_spike_that_clears_resolves_itself(self):
        port = peers.free_port()
        # one site of two domains (by their MX hosts), a name neither
        # domain nor MX host holds: the root cause must come from the
        # domains sluiced routes to the site
        doms = ("slow.test", "late.test")
        dns = self.start_dns({d: [(10, "127.0.0.1")] for d in doms})
        self.start_sink(port, listen="127.0.0.1", capture=False)
        self.accounts("shop")
        # deferred on every try until max_age ends them: a spike that
        # clears by itself
        cmd_out = self.path("alert-command.out")
        cmd = self.path("alert.sh")
        with open(cmd, "w") as f:
            f.write("#!/bin/sh\ncat >> %s\necho >> %s\n" % (cmd_out, cmd_out))
        os.chmod(cmd, 0o755)
        # one alert per incident per hour: the resolve sends none
        conf = self.write_config(dns=dns, smtp_port=port, dkim_sign="no",
                                 max_age="15s", alert_command=cmd,
                                 alert_interval="1h")
        self.add(conf, "\n[alert deferrals]\nsignal = deferral_rate\n"
                 "scope = site\nthreshold = 50%\nmin_volume = 10\n"
                 "window = 1m\nseverity = warning\nauto_resolve = 5s\n"
                 "\n[site slowmail]\nmx = mx1.slow.test, mx1.late.test\n")
        self.inject("news@shop.test", ["tempfail%d@%s" % (i, doms[i % 2])
                                       for i in range(10)],
                    "From: news@shop.test\r\nSubject: t\r\n\r\nhello\r\n",
                    account="shop")
        p = self.start_sluiced(conf, exit_when_empty=False)
        inc = wait_for(lambda: self.incidents() or None, 120,
                       "the deferral incident")
        # a site's incident is the platform's: the master's, not shop's
        self.assertEqual((inc[0]["rule"], inc[0]["scope"],
                          inc[0]["scope_name"], inc[0]["account"]),
                         ("deferrals", "site", "slowmail",
                          self.account_id("master")), inc)
        cause = inc[0]["root_cause"]
        self.assertEqual(sorted(d["domain"] for d in cause["domains"]),
                         sorted(doms), cause)
        self.assertEqual(sorted(m["host"] for m in cause["mx"]),
                         ["mx1.late.test", "mx1.slow.test"], cause)
        self.assertGreaterEqual(cause["events"], 10, cause)
        self.assertEqual(self.incidents("--account", "shop"), [])
        self.assertIn("451 4.3.0 temporary failure (scripted)",
                      inc[0]["root_cause"]["replies"][0]["reply"])
        iid = inc[0]["id"]
        i = wait_for(lambda: (lambda x: x if x["state"] == "resolved"
                              else None)(self.show(iid)), 300,
                     "the incident resolved by itself")
        last = i["timeline"][-1]
        self.assertEqual((last["what"], last["who"]), ("resolved", "sluiced"))
        self.assertEqual(len(self.incidents()), 1)
        wait_for(lambda: [e for e in self.event_log()
                          if e["type"] == "incident" and
                          e.get("text", "").startswith("resolved")] or None,
                 60, "the resolved incident event in the event log")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(60), 0, p.output()[-2000:])
        with open(cmd_out) as f:
            text = f.read()
        self.assertEqual(text.count('"type": "incident"'), 1, text)
        self.assertIn('"change": "opened"', text)


if __name__ == "__main__":
    peers.main()
