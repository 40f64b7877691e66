"""test_queue_ops.py - the admin's operations on queued mail, with sluiced
running against real sinks.

- `sluice queue summary` counts what the spool holds after a run where
  one domain's sink defers everything: its numbers match `sluice spool
  info` and the events, and it names the last reply;
- `sluice queue retry` makes that deferred mail (retry = 1h) go at once
  once the sink has recovered;
- `sluice queue bounce` ends queued mail, some of it in flight in a slow
  SMTP transaction, with exactly one terminal bounced event of category
  admin per recipient, counted as bounces, with no suppression;
- `sluice pause ... --for 2s` ends by itself while sluiced runs;
- a sub-account's admin acts on its own account's mail only (77
  otherwise), and the changes and the refusals are in the audit trail.

usage: /usr/bin/python3 test_queue_ops.py SLUICED SLUICE SINK
"""
import json
import os
import signal
import subprocess
import time

import peers
from peers import PeerTest

MSG = "From: s@sender.test\nSubject: q\n\nbody\n"


def msg_from(account):
    return "From: a@%s.test\nSubject: q\n\nbody\n" % account


class QueueOps(PeerTest):

    def summary(self, *args):
        r = self.sluice("queue", "summary", "--json", *args)
        return json.loads(r.stdout)

    def groups(self, *args):
        return {g["name"]: g for g in self.summary(*args)["groups"]}

    def as_user(self, user, *args):
        env = dict(os.environ, SLUICE_PWHASH_FAST="1", SLUICE_CONFIG="")
        if user:
            env["SLUICE_USER"] = user
            env["SLUICE_PASSWORD"] = "pw-" + user
        else:
            env.pop("SLUICE_USER", None)
        return subprocess.run([self.bin["sluice"], "--spool",
                               self.path("spool")] + list(args), env=env,
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=60)

    def deferring_setup(self):
        """ok.test to a sink that takes all, slow.test to one that answers
        451 to every recipient; sluiced retries after an hour."""
        port = peers.free_port()
        dns = self.start_dns({"ok.test": [(10, "127.0.0.81")],
                              "slow.test": [(10, "127.0.0.82")]})
        self.start_sink(port, listen="127.0.0.81", name="sink-ok")
        bad = self.start_sink(port, listen="127.0.0.82", name="sink-bad",
                              args=["--tempfail-pct", "100"])
        conf = self.write_config(dns=dns, smtp_port=port, retry="1h",
                                 max_age="1d")
        # slow.test's MX makes it a domain of the site "slowsite"
        with open(conf, "a") as f:
            f.write("\n[site slowsite]\nmx = mx1.slow.test\n")
        return port, conf, bad

    def test_summary_then_retry_sends_at_once(self):
        port, conf, bad = self.deferring_setup()
        oks = self.inject("s@sender.test",
                          ["o%d@ok.test" % i for i in range(3)], MSG)
        slows = self.inject("s@sender.test",
                            ["s%d@slow.test" % i for i in range(4)], MSG)
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.wait_events(lambda ev: sum(e["type"] == "delivered"
                                        for e in ev) >= 3 and
                         sum(e["type"] == "deferred" for e in ev) >= 4,
                         30, "ok.test delivered, slow.test deferred")

        info = self.spool_info()
        events = self.spool_events()
        deferred = [e for e in events if e["type"] == "deferred"]
        g = self.groups()
        self.assertEqual(set(g), {"slow.test"}, g)
        s = g["slow.test"]
        self.assertEqual(s["queued"], info["counts"]["queued"])
        self.assertEqual((s["queued"], s["deferred"], s["ready"],
                          s["waiting"], s["held"]), (4, 4, 0, 0, 0), s)
        self.assertEqual(len({e["delivery"] for e in deferred}), 4)
        self.assertEqual(s["last_error"]["code"], 451, s)
        self.assertEqual(s["last_error"]["seq"],
                         max(e["seq"] for e in deferred))
        # retry = 1h: the next attempt is far ahead
        self.assertGreater(s["next_attempt"],
                           self.summary()["now"] + 1800)
        # other groupings count the same mail
        for by in ("site", "campaign", "account"):
            got = self.summary("--by", by)
            self.assertEqual(sum(x["queued"] for x in got["groups"]), 4,
                             (by, got))
            self.assertEqual(got["by"], by)
        # sluiced's live view (rewritten every second) knows the site
        peers.wait_for(lambda: "slowsite" in [
            r["name"] for r in
            json.loads(self.sluice("status", "--json").stdout)["rows"]], 30,
            "slowsite in sluiced's live view")
        by_site = self.summary("--by", "site")
        self.assertTrue(by_site["live"])
        self.assertEqual([(x["name"], x["queued"], x["deferred"])
                          for x in by_site["groups"]],
                         [("slowsite", 4, 4)])
        table = self.sluice("queue", "summary").stdout.decode()
        self.assertIn("slow.test", table)
        self.assertIn("451", table)

        # the sink recovers; without a retry the mail would wait an hour
        bad.stop()
        self.start_sink(port, listen="127.0.0.82", name="sink-good")
        # a retry of another site, or of a campaign, moves none of it
        r = self.sluice("queue", "retry", "--site", "ok.test", "--json")
        self.assertEqual(json.loads(r.stdout), {"retried": 0})
        r = self.sluice("queue", "retry", "--campaign", "3", "--json")
        self.assertEqual(json.loads(r.stdout), {"retried": 0})
        r = self.sluice("queue", "retry", "--site", "slowsite", "--json")
        self.assertEqual(json.loads(r.stdout), {"retried": 4})
        self.wait_events(lambda ev: sum(e["type"] == "delivered"
                                        for e in ev) >= 7, 60,
                         "slow.test delivered after queue retry")
        self.assertEqual(self.summary()["groups"], [])
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0)
        self.assert_terminal_once(oks + slows)
        audit = self.sluice("audit", "list").stdout.decode()
        self.assertRegex(audit, r"queue retry.*site slowsite.*ok: 4 due now")

    def test_bounce_ends_queued_and_inflight_mail_once(self):
        port = peers.free_port()
        dns = self.start_dns({"held.test": [(10, "127.0.0.84")]})
        # slow* recipients get their RCPT reply late: that transaction is
        # in flight when the bounce commits
        sink = self.start_sink(port, listen="127.0.0.84",
                               args=["--slow-ms", "8000"])
        self.sluice("account", "create", "master")
        self.sluice("account", "create", "shop")
        self.sluice("domain", "add", "shop.test", "--account", "shop",
                    "--selector", "s1")
        self.sluice("domain", "verify", "shop.test", "--force")
        # one connection: the mail queued next waits claimed behind it
        conf = self.write_config(dns=dns, smtp_port=port, retry="1h",
                                 max_age="1d",
                                 domains={"held.test":
                                          {"max_connections": 1}})
        slow = self.inject("a@shop.test", ["slow%d@held.test" % i
                                           for i in range(2)],
                           msg_from("shop"), account="shop")
        p = self.start_sluiced(conf, exit_when_empty=False)
        peers.wait_for(lambda: sink.stats()["current_sessions"] >= 1, 30,
                       "sluiced in a session with the slow sink")
        queued = self.inject("a@shop.test", ["q%d@held.test" % i
                                             for i in range(5)],
                             msg_from("shop"), account="shop")
        r = self.sluice("queue", "bounce", "--domain", "held.test",
                        "--reason", "receiver asked us to stop", "--json")
        # every recipient still queued, claimed by sluiced or not
        self.assertEqual(json.loads(r.stdout), {"bounced": 7})
        ids = slow + queued
        self.wait_events(lambda ev: len({e["delivery"] for e in ev
                                         if e["type"] in peers.TERMINAL}
                                        & set(ids)) == 7, 60,
                         "every held.test recipient ended")
        # the slow transaction ends; sluiced's outcome for it comes after
        # the bounce and must not be a second terminal event, and the
        # bounced mail it held claimed must not go out on that session
        peers.wait_for(lambda: sink.stats()["messages"] >= 1, 60,
                       "the slow transaction accepted")
        time.sleep(2)
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0)
        ended = self.assert_terminal_once(ids)
        for d, e in ended.items():
            self.assertEqual((e["type"], peers.CATEGORIES[e["category"]],
                              e["enhanced"], e["text"], e["attempt"]),
                             ("bounced", "admin", "5.0.0",
                              "administrative bounce: receiver asked us "
                              "to stop", 0), e)
        st = sink.stop()
        self.assertEqual(st["recipients"], 2, st)
        info = self.spool_info()
        self.assertEqual((info["counts"]["bounced"],
                          info["counts"]["delivered"]), (7, 0))
        # hygiene untouched: no suppression for any of them
        sup = self.sluice("suppress", "list", "--account", "shop",
                          "--json").stdout.decode()
        self.assertNotIn("held.test", sup)
        # a second bounce finds nothing left
        r = self.sluice("queue", "bounce", "--account", "shop", "--reason",
                        "again", "--json")
        self.assertEqual(json.loads(r.stdout), {"bounced": 0})
        audit = self.sluice("audit", "list").stdout.decode()
        self.assertRegex(audit, r"queue bounce.*domain held\.test.*reason")
        self.assertIn("ok: 7 bounced", audit)

    def test_pause_for_ends_by_itself(self):
        port = peers.free_port()
        dns = self.start_dns({"brief.test": [(10, "127.0.0.85")]})
        self.start_sink(port, listen="127.0.0.85")
        conf = self.write_config(dns=dns, smtp_port=port)
        r = self.sluice("pause", "domain", "brief.test", "--for", "2s",
                        "--reason", "short")
        self.assertIn("for 2s", r.stdout.decode())
        listed = json.loads(self.sluice("paused", "--json").stdout)
        self.assertEqual([x["name"] for x in listed], ["brief.test"])
        self.assertIsNotNone(listed[0]["until"])
        self.assertLessEqual(listed[0]["left"], 2)
        ids = self.inject("s@sender.test", ["b%d@brief.test" % i
                                            for i in range(3)], MSG)
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.wait_events(lambda ev: sum(e["type"] == "delivered"
                                        for e in ev) >= 3, 60,
                         "brief.test delivered once the pause ended")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0)
        self.assert_terminal_once(ids)
        # an ended pause is not listed any more
        self.assertEqual(json.loads(self.sluice("paused", "--json").stdout),
                         [])
        # a bad duration is a usage error
        r = self.sluice("pause", "domain", "x.test", "--for", "soon",
                        check=False)
        self.assertEqual(r.returncode, 64, r.stderr)
        audit = self.sluice("audit", "list").stdout.decode()
        self.assertIn("domain brief.test for 2s", audit)

    def test_roles_of_a_sub_account(self):
        self.sluice("account", "create", "master")
        for acct in ("shop", "other"):
            self.sluice("account", "create", acct)
            self.sluice("domain", "add", "%s.test" % acct, "--account", acct,
                        "--selector", "s1")
            self.sluice("domain", "verify", "%s.test" % acct, "--force")
        # mail of both accounts, to the same domain
        shop = self.inject("a@shop.test", ["a%d@dest.test" % i
                                           for i in range(2)],
                           msg_from("shop"), account="shop")
        other = self.inject("a@other.test", ["b%d@dest.test" % i
                                             for i in range(3)],
                            msg_from("other"), account="other")
        env = dict(os.environ, SLUICE_PWHASH_FAST="1", SLUICE_CONFIG="")
        env.pop("SLUICE_USER", None)
        r = subprocess.run([self.bin["sluice"], "--spool", self.path("spool"),
                            "user", "add", "root", "--account", "master",
                            "--role", "owner", "--password-stdin"], env=env,
                           input=b"pw-root", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        env.update(SLUICE_USER="root", SLUICE_PASSWORD="pw-root")
        r = subprocess.run([self.bin["sluice"], "--spool", self.path("spool"),
                            "user", "add", "ann", "--account", "shop",
                            "--role", "admin", "--password-stdin"], env=env,
                           input=b"pw-ann", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        # ann, admin of shop: not the whole queue, not another account
        for args in (("queue", "summary"),
                     ("queue", "retry", "--domain", "dest.test"),
                     ("queue", "bounce", "--domain", "dest.test",
                      "--reason", "x"),
                     ("queue", "bounce", "--account", "other",
                      "--reason", "x"),
                     ("queue", "summary", "--account", "other")):
            r = self.as_user("ann", *args)
            self.assertEqual(r.returncode, 77, (args, r.stderr))
            self.assertIn(b"refused", r.stderr)
        # her own account's mail: yes, and only it
        r = self.as_user("ann", "queue", "summary", "--account", "shop",
                         "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(r.stdout)["groups"]
        self.assertEqual([(x["name"], x["queued"]) for x in got],
                         [("dest.test", 2)])
        r = self.as_user("ann", "queue", "bounce", "--account", "shop",
                         "--domain", "dest.test", "--reason", "done",
                         "--json")
        self.assertEqual((r.returncode, json.loads(r.stdout)),
                         (0, {"bounced": 2}), r.stderr)
        r = self.as_user("root", "queue", "summary", "--json")
        got = json.loads(r.stdout)["groups"]
        self.assertEqual([(x["name"], x["queued"]) for x in got],
                         [("dest.test", 3)])
        out = self.as_user("root", "spool", "events", "--json", "--limit",
                           "0").stdout.decode()
        evs = {e["delivery"]: e for e in map(json.loads, out.splitlines())}
        self.assertEqual(sorted(d for d in evs
                                if peers.CATEGORIES[evs[d]["category"]] ==
                                "admin"), shop)
        self.assertFalse(set(other) & set(evs))
        audit = self.as_user("root", "audit", "list").stdout.decode()
        self.assertRegex(audit, r"ann.*queue summary.*refused")
        self.assertRegex(audit, r"ann.*queue bounce.*account other.*refused")
        self.assertRegex(audit, r"ann.*queue bounce.*ok: 2 bounced")
        # usage and missing selection: 64
        r = self.as_user("root", "queue", "retry")
        self.assertEqual(r.returncode, 64, r.stderr)
        r = self.as_user("root", "queue", "bounce", "--domain", "dest.test")
        self.assertEqual(r.returncode, 64, r.stderr)
        r = self.as_user("root", "queue", "retry", "--account", "nosuch",
                         "--domain", "dest.test")
        self.assertEqual(r.returncode, 66, r.stderr)
        # --site needs a running sluiced
        r = self.as_user("root", "queue", "retry", "--site", "big")
        self.assertEqual(r.returncode, 69, r.stderr)


if __name__ == "__main__":
    peers.main()
