"""test_smtpd_hostile.py - sluiced's SMTP listener against hostile clients
on raw sockets: RFC behaviour and a bounded cost.

- an early talker (commands before the greeting) gets the greeting, then
  its replies in order;
- a bare LF or bare CR anywhere in DATA: 550 5.6.0, nothing queued, the
  session goes on;
- SMTP smuggling: "<LF>.<LF>", "<CR><LF>.<LF>", "<LF>.<CR><LF>",
  "<CR>.<CR><LF>" followed by a second transaction never end the message:
  one reply (550 5.6.0) for the whole, no message to the smuggled
  recipient; dot-stuffed lines arrive unstuffed;
- overlong command lines: 500 5.5.2 and the session goes on; a text line
  over 1000 octets in DATA: 500 5.5.2;
- NUL bytes: in a command 500 5.5.2, in DATA 550 5.6.0;
- pipelining past the limits: 3,000 RCPT in one burst get 100 x 250 then
  452 4.5.3, in order, and the server stays responsive;
- too many bad commands: 421 4.7.0 and the close;
- slowloris: a command trickled byte by byte past smtp_command_timeout
  and a DATA trickled past smtp_data_timeout get 421 4.4.2 and the close;
- STARTTLS with a command pipelined behind it: the command is dropped,
  never answered inside TLS;
- smtp_data_memory: a message that would take the messages in transit
  past it is refused with 452 4.3.1, and its memory is given back (the
  next message is taken);
- 500 idle connections: each costs sluiced a bounded amount of memory
  (measured from VmRSS and printed; asserted under 64 KiB), and the
  connection over smtp_max_clients gets 421 4.7.0.

usage: /usr/bin/python3 test_smtpd_hostile.py SLUICED SLUICE SINK
"""
import socket
import ssl
import threading
import time

import peers
from peers import wait_for
from smtpd_setup import SmtpdBase, read_all, read_replies, read_reply

IDLE = 500


