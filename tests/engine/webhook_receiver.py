"""webhook_receiver.py - a webhook receiver for tests: a threaded HTTP
server on 127.0.0.1 that checks each POST's X-Sluice-Signature, answers
500 to some POSTs (fail_pct, and the first) and hangs on others (hang_pct,
and the third) past sluiced's timeout, and keeps the events of the POSTs
it answered 200.

Events are deduped by their "id" when they carry one, else by "seq"
(event_key); `events` maps that key to the event, `copies` counts every
copy received, so repeats (at-least-once) can be reported.
"""
import hashlib
import hmac
import http.server
import json
import random
import threading
import time

REPLAY_WINDOW_S = 300


def event_key(ev):
    """What a receiver dedupes by: the stable id, or the seq without one."""
    return ev["id"] if "id" in ev else ev["seq"]


def verify(secret, header, body, now=None, window=REPLAY_WINDOW_S):
    """Whether header ("t=T,v1=HEX") signs body with secret and T is
    within window seconds of now (the README's recipe)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
        got = parts["v1"]
    except (KeyError, ValueError, AttributeError):
        return False
    if abs((now or time.time()) - t) > window:
        return False
    want = hmac.new(secret.encode(), b"%d." % t + body,
                    hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, got)


class Receiver:
    def __init__(self, secret=None, fail_pct=0, hang_pct=0, hang_s=0,
                 seed=1, always_fail=False, keep=True):
        self.secret = secret
        self.fail_pct = fail_pct
        self.hang_pct = hang_pct
        self.hang_s = hang_s
        self.always_fail = always_fail
        self.keep = keep
        self.rnd = random.Random(seed)
        self.lock = threading.Lock()
        self.events = {}
        self.copies = 0
        self.posts = self.failed = self.hung = self.bad_sig = 0
        self.batch_sizes = []
        self.stopping = threading.Event()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                rec.handle(self, body)

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client killed mid-request (kill -9, a timeout)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d/hook" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def _answer(self, h, code):
        try:
            h.send_response(code)
            h.send_header("Content-Length", "0")
            h.end_headers()
        except OSError:
            pass  # the client gave up (a hang past its timeout)

    def handle(self, h, body):
        with self.lock:
            self.posts += 1
            roll = self.rnd.random() * 100
            # a flaky receiver surely fails early: its first POST gets a
            # 500 and its third hangs, whatever the dice say later
            if self.posts == 1 and self.fail_pct:
                roll = 0
            elif self.posts == 3 and self.hang_pct:
                roll = self.fail_pct
        if self.secret is not None:
            sig = h.headers.get("X-Sluice-Signature", "")
            if not verify(self.secret, sig, body):
                with self.lock:
                    self.bad_sig += 1
                return self._answer(h, 401)
        if self.always_fail or roll < self.fail_pct:
            with self.lock:
                self.failed += 1
            return self._answer(h, 500)
        if roll < self.fail_pct + self.hang_pct:
            with self.lock:
                self.hung += 1
            self.stopping.wait(self.hang_s)
            return self._answer(h, 200)  # too late: the client left
        evs = json.loads(body)
        with self.lock:
            self.batch_sizes.append(len(evs))
            self.copies += len(evs)
            if self.keep:
                for ev in evs:
                    self.events[event_key(ev)] = ev
            else:
                for ev in evs:
                    self.events[event_key(ev)] = None
        return self._answer(h, 200)

    def keys(self):
        with self.lock:
            return set(self.events)

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
