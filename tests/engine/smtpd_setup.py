"""smtpd_setup.py - what the SMTP listener's tests share: a spool with
accounts, users and API keys, a sink for the deliveries, and sluiced with
smtp_listen.

The spool: the master acme (acme.test verified) and its sub-account shop
(shop.test verified, news.shop.test under it by relaxed alignment); the
owner root (a password: every later `sluice` call acts as root through
$SLUICE_USER/$SLUICE_PASSWORD); bob, sender on shop, with a send key
(self.key) and a read key (self.read_key); carol, viewer on shop, with a
send key (her role caps it: self.viewer_key).  Mail to sink.test goes to
sluice-sink on 127.0.0.1 (route), captured.
"""
import base64
import os
import socket
import subprocess
import time

import peers
from peers import PeerTest, wait_for

OWNER_PW = "owner-password-for-tests-1"


class SmtpdBase(PeerTest):

    def create_key(self, user, account, scope):
        out = self.sluice("apikey", "create", "--user", user, "--account",
                          account, "--scope", scope).stdout.decode()
        return [l for l in out.split() if l.startswith("sk_")][0]

    def setup_spool(self):
        self.sluice("account", "create", "acme")
        self.sluice("account", "create", "shop")
        for dom, acct in (("acme.test", "acme"), ("shop.test", "shop")):
            self.sluice("domain", "add", dom, "--account", acct)
            self.sluice("domain", "verify", dom, "--force")
        r = subprocess.run([self.bin["sluice"], "--spool", self.path("spool"),
                            "user", "add", "root", "--account", "acme",
                            "--role", "owner", "--password-stdin"],
                           input=OWNER_PW.encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        os.environ["SLUICE_USER"] = "root"
        os.environ["SLUICE_PASSWORD"] = OWNER_PW
        self.sluice("user", "add", "bob", "--account", "shop", "--role",
                    "sender", "--no-password")
        self.sluice("user", "add", "carol", "--account", "shop", "--role",
                    "viewer", "--no-password")
        self.key = self.create_key("bob", "shop", "send")
        self.read_key = self.create_key("bob", "shop", "read")
        self.viewer_key = self.create_key("carol", "shop", "send")

    def tearDown(self):
        os.environ.pop("SLUICE_USER", None)
        os.environ.pop("SLUICE_PASSWORD", None)
        super().tearDown()

    def make_cert(self):
        cert, key = self.path("smtpd.crt"), self.path("smtpd.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                        "-subj", "/CN=mx.sluice.test"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return cert, key

    def start(self, tls=False, spool=True, sink=True, **keys):
        """Spool (unless spool is False), sink, and sluiced listening on
        self.smtp_port; extra [sluiced] keys from keys."""
        if spool:
            self.setup_spool()
        self.sink_port = peers.free_port()
        if sink:
            self.sink = self.start_sink(self.sink_port, listen="127.0.0.1")
        self.smtp_port = peers.free_port()
        k = {"smtp_listen": "127.0.0.1:%d" % self.smtp_port,
             "ehlo_hostname": "mx.sluice.test"}
        if tls:
            k["tls_cert"], k["tls_key"] = self.make_cert()
        k.update(keys)
        self.conf = self.write_config(
            smtp_port=self.sink_port,
            domains={"sink.test": {"route": "127.0.0.1:%d" % self.sink_port}},
            **k)
        self.sluiced = self.start_sluiced(self.conf, exit_when_empty=False)
        self.wait_listening()
        return self.sluiced

    def wait_listening(self):
        def up():
            if not self.sluiced.alive():
                raise peers.PeerError("sluiced exited: " +
                                      self.sluiced.output())
            try:
                socket.create_connection(("127.0.0.1", self.smtp_port),
                                         1).close()
                return True
            except OSError:
                return False
        wait_for(up, 20, "sluiced's SMTP listener")

    def message(self, frm="news@shop.test", to="a@sink.test", subject="hi",
                body="hello\r\n", extra=""):
        return ("From: %s\r\nTo: %s\r\nSubject: %s\r\n%s\r\n%s"
                % (frm, to, subject, extra, body))

    def delivered_to(self, rcpt, timeout=30):
        """Wait until the sink captured a message for rcpt; its body."""
        found = []

        def got():
            for _, rcpts, data in self.sink.captures():
                if rcpt in rcpts:
                    found.append(data)
                    return True
            return False
        wait_for(got, timeout, "a delivery to %s" % rcpt)
        return found[0]

    def raw(self, source="127.0.0.1"):
        """A raw socket to the listener, greeting read."""
        s = socket.create_connection(("127.0.0.1", self.smtp_port), 10,
                                     source_address=(source, 0))
        s.settimeout(20)
        self.assertTrue(read_reply(s).startswith(b"220 "))
        return s

    def auth_plain(self, user, key):
        return base64.b64encode(b"\0" + user.encode() + b"\0" +
                                key.encode()).decode()

    def audit_lines(self):
        return self.sluice("audit", "list").stdout.decode().splitlines()


def read_reply(s, deadline=20):
    """One whole (multi-line) reply from socket s, as bytes."""
    buf = b""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        lines = buf.split(b"\r\n")
        for i, l in enumerate(lines[:-1]):
            if len(l) >= 4 and l[3:4] == b" ":
                return b"\r\n".join(lines[:i + 1])
        chunk = s.recv(65536)
        if not chunk:
            return buf
        buf += chunk
    raise AssertionError("no whole reply in %ds: %r" % (deadline, buf))


def read_replies(s, n, deadline=30):
    """n replies (each its first line's code and the last line)."""
    out, buf = [], b""
    end = time.monotonic() + deadline
    while len(out) < n and time.monotonic() < end:
        while b"\r\n" in buf and len(out) < n:
            line, buf = buf.split(b"\r\n", 1)
            if len(line) >= 4 and line[3:4] == b"-":
                continue
            out.append(line)
        if len(out) >= n:
            break
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return out


def read_all(s, deadline=30):
    """Everything until the server closes."""
    buf = b""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        buf += chunk
    return buf
