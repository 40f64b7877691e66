"""test_webhook.py - webhooks: every event reaches its receiver, signed,
filtered by type and account, through 500s, hangs and kill -9.

Cases: a campaign of a sub-account (shop) and mail of another sub-account
(other) against the sink (2% of recipients deferred once), with three
webhooks whose receivers answer 500 to some POSTs and hang past the
timeout on others; sluiced is killed with SIGKILL five times mid-run and
then left to finish: each receiver got every event it wants at least once
(deduped by id, or seq before ids exist) and nothing else, each event
equal to the spool's, every POST correctly signed; the terminal-only
webhook of every account holds exactly the spool's terminal events, the
shop webhook exactly shop's events, the master's webhook its
sub-accounts' events.  A receiver that always fails: after max_age the
batches are in the dead-letter file, the event log says so, and the
webhook moves on (a restart sends none of them again).  Bad [webhook]
sections are refused with exit 78.  `sluice webhook add|list|test|remove`:
roles (admin of the account adds and removes, a manager lists and tests,
nobody acts on another tenant's account), audit records, a signed sample
event from `test`, and sluiced POSTs the events of the account (only)
to a webhook kept in the spool; on SIGHUP a removed webhook stops and an
added one starts (from then on).

usage: /usr/bin/python3 test_webhook.py SLUICED SLUICE SINK
"""
import json
import os
import random
import signal
import subprocess
import sys

import peers
from peers import PeerTest, spool_line
from webhook_receiver import Receiver, event_key

TERMINAL = ("delivered", "bounced", "expired")
N_SHOP = 1500
N_OTHER = 300
NDOM = 4
KILLS = 5
SEED = int(os.environ.get("SLUICE_CHAOS_SEED", "18"))
MSG = "From: o@other.test\nSubject: hook\n\nbody\n"


def webhook_section(name, **kv):
    return "\n[webhook %s]\n" % name + "".join(
        "%s = %s\n" % item for item in kv.items())


