"""test_kill9.py - kill -9 at random moments during a 20,000-recipient
campaign, again and again, then a run to the end: no recipient lost, each
with exactly one terminal event in the spool, and the event log whole
(every line parses) and equal to the spool's events, seq by seq.

The kill moments come from a seeded generator (SLUICE_CHAOS_SEED, default
14, printed): sluiced is killed once the event log has grown to a random
number of lines, after a random pause of up to 50 ms, so the kills land in
every phase of claiming, sending, committing and writing the log.  The
receiver (sluice-sink, capturing) answers 451 to 2% of recipients at
random, so deferrals are in the log too, and 550 to addresses starting
with "permfail" (bounced).

Repeated deliveries (at-least-once: what the receiver accepted but sluiced
had not yet committed when it died) are reported per kill: a message the
receiver captured and captured again later was unrecorded when the run it
arrived in was killed.  A session holds at most UNRECORDED delivered
transactions unrecorded (smtp_session.h) and each campaign message goes
to one recipient, so each kill repeats at most UNRECORDED times
max_connections (MAXCONN) deliveries, however far the writer lags; the
run that is not killed repeats none.

usage: /usr/bin/python3 test_kill9.py SLUICED SLUICE SINK
"""
import json
import os
import random
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "engine"))
import peers  # noqa: E402
from peers import PeerTest, count_types, stop_counts  # noqa: E402

N = 20000
NDOM = 20
KILLS = 12
INFLIGHT = 2000
MAXCONN = 20      # sessions open at once (global max_connections)
UNRECORDED = 4    # delivered transactions a session holds unrecorded, at
                  # most (SMTP_UNRECORDED_MAX, engine/smtp_session.h)
SEED = int(os.environ.get("SLUICE_CHAOS_SEED", "14"))
TERMINAL = ("delivered", "bounced", "expired", "suppressed", "cancelled")


def permfail(i):
    return i % 500 == 7


