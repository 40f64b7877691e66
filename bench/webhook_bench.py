#!/usr/bin/python3
"""webhook_bench.py - events per second through one webhook.

A spool is filled with N messages (spool-fill) and delivered to
sluice-sink by a sluiced without webhooks, so the spool holds N events.
Then sluiced starts again with one [webhook bench] (start = oldest, batch
B, max_in_flight F) pointing at a local receiver that answers 200 at once
and counts the events of each POST without parsing them; the time from the
first POST to the one that brings the N-th event is the drain of the
cursor.  Target (issue 18): >= 50,000 events/s with batch 100.

The receiver is a threaded Python server (one thread per connection,
keep-alive): when the rate is near the target, check with `top` whether
it, not sluiced, is the limit.

usage: /usr/bin/python3 bench/webhook_bench.py BUILD_DIR [-n N] [--batch B]
                                               [--in-flight F]
exit: 0 done (the rate printed, also as JSON on the last line), 64 usage,
      1 a step failed
"""
import argparse
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

SEQ = re.compile(rb'"seq":(\d+)')


class Counter:
    """A receiver that takes every POST and counts its events."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = self.posts = 0
        self.max_seq = 0
        self.first = self.last = None
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                # each event line starts {"seq":N: count them, and read
                # the last one's N, without parsing the batch
                count = body.count(b'{"seq":')
                last = SEQ.match(body, body.rfind(b'{"seq":') + 1) \
                    if count else None
                now = time.monotonic()
                with rec.lock:
                    if rec.first is None:
                        rec.first = now
                    rec.last = now
                    rec.posts += 1
                    rec.events += count
                    if last:
                        rec.max_seq = max(rec.max_seq, int(last.group(1)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


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
