"""test_shutdown.py - stopping sluiced loses no mail and never finishes a
delivery twice.

Cases: SIGTERM in the middle of a run against slow receivers (drain
within drain_timeout, exit 0, the rest delivered by a second run); a
drain that times out and aborts its sessions; kill -9 in the middle of a
20,000-recipient run, then a restart that finishes every recipient
exactly once (the receiver may see a few twice: at-least-once).

usage: /usr/bin/python3 test_shutdown.py SLUICED SLUICE SINK
"""
import signal
import time

import peers
from peers import PeerTest

MSG = "From: s@sender.test\nSubject: bulk\n\nbody\n"
TERMINAL = ("delivered", "bounced", "expired", "suppressed", "cancelled")


class Shutdown(PeerTest):

    def spool_terminal(self):
        """{delivery: [terminal spool events]}"""
        out = {}
        for e in self.spool_events():
            if e["type"] in TERMINAL:
                out.setdefault(e["delivery"], []).append(e)
        return out

    def check_partial(self, ids, log):
        """After a stop: no delivery has two terminal events, every
        terminal event in the log is in the spool, and every other
        delivery is still queued.  Returns the number finished."""
        term = self.spool_terminal()
        for d, evs in term.items():
            self.assertEqual(len(evs), 1, evs)
        seen = set()
        for e in self.event_log(log):
            if e["type"] in TERMINAL:
                self.assertNotIn(e["delivery"], seen, e)
                seen.add(e["delivery"])
                self.assertIn(e["delivery"], term, e)
        done = len(set(ids) & set(term))
        info = self.spool_info()
        self.assertEqual(info["counts"]["queued"], len(ids) - done, info)
        return done

    def slow_setup(self, slow_ms, ndom=8, per_dom=20):
        port = peers.free_port()
        doms = ["slow%d.test" % i for i in range(ndom)]
        dns = self.start_dns({d: [(10, "127.0.3.%d" % (i + 1))]
                              for i, d in enumerate(doms)})
        sink = self.start_sink(port, args=["--slow-ms", str(slow_ms)],
                               capture=False)
        ids = []
        for d in doms:
            ids += self.inject("s@sender.test",
                               ["slow%d@%s" % (k, d) for k in range(per_dom)],
                               MSG)
        return port, dns, sink, ids

    def test_sigterm_drains(self):
        """SIGTERM mid-run: exit 0 within drain_timeout + margin, nothing
        lost or doubled; a second run delivers the rest."""
        port, dns, sink, ids = self.slow_setup(300)
        conf = self.write_config(
            dns=dns, smtp_port=port, drain_timeout="5s",
            domains={"default": {"max_connections": 2,
                                  "max_rcpts_per_message": 1}})
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.wait_events(lambda ev: len(ev) >= 10, 30, "ten deliveries")
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        rc = p.wait(20)
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, p.output()[-3000:])
        self.assertLess(took, 5 + 5, "drain took %.1fs" % took)
        done = self.check_partial(ids, None)
        self.assertLess(done, len(ids), "SIGTERM came too late to test")

        conf2 = self.write_config(dns=dns, smtp_port=port, name="second.conf",
                                  event_log=self.path("events2.jsonl"))
        self.run_sluiced(conf2, timeout=60, name="sluiced2")
        self.assert_terminal_once(ids, log=False)
        st = sink.stop()
        self.assertGreaterEqual(st["recipients"], len(ids))

    def test_drain_timeout_aborts(self):
        """Sessions that outlast drain_timeout (1s) are cut; sluiced still
        exits 0 soon, and the cut deliveries are delivered next run."""
        port, dns, sink, ids = self.slow_setup(4000, ndom=2, per_dom=5)
        conf = self.write_config(dns=dns, smtp_port=port, drain_timeout="1s")
        p = self.start_sluiced(conf, exit_when_empty=False)
        wait = lambda: sink.stats()["current_sessions"] >= 2
        peers.wait_for(wait, 20, "sessions at the sink", interval=0.2)
        time.sleep(0.5)
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        rc = p.wait(20)
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, p.output()[-3000:])
        self.assertLess(took, 1 + 5, "drain took %.1fs" % took)
        self.check_partial(ids, None)
        # cut short by the stop, not by the receiver: no attempt counted
        for e in self.spool_events():
            self.assertNotIn("stopping", e["text"], e)

        sink.proc.stop()
        sink = self.start_sink(port, name="sink2", capture=False)
        conf2 = self.write_config(dns=dns, smtp_port=port, name="second.conf",
                                  event_log=self.path("events2.jsonl"))
        self.run_sluiced(conf2, timeout=60, name="sluiced2")
        self.assert_terminal_once(ids, log=False)

    def test_kill9_20000(self):
        """kill -9 during a 20,000-recipient run over 20 domains; a restart
        finishes: every recipient has exactly one terminal event and the
        receiver got every recipient at least once."""
        port = peers.free_port()
        doms = ["bulk%02d.test" % i for i in range(20)]
        dns = self.start_dns({d: [(10, "127.0.4.%d" % (i + 1))]
                              for i, d in enumerate(doms)})
        sink = self.start_sink(port)
        rcpts, ids = [], []
        for d in doms:
            r = ["r%04d@%s" % (k, d) for k in range(1000)]
            ids += self.inject("s@sender.test", r, MSG)
            rcpts += r
        self.assertEqual(len(set(ids)), 20000)
        # one recipient per transaction: 20,000 SMTP messages
        pol = {"default": {"max_rcpts_per_message": 1,
                           "max_connections": 4}}
        conf = self.write_config(dns=dns, smtp_port=port, domains=pol)
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.wait_events(lambda ev: len(ev) >= 3000, 60, "3000 outcomes")
        p.signal(signal.SIGKILL)
        p.wait(10)
        first = self.event_log()
        self.assertLess(len(first), 20000, "kill came too late to test")

        conf2 = self.write_config(dns=dns, smtp_port=port, domains=pol,
                                  name="second.conf",
                                  event_log=self.path("events2.jsonl"))
        self.run_sluiced(conf2, timeout=120, name="sluiced2")
        term = self.assert_terminal_once(ids, log=False)
        self.assertEqual({e["type"] for e in term.values()}, {"delivered"})
        # the logs of both runs: never two terminal events for one
        # delivery, and each one agrees with the spool.  The second log
        # starts after the spool's cursor, which may lag the first log by
        # its last lines: an event in both is the same line (same seq).
        seen, by_seq = set(), {}
        for e in first + self.event_log(self.path("events2.jsonl")):
            if e["type"] in TERMINAL:
                if e["seq"] in by_seq:
                    self.assertEqual(by_seq[e["seq"]], e)
                    continue
                by_seq[e["seq"]] = e
                self.assertNotIn(e["delivery"], seen, e)
                seen.add(e["delivery"])
                self.assertEqual(term[e["delivery"]]["seq"], e["seq"])
                self.assertEqual(term[e["delivery"]]["rcpt"], e["rcpt"])

        sink.stop()
        got = {}
        for _, rc, _ in sink.captures():
            for r in rc:
                got[r] = got.get(r, 0) + 1
        missing = set(rcpts) - set(got)
        self.assertFalse(missing, "never received: %r" % sorted(missing)[:5])
        dup = sum(n - 1 for n in got.values())
        # only what was in flight at the kill can repeat
        self.assertLess(dup, 2000, "%d duplicates" % dup)


if __name__ == "__main__":
    peers.main()