class LogWatch:
    """Counts the whole lines of a growing file, reading only what is
    new."""

    def __init__(self, path):
        self.path = path
        self.off = 0
        self.lines = 0

    def count(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except FileNotFoundError:
            return 0
        whole = data.rfind(b"\n") + 1
        self.lines += data.count(b"\n", 0, whole)
        self.off += whole
        return self.lines


class Kill9(PeerTest):

    def setup_campaign(self):
        """A campaign of N contacts over NDOM domains, sent (queued)."""
        self.sluice("account", "create", "master")
        self.sluice("account", "create", "shop")
        self.sluice("domain", "add", "shop.test", "--account", "shop",
                    "--selector", "s1")
        self.sluice("domain", "verify", "shop.test", "--force")
        rows = ["email,first"]
        contacts = []
        for i in range(N):
            local = ("permfail%05d" if permfail(i) else "c%05d") % i
            addr = "%s@bulk%02d.test" % (local, i % NDOM)
            rows.append("%s,N%d" % (addr, i))
            contacts.append(addr)
        csv = self.path("contacts.csv")
        with open(csv, "w") as f:
            f.write("\n".join(rows) + "\n")
        html = self.path("t.html")
        with open(html, "w") as f:
            f.write("<p>Hello {{first}}</p>\n")
        self.sluice("list", "create", "news", "--account", "shop")
        self.sluice("list", "import", "news", csv, "--account", "shop")
        r = self.sluice("campaign", "create", "chaos", "--account", "shop",
                        "--list", "news", "--from", "Shop <news@shop.test>",
                        "--subject", "Hi {{first}}", "--html", html, "--json")
        cid = str(json.loads(r.stdout)["id"])
        self.sluice("campaign", "send", cid)
        return contacts

    def test_kill9_at_random_moments(self):
        rnd = random.Random(SEED)
        sys.stderr.write("\nchaos seed %d (SLUICE_CHAOS_SEED)\n" % SEED)
        port = peers.free_port()
        doms = ["bulk%02d.test" % i for i in range(NDOM)]
        dns = self.start_dns({d: [(10, "127.0.5.%d" % (i + 1))]
                              for i, d in enumerate(doms)})
        sink = self.start_sink(port, args=["--tempfail-pct", "2",
                                           "--seed", str(SEED)])
        contacts = self.setup_campaign()
        conf = self.write_config(dns=dns, smtp_port=port, dkim_sign="no",
                                 retry="1s", max_inflight=INFLIGHT,
                                 max_connections=MAXCONN)
        log = LogWatch(self.path("events.jsonl"))
        targets = sorted(rnd.sample(range(500, int(N * 0.9)), KILLS))
        received_at_kill, torn = [], 0
        for k, target in enumerate(targets):
            p = self.start_sluiced(conf, exit_when_empty=False,
                                   name="sluiced%02d" % k)

            def grown():
                if not p.alive():
                    raise peers.PeerError("sluiced died: " + p.output())
                return log.count() >= target
            peers.wait_for(grown, 90, "%d event log lines" % target,
                           interval=0.005)
            time.sleep(rnd.uniform(0, 0.05))
            p.signal(signal.SIGKILL)
            p.wait(10)
            with open(self.path("events.jsonl"), "rb") as f:
                f.seek(0, os.SEEK_END)
                if f.tell():
                    f.seek(-1, os.SEEK_END)
                    torn += f.read(1) != b"\n"
            received_at_kill.append(sink.settled_captures())
        self.assertLess(log.count(), N, "the kills came too late to test")
        before = max([e["seq"] for e in self.spool_events()] or [0])

        last = self.run_sluiced(conf, timeout=150, name="sluiced-final")
        # restarts that found lines written after the last saved cursor
        # (and did not write them again: checked below)
        ahead = sum("resuming after seq" in self.procs[i].output()
                    for i in range(len(self.procs))
                    if self.procs[i].name.startswith("sluiced"))

        # the spool: every recipient ended once, nothing queued
        spool = self.spool_events()
        term = {}
        for e in spool:
            if e["type"] in TERMINAL:
                self.assertNotIn(e["delivery"], term, "two terminal events")
                term[e["delivery"]] = e
        self.assertEqual(len(term), N)
        self.assertEqual(self.spool_info()["counts"]["queued"], 0)
        by_rcpt = {e["rcpt"]: e["type"] for e in term.values()}
        self.assertEqual(set(by_rcpt), set(contacts))
        for i, addr in enumerate(contacts):
            self.assertEqual(by_rcpt[addr],
                             "bounced" if permfail(i) else "delivered", addr)
        # the log: whole lines, every event once, each equal to the spool's
        self.assert_log_matches_spool()
        self.assertEqual(stop_counts(last.output()),
                         count_types([e for e in spool if e["seq"] > before]))

        # the receiver got everyone (but the scripted bounces) at least once
        sink.stop()
        seen = {r for _, rcpts, _ in sink.captures() for r in rcpts}
        want = {a for i, a in enumerate(contacts) if not permfail(i)}
        missing = want - set(seen)
        self.assertFalse(missing, "never received: %r" % sorted(missing)[:5])
        self.assertFalse(set(seen) - want, "a scripted bounce was received")
        # repeated: accepted but unrecorded when the run it arrived in
        # was killed
        per_run = sink.repeats_per_run(received_at_kill)
        per_kill = per_run[:KILLS]
        sys.stderr.write("kills at log lines %s; torn last lines %d; "
                         "restarts with the log ahead of its cursor %d; "
                         "deliveries repeated after each kill %s (%d in "
                         "all, at most %d per kill: %d sessions x %d)\n"
                         % (targets, torn, ahead, per_kill, sum(per_kill),
                            MAXCONN * UNRECORDED, MAXCONN, UNRECORDED))
        for k, n in enumerate(per_kill):
            self.assertLessEqual(n, MAXCONN * UNRECORDED,
                                 "kill %d repeated more deliveries than "
                                 "the sessions open may hold" % k)
        self.assertEqual(per_run[KILLS], 0,
                         "the run to the end repeated a delivery")

if __name__ == "__main__":
    peers.main()
