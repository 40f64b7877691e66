"""test_pause.py - an admin pauses and resumes a domain or a whole site.

The pause is stored in the spool: mail to a paused domain stays queued
while the others flow, the pause holds across a restart of sluiced, and a
resume lets the mail go within pause_recheck.  Pausing a [site] holds all
its domains.  `sluice status` shows the paused state.

usage: /usr/bin/python3 test_pause.py SLUICED SLUICE SINK
"""
import json
import signal
import time

import peers
from peers import PeerTest

MSG = "From: s@sender.test\nSubject: p\n\nbody\n"


class Pause(PeerTest):

    def delivered_rcpts(self):
        return {e["rcpt"] for e in self.event_log() if e["type"] == "delivered"}

    def test_pause_domain_survives_restart(self):
        port = peers.free_port()
        dns = self.start_dns({"open.test": [(10, "127.0.0.71")],
                              "held.test": [(10, "127.0.0.72")]})
        sink = self.start_sink(port)
        conf = self.write_config(dns=dns, smtp_port=port,
                                 pause_recheck="2s")
        self.sluice("pause", "domain", "held.test", "--reason", "test")
        held = self.inject("s@sender.test", ["h%d@held.test" % i
                                             for i in range(5)], MSG)
        opened = self.inject("s@sender.test", ["o%d@open.test" % i
                                               for i in range(5)], MSG)
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.wait_events(lambda ev: sum(e["type"] == "delivered"
                                        for e in ev) >= 5, 20,
                         "open.test delivered")
        time.sleep(2.5)  # more than pause_recheck: still held
        got = self.delivered_rcpts()
        self.assertFalse([r for r in got if r.endswith("@held.test")], got)
        st = json.loads(self.sluice("status", "--json").stdout)
        rows = st["rows"] if isinstance(st, dict) and "rows" in st else st
        text = json.dumps(rows)
        self.assertIn("held.test", text)
        self.assertIn("paused", text)

        # restart: the pause is in the spool, not in sluiced's memory
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(20), 0)
        p = self.start_sluiced(conf, exit_when_empty=False, name="sluiced2")
        time.sleep(3)
        self.assertFalse([r for r in self.delivered_rcpts()
                          if r.endswith("@held.test")])
        info = self.spool_info()
        self.assertEqual(info["counts"]["queued"], len(held))

        # resume while running: delivered within pause_recheck and a bit
        self.sluice("resume", "domain", "held.test")
        self.wait_events(lambda ev: sum(e["type"] == "delivered"
                                        for e in ev) >= 10, 20,
                         "held.test delivered after resume")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(20), 0)
        self.assert_terminal_once(held + opened)
        st = sink.stop()
        self.assertEqual(st["by_addr"]["127.0.0.72"]["recipients"], 5)

    def test_pause_site_holds_all_its_domains(self):
        port = peers.free_port()
        dns = self.start_dns({"a.test": [(10, "127.0.0.73")],
                              "b.test": [(10, "127.0.0.73")],
                              "other.test": [(10, "127.0.0.74")]})
        # a.test and b.test share MX host names under *.mx73.test
        conf = self.write_config(dns=dns, smtp_port=port, pause_recheck="2s")
        with open(conf) as f:
            text = f.read()
        # peers' start_dns names MX hosts after the domain; find them
        mx = [l.split(",")[1] for l in open(self.path("dnsmasq.conf"))
              if l.startswith("mx-host=a.test") or
              l.startswith("mx-host=b.test")]
        with open(conf, "w") as f:
            f.write(text + "\n[site shared]\nmx = %s\n" % ", ".join(mx))
        sink = self.start_sink(port)
        self.sluice("pause", "site", "shared")
        ids = self.inject("s@sender.test", ["x@a.test", "y@b.test",
                                            "z@other.test"], MSG)
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.wait_events(lambda ev: any(e["type"] == "delivered"
                                        for e in ev), 20, "other.test")
        time.sleep(3)
        got = self.delivered_rcpts()
        self.assertEqual(got, {"z@other.test"})
        site_events = [e for e in self.event_log() if e["type"] == "site"]
        self.sluice("resume", "site", "shared")
        self.wait_events(lambda ev: sum(e["type"] == "delivered"
                                        for e in ev) >= 3, 20,
                         "site delivered after resume")
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(20), 0)
        self.assert_terminal_once(ids)
        resumed = [e for e in self.event_log()
                   if e["type"] == "site" and e["change"] == "resumed"]
        self.assertTrue(resumed, site_events)
        sink.stop()


if __name__ == "__main__":
    peers.main()
