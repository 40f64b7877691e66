"""test_config.py - sluiced -t and SIGHUP reloads.

Cases: -t accepts a good file (exit 0) and refuses unknown keys, unknown
sections and bad values with exit 78 and "FILE:LINE: reason" naming the
right line; SIGHUP with a broken file keeps the running configuration,
and with a good one applies a changed route and a removed route to the
very next message.

usage: /usr/bin/python3 test_config.py SLUICED SLUICE SINK
"""
import os
import signal
import subprocess

import peers
from peers import PeerTest

MSG = "From: s@sender.test\nSubject: hup\n\nbody\n"


class Config(PeerTest):

    def check(self, path):
        r = subprocess.run([self.bin["sluiced"], "-t", "-c", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        return r.returncode, r.stdout.decode() + r.stderr.decode()

    def test_check_mode(self):
        good = self.write_config(dns="127.0.0.1:53", smtp_port=2525,
                                 domains={"a.test": {"route": "127.0.0.9:25",
                                                     "tls": "required"}})
        rc, out = self.check(good)
        self.assertEqual(rc, 0, out)
        with open(good) as f:
            text = f.read()
        nlines = text.count("\n")
        bad = [
            # (appended text, line of the error within it, word)
            ("[sluiced]\nretry_forever = yes\n", 2, "retry_forever"),
            ("[sluiced]\nmax_connections = lots\n", 2, "max_connections"),
            ("[sluiced]\nretry = 1s, 0s\n", 2, "retry"),
            ("[sluiced]\ntimeout_data = soon\n", 2, "timeout_data"),
            ("[domain b.test]\ntls = maybe\n", 2, "tls"),
            ("[domain b.test]\nroute = bad host!\n", 2, "route"),
            ("[domain b.test]\nmax_rcpts_per_message = 0\n", 2,
             "max_rcpts_per_message"),
            # an unknown section is reported at its first key
            ("\n[smtpd]\nport = 25\n", 3, "smtpd"),
            ("this is not ini\n", 1, "syntax"),
        ]
        for i, (extra, at, word) in enumerate(bad):
            path = self.path("bad%d.conf" % i)
            with open(path, "w") as f:
                f.write(text + extra)
            rc, out = self.check(path)
            self.assertEqual(rc, 78, "%r: %s" % (extra, out))
            self.assertIn("%s:%d: " % (path, nlines + at), out, extra)
            self.assertIn(word, out, extra)
        # a missing file and a missing spool are errors too
        rc, out = self.check(self.path("nope.conf"))
        self.assertEqual(rc, 78, out)
        path = self.path("nospool.conf")
        with open(path, "w") as f:
            f.write("[sluiced]\nehlo_hostname = a.test\n")
        rc, out = self.check(path)
        self.assertEqual(rc, 78, out)
        self.assertIn("spool", out)

    def test_sighup(self):
        port = peers.free_port()
        dns = self.start_dns({"hup.test": [(10, "127.0.0.92")]})
        sinks = {a: self.start_sink(port, listen=a, name="sink" + a[-2:])
                 for a in ("127.0.0.90", "127.0.0.91", "127.0.0.92")}

        def conf(route):
            doms = {"hup.test": {"route": route}} if route else None
            return self.write_config(dns=dns, smtp_port=port, domains=doms,
                                     idle_timeout="30s")
        path = conf("127.0.0.90")
        n = [0]

        def send():
            n[0] += 1
            return self.inject("s@sender.test", ["u%d@hup.test" % n[0]],
                               MSG)[0]

        def send_and_wait(d=None):
            d = d or send()
            ev = self.wait_events(
                lambda ev: [e for e in ev if e["delivery"] == d], 20,
                "delivery %d" % d)
            self.assertEqual(ev[0]["type"], "delivered", ev)
            return ev[0]["mx"]

        # the spool exists before sluiced starts (a spool created by two
        # processes at once is refused by one of them)
        first = send()
        p = self.start_sluiced(path, exit_when_empty=False)
        self.assertEqual(send_and_wait(first), "127.0.0.90")

        # a broken file: refused, the old route still used
        with open(path, "a") as f:
            f.write("[sluiced]\nbogus_key = 1\n")
        p.signal(signal.SIGHUP)
        peers.wait_for(lambda: "reload refused" in p.output(), 10,
                       "reload refused")
        self.assertIn("%s:" % path, p.output())
        self.assertTrue(p.alive())
        self.assertEqual(send_and_wait(), "127.0.0.90")

        # a changed route applies to the next message, even with a
        # connection to the old route still open
        os.unlink(path)
        conf("127.0.0.91")
        p.signal(signal.SIGHUP)
        peers.wait_for(lambda: p.output().count("configuration reloaded") == 1,
                       10, "reload")
        self.assertEqual(send_and_wait(), "127.0.0.91")

        # the route removed: MX again
        conf(None)
        p.signal(signal.SIGHUP)
        peers.wait_for(lambda: p.output().count("configuration reloaded") == 2,
                       10, "second reload")
        self.assertEqual(send_and_wait(), "mx1.hup.test")

        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(20), 0, p.output()[-3000:])
        self.assert_terminal_once(range(1, n[0] + 1))
        got = {a: s.stop()["messages"] for a, s in sinks.items()}
        self.assertEqual(got, {"127.0.0.90": 2, "127.0.0.91": 1,
                               "127.0.0.92": 1})


if __name__ == "__main__":
    peers.main()