class Hostile(SmtpdBase):

    def session(self):
        """A raw socket past EHLO and AUTH PLAIN as shop."""
        s = self.raw()
        s.sendall(b"EHLO hostile.test\r\n")
        self.assertTrue(read_reply(s).startswith(b"250-"))
        s.sendall(b"AUTH PLAIN " + self.auth_plain("shop", self.key).encode()
                  + b"\r\n")
        self.assertTrue(read_reply(s).startswith(b"235 "))
        return s

    def transaction(self, s, rcpt, data):
        """MAIL, RCPT, DATA, data as given; the reply after it."""
        s.sendall(b"MAIL FROM:<news@shop.test>\r\nRCPT TO:<" + rcpt.encode()
                  + b">\r\nDATA\r\n")
        r = read_replies(s, 3)
        self.assertEqual([x[:3] for x in r], [b"250", b"250", b"354"], r)
        s.sendall(data)
        return read_reply(s)

    def queued_rcpts(self):
        return [e["rcpt"] for e in self.spool_events()] + \
            [r for _, rcpts, _ in self.sink.captures() for r in rcpts]

    def test_early_talker_and_pipelining(self):
        self.start(smtp_max_recipients=100)
        s = socket.create_connection(("127.0.0.1", self.smtp_port), 10)
        s.settimeout(20)
        s.sendall(b"EHLO early.test\r\nNOOP\r\nMAIL FROM:<a@shop.test>\r\n")
        r = read_replies(s, 4)
        self.assertEqual([x[:4] for x in r],
                         [b"220 ", b"250 ", b"250 ", b"530 "], r)
        s.close()
        s = self.session()
        s.sendall(b"MAIL FROM:<news@shop.test>\r\n")
        self.assertTrue(read_reply(s).startswith(b"250 "))
        burst = b"".join(b"RCPT TO:<p%d@sink.test>\r\n" % i
                         for i in range(3000))
        t = threading.Thread(target=s.sendall, args=(burst,))
        t.start()
        r = read_replies(s, 3000, deadline=60)
        t.join()
        self.assertEqual(len(r), 3000)
        self.assertTrue(all(x.startswith(b"250 2.1.5") for x in r[:100]))
        self.assertTrue(all(x.startswith(b"452 4.5.3") for x in r[100:]),
                        set(x[:9] for x in r[100:]))
        s.sendall(b"RSET\r\nNOOP\r\n")
        self.assertEqual([x[:3] for x in read_replies(s, 2)],
                         [b"250", b"250"])
        s.close()

    def test_bare_newlines_and_smuggling(self):
        self.start()
        s = self.session()
        head = b"From: news@shop.test\r\nSubject: x\r\n\r\n"
        for bad in (b"line\nmore\r\n", b"line\rmore\r\n"):
            r = self.transaction(s, "bare@sink.test", head + bad + b".\r\n")
            self.assertTrue(r.startswith(b"550 5.6.0"), r)
        # smuggling: a second transaction behind a fake end of data
        smuggled = (b"MAIL FROM:<news@shop.test>\r\n"
                    b"RCPT TO:<smuggled@sink.test>\r\nDATA\r\n" + head +
                    b"evil\r\n")
        for fake in (b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n"):
            r = self.transaction(s, "victim@sink.test",
                                 head + b"text" + fake + smuggled + b".\r\n")
            self.assertTrue(r.startswith(b"550 5.6.0"), (fake, r))
            s.sendall(b"NOOP\r\n")
            self.assertTrue(read_reply(s).startswith(b"250 2.0.0"),
                            "one reply for the whole: %r" % fake)
        # dot stuffing, done right, arrives unstuffed
        r = self.transaction(s, "dots@sink.test",
                             head + b"..leading dot\r\n...\r\n.\r\n")
        self.assertTrue(r.startswith(b"250 2.0.0"), r)
        s.close()
        body = self.delivered_to("dots@sink.test")
        self.assertIn(b"\r\n.leading dot\r\n..\r\n", body)
        got = self.queued_rcpts()
        for r in ("bare@sink.test", "victim@sink.test", "smuggled@sink.test"):
            self.assertNotIn(r, got)

    def test_long_lines_nul_and_errors(self):
        self.start()
        s = self.raw()
        s.sendall(b"EHLO " + b"a" * 3000 + b"\r\nNOOP\r\n")
        r = read_replies(s, 2)
        self.assertEqual([x[:9] for x in r], [b"500 5.5.2", b"250 2.0.0"], r)
        s.sendall(b"NOOP\0 x\r\nNOOP\r\n")
        r = read_replies(s, 2)
        self.assertEqual([x[:9] for x in r], [b"500 5.5.2", b"250 2.0.0"], r)
        s.close()
        s = self.session()
        head = b"From: news@shop.test\r\nSubject: x\r\n\r\n"
        r = self.transaction(s, "long@sink.test",
                             head + b"x" * 1500 + b"\r\n.\r\n")
        self.assertTrue(r.startswith(b"500 5.5.2"), r)
        r = self.transaction(s, "nul@sink.test", head + b"a\0b\r\n.\r\n")
        self.assertTrue(r.startswith(b"550 5.6.0"), r)
        s.close()
        # bad commands in a row: 421 and the close
        s = self.raw()
        s.sendall(b"BOGUS\r\n" * 20)
        out = read_all(s)
        self.assertIn(b"421 4.7.0", out)
        self.assertEqual(out.count(b"500 5.5.2"), 10)
        s.close()
        got = self.queued_rcpts()
        self.assertNotIn("long@sink.test", got)
        self.assertNotIn("nul@sink.test", got)

    def trickle(self, s, data, every=0.3, limit=60):
        """Send data a byte at a time until the server closes; what it
        said."""
        end = time.monotonic() + limit
        out = b""
        for b in data:
            if time.monotonic() > end:
                break
            try:
                s.sendall(bytes([b]))
            except OSError:
                break
            time.sleep(every)
            s.setblocking(False)
            try:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
            except BlockingIOError:
                pass
            except OSError:
                return out
            finally:
                s.setblocking(True)
        s.settimeout(30)
        return out + read_all(s)

    def test_slowloris(self):
        self.start(smtp_command_timeout="2s", smtp_data_timeout="3s")
        s = self.raw()
        out = self.trickle(s, b"EHLO " + b"x" * 400 + b"\r\n")
        self.assertIn(b"421 4.4.2", out)
        s.close()
        s = self.session()
        s.sendall(b"MAIL FROM:<news@shop.test>\r\nRCPT TO:<slow@sink.test>"
                  b"\r\nDATA\r\n")
        read_replies(s, 3)
        out = self.trickle(s, b"Subject: x\r\n\r\n" + b"y\r\n" * 400)
        self.assertIn(b"421 4.4.2", out)
        s.close()
        self.assertNotIn("slow@sink.test", self.queued_rcpts())

    def test_starttls_injection(self):
        self.start(tls=True)
        s = self.raw()
        s.sendall(b"EHLO x.test\r\n")
        read_reply(s)
        s.sendall(b"STARTTLS\r\nNOOP\r\n")
        self.assertTrue(read_reply(s).startswith(b"220 2.0.0"))
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        t = ctx.wrap_socket(s, server_hostname="mx.sluice.test")
        t.sendall(b"EHLO x.test\r\n")
        r = read_reply(t)
        # the first reply inside TLS is EHLO's, not the injected NOOP's
        self.assertTrue(r.startswith(b"250-mx.sluice.test"), r)
        self.assertIn(b"AUTH PLAIN LOGIN", r)
        t.close()

    def test_data_memory(self):
        self.start(smtp_data_memory=1)
        head = b"From: news@shop.test\r\nSubject: x\r\n\r\n"
        line = b"z" * 78 + b"\r\n"
        s = self.session()
        r = self.transaction(s, "huge@sink.test",
                             head + line * 20000 + b".\r\n")   # 1.6 MB
        self.assertTrue(r.startswith(b"452 4.3.1"), r)
        r = self.transaction(s, "fits@sink.test",
                             head + line * 5000 + b".\r\n")    # 400 KB
        self.assertTrue(r.startswith(b"250 2.0.0"), r)
        s.close()
        self.delivered_to("fits@sink.test")
        self.assertNotIn("huge@sink.test", self.queued_rcpts())

    def rss_kb(self):
        with open("/proc/%d/status" % self.sluiced.p.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

    def test_idle_connections(self):
        self.start(smtp_max_clients=IDLE)
        socks = [self.raw()]   # warm up: the first connection's costs
        socks[0].sendall(b"EHLO warm.test\r\n")
        read_reply(socks[0])
        time.sleep(0.2)
        before = self.rss_kb()
        for _ in range(IDLE - 1):
            socks.append(self.raw())
        for s in socks:
            s.sendall(b"EHLO idle.test\r\n")
        for s in socks:
            self.assertTrue(read_reply(s).startswith(b"250-"))
        after = self.rss_kb()
        per = (after - before) * 1024 / (IDLE - 1)
        print("\nidle connections: %d, sluiced VmRSS %d -> %d KiB, %.0f "
              "bytes per connection" % (IDLE, before, after, per))
        self.assertLess(per, 64 * 1024)
        extra = socket.create_connection(("127.0.0.1", self.smtp_port), 10)
        extra.settimeout(20)
        self.assertTrue(read_reply(extra).startswith(b"421 4.7.0"))
        extra.close()
        for s in socks:
            s.close()
        # the places free up: served again
        def served():
            c = socket.create_connection(("127.0.0.1", self.smtp_port), 10)
            c.settimeout(20)
            ok = read_reply(c).startswith(b"220 ")
            c.close()
            return ok
        wait_for(served, 30, "a free place after the idle ones closed")


if __name__ == "__main__":
    peers.main()
