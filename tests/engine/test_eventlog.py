"""test_eventlog.py - the JSON-lines event log agrees with the spool.

Cases: an attempt whose result arrives after max_age (a DNS lookup that
times out) is "expired" in the spool and in the log (and in the stop
line), never "deferred"; a line left
unfinished by a crash is cut at the next start and the log goes on with
every event once; a new log file resumes after the spool's cursor; a log
on a full device (/dev/full) loses nothing: its events wait in the spool
and reach the next file; a log of another spool, a damaged log and a log
another sluiced holds are refused with exit codes 65 and 73.

usage: /usr/bin/python3 test_eventlog.py SLUICED SLUICE SINK
"""
import os
import signal
import socket

import peers
from peers import PeerTest, count_types, stop_counts

MSG = "From: s@sender.test\nSubject: log\n\nbody\n"


class EventLog(PeerTest):

    def setup_peers(self, ndom=2):
        port = peers.free_port()
        doms = ["log%d.test" % i for i in range(ndom)]
        dns = self.start_dns({d: [(10, "127.0.6.%d" % (i + 1))]
                              for i, d in enumerate(doms)})
        sink = self.start_sink(port)
        return port, dns, sink, doms

    def inject_some(self, doms, n, tag):
        return self.inject("s@sender.test",
                           ["%s%d@%s" % (tag, i, doms[i % len(doms)])
                            for i in range(n)], MSG)

    def test_late_result_expires_in_log(self):
        """max_age 3s and a DNS server that never answers (lookups fail
        after about 4s): the deferral arrives past max_age and the spool
        records it as expired; the log says expired too, once, and the
        stop line counts it as the spool does."""
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        self.addCleanup(silent.close)
        conf = self.write_config(dns="127.0.0.1:%d" % silent.getsockname()[1],
                                 max_age="3s", dns_timeout="2s",
                                 dns_tries="2", retry="1s")
        late = self.inject("s@sender.test", ["u@silent.test"], MSG)
        p = self.run_sluiced(conf, timeout=60)
        term = self.assert_terminal_once(late)
        self.assertEqual(term[late[0]]["type"], "expired")
        self.assertIn("DNS lookup", term[late[0]]["text"])
        lines = [e for e in self.event_log() if e.get("delivery") == late[0]]
        self.assertEqual([e["type"] for e in lines], ["expired"], lines)
        spool = self.assert_log_matches_spool()
        self.assertEqual(stop_counts(p.output()), count_types(spool))

    def test_torn_line_cut_and_log_goes_on(self):
        """A line cut in the middle (what kill -9 during a write leaves)
        is removed at the next start; the log then holds each event of
        both runs once, equal to the spool."""
        port, dns, sink, doms = self.setup_peers()
        conf = self.write_config(dns=dns, smtp_port=port)
        first = self.inject_some(doms, 5, "a")
        self.run_sluiced(conf)
        self.assert_log_matches_spool()
        with open(self.path("events.jsonl"), "ab") as f:
            f.write(b'{"seq":6,"type":"deliv')
        second = self.inject_some(doms, 4, "b")
        p = self.run_sluiced(conf, name="sluiced2")
        self.assertIn("cut 22 bytes", p.output())
        self.assert_terminal_once(first + second)
        spool = self.assert_log_matches_spool()
        self.assertEqual(len(spool), 9)

    def test_new_file_resumes_after_cursor(self):
        """A second run writing to a new file starts after the last event
        the first file got: nothing twice, nothing missing; the stop line
        counts only what that run committed."""
        port, dns, sink, doms = self.setup_peers()
        conf = self.write_config(dns=dns, smtp_port=port)
        self.inject_some(doms, 5, "a")
        self.run_sluiced(conf)
        first = self.assert_log_matches_spool()
        self.inject_some(doms, 3, "b")
        conf2 = self.write_config(dns=dns, smtp_port=port, name="two.conf",
                                  event_log=self.path("two.jsonl"))
        p = self.run_sluiced(conf2, name="sluiced2")
        last = max(e["seq"] for e in first)
        later = self.assert_log_matches_spool(self.path("two.jsonl"),
                                              since=last)
        self.assertEqual(len(later), 3)
        self.assertEqual(min(e["seq"] for e in self.event_log(
            self.path("two.jsonl"))), last + 1)
        self.assertEqual(stop_counts(p.output()), count_types(later))

    def test_full_device_loses_nothing(self):
        """With the log on /dev/full every write fails: sluiced says so,
        delivers all the same and exits 0; the next run with a real file
        writes every event the first could not."""
        port, dns, sink, doms = self.setup_peers()
        conf = self.write_config(dns=dns, smtp_port=port,
                                 event_log="/dev/full")
        ids = self.inject_some(doms, 6, "a")
        p = self.run_sluiced(conf)
        self.assertIn("No space left on device", p.output())
        self.assert_terminal_once(ids, log=False)
        conf2 = self.write_config(dns=dns, smtp_port=port, name="two.conf")
        self.run_sluiced(conf2, name="sluiced2")
        spool = self.assert_log_matches_spool()
        self.assertEqual(len(spool), 6)

    def test_foreign_or_damaged_log_refused(self):
        """A log whose last seq is beyond the spool's newest event (it
        belongs to another spool) and a log with a line that is not JSON
        are refused with exit 65 and a message; neither file is touched."""
        port, dns, sink, doms = self.setup_peers()
        self.inject_some(doms, 2, "a")
        cases = {"foreign.jsonl": (b'{"seq":999,"type":"delivered"}\n',
                                   "another spool"),
                 "damaged.jsonl": (b'{"seq":1}\nnot json at all\n',
                                   "not a JSON object")}
        for name, (content, why) in cases.items():
            path = self.path(name)
            with open(path, "wb") as f:
                f.write(content)
            conf = self.write_config(dns=dns, smtp_port=port,
                                     name=name + ".conf", event_log=path)
            p = self.start_sluiced(conf, name="sluiced-" + name)
            rc = p.wait(30)
            self.assertEqual(rc, 65, p.output())
            self.assertIn(why, p.output())
            with open(path, "rb") as f:
                self.assertEqual(f.read(), content)
        self.assertEqual(self.spool_info()["counts"]["queued"], 2)

    def test_log_held_by_another_sluiced(self):
        """Two engines (two spools) never write one file: the second is
        refused with exit 73 while the first runs."""
        port, dns, sink, doms = self.setup_peers()
        conf = self.write_config(dns=dns, smtp_port=port)
        p = self.start_sluiced(conf, exit_when_empty=False)
        # status.json comes from the running loop, after the log's open
        peers.wait_for(lambda: os.path.exists(self.path("spool",
                                                        "status.json")),
                       20, "the first sluiced running")
        conf2 = self.write_config(dns=dns, smtp_port=port, name="two.conf",
                                  spool=self.path("spool2"))
        p2 = self.start_sluiced(conf2, name="sluiced2")
        rc = p2.wait(30)
        self.assertEqual(rc, 73, p2.output())
        self.assertIn("in use by another process", p2.output())
        self.assertTrue(p.alive())
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0, p.output())


if __name__ == "__main__":
    peers.main()
