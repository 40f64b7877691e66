"""test_smtp_kill9.py - kill -9 sluiced while smtp-source submits over
SMTP, again and again, then a run to the end: every message answered 250
is delivered or has its terminal event (0 lost).

smtp-source (Postfix) says nothing per message, so the test learns which
messages were answered 250 from the wire: the clients connect through a
small TCP proxy in this test that passes every byte on unchanged and
follows each conversation (smtp-source does not pipeline: one reply per
command, the message between 354 and <CR><LF>.<CR><LF>).  A 250 to the end
of a message adds that transaction's recipients to the accepted set.
Each recipient is unique: smtp-source -N numbers them, and each process
of each round has its own address ("<n>r<round>p<k>@sink.test").  The
clients send as smtp_relay_networks clients (smtp-source has no AUTH).

Each round starts sluiced and NPROC smtp-source processes, waits until a
random number of messages (seeded: SLUICE_CHAOS_SEED, default 17) more
were accepted, pauses up to 50 ms, kills sluiced with SIGKILL and the
clients with it.  The last run (--exit-when-empty) delivers the rest.
Then every accepted recipient must be in the sink's captures or have a
terminal event in the spool, and each delivery in the spool has exactly
one terminal event.  A message committed but not yet answered when the
process died is queued and delivered too (the client may send it again:
at-least-once), so more may be delivered than accepted, never less.
Deliveries repeated are reported per kill (a capture of the sink followed
by another of the same recipient: accepted, not recorded when that round
was killed) and are at most the sessions to the sink (SESSIONS) times the
delivered transactions a session may hold unrecorded (UNRECORDED,
SMTP_UNRECORDED_MAX in engine/smtp_session.h), one recipient each.

usage: /usr/bin/python3 test_smtp_kill9.py SLUICED SLUICE SINK
"""
import os
import random
import select
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "engine"))
import peers  # noqa: E402
from peers import wait_for  # noqa: E402
from smtpd_setup import SmtpdBase  # noqa: E402

SMTP_SOURCE = "/usr/sbin/smtp-source"
ROUNDS = 10
NPROC = 3
SESSIONS = 4      # max_connections of sink.test
UNRECORDED = 4    # SMTP_UNRECORDED_MAX, engine/smtp_session.h
SEED = int(os.environ.get("SLUICE_CHAOS_SEED", "17"))
TERMINAL = ("delivered", "bounced", "expired", "suppressed", "cancelled")


class Conversation:
    """Follows one SMTP conversation through the proxy."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.cbuf = b""
        self.sbuf = b""
        self.pending = ["greeting"]   # commands waiting for their reply
        self.data_mode = False
        self.rcpts = []

    def client_bytes(self, b):
        self.cbuf += b
        while True:
            if self.data_mode:
                end = self.cbuf.find(b"\r\n.\r\n")
                if end < 0:
                    self.cbuf = self.cbuf[-4:]   # keep a boundary's start
                    return
                self.cbuf = self.cbuf[end + 5:]
                self.data_mode = False
                self.pending.append(("end", list(self.rcpts)))
                continue
            nl = self.cbuf.find(b"\r\n")
            if nl < 0:
                return
            line, self.cbuf = self.cbuf[:nl], self.cbuf[nl + 2:]
            verb = line[:4].upper()
            if verb == b"MAIL":
                self.rcpts = []
            elif verb == b"RCPT":
                addr = line.split(b"<", 1)[1].split(b">", 1)[0].decode()
                self.rcpts.append(addr)
            self.pending.append(verb.decode("latin-1"))

    def server_bytes(self, b):
        self.sbuf += b
        while True:
            nl = self.sbuf.find(b"\r\n")
            if nl < 0:
                return
            line, self.sbuf = self.sbuf[:nl], self.sbuf[nl + 2:]
            if len(line) >= 4 and line[3:4] == b"-":
                continue
            cmd = self.pending.pop(0) if self.pending else None
            if cmd == "DATA" and line.startswith(b"354"):
                self.data_mode = True
            elif isinstance(cmd, tuple) and line.startswith(b"250"):
                self.proxy.accepted(cmd[1])


class Proxy:
    """127.0.0.1:port -> 127.0.0.1:upstream, recording accepted
    recipients."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.acked = set()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accepted(self, rcpts):
        with self.lock:
            self.acked.update(rcpts)

    def count(self):
        with self.lock:
            return len(self.acked)

    def accept_loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.pump, args=(c,), daemon=True).start()

    def pump(self, c):
        try:
            u = socket.create_connection(("127.0.0.1", self.upstream), 5)
        except OSError:
            c.close()
            return
        conv = Conversation(self)
        try:
            while True:
                r, _, _ = select.select([c, u], [], [], 60)
                if not r:
                    break
                done = False
                for s in r:
                    b = s.recv(65536)
                    if not b:
                        done = True
                        break
                    if s is c:
                        conv.client_bytes(b)
                        u.sendall(b)
                    else:
                        # recorded before the client can see it
                        conv.server_bytes(b)
                        c.sendall(b)
                if done:
                    break
        except OSError:
            pass
        c.close()
        u.close()

    def stop(self):
        self.stopping = True
        self.sock.close()


