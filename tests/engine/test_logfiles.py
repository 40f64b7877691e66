"""test_logfiles.py - event log rotation, SIGUSR1 reopen and accounting
CSV files agree with the spool, across kill -9.

Cases: with a rotation size of a few KB, sluiced is killed (-9) eight
times mid-run and then runs to the end: the rotated files (gzip, as
sluiced compresses them) and the current file, read in order, hold every
spool event exactly once, each line whole and equal to the spool's; an
[accounting] file with chosen fields and types, rotated too, read with
Python's csv module, holds one row per spool event of those types, its
values the spool's.  The log and the accounting file moved away and
SIGUSR1 sent (logrotate's way): the moved file and the new one together
hold every event once.  Consumers far apart (the accounting file left
out of one run of more events than the window they share holds, a
webhook added from the oldest event): the next run gives each exactly
the events it had not handed on.  An accounting file written with other fields
is refused (65).  Rotation by time (2s) happens at the period's
boundaries and keeps every event.  A crash's leftovers (a rotated file not yet
compressed, a .gz.tmp) are compressed / removed at the next start.  Bad
configuration (event_log_rotate = 5 parsecs, an unknown field) exits 78
naming the key.

usage: /usr/bin/python3 test_logfiles.py SLUICED SLUICE SINK
"""
import csv
import gzip
import io
import json
import os
import random
import signal
import time

import peers
from peers import STREAM_KEYS, PeerTest, rotated_logs as rotated, spool_line
from webhook_receiver import Receiver

MSG = "From: s@sender.test\nSubject: rot\n\nbody\n"
FIELDS = ["type", "rcpt", "domain", "code", "enhanced", "text", "time_ms"]
TYPES = ("delivered", "deferred", "bounced")


def read_any(path):
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


