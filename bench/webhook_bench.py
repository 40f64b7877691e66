#!/usr/bin/python3
"""webhook_bench.py - events per second through one webhook.

A spool is filled with N messages (spool-fill) and delivered to
sluice-sink by a sluiced without webhooks, so the spool holds N events.
Then sluiced starts again with one [webhook bench] (start = oldest, batch
B, max_in_flight F) pointing at a local receiver that answers 200 at once
and counts the events of each POST without parsing them as JSON; the time from the
first POST to the one that brings the N-th event is the drain of the
cursor.  Target (issue 18): >= 50,000 events/s with batch 100.

The receiver is a lean threaded Python server (one thread per
connection, keep-alive; Counter): when the rate is near the target,
check with `top` whether it, not sluiced, is the limit.

usage: /usr/bin/python3 bench/webhook_bench.py BUILD_DIR [-n N] [--batch B]
                                               [--in-flight F]
exit: 0 done (the rate printed, also as JSON on the last line), 64 usage,
      1 a step failed
"""
import argparse
import json
import os
import re
import shutil
import signal
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

# an event's start in a batch: '[' or ',' then {"seq":N
SEQ_AT_START = re.compile(rb'[\[,]\{"seq":(\d+)')


class Counter:
    """A receiver that takes every POST, counts its events and keeps
    their seqs (to check for events missing or repeated).

    Lean on purpose, as it shares the two cores with what it measures:
    one thread per keep-alive connection reading the request line, the
    headers (only Content-Length is looked at, without the email parser
    http.server runs on each request) and the body, and answering a
    fixed 200.  The body is not parsed as JSON: each event of sluiced's
    compact lines starts {"seq":N, and one findall takes every N."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = self.posts = 0
        self.max_seq = 0
        self.first = self.last = None
        self.seqs = []
        rec = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                while self.one_request():
                    pass

            def one_request(self):
                line = self.rfile.readline(65537)
                if not line:
                    return False
                length = None
                while True:
                    h = self.rfile.readline(65537)
                    if h in (b"\r\n", b"\n", b""):
                        break
                    if h[:15].lower() == b"content-length:":
                        length = int(h[15:])
                if length is None:
                    self.wfile.write(b"HTTP/1.1 411 Length Required\r\n"
                                     b"Content-Length: 0\r\n\r\n")
                    return False
                body = self.rfile.read(length)
                seqs = [int(x) for x in SEQ_AT_START.findall(body)]
                now = time.monotonic()
                with rec.lock:
                    if rec.first is None:
                        rec.first = now
                    rec.last = now
                    rec.posts += 1
                    rec.events += len(seqs)
                    rec.seqs.extend(seqs)
                    if seqs:
                        rec.max_seq = max(rec.max_seq, max(seqs))
                self.wfile.write(b"HTTP/1.1 200 OK\r\n"
                                 b"Content-Length: 0\r\n\r\n")
                return True

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take_seqs(self):
        """The seqs received since the last call (and forget them)."""
        with self.lock:
            seqs, self.seqs = self.seqs, []
        return seqs


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait(pred, timeout, what):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.02)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("-n", type=int, default=200000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--in-flight", type=int, default=4)
    try:
        a = ap.parse_args()
    except SystemExit as e:
        sys.exit(64 if e.code else 0)
    b = os.path.abspath(a.build)
    sluiced, fill = b + "/engine/sluiced", b + "/bench/spool-fill"
    sink = b + "/bench/sink/sluice-sink"
    t = tempfile.mkdtemp(prefix="sluice-webhook-bench-")
    procs = []
    try:
        port = free_port()
        procs.append(subprocess.Popen(
            [sink, "--listen", "127.0.0.1:%d" % port],
            stdout=subprocess.DEVNULL, stderr=open(t + "/sink.log", "w")))
        spool = t + "/spool"
        subprocess.run([fill, "--spool", spool, "-n", str(a.n),
                        "--domains", "20"], check=True,
                       stdout=subprocess.DEVNULL)
        conf = t + "/sluiced.conf"
        with open(conf, "w") as f:
            f.write("[sluiced]\nspool = %s\nehlo_hostname = bench.test\n"
                    "nosync = yes\nmax_inflight = 20000\ndkim_sign = no\n\n"
                    "[domain default]\nroute = 127.0.0.1:%d\ntls = off\n"
                    "max_connections = 50\n" % (spool, port))
        print("filling: %d events delivered to the sink ..." % a.n,
              file=sys.stderr)
        subprocess.run([sluiced, "-c", conf, "--exit-when-empty"],
                       check=True, stderr=open(t + "/fill.log", "w"))
        rec = Counter()
        with open(conf, "a") as f:
            f.write("\n[webhook bench]\nurl = %s\nbatch = %d\n"
                    "max_in_flight = %d\nstart = oldest\n"
                    % (rec.url, a.batch, a.in_flight))
        p = subprocess.Popen([sluiced, "-c", conf],
                             stderr=open(t + "/drain.log", "w"))
        procs.append(p)
        wait(lambda: rec.max_seq >= a.n or p.poll() is not None, 600,
             "the webhook to drain")
        if p.poll() is not None:
            raise RuntimeError("sluiced exited %d" % p.returncode)
        secs = rec.last - rec.first
        rate = rec.events / secs if secs > 0 else 0.0
        print("webhook: %d events in %d POSTs (%d copies over N) in %.2f s: "
              "%.0f events/s (batch %d, max_in_flight %d; target >= 50000)"
              % (rec.events, rec.posts, rec.events - a.n, secs, rate,
                 a.batch, a.in_flight))
        print(json.dumps({"bench": "webhook", "events": rec.events,
                          "posts": rec.posts, "seconds": round(secs, 3),
                          "events_per_s": round(rate), "batch": a.batch,
                          "max_in_flight": a.in_flight}))
    except (subprocess.CalledProcessError, RuntimeError, OSError) as e:
        print("webhook_bench: %s (logs in %s)" % (e, t), file=sys.stderr)
        t = None
        sys.exit(1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        if t:
            shutil.rmtree(t, ignore_errors=True)


if __name__ == "__main__":
    main()
