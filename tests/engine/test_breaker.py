"""test_breaker.py - escalation and the circuit breaker's resume (issue 19).

A real sluiced delivers to sluice-sink; prov.test's MX is a sink of its
own on 127.0.0.2, so it can block (--block-pct 100: 554 5.7.1 to every
recipient) and later recover (a sink without it on the same address):

- escalation: a warning incident nobody acknowledges within
  escalate_after becomes critical (timeline, record, an `incident` event
  with change "escalated" at the webhook), and its alerts reach the
  command and the alert address twice (opened, escalated), the second no
  sooner than alert_interval after the first;
- an acknowledged incident does not escalate by time, while another one
  left alone does (restart with a short escalate_after);
- resume = probe: a block pauses the campaign; the pause shows in
  `campaign show`, `sluice status` (text and JSON), status.json and
  `incident show`; a probe to the blocking provider fails and the pause
  stays; the provider recovers, the next probe is delivered, sluiced
  resumes the campaign (audited, via the incident), the incident
  resolves and the campaign completes;
- the same with pause_site: a probe through the paused site that fails,
  then one that is delivered lifts the site's pause; and with
  pause_account: a delivered probe enables the account again;
- a pause still pending in the record (what a kill -9 between the
  incident's record and its pause leaves: written here by incident_put
  with the opening change sluiced makes) is taken when sluiced starts.

No timing assertions: every wait is for a condition, with a generous
deadline (the one comparison of times is a lower bound sluiced keeps by
construction: alert_interval between two alerts).

usage: /usr/bin/python3 test_breaker.py SLUICED SLUICE SINK
(SLUICE_INCIDENT_PUT: the incident_put helper)
"""
import json
import os
import subprocess

import peers
from incident_base import IncidentTest
from peers import wait_for
from webhook_receiver import Receiver

PROV, CALM, ALERTS = "prov.test", "calm.test", "alerts.test"
SEP = "=====\n"