class SmtpKill9(SmtpdBase):

    def test_kill9_while_submitting(self):
        rng = random.Random(SEED)
        print("\nSLUICE_CHAOS_SEED=%d" % SEED)
        self.setup_spool()
        self.sink_port = peers.free_port()
        self.sink = self.start_sink(self.sink_port, listen="127.0.0.1")
        self.smtp_port = peers.free_port()
        self.conf = self.write_config(
            smtp_port=self.sink_port,
            domains={"sink.test": {"route": "127.0.0.1:%d" % self.sink_port,
                                   "max_connections": SESSIONS}},
            smtp_listen="127.0.0.1:%d" % self.smtp_port,
            ehlo_hostname="mx.sluice.test",
            smtp_relay_networks="127.0.0.0/8", smtp_default_account="shop",
            nosync="no")
        proxy = Proxy(self.smtp_port)
        self.addCleanup(proxy.stop)
        received_at_kill = []
        for rnd in range(ROUNDS):
            self.sluiced = self.start_sluiced(self.conf, exit_when_empty=False,
                                              name="sluiced-%d" % rnd)
            self.wait_listening()
            clients = [self._proc([SMTP_SOURCE, "-N", "-d", "-s", "4",
                                   "-m", "100000", "-l", "3000",
                                   "-f", "news@shop.test",
                                   "-t", "r%dp%d@sink.test" % (rnd, k),
                                   "-S", "kill9 round %d" % rnd,
                                   "127.0.0.1:%d" % proxy.port],
                                  "smtp-source-%d-%d" % (rnd, k))
                       for k in range(NPROC)]
            target = proxy.count() + rng.randint(50, 600)
            wait_for(lambda: proxy.count() >= target, 120,
                     "%d accepted messages" % target)
            time.sleep(rng.random() * 0.05)
            self.sluiced.signal(signal.SIGKILL)
            self.sluiced.wait(30)
            for c in clients:
                if c.alive():
                    c.signal(signal.SIGKILL)
                c.wait(30)
            received_at_kill.append(self.sink.settled_captures())
            print("round %d: killed with %d accepted so far"
                  % (rnd, proxy.count()))
        acked = set(proxy.acked)
        self.assertGreater(len(acked), ROUNDS * 50)
        p = self.start_sluiced(self.conf, exit_when_empty=True,
                               name="sluiced-final")
        rc = p.wait(300)
        self.assertEqual(rc, 0, p.output()[-3000:])
        delivered = set(r for _, rcpts, _ in self.sink.captures()
                        for r in rcpts)
        evs = self.spool_events()
        terminal = {}
        for e in evs:
            if e["type"] in TERMINAL:
                terminal.setdefault(e["delivery"], []).append(e)
        ended = set(es[0]["rcpt"] for es in terminal.values())
        lost = sorted(acked - delivered - ended)
        print("accepted %d, delivered %d distinct, %d deliveries in the "
              "spool, lost %d" % (len(acked), len(delivered),
                                  len(terminal), len(lost)))
        self.assertEqual(lost, [], "answered 250, never delivered")
        once = [d for d, es in terminal.items() if len(es) != 1]
        self.assertEqual(once, [], "deliveries with more than one end")
        self.assertEqual(self.spool_info()["counts"]["queued"], 0)
        per_run = self.sink.repeats_per_run(received_at_kill)
        print("deliveries repeated after each kill %s (%d in all, at most "
              "%d per kill: %d sessions x %d)"
              % (per_run[:ROUNDS], sum(per_run), SESSIONS * UNRECORDED,
                 SESSIONS, UNRECORDED))
        for k, n in enumerate(per_run[:ROUNDS]):
            self.assertLessEqual(n, SESSIONS * UNRECORDED,
                                 "kill %d repeated more deliveries than "
                                 "the sessions open may hold" % k)
        self.assertEqual(per_run[ROUNDS], 0,
                         "the run to the end repeated a delivery")


if __name__ == "__main__":
    peers.main()