class Webhook(PeerTest):

    def add_sections(self, conf, text):
        with open(conf, "a") as f:
            f.write(text)

    def account_id(self, name):
        r = self.sluice("account", "show", name, "--json")
        return json.loads(r.stdout)["id"]

    def campaign(self, doms):
        """shop's campaign of N_SHOP contacts over doms, sent."""
        self.sluice("account", "create", "master")
        self.sluice("account", "create", "shop")
        self.sluice("account", "create", "other")
        rows = ["email,first"] + ["c%05d@%s,N%d" % (i, doms[i % len(doms)], i)
                                  for i in range(N_SHOP)]
        csv = self.path("contacts.csv")
        with open(csv, "w") as f:
            f.write("\n".join(rows) + "\n")
        html = self.path("t.html")
        with open(html, "w") as f:
            f.write("<p>Hello {{first}}</p>\n")
        self.sluice("domain", "add", "shop.test", "--account", "shop",
                    "--selector", "s1")
        self.sluice("domain", "verify", "shop.test", "--force")
        self.sluice("domain", "add", "other.test", "--account", "other",
                    "--selector", "s1")
        self.sluice("domain", "verify", "other.test", "--force")
        self.sluice("list", "create", "news", "--account", "shop")
        self.sluice("list", "import", "news", csv, "--account", "shop")
        r = self.sluice("campaign", "create", "hooked", "--account", "shop",
                        "--list", "news", "--from", "Shop <news@shop.test>",
                        "--subject", "Hi {{first}}", "--html", html, "--json")
        self.sluice("campaign", "send", str(json.loads(r.stdout)["id"]))

    def receiver(self, **kw):
        r = Receiver(**kw)
        self.threads.append(r)
        return r

    def check_received(self, rec, want, what):
        """rec holds exactly the events of want (spool events), each as
        the spool has it: deduped by id (seq before ids), one id per
        seq."""
        by_seq = {}
        for ev in rec.events.values():
            self.assertNotIn(ev["seq"], by_seq,
                             "%s: two ids for seq %d" % (what, ev["seq"]))
            by_seq[ev["seq"]] = ev
        keys = {e["seq"]: e for e in want}
        missing = sorted(set(keys) - set(by_seq))
        extra = sorted(set(by_seq) - set(keys))
        self.assertFalse(missing, "%s: %d events never reached the webhook, "
                         "e.g. seq %r" % (what, len(missing), missing[:5]))
        self.assertFalse(extra, "%s: %d events it should not get, e.g. seq "
                         "%r" % (what, len(extra), extra[:5]))
        for k, e in keys.items():
            line = spool_line(e)
            self.assertEqual({f: by_seq[k].get(f) for f in line}, line,
                             "%s: an event differs from the spool" % what)
        self.assertEqual(rec.bad_sig, 0, "%s: badly signed POSTs" % what)

    def test_kill9_every_event_reaches_its_webhooks(self):
        rnd = random.Random(SEED)
        sys.stderr.write("\nwebhook chaos seed %d (SLUICE_CHAOS_SEED)\n"
                         % SEED)
        port = peers.free_port()
        doms = ["hook%d.test" % i for i in range(NDOM)]
        dns = self.start_dns({d: [(10, "127.0.7.%d" % (i + 1))]
                              for i, d in enumerate(doms)})
        self.start_sink(port, args=["--tempfail-pct", "2", "--seed",
                                    str(SEED)], capture=False)
        self.campaign(doms)
        other = self.inject("o@other.test", ["o%d@%s" % (i, doms[i % NDOM])
                                             for i in range(N_OTHER)],
                            MSG, account="other")
        self.assertEqual(len(other), N_OTHER)
        flaky = dict(fail_pct=10, hang_pct=3, hang_s=3)
        terminal = self.receiver(secret="s" * 16 + "terminal", seed=SEED,
                                 **flaky)
        shop = self.receiver(secret="s" * 16 + "shop", seed=SEED + 1, **flaky)
        master = self.receiver(secret="s" * 16 + "master", seed=SEED + 2,
                               **flaky)
        # the event log rotates every 16 KB meanwhile (issue 18: one test
        # shows the webhooks and the log files across the same kills)
        conf = self.write_config(dns=dns, smtp_port=port, dkim_sign="no",
                                 retry="1s", max_inflight=500,
                                 event_log_rotate="16KB")
        common = dict(timeout="1s", max_age="1h", max_in_flight=4)
        self.add_sections(conf, webhook_section(
            "terminal", url=terminal.url, secret=terminal.secret, batch=50,
            events="delivered, bounced, expired", **common) +
            webhook_section("shop", url=shop.url, secret=shop.secret,
                            account="shop", **common) +
            webhook_section("master", url=master.url, secret=master.secret,
                            account="master", batch=7, **common))
        total = N_SHOP + N_OTHER
        targets = sorted(rnd.sample(range(100, int(total * 0.8)), KILLS))
        for k, target in enumerate(targets):
            p = self.start_sluiced(conf, exit_when_empty=False,
                                   name="sluiced%02d" % k)

            def grown():
                if not p.alive():
                    raise peers.PeerError("sluiced died: " + p.output())
                return len(terminal.keys()) >= target
            peers.wait_for(grown, 120, "%d events at the webhook" % target,
                           interval=0.005)
            p.signal(signal.SIGKILL)
            p.wait(10)
        self.assertLess(len(terminal.keys()), total,
                        "the kills came too late to test")

        # the last run: to the end of the mail and of every webhook
        p = self.start_sluiced(conf, exit_when_empty=False, name="final")
        ids = {"shop": self.account_id("shop"),
               "master": self.account_id("master")}

        def caught_up():
            if not p.alive():
                raise peers.PeerError("sluiced died: " + p.output())
            if self.spool_info()["counts"]["queued"]:
                return False
            spool = self.spool_events()
            return (len(terminal.keys()) >= sum(e["type"] in TERMINAL
                                                for e in spool) and
                    len(shop.keys()) >= sum(e["account"] == ids["shop"]
                                            for e in spool) and
                    len(master.keys()) >= len(spool))
        peers.wait_for(caught_up, 150, "every webhook caught up",
                       interval=0.5)
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0, p.output()[-3000:])

        spool = self.spool_events()
        term = [e for e in spool if e["type"] in TERMINAL]
        self.assertEqual(len(term), total, "one terminal event each")
        self.assertTrue(any(e["type"] == "deferred" for e in spool),
                        "the sink deferred nothing: the filter is untested")
        self.check_received(terminal, term, "terminal webhook")
        self.check_received(shop, [e for e in spool
                                   if e["account"] == ids["shop"]],
                            "shop webhook")
        self.check_received(master, spool, "master webhook")
        # the event log, its rotated files first: every spool event once,
        # no line torn, across the same kills
        self.assert_log_matches_spool()
        made = peers.rotated_logs(self.path("events.jsonl"))
        self.assertGreater(len(made), 2, "the log never rotated")
        self.assertTrue(all(n.endswith(".gz") for n in made[:-1]), made)
        for name, r in (("terminal", terminal), ("shop", shop),
                        ("master", master)):
            self.assertGreater(r.failed + r.hung, 0,
                               "%s: the receiver never failed" % name)
            sys.stderr.write("%s: %d posts, %d answered 500, %d hung, %d "
                             "events, %d copies\n" % (
                                 name, r.posts, r.failed, r.hung,
                                 len(r.events), r.copies))
        self.assertLessEqual(max(shop.batch_sizes), 100)
        self.assertLessEqual(max(master.batch_sizes), 7)

    def test_backlog_in_metrics(self):
        """/metrics shows how far a webhook that cannot deliver is behind:
        every spool event after its cursor."""
        port, http = peers.free_port(), peers.free_port()
        dns = self.start_dns({"late.test": [(10, "127.0.7.9")]})
        self.start_sink(port, capture=False)
        down = self.receiver(always_fail=True)
        conf = self.write_config(dns=dns, smtp_port=port,
                                 http_listen="127.0.0.1:%d" % http)
        self.add_sections(conf, webhook_section(
            "late", url=down.url, batch=10, timeout="1s", max_age="1d"))
        self.inject("s@sender.test", ["l%d@late.test" % i for i in range(12)],
                    MSG)
        p = self.start_sluiced(conf, exit_when_empty=False)
        seen = {}

        def behind():
            if not p.alive():
                raise peers.PeerError("sluiced died: " + p.output())
            spool = self.spool_events()
            if sum(e["type"] == "delivered" for e in spool) < 12:
                return False
            body = subprocess.run(
                ["curl", "-s", "http://127.0.0.1:%d/metrics" % http],
                stdout=subprocess.PIPE).stdout.decode()
            for line in body.splitlines():
                if line.startswith('sluice_webhook_backlog_events{webhook="late"}'):
                    seen["backlog"] = float(line.split()[-1])
            seen["events"] = len(spool)
            return seen.get("backlog") == len(spool)
        peers.wait_for(behind, 60, "the backlog of every spool event",
                       interval=0.3)
        self.assertGreaterEqual(seen["events"], 12)
        self.assertGreater(down.failed, 0, "the receiver was never tried")
        self.assertEqual(down.events, {})
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0, p.output()[-3000:])

    def test_dead_letter_after_max_age(self):
        port = peers.free_port()
        dns = self.start_dns({"dead.test": [(10, "127.0.7.9")]})
        self.start_sink(port, capture=False)
        down = self.receiver(always_fail=True)
        conf = self.write_config(dns=dns, smtp_port=port, retry="1s")
        dead = self.path("dead.jsonl")
        self.add_sections(conf, webhook_section(
            "down", url=down.url, batch=10, timeout="1s", max_age="3s",
            dead_letter=dead))
        ids = self.inject("s@sender.test", ["d%d@dead.test" % i
                                            for i in range(25)], MSG)
        p = self.start_sluiced(conf, exit_when_empty=False)

        def dead_lettered():
            if not p.alive():
                raise peers.PeerError("sluiced died: " + p.output())
            if not os.path.exists(dead):
                return False
            with open(dead) as f:
                n = sum(len(json.loads(l)["events"]) for l in f)
            return n >= len(ids)
        peers.wait_for(dead_lettered, 60, "every event dead-lettered",
                       interval=0.2)
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0, p.output()[-3000:])
        with open(dead) as f:
            batches = [json.loads(l) for l in f]
        got = {}
        for b in batches:
            self.assertEqual(b["webhook"], "down")
            self.assertGreaterEqual(b["attempts"], 2, b)
            self.assertIn("500", b["error"])
            self.assertLessEqual(len(b["events"]), 10)
            for ev in b["events"]:
                got[event_key(ev)] = ev["seq"]
        spool = self.spool_events()
        self.assertEqual(len(set(got.values())), len(got))
        self.assertEqual(set(got.values()), {e["seq"] for e in spool})
        notes = [e for e in self.event_log() if e.get("type") == "webhook"]
        self.assertEqual(len(notes), len(batches), notes)
        for n in notes:
            self.assertEqual((n["webhook"], n["change"], n["file"]),
                             ("down", "dead-letter", dead))
        self.assertIn("gave up on", p.output())
        # the cursor moved on: a healthy receiver at the same place gets
        # none of them again
        up = self.receiver()
        with open(conf) as f:
            text = f.read().replace(down.url, up.url)
        with open(conf, "w") as f:
            f.write(text)
        p = self.start_sluiced(conf, exit_when_empty=False, name="again")
        peers.wait_for(lambda: "webhook down:" in p.output(), 20,
                       "the webhook started")
        newest = max(e["seq"] for e in spool)
        self.assertIn("webhook down: %s, after seq %d" % (up.url, newest),
                      p.output())
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0, p.output()[-3000:])
        self.assertEqual(up.posts, 0, "dead-lettered events sent again")
        with open(dead) as f:
            self.assertEqual(len(f.readlines()), len(batches))

    def test_bad_sections_refused(self):
        port = peers.free_port()
        base = self.write_config(smtp_port=port)
        with open(base) as f:
            text = f.read()
        bad = [
            ("url = ftp://127.0.0.1/x", "not an http:// or https:// URL"),
            ("url = 127.0.0.1:9", "not an http:// or https:// URL"),
            ("url = http://127.0.0.1/a b", "not an http:// or https:// URL"),
            ("secret = short", "secret"),
            ("batch = 0", "batch"),
            ("events = delivered, opened", "events"),
            ("colour = red", "unknown key"),
            ("account = shop", "has no url"),
        ]
        for i, (line, why) in enumerate(bad):
            conf = self.path("bad%d.conf" % i)
            with open(conf, "w") as f:
                f.write(text + "\n[webhook w]\n" + line + "\n")
            r = subprocess.run([self.bin["sluiced"], "-t", "-c", conf],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
            self.assertEqual(r.returncode, 78, (line, r.stderr))
            self.assertIn(why, r.stderr.decode(), line)
        # the names of the spool's webhooks are not for sections
        conf = self.path("spoolname.conf")
        with open(conf, "w") as f:
            f.write(text + webhook_section("a2.crm", url="http://127.0.0.1:9/"))
        r = subprocess.run([self.bin["sluiced"], "-t", "-c", conf],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn(b"kept in the spool", r.stderr)
        # a well-formed section naming an account the spool lacks
        conf = self.path("noacct.conf")
        with open(conf, "w") as f:
            f.write(text + webhook_section("w", url="http://127.0.0.1:9/",
                                           account="nobody"))
        p = self.start_sluiced(conf, name="noacct")
        self.assertEqual(p.wait(30), 78, p.output())
        self.assertIn("no such account", p.output())

    def as_user(self, user, *args, stdin=None):
        env = dict(os.environ, SLUICE_PWHASH_FAST="1", SLUICE_CONFIG="")
        argv = [self.bin["sluice"], "--spool", self.path("spool")]
        if user:
            env["SLUICE_USER"] = user
            env["SLUICE_PASSWORD"] = "pw-" + user
        return subprocess.run(argv + list(args), env=env, input=stdin,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=60)

    def test_cli_roles_audit_and_engine(self):
        port = peers.free_port()
        dns = self.start_dns({"cli.test": [(10, "127.0.7.10")]})
        self.start_sink(port, capture=False)
        for a in ("master", "shop", "other"):
            self.sluice("account", "create", a)
        for a in ("shop", "other"):
            self.sluice("domain", "add", a + ".test", "--account", a,
                        "--selector", "s1")
            self.sluice("domain", "verify", a + ".test", "--force")
        shop_ids = self.inject("n@shop.test", ["s%d@cli.test" % i
                                               for i in range(30)],
                               MSG.replace("other", "shop"), account="shop")
        self.inject("o@other.test", ["o%d@cli.test" % i for i in range(20)],
                    MSG, account="other")
        for user, acct, role in (("boss", "master", "owner"),
                                 ("adm", "shop", "admin"),
                                 ("mgr", "shop", "manager")):
            r = self.as_user(None if user == "boss" else "boss", "user",
                             "add", user, "--account", acct, "--role", role,
                             "--password-stdin", stdin=b"pw-" +
                             user.encode() + b"\n")
            self.assertEqual(r.returncode, 0, r.stderr)
        rec = self.receiver(secret="cli-secret-0123456789")
        add = ("webhook", "add", "crm", "--account", "shop", "--url",
               rec.url, "--secret", rec.secret, "--events", "delivered",
               "--batch", "8")
        r = self.as_user("mgr", *add)
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertIn(b"refused", r.stderr)
        r = self.as_user("adm", *(add[:3] + ("--account", "other") +
                                  add[5:]))
        self.assertEqual(r.returncode, 77, r.stderr)
        r = self.as_user("adm", *add)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.as_user("adm", *add)
        self.assertEqual(r.returncode, 65, "a second crm: %r" % r.stderr)
        r = self.as_user("adm", "webhook", "add", "x", "--account", "shop",
                         "--url", "file:///etc/passwd")
        self.assertEqual(r.returncode, 64, r.stderr)
        r = self.as_user("mgr", "--json", "webhook", "list", "--account",
                         "shop")
        self.assertEqual(r.returncode, 0, r.stderr)
        hooks = json.loads(r.stdout)
        self.assertEqual([(h["name"], h["url"], h["secret"], h["batch"])
                          for h in hooks], [("crm", rec.url, True, 8)])
        self.assertNotIn(rec.secret.encode(), r.stdout)
        r = self.as_user("mgr", "webhook", "test", "crm", "--account", "shop")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"answered HTTP 200", r.stdout)
        self.assertEqual([e["type"] for e in rec.events.values()], ["test"])
        self.assertEqual(rec.bad_sig, 0)
        rec.events.clear()
        r = self.as_user("boss", "--json", "audit", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(rec.secret.encode(), r.stdout)
        audit = [(a.get("user"), a.get("action"), a.get("result"))
                 for a in json.loads(r.stdout)]
        self.assertIn(("adm", "webhook add", "ok"), audit)
        self.assertTrue(any(u == "mgr" and act == "webhook add" and
                            res != "ok" for u, act, res in audit), audit)

        # sluiced POSTs shop's delivered events, and nothing of other's
        conf = self.write_config(dns=dns, smtp_port=port, dkim_sign="no")
        p = self.start_sluiced(conf, exit_when_empty=False)
        peers.wait_for(lambda: len(rec.keys()) >= len(shop_ids) or
                       not p.alive(), 60, "shop's events at the webhook")

        def queued():
            r = self.as_user("boss", "--json", "spool", "info")
            return json.loads(r.stdout)["counts"]["queued"]
        peers.wait_for(lambda: queued() == 0, 60, "all mail delivered")

        def spool_events():
            r = self.as_user("boss", "spool", "events", "--json", "--limit",
                             "0")
            return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
        r = self.as_user("boss", "account", "show", "shop", "--json")
        shop = json.loads(r.stdout)["id"]
        want = [e for e in spool_events() if e["type"] == "delivered" and
                e["delivery"] in shop_ids]
        self.assertEqual(len(want), len(shop_ids))
        self.check_received(rec, want, "spool webhook")
        self.assertTrue(all(e["account"] == shop for e in want))
        self.assertLessEqual(max(rec.batch_sizes), 8)
        self.assertIn("webhook a%d.crm: %s" % (shop, rec.url), p.output())

        # on SIGHUP a removed webhook stops and a new one starts
        r = self.as_user("mgr", "webhook", "remove", "crm", "--account",
                         "shop")
        self.assertEqual(r.returncode, 77, r.stderr)
        r = self.as_user("adm", "webhook", "remove", "crm", "--account",
                         "shop")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.as_user("mgr", "--json", "webhook", "list", "--account",
                         "shop")
        self.assertEqual(json.loads(r.stdout), [])
        rec2 = self.receiver()
        r = self.as_user("adm", "webhook", "add", "crm2", "--account", "shop",
                         "--url", rec2.url)
        self.assertEqual(r.returncode, 0, r.stderr)
        p.signal(signal.SIGHUP)
        peers.wait_for(lambda: "webhook a%d.crm2:" % shop in p.output(), 30,
                       "the new webhook started")
        self.assertIn("webhook a%d.crm: stopped" % shop, p.output())
        before = len(rec.keys())
        f = self.path("more.eml")
        with open(f, "w") as fh:
            fh.write(MSG.replace("other", "shop"))
        r = self.as_user("adm", "inject", "--account", "shop", "--from",
                         "n@shop.test", "--to", "late@cli.test", f)
        self.assertEqual(r.returncode, 0, r.stderr)
        peers.wait_for(lambda: any(e["rcpt"] == "late@cli.test"
                                   for e in rec2.events.values()), 60,
                       "the new webhook got the new event")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0, p.output()[-3000:])
        self.assertEqual(len(rec.keys()), before,
                         "the removed webhook still got events")
        self.assertFalse(any(e["delivery"] in shop_ids
                             for e in rec2.events.values()),
                         "the new webhook got events from before it")

if __name__ == "__main__":
    peers.main()
