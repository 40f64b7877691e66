"""test_account_disable.py - a disabled account stops sending at once.

Two sub-accounts send to a slow sink over two connections.  `sluice
account disable` on one of them, seen by the running sluiced, stops it:
after sluiced says it applied the disable, at most the transactions already
on the wire complete (one per connection, and one pipelined behind it),
while the other account's mail, even mail queued after the disable (behind
the disabled account's in sluiced's memory), goes to its end; the disabled
account's mail waits in the spool, nothing of it lost.  `sluice account enable` lets it flow again on the
next claim (pause_recheck is an hour here, so no recheck can be what lets
it go).  Disabling the master holds every sub-account, across a restart of
sluiced, and an enable made while sluiced is down releases the mail in the
spool itself.

usage: /usr/bin/python3 test_account_disable.py SLUICED SLUICE SINK
"""
import json
import re
import signal
import time

import peers
from peers import PeerTest

CONNS = 2
# after the disable is applied: the transaction in progress on each
# connection and the one pipelined behind its data may complete
IN_FLIGHT = 2 * CONNS


class AccountDisable(PeerTest):

    def setup_run(self, counts):
        self.sluice("account", "create", "acme")
        self.sluice("account", "create", "a")
        self.sluice("account", "create", "b")
        self.acct_id = {
            name: json.loads(self.sluice("account", "show", name,
                                         "--json").stdout)["id"]
            for name in ("a", "b")}
        port = peers.free_port()
        dns = self.start_dns({"sink.test": [(10, "127.0.0.81")]})
        # slow* recipients: the sink holds each RCPT reply, so the run
        # lasts; one recipient per transaction
        self.sink = self.start_sink(port, args=["--slow-ms", "200"])
        self.conf = self.write_config(
            dns=dns, smtp_port=port, pause_recheck="1h",
            domains={"sink.test": {"max_connections": CONNS,
                                   "max_rcpts_per_message": 1}})
        self.ids, self.msg = {}, {}
        for acct in ("a", "b"):
            dom = "%s.test" % acct
            self.sluice("domain", "add", dom, "--account", acct,
                        "--selector", "s1")
            self.sluice("domain", "verify", dom, "--force")
            rcpts = ["slow-%s-%02d@sink.test" % (acct, i)
                     for i in range(counts[acct])]
            self.msg[acct] = "From: news@%s\nSubject: d\n\nbody\n" % dom
            self.ids[acct] = self.inject("news@" + dom, rcpts,
                                         self.msg[acct], account=acct)

    def at_sink(self, acct):
        """Recipients of acct the sink has accepted (each capture)."""
        return [r for _, rcpts, _ in self.sink.captures() for r in rcpts
                if r.startswith("slow-%s-" % acct)]

    def delivered(self, acct):
        return sum(1 for e in self.event_log()
                   if e["type"] == "delivered" and
                   e["rcpt"].startswith("slow-%s-" % acct))

    def wait_said(self, proc, pattern, what):
        peers.wait_for(lambda: re.search(pattern, proc.output()), 60,
                       "sluiced to say " + what)

    def test_disable_stops_at_once_and_enable_resumes(self):
        n = 30
        self.setup_run({"a": n, "b": n})
        p = self.start_sluiced(self.conf, exit_when_empty=False)
        self.wait_events(lambda ev: self.delivered("b") >= 3, 60,
                         "b's first deliveries")
        self.sluice("account", "disable", "b")
        self.wait_said(p, r"account %d is disabled\b" % self.acct_id["b"],
                       "b is disabled")
        before = len(self.at_sink("b"))
        # the other account's mail queued now (behind b's) goes to its end
        late = ["slow-a-late%02d@sink.test" % i for i in range(10)]
        late_ids = self.inject("news@a.test", late, self.msg["a"],
                               account="a")
        self.wait_events(lambda ev: self.delivered("a") == n + len(late),
                         120, "a's mail delivered")
        after = len(self.at_sink("b"))
        self.assertLessEqual(
            after - before, IN_FLIGHT,
            "b had %d deliveries after the disable was applied" %
            (after - before))
        self.assertLess(after, n, "b sent everything: the test proves "
                                  "nothing (make the sink slower)")
        info = self.spool_info()
        self.assertEqual(info["counts"]["queued"], n - self.delivered("b"),
                         info)

        # enabled: b's parked mail is due at once (the recheck is an hour)
        self.sluice("account", "enable", "b")
        self.wait_said(p, r"account %d is enabled again" % self.acct_id["b"],
                       "b is enabled")
        self.wait_events(lambda ev: self.delivered("b") == n, 120,
                         "b's mail delivered after the enable")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0, p.output()[-2000:])
        self.assert_terminal_once(self.ids["a"] + self.ids["b"] + late_ids)
        got = self.at_sink("a") + self.at_sink("b")
        self.assertEqual(len(got), 2 * n + len(late),
                         "a recipient mailed twice")
        self.assertEqual(len(set(got)), 2 * n + len(late))

    def test_disabled_master_holds_its_sub_accounts(self):
        n = 20
        self.setup_run({"a": n, "b": n})
        p = self.start_sluiced(self.conf, exit_when_empty=False)
        self.wait_events(lambda ev: self.delivered("a") +
                         self.delivered("b") >= 4, 60, "first deliveries")
        self.sluice("account", "disable", "acme")
        for acct in ("a", "b"):
            self.wait_said(p, r"account %d is disabled \(its master\)"
                           % self.acct_id[acct], acct + " held")
        before = len(self.at_sink("a")) + len(self.at_sink("b"))
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0, p.output()[-2000:])
        sent = len(self.at_sink("a")) + len(self.at_sink("b"))
        self.assertLessEqual(sent - before, IN_FLIGHT)
        self.assertLess(sent, 2 * n)
        self.assertEqual(self.spool_info()["counts"]["queued"], 2 * n - sent)

        # a restart keeps the mail parked: it is never due
        p = self.start_sluiced(self.conf, exit_when_empty=False,
                               name="sluiced2")
        self.wait_said(p, r"account %d is disabled \(its master\)"
                       % self.acct_id["b"], "b held after the restart")
        time.sleep(2)  # two admin polls; claims run every 10 ms
        self.assertEqual(len(self.at_sink("a")) + len(self.at_sink("b")),
                         sent)
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0, p.output()[-2000:])

        # enabled while sluiced is down: the spool makes the mail due
        self.sluice("account", "enable", "acme")
        self.run_sluiced(self.conf, timeout=120, name="sluiced3")
        self.assert_terminal_once(self.ids["a"] + self.ids["b"])
        got = self.at_sink("a") + self.at_sink("b")
        self.assertEqual(sorted(set(got)), sorted(got))
        self.assertEqual(len(got), 2 * n)


if __name__ == "__main__":
    peers.main()
