"""test_incident_gauges.py - incidents opened by the gauges (issue 19):
the adaptive backoff holding a site at its floor, DKIM signing failures,
the spool's LMDB map filling up, a webhook's backlog.

A real sluiced with real peers on 127.0.0.1:

- a site whose receiver greets 421 is cut to its backoff floor and stays
  there: a backoff_floor incident for that site (the platform's), whose
  root cause names the 421 and the site's rate factor at its floor; the
  alert command gets it; once a healthy receiver takes over the site
  recovers and the incident resolves itself;
- an account whose messages cannot be signed (more header fields than
  DKIM signs: the signer refuses them at send time, deferred) opens a
  dkim_failure_rate incident for that account naming the domain and the
  selector, while its other mail is signed and delivered;
- a spool with map_max = 4 MiB filled past the rule's threshold by a
  message held for a paused domain opens a spool_full incident for the
  engine with the spool's numbers; it is read back across a restart and
  resolves itself once the domain is resumed and the spool drains;
- a [webhook] whose receiver answers 500 while events pile up opens a
  webhook_backlog incident for that webhook, read back across a restart;
  once the receiver answers 200 the backlog drains, the incident resolves
  itself, and the receiver gets the incident's own events.

No timing assertions: every wait is for a condition, with a generous
deadline.

usage: /usr/bin/python3 test_incident_gauges.py SLUICED SLUICE SINK
"""
import json
import os

import peers
from incident_base import IncidentTest
from peers import wait_for
from webhook_receiver import Receiver

FLOOR, DEST, FULL = "floor.test", "dest.test", "full.test"


