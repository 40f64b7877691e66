#!/usr/bin/python3
"""sink_test.py - integration test of sluice-sink.

Starts real sluice-sink processes on free loopback ports, talks SMTP to them
(raw sockets and smtplib), stops them by PID with SIGTERM and checks what a
user of the sink relies on: pipelined messages captured byte-exactly after
dot-unstuffing, scripted recipient answers, disconnect* dropping the session
after the final dot, STARTTLS, the per-address connection limit, bare LF/CR
counting, the fault modes, first attempts told from retries
(--track-recipients), connections, SMTP sessions and transactions counted
apart, and the stats JSON written at exit.

usage: /usr/bin/python3 sink_test.py PATH/TO/sluice-sink
Exit status 0 when every check passes; the failing check is printed.
Everything lives in one temporary directory that is removed at the end.
"""

import json
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time

SINK = None
TMP = None
PROCS = []


class Sink:
    """One sluice-sink process started with the given extra arguments."""

    def __init__(self, name, args, host="127.0.0.1", bind=None):
        self.dir = os.path.join(TMP, name)
        os.mkdir(self.dir)
        self.host = host
        self.port = free_port(bind or host)
        self.stats = os.path.join(self.dir, "stats.json")
        self.pidfile = os.path.join(self.dir, "pid")
        self.capture = os.path.join(self.dir, "capture")
        self.log = open(os.path.join(self.dir, "stderr"), "w")
        cmd = [SINK, "--listen", "%s:%d" % (bind or host, self.port),
               "--stats", self.stats, "--pidfile", self.pidfile,
               "--capture", self.capture] + args
        self.proc = subprocess.Popen(cmd, stderr=self.log)
        PROCS.append(self.proc)
        pid = wait_listening(self.proc, self.pidfile)
        check(pid == self.proc.pid, "pidfile holds the pid")

    def stop(self):
        """SIGTERM by PID; returns the parsed stats JSON."""
        os.kill(self.proc.pid, signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        self.log.close()
        check(rc == 0, "sink exits 0 after SIGTERM (rc=%d, see %s)"
              % (rc, self.log.name))
        check(not os.path.exists(self.pidfile), "pidfile removed at exit")
        with open(self.stats) as f:
            return json.load(f)

    def captured(self):
        names = sorted(n for n in os.listdir(self.capture)
                       if n.endswith(".eml"))
        out = []
        for n in names:
            with open(os.path.join(self.capture, n), "rb") as f:
                out.append(f.read())
        return out


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def free_port(host):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(proc, pidfile):
    """The sink writes its pidfile right after listen(): wait for it."""
    deadline = time.time() + 20
    while time.time() < deadline:
        check(proc.poll() is None, "sink started (exited %s)" % proc.poll())
        try:
            with open(pidfile) as f:
                text = f.read()
            if text.endswith("\n"):
                return int(text)
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError("sink never wrote its pidfile")


class Client:
    """A raw SMTP client that reads whole (multiline) replies."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def reply(self):
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), lines

    def expect(self, code):
        got, lines = self.reply()
        check(got == code, "expected %d, got %r" % (code, lines))
        return lines

    def eof(self):
        """True when the server closes without sending anything more."""
        if self.buf:
            return False
        try:
            return self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def stuff(body):
    """Dot-stuff CRLF content for the wire (RFC 5321 4.5.2)."""
    lines = body.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


def make_body(i):
    return (b"Subject: message %d\r\n\r\n" % i
            + b".leading dot\r\n..two dots\r\n.\r\n"
            + b"x" * 990 + b"\r\n" + b"line %d\r\n" % i)


def test_pipelined(sink):
    """Several messages in one pipelined session, captured byte-exactly."""
    c = Client(sink.host, sink.port)
    c.expect(220)
    c.send(b"EHLO client.test\r\n")
    ehlo = c.expect(250)
    for ext in (b"PIPELINING", b"SIZE", b"8BITMIME", b"ENHANCEDSTATUSCODES",
                b"STARTTLS"):
        check(any(ext in l for l in ehlo), "EHLO lists %r" % ext)
    bodies = [make_body(i) for i in range(5)]
    envelope = b"MAIL FROM:<from@a.test>\r\nRCPT TO:<r%d@b.test>\r\nDATA\r\n"
    c.send(envelope % 0)
    for i, body in enumerate(bodies):
        c.expect(250)
        c.expect(250)
        c.expect(354)
        more = envelope % (i + 1) if i + 1 < len(bodies) else b"QUIT\r\n"
        c.send(stuff(body) + b".\r\n" + more)
        check(c.reply()[0] == 250, "message %d accepted" % i)
    c.expect(221)
    check(c.eof(), "closed after QUIT")
    c.close()
    # Many small commands in one write, answered in order.
    c = Client(sink.host, sink.port)
    c.expect(220)
    c.send(b"EHLO x\r\n" + b"NOOP\r\n" * 200 + b"BOGUS\r\nRSET\r\nQUIT\r\n")
    c.expect(250)
    for _ in range(200):
        c.expect(250)
    c.expect(500)
    c.expect(250)
    c.expect(221)
    c.close()
    got = sink.captured()
    check(len(got) == 5, "5 messages captured, got %d" % len(got))
    for i, data in enumerate(got):
        want = (b"X-Sink-Mail-From: <from@a.test>\r\n"
                b"X-Sink-Rcpt-To: <r%d@b.test>\r\n" % i + bodies[i])
        check(data == want, "capture %d is byte-exact: %r" % (i, data[:200]))
    return 5


def test_scripted(sink):
    """Scripted local parts get their codes; others are accepted."""
    s = smtplib.SMTP(sink.host, sink.port, timeout=10)
    s.ehlo("client.test")
    s.mail("from@a.test")
    want = {"tempfail1": (451, b"4.3.0"), "permfail": (550, b"5.1.1"),
            "BLOCKme": (554, b"5.7.1"), "quota-x": (452, b"4.2.2"),
            "ok": (250, b"2.1.5")}
    for local, (code, enh) in want.items():
        got, msg = s.rcpt("%s@c.test" % local)
        check(got == code and msg.startswith(enh),
              "%s answered %d %r" % (local, got, msg))
    code, _ = s.data(b"Subject: scripted\r\n\r\nhello\r\n")
    check(code == 250, "message to the accepted recipient taken")
    s.quit()
    return 1


def test_slow(sink):
    """slow* delays the RCPT reply; pipelined replies stay in order."""
    c = Client(sink.host, sink.port)
    c.expect(220)
    c.send(b"EHLO x\r\n")
    c.expect(250)
    start = time.time()
    c.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<slow1@d.test>\r\n"
           b"RCPT TO:<tempfail@d.test>\r\nNOOP\r\n")
    c.expect(250)
    c.expect(250)
    check(time.time() - start >= 0.25, "slow reply held for --slow-ms")
    c.expect(451)
    c.expect(250)
    c.send(b"QUIT\r\n")
    c.expect(221)
    c.close()


def test_disconnect(sink):
    """disconnect* closes right after the final dot, without a reply."""
    c = Client(sink.host, sink.port)
    c.expect(220)
    c.send(b"EHLO x\r\nMAIL FROM:<a@a.test>\r\n"
           b"RCPT TO:<disconnect-me@e.test>\r\nDATA\r\n")
    c.expect(250)
    c.expect(250)
    c.expect(250)
    c.expect(354)
    c.send(b"Subject: bye\r\n\r\nbody\r\n.\r\n")
    check(c.eof(), "no reply and EOF after the final dot")
    c.close()


def test_bare_lf_and_limits(sink):
    """Bare LF/CR are counted and kept; size and line caps answer."""
    c = Client(sink.host, sink.port)
    c.expect(220)
    c.send(b"EHLO x\r\nMAIL FROM:<a@a.test>\r\nRCPT TO:<u@f.test>\r\n"
           b"DATA\r\n")
    c.expect(250)
    c.expect(250)
    c.expect(250)
    c.expect(354)
    c.send(b"Subject: bare\r\n\r\nbare lf\nhere\r\nbare cr\rhere\r\n.\r\n")
    c.expect(250)
    c.send(b"MAIL FROM:<a@a.test> SIZE=999999999\r\n")
    c.expect(552)
    c.send(b"MAIL FROM:<a@a.test>\r\nRCPT TO:<u@f.test>\r\nDATA\r\n")
    c.expect(250)
    c.expect(250)
    c.expect(354)
    c.send((b"y" * 998 + b"\r\n") * 120 + b".\r\n")
    c.expect(552)
    c.send(b"NOOP " + b"z" * 5000 + b"\r\nNOOP\r\n")
    c.expect(500)
    c.expect(250)
    c.send(b"QUIT\r\n")
    c.expect(221)
    c.close()
    got = [m for m in sink.captured() if b"Subject: bare" in m]
    check(len(got) == 1 and got[0].endswith(
        b"bare lf\nhere\r\nbare cr\rhere\r\n"), "bare LF/CR kept as sent")
    return 1


def test_starttls(sink):
    """STARTTLS with a self-signed certificate, EHLO again, a message."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = smtplib.SMTP(sink.host, sink.port, timeout=10)
    s.ehlo("client.test")
    check(s.has_extn("starttls"), "STARTTLS advertised")
    code, _ = s.starttls(context=ctx)
    check(code == 220, "STARTTLS answered 220")
    code, _ = s.ehlo("client.test")
    check(code == 250, "EHLO after TLS answered 250")
    check(not s.has_extn("starttls"), "STARTTLS not offered inside TLS")
    s.sendmail("tls@a.test", ["tls@g.test"], b"Subject: tls\r\n\r\nsecret\r\n")
    s.quit()
    got = [m for m in sink.captured() if b"Subject: tls" in m]
    check(len(got) == 1 and got[0].endswith(b"\r\n\r\nsecret\r\n"),
          "message sent over TLS captured")
    return 1


def test_conn_limit():
    """Sessions above --max-conn-per-domain per local address get 421."""
    sink = Sink("connlimit", ["--max-conn-per-domain", "2"],
                host="127.0.0.2", bind="0.0.0.0")
    held = []
    for addr in ("127.0.0.2", "127.0.0.2", "127.0.0.3"):
        c = Client(addr, sink.port)
        c.expect(220)
        held.append(c)
    extra = Client("127.0.0.2", sink.port)
    lines = extra.expect(421)
    check(b"4.7.0" in lines[0], "421 carries 4.7.0")
    check(extra.eof(), "refused session closed")
    extra.close()
    for c in held:
        c.send(b"QUIT\r\n")
        c.expect(221)
        c.close()
    st = sink.stop()
    two, three = st["by_addr"]["127.0.0.2"], st["by_addr"]["127.0.0.3"]
    check(st["conn_limit_violations"] == 1, "one violation in total")
    check(two["conn_limit_violations"] == 1, "violation on 127.0.0.2")
    check(two["max_concurrency"] == 3, "127.0.0.2 saw 3 concurrent")
    check(three["conn_limit_violations"] == 0, "none on 127.0.0.3")
    check(st["max_concurrency"] == 4, "4 concurrent overall")
    check(st["sessions"] == 4, "sessions counted")
    check(two["sessions"] == 3 and three["sessions"] == 1, "per address")


def ms_now():
    return int(time.time() * 1000)


def test_track_recipients():
    """--track-recipients tells first attempts from retries and says when
    the last first attempt came (a sender's first pass ended there);
    connections, SMTP sessions (EHLO/HELO) and transactions (MAIL) are
    counted apart."""
    sink = Sink("track", ["--track-recipients", "3"])
    silent = Client("127.0.0.1", sink.port)     # connects, never greets
    silent.expect(220)
    c = Client("127.0.0.1", sink.port)
    c.expect(220)
    c.send(b"EHLO me\r\n")
    c.expect(250)
    c.send(b"MAIL FROM:<s@x.test>\r\n")
    c.expect(250)
    c.send(b"RCPT TO:<a@x.test>\r\n")
    c.expect(250)
    c.send(b"RCPT TO:<tempfail1@x.test>\r\n")
    c.expect(451)
    c.send(b"DATA\r\n")
    c.expect(354)
    c.send(b"Subject: t\r\n\r\nbody\r\n.\r\n")
    c.expect(250)
    c.send(b"QUIT\r\n")
    c.expect(221)
    c.close()
    c = Client("127.0.0.1", sink.port)
    c.expect(220)
    c.send(b"HELO me\r\n")
    c.expect(250)
    c.send(b"MAIL FROM:<s@x.test>\r\n")
    c.expect(250)
    t1 = ms_now()
    c.send(b"RCPT TO:<B@x.test>\r\n")           # new, the last new one
    c.expect(250)
    t2 = ms_now()
    c.send(b"RSET\r\n")
    c.expect(250)
    c.send(b"MAIL FROM:<s@x.test>\r\n")
    c.expect(250)
    c.send(b"RCPT TO:<TempFail1@x.test>\r\n")   # a retry (any case)
    c.expect(451)
    c.send(b"RCPT TO:<c@x.test>\r\n")           # past the cap of 3
    c.expect(250)
    c.send(b"QUIT\r\n")
    c.expect(221)
    c.close()
    silent.send(b"QUIT\r\n")
    silent.expect(221)
    silent.close()
    st = sink.stop()
    check(st["sessions"] == 3, "3 connections (%d)" % st["sessions"])
    check(st["smtp_sessions"] == 2, "2 said EHLO/HELO (%d)"
          % st["smtp_sessions"])
    check(st["transactions"] == 3, "3 MAIL accepted (%d)"
          % st["transactions"])
    check(st["rcpt_first"] == 3, "a, tempfail1 and b tried first (%d)"
          % st["rcpt_first"])
    check(st["rcpt_again"] == 1, "tempfail1 retried once (%d)"
          % st["rcpt_again"])
    check(st["rcpt_untracked"] == 1, "c past the cap (%d)"
          % st["rcpt_untracked"])
    check(t1 <= st["last_first_rcpt_ms"] <= t2,
          "the last first attempt is b's RCPT (%d not in %d..%d)"
          % (st["last_first_rcpt_ms"], t1, t2))


def test_modes():
    """The session fault modes do what their names say."""
    sink = Sink("greet421", ["--mode", "greet-421"])
    c = Client(sink.host, sink.port)
    c.expect(421)
    check(c.eof(), "greet-421 closes")
    sink.stop()

    sink = Sink("greet554", ["--mode", "greet-554"])
    c = Client(sink.host, sink.port)
    c.expect(554)
    c.send(b"EHLO x\r\nQUIT\r\n")
    c.expect(503)
    c.expect(221)
    sink.stop()

    sink = Sink("mismatch", ["--mode", "multiline-mismatch"])
    c = Client(sink.host, sink.port)
    c.expect(220)
    c.send(b"EHLO x\r\n")
    code, lines = c.reply()
    codes = {l[:3] for l in lines}
    check(len(codes) > 1, "continuation lines carry another code")
    sink.stop()

    sink = Sink("overlong", ["--mode", "overlong"])
    c = Client(sink.host, sink.port)
    check(len(c.line()) >= 100 * 1024, "overlong greeting line")
    sink.stop()

    sink = Sink("garbage", ["--mode", "garbage"])
    c = Client(sink.host, sink.port)
    c.expect(220)
    c.send(b"EHLO x\r\n")
    check(not c.line()[:3].isdigit(), "garbage after the greeting")
    sink.stop()

    sink = Sink("drip", ["--mode", "drip", "--drip-ms", "5"])
    c = Client(sink.host, sink.port)
    c.expect(220)
    c.send(b"QUIT\r\n")
    c.expect(221)
    sink.stop()

    sink = Sink("nogreet", ["--mode", "no-greeting"])
    c = Client(sink.host, sink.port)
    c.sock.settimeout(0.5)
    try:
        data = c.sock.recv(100)
    except socket.timeout:
        data = None
    check(data is None, "no greeting")
    c.close()
    sink.stop()


def test_block_pct():
    """--block-pct 100 blocks every recipient as a provider's policy
    block would (554 5.7.1); --block-pct 0 (a sink restarted without it)
    takes them again."""
    sink = Sink("block", ["--block-pct", "100"])
    c = Client(sink.host, sink.port)
    c.expect(220)
    c.send(b"EHLO x\r\nMAIL FROM:<a@x.test>\r\n")
    c.expect(250)
    c.expect(250)
    for i in range(3):
        c.send(b"RCPT TO:<u%d@d.test>\r\n" % i)
        code, lines = c.reply()
        check(code == 554 and b"5.7.1" in lines[0],
              "554 5.7.1 for every recipient: %r" % lines)
    c.send(b"QUIT\r\n")
    c.expect(221)
    st = sink.stop()
    check(st["rcpt_permfail"] == 3, "blocks counted permanent")
    r = subprocess.run([SINK, "--block-pct", "60", "--permfail-pct", "50"],
                       stderr=subprocess.PIPE, timeout=10)
    check(r.returncode == 64, "more than 100% in all refused")


def test_exit_after():
    """--exit-after N stops the sink by itself after N messages."""
    sink = Sink("exitafter", ["--exit-after", "2", "--timeline"])
    s = smtplib.SMTP(sink.host, sink.port, timeout=10)
    for _ in range(2):
        s.sendmail("a@a.test", ["x@h.test", "y@h.test"], b"Subject: e\r\n\r\n")
    s.quit()
    check(sink.proc.wait(timeout=30) == 0, "exit-after exits 0")
    with open(sink.stats) as f:
        st = json.load(f)
    check(st["messages"] == 2 and st["recipients"] == 4, "exit-after stats")
    check(sum(st["by_domain"]["h.test"]["timeline"]) == 4, "timeline sums")


def main():
    global SINK, TMP
    SINK = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="sink-test-") as TMP:
        try:
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                 "-keyout", os.path.join(TMP, "key.pem"),
                 "-out", os.path.join(TMP, "cert.pem"), "-days", "2",
                 "-subj", "/CN=sink.test"],
                check=True, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            sink = Sink("main", [
                "--tls-cert", os.path.join(TMP, "cert.pem"),
                "--tls-key", os.path.join(TMP, "key.pem"),
                "--max-size", "100000", "--slow-ms", "300"])
            msgs = test_pipelined(sink)
            msgs += test_scripted(sink)
            test_slow(sink)
            test_disconnect(sink)
            msgs += test_bare_lf_and_limits(sink)
            msgs += test_starttls(sink)
            os.kill(sink.proc.pid, signal.SIGUSR1)
            deadline = time.time() + 10
            while not os.path.exists(sink.stats) and time.time() < deadline:
                time.sleep(0.05)
            check(os.path.exists(sink.stats), "SIGUSR1 writes the stats")
            st = sink.stop()
            check(st["messages"] == msgs, "messages %d == %d"
                  % (st["messages"], msgs))
            check(st["recipients"] == msgs, "one recipient per message")
            check(st["rcpt_tempfail"] == 3, "451+452 x2 counted temporary")
            check(st["rcpt_permfail"] == 2, "550+554 counted permanent")
            check(st["bare_lf"] == 1 and st["bare_cr"] == 1, "bare LF/CR")
            check(st["oversize"] == 1, "one oversize message")
            check(st["dropped_after_data"] == 1, "one disconnect* drop")
            check(st["tls_handshakes"] == 1, "one TLS handshake")
            check(st["by_domain"]["c.test"]["rcpt_permfail"] == 2,
                  "per recipient domain failures")
            check(st["first_accept_ms"] <= st["last_accept_ms"],
                  "accept times")
            check("rcpt_first" not in st,
                  "no recipient tracking unless asked for")
            check(st["transactions"] >= msgs, "every message had its MAIL")
            test_conn_limit()
            test_track_recipients()
            test_modes()
            test_block_pct()
            test_exit_after()
        except Exception as e:
            print("FAIL: %s: %s" % (type(e).__name__, e))
            return 1
        finally:
            for p in PROCS:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    print("sink_test: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