class Breaker(IncidentTest):

    # ---------------------------------------------------------- helpers

    def camp(self, cid):
        return json.loads(self.sluice("campaign", "show", cid,
                                      "--json").stdout)

    def alert_script(self):
        """An alert command that appends the time it ran and its input."""
        out = self.path("alert-command.out")
        cmd = self.path("alert.sh")
        with open(cmd, "w") as f:
            f.write("#!/bin/sh\n{ date +%%s.%%N; cat; echo; printf '%s'; } "
                    ">> %s\n" % (SEP, out))
        os.chmod(cmd, 0o755)
        return cmd, out

    def alerts_run(self, out):
        """[(time the command ran, its JSON input)] so far."""
        if not os.path.exists(out):
            return []
        with open(out) as f:
            # whole runs only: each ends with SEP (one may be half written)
            parts = f.read().split(SEP)[:-1]
        got = []
        for p in parts:
            when, _, body = p.partition("\n")
            got.append((float(when), json.loads(body)))
        return got

    def whats(self, iid):
        return [t["what"] for t in self.show(iid)["timeline"]]

    # ------------------------------------------------------- escalation

    def test_escalation_alerts_open_and_escalated_once_per_interval(self):
        port = peers.free_port()
        dns = self.start_dns({d: [(10, "127.0.0.1")] for d in (PROV, ALERTS)})
        sink = self.start_sink(port, listen="127.0.0.1")
        self.accounts("shop")
        shop = self.account_id("shop")
        rcpts = ["%s%03d@%s" % ("block" if i % 2 else "ok", i, PROV)
                 for i in range(60)]
        hook = Receiver(secret="s" * 16 + "escalate")
        self.threads.append(hook)
        cmd, out = self.alert_script()
        conf = self.write_config(
            dns=dns, smtp_port=port, dkim_sign="no",
            accounts={shop: {"alert_to": "ops@" + ALERTS}},
            domains={PROV: {"max_rate": "5/s"}}, alert_command=cmd,
            alert_interval="6s")
        self.add(conf, "\n[alert blocks]\nsignal = block_rate\n"
                 "scope = campaign\nthreshold = 10%%\nmin_volume = 10\n"
                 "window = 5m\nseverity = warning\nescalate_after = 1s\n"
                 "auto_resolve = never\n"
                 "\n[webhook ops]\nurl = %s\nsecret = %s\nevents = incident\n"
                 % (hook.url, hook.secret))
        cid = self.campaign("shop", "news", rcpts)
        p = self.start_sluiced(conf, exit_when_empty=False)

        inc = wait_for(lambda: self.incidents() or None, 120,
                       "an incident opened")
        iid = inc[0]["id"]
        self.assertEqual((inc[0]["rule"], inc[0]["scope_name"]),
                         ("blocks", cid))
        # nobody acknowledges it: warning -> critical
        i = wait_for(lambda: (lambda x: x if x["severity"] == "critical"
                              else None)(self.show(iid)), 120,
                     "the incident escalated")
        self.assertEqual(i["escalations"], 1)
        esc = [t for t in i["timeline"] if t["what"] == "escalated"]
        self.assertEqual(len(esc), 1, i["timeline"])
        self.assertIn("warning -> critical: not acknowledged within 1s",
                      esc[0]["text"])
        self.assertEqual(esc[0]["who"], "sluiced")
        self.assertIn("incident escalate",
                      self.sluice("audit", "list").stdout.decode())

        # the webhook gets the escalation as an incident event
        evs = wait_for(lambda: len(hook.events) >= 2 and
                       sorted(hook.events.values(),
                              key=lambda e: e["seq"]) or None, 60,
                       "two incident events at the webhook")
        self.assertEqual([(e["type"], e["change"]) for e in evs],
                         [("incident", "opened"), ("incident", "escalated")])
        self.assertIn("escalated blocks critical campaign %s" % cid,
                      evs[1]["text"])
        self.assertEqual(hook.bad_sig, 0)

        # two alerts, opened then escalated, alert_interval apart at least
        got = wait_for(lambda: len(self.alerts_run(out)) >= 2 and
                       self.alerts_run(out) or None, 60,
                       "the escalated alert at the command")
        self.assertEqual([a["change"] for _, a in got],
                         ["opened", "escalated"])
        self.assertEqual([a["incident"]["severity"] for _, a in got],
                         ["warning", "critical"])
        self.assertGreaterEqual(got[1][0] - got[0][0], 6.0, got)

        def alert_mails():
            subj = []
            for frm, to, data in sink.captures():
                if "ops@" + ALERTS in to:
                    subj += [l for l in data.split(b"\r\n")
                             if l.startswith(b"Subject:")]
            return subj if len(subj) >= 2 else None
        subj = sorted(wait_for(alert_mails, 60, "two alert mails"))
        self.assertIn(b"incident %d escalated: blocks (critical)" % iid,
                      subj[0])
        self.assertIn(b"incident %d opened: blocks (warning)" % iid, subj[1])
        self.stop(p)
        # critical is the top: no further escalation, no third alert
        self.assertEqual(self.show(iid)["escalations"], 1)
        self.assertEqual(len(self.alerts_run(out)), 2)

    def test_acknowledged_incident_does_not_escalate_by_time(self):
        port = peers.free_port()
        dns = self.start_dns({PROV: [(10, "127.0.0.1")]})
        self.start_sink(port, listen="127.0.0.1", capture=False)
        self.accounts("shop")
        rcpts = ["%s%03d@%s" % ("block" if i % 2 else "ok", i, PROV)
                 for i in range(40)]
        cmd, out = self.alert_script()

        def config(after):
            conf = self.write_config(dns=dns, smtp_port=port, dkim_sign="no",
                                     alert_command=cmd, alert_interval="1s",
                                     name="sluiced-%s.conf" % after)
            for rule, scope in (("blocks", "campaign"),
                                ("blocks-acct", "account")):
                self.add(conf, "\n[alert %s]\nsignal = block_rate\n"
                         "scope = %s\nthreshold = 10%%\nmin_volume = 10\n"
                         "window = 5m\nseverity = warning\n"
                         "escalate_after = %s\nauto_resolve = never\n"
                         % (rule, scope, after))
            return conf
        self.campaign("shop", "news", rcpts)
        p = self.start_sluiced(config("1h"), exit_when_empty=False)
        inc = wait_for(lambda: len(self.incidents()) == 2 and
                       self.incidents() or None, 120, "two incidents")
        self.stop(p)
        first, second = sorted(x["id"] for x in inc)
        # a person acknowledges the first; the second is left alone
        self.sluice("incident", "ack", str(first))
        p = self.start_sluiced(config("2s"), exit_when_empty=False,
                               name="sluiced2")
        wait_for(lambda: self.show(second)["severity"] == "critical" or None,
                 120, "the unacknowledged incident escalated")
        # the table is checked in id order each tick: the acknowledged
        # one came first and was passed over
        a = self.show(first)
        self.assertEqual((a["state"], a["severity"]),
                         ("acknowledged", "warning"))
        self.assertNotIn("escalated", self.whats(first))
        self.assertIn("escalated", self.whats(second))
        got = wait_for(lambda: [x for _, x in self.alerts_run(out)
                                if x["change"] == "escalated"] or None, 60,
                       "the escalated alert")
        self.assertEqual([x["incident"]["id"] for x in got], [second])
        self.stop(p)
        self.assertNotIn("escalated", self.whats(first))

    # --------------------------------------------------------- probes

    def blocking_prov(self, port):
        """prov.test's MX on 127.0.0.2, blocking every recipient."""
        return self.start_sink(port, listen="127.0.0.2", name="prov-block",
                               args=["--block-pct", "100"])

    def status(self):
        return json.loads(self.sluice("status", "--json").stdout)

    def test_probe_fails_then_resumes_the_campaign(self):
        port = peers.free_port()
        dns = self.start_dns({PROV: [(10, "127.0.0.2")],
                              CALM: [(10, "127.0.0.1")]})
        self.start_sink(port, listen="127.0.0.1", capture=False)
        block = self.blocking_prov(port)
        self.accounts("shop")
        rcpts = []
        for i in range(40):
            rcpts += ["p%03d@%s" % (i, PROV), "c%03d@%s" % (i, CALM)]
        conf = self.write_config(
            dns=dns, smtp_port=port, dkim_sign="no",
            domains={PROV: {"max_rate": "5/s"}, CALM: {"max_rate": "5/s"}})
        self.add(conf, "\n[alert blocks]\nsignal = block_rate\n"
                 "scope = campaign\nthreshold = 10%\nmin_volume = 10\n"
                 "window = 1m\nseverity = critical\naction = pause_campaign\n"
                 "resume = probe\nprobe_after = 2s\nauto_resolve = never\n")
        cid = self.campaign("shop", "news", rcpts)
        p = self.start_sluiced(conf, exit_when_empty=False)

        inc = wait_for(lambda: self.incidents() or None, 120,
                       "the block incident")
        iid = inc[0]["id"]
        wait_for(lambda: self.camp(cid)["state"] == "paused" or None, 60,
                 "the campaign paused")
        i = wait_for(lambda: (lambda x: x if x["pause"]["state"] == "paused"
                              else None)(self.show(iid)), 60,
                     "the pause marked taken")
        self.assertEqual((i["pause"]["kind"], i["pause"]["name"],
                          i["pause"]["resume"], i["pause"]["domain"]),
                         ("campaign", cid, "probe", PROV))

        # the pause is shown: campaign show, status, status.json, incident
        c = self.camp(cid)
        self.assertEqual((c["paused_by"]["incident"], c["paused_by"]["rule"],
                          c["paused_by"]["resume"]), (iid, "blocks", "probe"))
        text = self.sluice("campaign", "show", cid).stdout.decode()
        self.assertRegex(text, r"paused by +incident %d \(rule blocks, "
                         r"critical\) since .*resumes after a probe" % iid)
        st = self.status()["paused_by_incidents"]
        self.assertEqual([(x["kind"], x["name"], x["incident"], x["rule"])
                          for x in st], [("campaign", cid, iid, "blocks")])
        text = self.sluice("status").stdout.decode()
        self.assertRegex(text, r"paused by incidents:\n +campaign %s +"
                         r"incident %d \(rule blocks" % (cid, iid))
        text = self.sluice("incident", "show", str(iid)).stdout.decode()
        self.assertRegex(text, r"pause: campaign %s paused since .*resumes "
                         r"after a probe" % cid)

        def breakers():
            try:
                with open(self.path("spool", "status.json")) as f:
                    return json.load(f).get("breakers") or None
            except (OSError, ValueError):
                return None
        br = wait_for(breakers, 30, "the breaker in status.json")
        self.assertEqual((br[0]["incident"], br[0]["kind"], br[0]["name"],
                          br[0]["state"]), (iid, "campaign", cid, "paused"))

        # the provider still blocks: the probe (to prov.test, the domain
        # of the root cause) fails and the pause stays
        tl = wait_for(lambda: [t for t in self.show(iid)["timeline"]
                               if t["what"] == "probe"] or None, 180,
                      "a failed probe")
        self.assertRegex(tl[0]["text"], r"probe failed: delivery \d+ to "
                         r"p\d+@prov\.test bounced: 554 5\.7\.1")
        self.assertIn("stays paused", tl[0]["text"])
        c = self.camp(cid)
        self.assertEqual(c["state"], "paused")
        self.assertGreater(c["queued"], 0)
        self.assertEqual(self.show(iid)["state"], "open")

        # the provider recovers: the next probe is delivered, sluiced
        # resumes the campaign and the incident resolves
        block.proc.stop(10)
        ok = self.start_sink(port, listen="127.0.0.2", name="prov-ok")
        i = wait_for(lambda: (lambda x: x if x["state"] == "resolved"
                              else None)(self.show(iid)), 180,
                     "the incident resolved after a probe")
        tl = i["timeline"]
        self.assertEqual([t["what"] for t in tl[-2:]],
                         ["resumed", "resolved"])
        self.assertRegex(tl[-2]["text"], r"campaign %s resumed after probe: "
                         r"delivery \d+ to p\d+@prov\.test delivered" % cid)
        self.assertEqual((tl[-1]["who"], tl[-1]["text"]),
                         ("sluiced", "resumed after probe"))
        self.assertEqual(i["pause"]["state"], "lifted")
        audit = json.loads(self.sluice("audit", "list", "--json").stdout)
        res = [a for a in audit if a["action"] == "campaign resume"]
        self.assertEqual([(a["user"], a["via"]) for a in res],
                         [("sluiced", "incident %d" % iid)])
        self.assertTrue([a for a in audit if a["action"] == "incident probe"
                         and a["user"] == "sluiced"])
        c = wait_for(lambda: (lambda x: x if x["state"] == "done"
                              else None)(self.camp(cid)), 180,
                     "the campaign done after the resume")
        self.assertEqual(c["queued"], 0)
        self.assertIsNone(c["paused_by"])
        self.assertGreater(len([r for r in ok.captures()
                                for x in r[1] if x.endswith("@" + PROV)]), 1)
        self.assertEqual(self.status()["paused_by_incidents"], [])
        self.stop(p)

    def test_site_probe_fails_then_lifts_the_site_pause(self):
        port = peers.free_port()
        dns = self.start_dns({PROV: [(10, "127.0.0.2")]})
        block = self.blocking_prov(port)
        self.accounts("shop")
        ids = self.inject("news@shop.test",
                          ["u%03d@%s" % (i, PROV) for i in range(30)],
                          "From: news@shop.test\r\nSubject: t\r\n\r\nhi\r\n",
                          account="shop")
        # one recipient per transaction, so the probe is one delivery
        conf = self.write_config(
            dns=dns, smtp_port=port, dkim_sign="no", pause_recheck="1s",
            domains={PROV: {"max_rate": "5/s",
                            "max_rcpts_per_message": "1"}})
        self.add(conf, "\n[alert site-blocks]\nsignal = block_rate\n"
                 "scope = site\nthreshold = 10%\nmin_volume = 10\n"
                 "window = 1m\nseverity = critical\naction = pause_site\n"
                 "resume = probe\nprobe_after = 2s\nauto_resolve = never\n")
        p = self.start_sluiced(conf, exit_when_empty=False)
        inc = wait_for(lambda: self.incidents() or None, 120,
                       "the site incident")
        iid = inc[0]["id"]
        self.assertEqual((inc[0]["scope"], inc[0]["scope_name"]),
                         ("site", PROV))
        wait_for(lambda: [x for x in self.status()["paused_by_incidents"]
                          if x["kind"] == "site"] or None, 60,
                 "the site paused by the incident")
        # the site's row says paused, by the incident
        # (status.json is sluiced's view, written once a second: it may
        # show the pause a moment after the spool's controls do)
        row = wait_for(lambda: [r for r in self.status()["rows"]
                                if r["name"] == PROV and r["pause"]] or None,
                       60, "the site's row in status with its pause")
        self.assertEqual((row[0]["kind"], row[0]["state"]), ("site", "paused"))
        self.assertEqual(row[0]["pause"]["incident"]["incident"], iid)
        tl = wait_for(lambda: [t for t in self.show(iid)["timeline"]
                               if t["what"] == "probe"] or None, 180,
                      "a failed probe through the site")
        self.assertRegex(tl[0]["text"], r"probe failed: delivery \d+ to "
                         r"u\d+@prov\.test bounced: 554 5\.7\.1")
        self.assertIn("site %s stays paused" % PROV, tl[0]["text"])
        block.proc.stop(10)
        self.start_sink(port, listen="127.0.0.2", name="prov-ok",
                        capture=False)
        i = wait_for(lambda: (lambda x: x if x["state"] == "resolved"
                              else None)(self.show(iid)), 180,
                     "the site's incident resolved after a probe")
        self.assertEqual([t["what"] for t in i["timeline"][-2:]],
                         ["resumed", "resolved"])
        self.assertIn("site %s resumed after probe" % PROV,
                      i["timeline"][-2]["text"])
        wait_for(lambda: json.loads(self.sluice("paused", "--json").stdout)
                 == [] or None, 60, "the site's pause lifted")

        def all_ended():
            ev = self.spool_events()
            done = {e["delivery"] for e in ev
                    if e["type"] in ("delivered", "bounced", "expired")}
            return set(ids) <= done or None
        wait_for(all_ended, 180, "every recipient ended after the resume")
        delivered = [e for e in self.spool_events()
                     if e["type"] == "delivered"]
        self.assertGreater(len(delivered), 1)
        self.stop(p)

    def test_account_probe_enables_the_account(self):
        port = peers.free_port()
        dns = self.start_dns({PROV: [(10, "127.0.0.2")],
                              CALM: [(10, "127.0.0.1")]})
        self.start_sink(port, listen="127.0.0.1", capture=False)
        block = self.blocking_prov(port)
        self.accounts("shop")
        rcpts = []
        for i in range(30):
            rcpts += ["c%03d@%s" % (i, CALM), "p%03d@%s" % (i, PROV)]
        conf = self.write_config(
            dns=dns, smtp_port=port, dkim_sign="no",
            domains={PROV: {"max_rate": "5/s"}, CALM: {"max_rate": "5/s"}})
        self.add(conf, "\n[alert acct-blocks]\nsignal = block_rate\n"
                 "scope = account\nthreshold = 10%\nmin_volume = 10\n"
                 "window = 1m\nseverity = critical\naction = pause_account\n"
                 "resume = probe\nprobe_after = 2s\nauto_resolve = never\n")
        cid = self.campaign("shop", "news", rcpts)
        p = self.start_sluiced(conf, exit_when_empty=False)
        inc = wait_for(lambda: self.incidents() or None, 120,
                       "the account incident")
        iid = inc[0]["id"]
        wait_for(lambda: json.loads(self.sluice("account", "show", "shop",
                                                "--json").stdout)
                 ["disabled"] or None, 60, "the account disabled")
        st = wait_for(lambda: self.status()["paused_by_incidents"] or None,
                      60, "the account in status")
        self.assertEqual((st[0]["kind"], st[0]["incident"]),
                         ("account", iid))
        # the provider recovers before the first probe (which waits for
        # the rule's window to be clean): it is delivered
        block.proc.stop(10)
        self.start_sink(port, listen="127.0.0.2", name="prov-ok",
                        capture=False)
        i = wait_for(lambda: (lambda x: x if x["state"] == "resolved"
                              else None)(self.show(iid)), 180,
                     "the account's incident resolved after a probe")
        self.assertRegex(i["timeline"][-2]["text"],
                         r"account \d+ resumed after probe: delivery \d+ to "
                         r"p\d+@prov\.test delivered")
        audit = json.loads(self.sluice("audit", "list", "--json").stdout)
        self.assertEqual([(a["user"], a["via"]) for a in audit
                          if a["action"] == "account enable"],
                         [("sluiced", "incident %d" % iid)])
        wait_for(lambda: self.camp(cid)["state"] == "done" or None, 180,
                 "the campaign done after the account's resume")
        self.assertFalse(json.loads(self.sluice("account", "show", "shop",
                                                "--json").stdout)["disabled"])
        self.stop(p)

    # ------------------------------------------------------------ crash

    def test_pending_pause_is_taken_at_start(self):
        port = peers.free_port()
        dns = self.start_dns({PROV: [(10, "127.0.0.1")]})
        self.start_sink(port, listen="127.0.0.1", capture=False)
        self.accounts("shop")
        shop = self.account_id("shop")
        cid = self.campaign("shop", "news",
                            ["u%03d@%s" % (i, PROV) for i in range(30)])
        conf = self.write_config(dns=dns, smtp_port=port, dkim_sign="no",
                                 domains={PROV: {"max_rate": "1/s"}})
        self.add(conf, "\n[alert blocks]\nsignal = block_rate\n"
                 "scope = campaign\nthreshold = 10%\nmin_volume = 10\n"
                 "window = 5m\nseverity = critical\naction = pause_campaign\n"
                 "auto_resolve = never\n")
        # what sluiced's opening committed before a kill -9 took it: the
        # record, its pause still pending
        iid = self.put_incident(
            shop, cid, action="pause_campaign",
            pause={"kind": "campaign", "name": cid, "state": "pending",
                   "resume": "manual", "probe_after_s": 600, "domain": ""})
        self.assertEqual(self.camp(cid)["state"], "sending")
        st = self.status()["paused_by_incidents"]
        self.assertEqual([(x["incident"], x["state"]) for x in st],
                         [(iid, "pending")])

        p = self.start_sluiced(conf, exit_when_empty=False)
        wait_for(lambda: self.camp(cid)["state"] == "paused" or None, 60,
                 "the pending pause taken at start")
        i = wait_for(lambda: (lambda x: x if x["pause"]["state"] == "paused"
                              else None)(self.show(iid)), 60,
                     "the pause marked taken")
        self.assertEqual([t["what"] for t in i["timeline"]],
                         ["opened", "action"])
        self.assertIn("pause_campaign: account %d, campaign %s"
                      % (shop, cid), i["timeline"][1]["text"])
        audit = json.loads(self.sluice("audit", "list", "--json").stdout)
        self.assertEqual([(a["user"], a["via"]) for a in audit
                          if a["action"] == "campaign pause"],
                         [("sluiced", "incident %d" % iid)])
        c = self.camp(cid)
        self.assertEqual(c["paused_by"]["incident"], iid)
        self.assertGreater(c["queued"], 0)
        # taken once: a restart finds it taken and does not pause again
        self.stop(p)
        p = self.start_sluiced(conf, exit_when_empty=False, name="sluiced2")
        def second_up():
            try:
                with open(self.path("spool", "status.json")) as f:
                    return json.load(f).get("pid") == p.pid or None
            except (OSError, ValueError):
                return None
        wait_for(second_up, 60, "the second run up")
        self.sluice("campaign", "resume", cid)
        wait_for(lambda: self.camp(cid)["state"] == "done" or None, 180,
                 "the campaign done after a person's resume")
        self.assertEqual(self.whats(iid), ["opened", "action"])
        self.stop(p)


if __name__ == "__main__":
    peers.main()