class Gauges(IncidentTest):

    def alert_script(self):
        out = self.path("alert-command.out")
        cmd = self.path("alert.sh")
        with open(cmd, "w") as f:
            f.write("#!/bin/sh\ncat >> %s\necho >> %s\n" % (out, out))
        os.chmod(cmd, 0o755)
        return cmd, out

    def resolved_by_sluiced(self, iid, timeout, what):
        def done():
            i = self.show(iid)
            return i if i["state"] == "resolved" else None
        i = wait_for(done, timeout, what)
        last = i["timeline"][-1]
        self.assertEqual((last["what"], last["who"]), ("resolved", "sluiced"))
        return i

    def incident_events(self, prefix):
        ev = [e for e in self.event_log() if e["type"] == "incident" and
              e.get("text", "").startswith(prefix)]
        self.assertLessEqual(len(ev), 1, ev)
        return ev

    def test_backoff_floor_opens_for_the_site_and_resolves(self):
        port = peers.free_port()
        dns = self.start_dns({FLOOR: [(10, "127.0.0.1")]})
        bad = self.start_sink(port, listen="127.0.0.1",
                              args=["--mode", "greet-421"], name="bad",
                              capture=False)
        self.accounts("shop")
        cmd, cmd_out = self.alert_script()
        conf = self.write_config(dns=dns, smtp_port=port, dkim_sign="no",
                                 alert_command=cmd)
        # one cut reaches the floor; one success lifts the site again
        self.add(conf, "\n[backoff]\nmin_rate_factor = 0.5\n"
                 "recover_after = 1\n"
                 "\n[alert floor]\nsignal = backoff_floor\nscope = site\n"
                 "threshold = 10s\nmin_volume = 5\nwindow = 1m\n"
                 "severity = warning\nauto_resolve = 5s\n")
        for i in range(10):
            self.inject("news@shop.test", ["u%d@%s" % (i, FLOOR)],
                        "From: news@shop.test\r\nSubject: %d\r\n\r\nhi\r\n"
                        % i, account="shop")
        p = self.start_sluiced(conf, exit_when_empty=False)

        inc = wait_for(lambda: self.incidents() or None, 180,
                       "the backoff-floor incident")
        self.assertEqual(len(inc), 1, inc)
        i = inc[0]
        self.assertEqual((i["rule"], i["signal"], i["scope"], i["scope_name"],
                          i["severity"], i["account"]),
                         ("floor", "backoff_floor", "site", FLOOR, "warning",
                          self.account_id("master")))
        self.assertGreaterEqual(i["numbers"]["value"], 10)
        self.assertGreaterEqual(i["numbers"]["volume"], 5)
        rc = i["root_cause"]
        self.assertRegex(rc["replies"][0]["reply"],
                         r"^421 4.3.2 .*service not available")
        d = rc["detail"]
        self.assertEqual(d["site"], FLOOR)
        self.assertEqual(d["rate_factor"], 0.5)
        self.assertEqual(d["min_rate_factor"], 0.5)
        self.assertIn("421", d["last_reply"])
        wait_for(lambda: self.incident_events("opened floor warning site " +
                                              FLOOR), 60,
                 "the incident event in the event log")

        def command_input():
            if not os.path.exists(cmd_out):
                return None
            with open(cmd_out) as f:
                return f.read().strip() or None
        a = json.loads(wait_for(command_input, 60, "the alert command"))
        self.assertEqual((a["change"], a["incident"]["id"]),
                         ("opened", i["id"]))

        # a healthy receiver: the mail goes, the site leaves its floor,
        # the window forgets it and the incident resolves itself
        bad.stop()
        good = self.start_sink(port, listen="127.0.0.1", name="good",
                               capture=False)
        wait_for(lambda: len([e for e in self.spool_events()
                              if e["type"] == "delivered"]) == 10 or None,
                 120, "10 delivered")
        self.resolved_by_sluiced(i["id"], 300, "the incident resolved")
        self.assertEqual(len(self.incidents()), 1)
        self.stop(p)
        self.assertEqual(good.stop()["messages"], 10)

    def test_dkim_failures_open_for_the_account(self):
        port = peers.free_port()
        dns = self.start_dns({DEST: [(10, "127.0.0.1")]})
        sink = self.start_sink(port, listen="127.0.0.1")
        self.accounts("shop", "calm")
        shop = self.account_id("shop")
        conf = self.write_config(dns=dns, smtp_port=port,
                                 allow_unsigned=False)
        self.add(conf, "\n[alert dkim]\nsignal = dkim_failure_rate\n"
                 "scope = account\nthreshold = 20%\nmin_volume = 5\n"
                 "window = 5m\nseverity = critical\n")
        # DKIM signs at most 1000 header fields: these cannot be signed
        many = "".join("X-Filler-%d: x\r\n" % k for k in range(1100))
        for i in range(5):
            self.inject("news@shop.test", ["bad%d@%s" % (i, DEST)],
                        "From: news@shop.test\r\nSubject: bad %d\r\n%s\r\n"
                        "hi\r\n" % (i, many), account="shop")
        for i in range(5):
            self.inject("news@shop.test", ["ok%d@%s" % (i, DEST)],
                        "From: news@shop.test\r\nSubject: ok %d\r\n\r\nhi\r\n"
                        % i, account="shop")
            self.inject("news@calm.test", ["calm%d@%s" % (i, DEST)],
                        "From: news@calm.test\r\nSubject: c %d\r\n\r\nhi\r\n"
                        % i, account="calm")
        p = self.start_sluiced(conf, exit_when_empty=False)

        inc = wait_for(lambda: self.incidents() or None, 120,
                       "the DKIM incident")
        self.assertEqual(len(inc), 1, inc)
        i = inc[0]
        self.assertEqual((i["rule"], i["signal"], i["scope"], i["scope_name"],
                          i["account"]),
                         ("dkim", "dkim_failure_rate", "account", str(shop),
                          shop))
        self.assertGreaterEqual(i["numbers"]["value"], 0.2)
        self.assertLessEqual(i["numbers"]["value"], 1.0)
        self.assertGreaterEqual(i["numbers"]["volume"], 5)
        d = i["root_cause"]["detail"]
        self.assertGreaterEqual(d["failures"], 1)
        self.assertIn("DKIM signing for shop.test (selector s1) failed",
                      d["last_error"])
        self.assertIn("DKIM signing for shop.test (selector s1) failed",
                      i["root_cause"]["replies"][0]["reply"])
        self.assertEqual(self.incidents("--account", "calm"), [])
        # the rest of the mail is signed and delivered
        def signed():
            got = {r[0]: data for _, r, data in sink.captures()}
            return got if len(got) == 10 else None
        got = wait_for(signed, 60, "the ten good messages")
        for rcpt, data in got.items():
            self.assertFalse(rcpt.startswith("bad"), rcpt)
            self.assertIn(b"DKIM-Signature:", data)
        self.stop(p)
        self.assertEqual(len(self.incidents()), 1)

    def test_spool_filling_opens_and_resolves_after_the_drain(self):
        port = peers.free_port()
        dns = self.start_dns({FULL: [(10, "127.0.0.1")]})
        sink = self.start_sink(port, listen="127.0.0.1")
        self.accounts("shop")
        conf = self.write_config(dns=dns, smtp_port=port, dkim_sign="no",
                                 map_max="4")
        self.add(conf, "\n[alert spool]\nsignal = spool_full\n"
                 "scope = engine\nthreshold = 40%\nseverity = critical\n"
                 "auto_resolve = 3s\n")
        self.sluice("pause", "domain", FULL)
        line = "x" * 76 + "\r\n"
        body = line * (2 * 1024 * 1024 // len(line))
        self.inject("news@shop.test", ["big@" + FULL],
                    "From: news@shop.test\r\nSubject: big\r\n\r\n" + body,
                    account="shop")
        p = self.start_sluiced(conf, exit_when_empty=False)

        inc = wait_for(lambda: self.incidents() or None, 120,
                       "the spool incident")
        self.assertEqual(len(inc), 1, inc)
        i = inc[0]
        self.assertEqual((i["rule"], i["signal"], i["scope"], i["scope_name"],
                          i["severity"], i["account"]),
                         ("spool", "spool_full", "engine", "spool",
                          "critical", self.account_id("master")))
        self.assertGreaterEqual(i["numbers"]["value"], 0.4)
        d = i["root_cause"]["detail"]
        self.assertEqual(d["map_max_bytes"], 4 << 20)
        self.assertGreaterEqual(d["data_bytes"], 2 << 20)
        self.assertGreaterEqual(d["map_used"], 0.4)
        self.assertEqual(d["path"], self.path("spool"))
        wait_for(lambda: self.incident_events("opened spool critical engine "
                                              "spool"), 60,
                 "the incident event in the event log")

        # a restart reads the open incident back: the next run joins it
        # (and resolves it) rather than open another
        self.stop(p)
        p = self.start_sluiced(conf, exit_when_empty=False, name="sluiced2")
        self.sluice("resume", "domain", FULL)
        wait_for(lambda: sink.captures() or None, 120, "the big message")
        self.resolved_by_sluiced(i["id"], 300,
                                 "the incident resolved after the drain")
        self.assertEqual([x["id"] for x in self.incidents()], [i["id"]])
        self.stop(p)
        self.assertEqual(len(self.incident_events("resolved spool engine "
                                                  "spool")), 1)

    def test_webhook_backlog_opens_and_resolves_when_it_recovers(self):
        port = peers.free_port()
        dns = self.start_dns({DEST: [(10, "127.0.0.1")]})
        self.start_sink(port, listen="127.0.0.1", capture=False)
        self.accounts("shop")
        hook = Receiver(always_fail=True)
        self.threads.append(hook)
        conf = self.write_config(dns=dns, smtp_port=port, dkim_sign="no")
        self.add(conf, "\n[webhook crm]\nurl = %s\n"
                 "\n[alert hook]\nsignal = webhook_backlog\nscope = webhook\n"
                 "threshold = 20\nseverity = warning\nauto_resolve = 3s\n"
                 % hook.url)
        for i in range(30):
            self.inject("news@shop.test", ["u%d@%s" % (i, DEST)],
                        "From: news@shop.test\r\nSubject: %d\r\n\r\nhi\r\n"
                        % i, account="shop")
        p = self.start_sluiced(conf, exit_when_empty=False)

        inc = wait_for(lambda: self.incidents() or None, 120,
                       "the webhook incident")
        self.assertEqual(len(inc), 1, inc)
        i = inc[0]
        self.assertEqual((i["rule"], i["signal"], i["scope"], i["scope_name"],
                          i["account"]),
                         ("hook", "webhook_backlog", "webhook", "crm",
                          self.account_id("master")))
        self.assertGreaterEqual(i["numbers"]["value"], 20)
        d = i["root_cause"]["detail"]
        self.assertEqual(d["webhook"], "crm")
        self.assertGreaterEqual(d["events_behind"], 20)
        self.assertEqual(d["last_error"], "HTTP status 500")
        self.assertGreater(d["failing_since_ms"], 0)
        self.assertGreater(hook.failed, 0)
        self.assertEqual(hook.events, {})

        # read back across a restart, still failing
        self.stop(p)
        before = hook.failed
        p = self.start_sluiced(conf, exit_when_empty=False, name="sluiced2")
        wait_for(lambda: hook.failed > before or None, 60,
                 "a POST of the new run refused")
        hook.always_fail = False
        # the backlog drains: the receiver gets the deliveries and the
        # incident's own event; the incident resolves itself
        wait_for(lambda: len([e for e in hook.events.values()
                              if e["type"] == "delivered"]) == 30 or None,
                 180, "30 delivered events at the receiver")
        self.resolved_by_sluiced(i["id"], 300, "the incident resolved")
        self.assertEqual([x["id"] for x in self.incidents()], [i["id"]])
        wait_for(lambda: [e for e in hook.events.values()
                          if e["type"] == "incident" and
                          e["text"].startswith("resolved hook")] or None,
                 120, "the resolved event at the receiver")
        opened = [e for e in hook.events.values() if e["type"] == "incident"
                  and e["text"].startswith("opened hook warning webhook crm")]
        self.assertEqual(len(opened), 1, opened)
        self.stop(p)


if __name__ == "__main__":
    peers.main()