class LogFiles(PeerTest):

    def setup_peers(self, ndom=2, rate="150/s", servfail=()):
        port = peers.free_port()
        doms = ["rot%d.test" % i for i in range(ndom)]
        dns = self.start_dns({d: [(10, "127.0.7.%d" % (i + 1))]
                              for i, d in enumerate(doms)},
                             servfail_domains=servfail)
        sink = self.start_sink(port, args=["--tempfail-pct", "3",
                                           "--seed", "7"])
        # a floor under the run's length, whatever the machine's speed
        domains = {d: {"max_rate": rate, "max_rcpts_per_message": "1"}
                   for d in doms}
        return port, dns, sink, doms, domains

    def config(self, dns, port, domains, rotate="6KB", acct="4KB", **keys):
        conf = self.write_config(dns=dns, smtp_port=port, domains=domains,
                                 event_log_rotate=rotate, retry="1s", **keys)
        if acct:
            with open(conf, "a") as f:
                f.write("\n[accounting main]\npath = %s\nfields = %s\n"
                        "types = %s\nrotate = %s\n"
                        % (self.path("acct.csv"), ", ".join(FIELDS),
                           ", ".join(TYPES), acct))
        return conf

    def inject_some(self, doms, n, tag):
        return self.inject("s@sender.test",
                           ["%s%d@%s" % (tag, i, doms[i % len(doms)])
                            for i in range(n)], MSG)

    # ----------------------------------------------------------- reading

    def log_lines(self, base, files=None):
        """Every line of the rotated files and the current one, parsed;
        a torn line anywhere fails (a last line being written is left
        out only in the current file)."""
        out = []
        files = files if files is not None else rotated(base) + [base]
        for i, name in enumerate(files):
            try:
                data = read_any(name)
            except FileNotFoundError:
                continue
            current = i == len(files) - 1
            if data and not data.endswith(b"\n") and not current:
                self.fail("%s ends in a torn line" % name)
            for line in data.split(b"\n")[:-1]:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    self.fail("%s: torn line %r" % (name, line[:200]))
        return out

    def acct_rows(self, base, files=None):
        """The rows of every accounting file (rotated, then current),
        each file starting with its header."""
        rows = []
        files = files if files is not None else rotated(base) + [base]
        for name in files:
            data = read_any(name).decode()
            if not data:
                continue
            r = list(csv.reader(io.StringIO(data, newline="")))
            self.assertEqual(r[0], ["seq"] + FIELDS, name + ": header")
            for row in r[1:]:
                self.assertEqual(len(row), len(FIELDS) + 1,
                                 "%s: row %r" % (name, row))
                rows.append(row)
        return rows

    def assert_once(self, got_seqs, want_seqs, what):
        dups = len(got_seqs) - len(set(got_seqs))
        self.assertEqual(dups, 0, "%s: %d seqs twice" % (what, dups))
        missing = sorted(set(want_seqs) - set(got_seqs))
        extra = sorted(set(got_seqs) - set(want_seqs))
        self.assertFalse(missing, "%s: %d spool events missing, e.g. %r"
                         % (what, len(missing), missing[:5]))
        self.assertFalse(extra, "%s: seqs not in the spool: %r"
                         % (what, extra[:5]))

    def assert_all_match(self, log_files=None, acct_files=None):
        """The log and the accounting file equal the spool's events."""
        spool = self.spool_events()
        lines = [e for e in self.log_lines(self.path("events.jsonl"),
                                           log_files) if "seq" in e]
        self.assert_once([e["seq"] for e in lines],
                         [e["seq"] for e in spool], "event log")
        want = {e["seq"]: spool_line(e) for e in spool}
        for e in lines:
            w = want[e["seq"]]
            self.assertEqual({k: e.get(k) for k in w}, w,
                             "log line != spool event")
            self.assertLessEqual(set(e) - set(w), set(STREAM_KEYS), e)
        rows = self.acct_rows(self.path("acct.csv"), acct_files)
        kept = [e for e in spool if e["type"] in TYPES]
        self.assert_once([int(r[0]) for r in rows],
                         [e["seq"] for e in kept], "accounting file")
        for r in rows:
            w = want[int(r[0])]
            self.assertEqual(r[1:], [str(w[f]) for f in FIELDS],
                             "accounting row != spool event")
        return spool

    # ------------------------------------------------------------- tests

    def test_rotation_and_accounting_survive_kill9(self):
        """Eight kill -9's mid-run with a 6KB log and a 4KB accounting
        file: every event once in the files, none torn, compressed."""
        rnd = random.Random(18)
        port, dns, sink, doms, domains = self.setup_peers()
        conf = self.config(dns, port, domains)
        n = 1200
        self.inject_some(doms, n, "k")
        targets = sorted(rnd.sample(range(60, n // 2), 8))
        for k, target in enumerate(targets):
            p = self.start_sluiced(conf, exit_when_empty=False,
                                   name="sluiced%d" % k)

            def grown():
                if not p.alive():
                    raise peers.PeerError("sluiced died: " + p.output())
                return len(self.log_lines(self.path("events.jsonl"))) >= \
                    target
            peers.wait_for(grown, 90, "%d log lines" % target, interval=0.01)
            time.sleep(rnd.uniform(0, 0.05))
            p.signal(signal.SIGKILL)
            p.wait(10)
        self.assertLess(len(self.log_lines(self.path("events.jsonl"))), n,
                        "the kills came after the run")
        self.run_sluiced(conf, timeout=120, name="sluiced-final")
        spool = self.assert_all_match()
        term = [e for e in spool if e["type"] in ("delivered", "bounced",
                                                  "expired")]
        self.assertEqual(len({e["delivery"] for e in term}), n)
        logs = rotated(self.path("events.jsonl"))
        accts = rotated(self.path("acct.csv"))
        self.assertGreater(len(logs), 10, "the log was not rotated")
        self.assertGreater(len(accts), 10, "the accounting file was not "
                           "rotated")
        # compressed, and nothing half done left behind
        for name in logs + accts:
            self.assertTrue(name.endswith(".gz"), name)
            self.assertFalse(os.path.exists(name + ".tmp"))
        for name in logs:
            self.assertLessEqual(len(read_any(name)), 6 * 1024 + 2048, name)

    def test_sigusr1_reopens_after_move(self):
        """logrotate's move-and-create: the files are moved away while
        sluiced writes them, SIGUSR1, more mail: the moved files and the
        new ones hold every event once."""
        port, dns, sink, doms, domains = self.setup_peers(
            rate="1000/s", servfail=["sf.test"])
        conf = self.config(dns, port, domains, rotate="1GB", acct="1GB")
        # deferred again and again, its reply text "..., ..." quoted in
        # the accounting rows
        self.inject("s@sender.test", ['sf@sf.test'], MSG)
        first = self.inject_some(doms, 40, "a")
        p = self.start_sluiced(conf, exit_when_empty=False)

        def logged(k):
            return lambda: len([e for e in self.log_lines(
                self.path("events.jsonl"), [self.path("events.jsonl")])
                if e.get("type") == "delivered"]) >= k
        peers.wait_for(logged(len(first) // 2), 60, "half the first batch")
        os.rename(self.path("events.jsonl"), self.path("moved.jsonl"))
        os.rename(self.path("acct.csv"), self.path("moved.csv"))
        self.inject_some(doms, 30, "b")
        time.sleep(0.5)  # lines into the moved files meanwhile (not needed)
        p.signal(signal.SIGUSR1)
        peers.wait_for(lambda: p.output().count("reopened") >= 2, 30,
                       "both files reopened")
        self.inject_some(doms, 30, "c")
        spool_done = lambda: len([e for e in self.spool_events()
                                  if e["type"] == "delivered"]) == 100
        peers.wait_for(spool_done, 60, "every recipient delivered")
        self.assertEqual(p.stop(30), 0, p.output()[-2000:])
        self.assert_all_match(
            log_files=[self.path("moved.jsonl"), self.path("events.jsonl")],
            acct_files=[self.path("moved.csv"), self.path("acct.csv")])
        new = self.log_lines(self.path("events.jsonl"),
                             [self.path("events.jsonl")])
        self.assertTrue(any(e.get("rcpt", "").startswith("c") for e in new),
                        "nothing was written to the new file")
        with open(self.path("moved.csv")) as f:
            self.assertIn('sf.test,0,4.4.3,"DNS lookup for sf.test failed: '
                          'MX sf.test: no DNS server gave an answer '
                          '(SERVFAIL, REFUSED or unreachable)"',
                          f.read())

    def test_consumers_at_different_cursors(self):
        """Three consumers far apart after restarts (the accounting file
        left out of one run of about 1,300 events, more than the window
        the consumers share holds; a webhook added last, from the
        oldest event): in the next run each gets exactly the events it
        had not handed on, once, as the spool has them."""
        port, dns, sink, doms, domains = self.setup_peers(rate="1000/s")
        log_only = self.config(dns, port, domains, rotate="1GB", acct=None,
                               name="log-only.conf")
        conf = self.config(dns, port, domains, rotate="1GB", acct="1GB")
        self.inject_some(doms, 40, "p")
        self.run_sluiced(conf, name="sluiced-both")
        self.inject_some(doms, 1300, "q")
        self.run_sluiced(log_only, timeout=120, name="sluiced-log")
        rec = Receiver()
        self.threads.append(rec)
        with open(conf, "a") as f:
            f.write("\n[webhook late]\nurl = %s\nstart = oldest\nbatch = 50\n"
                    % rec.url)
        self.inject_some(doms, 30, "r")
        p = self.start_sluiced(conf, exit_when_empty=False,
                               name="sluiced-three")
        delivered = lambda: len([e for e in self.spool_events()
                                 if e["type"] == "delivered"]) == 1370
        peers.wait_for(delivered, 120, "every recipient delivered")
        n = len(self.spool_events())
        peers.wait_for(lambda: len(rec.events) >= n, 60,
                       "%d events at the webhook" % n)
        self.assertEqual(p.stop(30), 0, p.output()[-2000:])
        spool = self.assert_all_match()
        self.assertGreaterEqual(len(spool), 1370)
        # the webhook: every spool event once (deduped by id), the
        # spool's values, no two ids for one seq
        got = {}
        for ev in rec.events.values():
            self.assertNotIn(ev["seq"], got, "two ids for one seq")
            got[ev["seq"]] = ev
        self.assertEqual(sorted(got), [e["seq"] for e in spool])
        for e in spool:
            w = spool_line(e)
            self.assertEqual({k: got[e["seq"]].get(k) for k in w}, w)

    def test_time_rotation(self):
        """event_log_rotate = 2s with a recipient deferred every second:
        the log is rotated at the period's boundaries (waited for, with
        a generous deadline) and keeps every event once."""
        port, dns, sink, doms, domains = self.setup_peers(
            rate="1000/s", servfail=["sf.test"])
        conf = self.config(dns, port, domains, rotate="2s", acct="2s")
        self.inject("s@sender.test", ["sf@sf.test"], MSG)
        p = self.start_sluiced(conf, exit_when_empty=False)
        peers.wait_for(lambda: len(rotated(self.path("events.jsonl"))) >= 2
                       and len(rotated(self.path("acct.csv"))) >= 2, 60,
                       "two rotations by time")
        self.assertEqual(p.stop(30), 0, p.output()[-2000:])
        self.assert_all_match()
        # an empty file is not rotated: each holds lines
        for name in rotated(self.path("events.jsonl")):
            self.assertTrue(self.log_lines(name, [name]), name + " is empty")

    def test_changed_fields_refused(self):
        """An accounting file written with other fields is refused (65)
        rather than given rows of another shape; moved away, it starts
        again with the new header."""
        port, dns, sink, doms, domains = self.setup_peers(rate="1000/s")
        conf = self.config(dns, port, domains)
        self.inject_some(doms, 3, "f")
        self.run_sluiced(conf)
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace("fields = type,", "fields = category, type,"))
        r = self.start_sluiced(conf, name="sluiced-changed")
        self.assertEqual(r.wait(30), 65)
        self.assertIn("its header row is not that of fields = seq,category,"
                      "type", r.output())
        os.rename(self.path("acct.csv"), self.path("old.csv"))
        self.inject_some(doms, 2, "g")
        self.run_sluiced(conf, name="sluiced-moved")
        with open(self.path("acct.csv")) as f:
            self.assertTrue(f.readline().startswith("seq,category,type,"))

    def test_crash_leftovers_compressed_at_start(self):
        """A rotated file a crash left uncompressed is compressed at the
        next start (its content kept); a stale .gz.tmp is removed."""
        port, dns, sink, doms, domains = self.setup_peers(rate="1000/s")
        conf = self.config(dns, port, domains, acct=None)
        left = self.path("events.jsonl.20260101T000000Z")
        body = b'{"type":"site","site":"x","change":"backoff"}\n' * 50
        with open(left, "wb") as f:
            f.write(body)
        with open(self.path("events.jsonl.20260101T000000Z.1.gz.tmp"),
                  "wb") as f:
            f.write(b"half")
        self.inject_some(doms, 3, "g")
        self.run_sluiced(conf)
        self.assertFalse(os.path.exists(left))
        self.assertEqual(read_any(left + ".gz"), body)
        self.assertFalse(os.path.exists(
            self.path("events.jsonl.20260101T000000Z.1.gz.tmp")))

    def test_configuration(self):
        """SIZE, TIME in either order or alone pass sluiced -t; a bad
        rotation, an unknown field or type exit 78 naming them."""
        for i, good in enumerate(("100MB, 1d", "1d, 100MB", "1d", "64KB",
                                  "2 GB,12h")):
            conf = self.write_config(event_log_rotate=good,
                                     name="ok%d.conf" % i)
            r = self._proc([self.bin["sluiced"], "-t", "-c", conf],
                           "check%d" % i)
            self.assertEqual(r.wait(30), 0, good + ": " + r.output())
        for i, bad in enumerate(("5 parsecs", "100MB, 200MB", "100", "10B",
                                 "1d, 1h", "")):
            conf = self.write_config(event_log_rotate=bad,
                                     name="bad%d.conf" % i)
            r = self._proc([self.bin["sluiced"], "-t", "-c", conf],
                           "bad%d" % i)
            self.assertEqual(r.wait(30), 78, repr(bad))
            self.assertIn("event_log_rotate: '%s' is not SIZE, TIME" % bad,
                          r.output())
        conf = self.write_config(event_log_rotate="5 parsecs")
        r = self.start_sluiced(conf)
        self.assertEqual(r.wait(30), 78)
        self.assertIn("event_log_rotate: '5 parsecs' is not SIZE, TIME",
                      r.output())
        conf = self.write_config(name="b.conf")
        with open(conf, "a") as f:
            f.write("\n[accounting x]\npath = %s\nfields = type, nonsense\n"
                    % self.path("x.csv"))
        r = self.start_sluiced(conf, name="sluiced-b")
        self.assertEqual(r.wait(30), 78)
        self.assertIn("[accounting x] fields: 'nonsense' is not a field of "
                      "the events", r.output())
        conf = self.write_config(name="c.conf")
        with open(conf, "a") as f:
            f.write("\n[accounting x]\npath = %s\nfields = type\n"
                    "types = delivered, lost\n" % self.path("x.csv"))
        r = self.start_sluiced(conf, name="sluiced-c")
        self.assertEqual(r.wait(30), 78)
        self.assertIn("types: 'lost' is not an event type", r.output())


if __name__ == "__main__":
    peers.main()
