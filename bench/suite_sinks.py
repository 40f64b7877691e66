"""suite_sinks.py - the sinks of bench/suite.py: Postfix's smtp-sink with
its -c counters read as they come, and sluice-sink with W5's faults or a
capture directory, each telling when the last message was accepted.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time


def now_ms():
    """Wall clock in milliseconds."""
    return time.time() * 1000.0


class SmtpSink:
    """Postfix's smtp-sink on 0.0.0.0:25 with -c counters read as they
    come: the time of the last accepted message is known to the ms."""

    def __init__(self, logdir):
        self.p = subprocess.Popen(["/usr/sbin/smtp-sink", "-c", "-u", "root",
                                   "-m", "2000", "0.0.0.0:25", "2048"],
                                  stdout=subprocess.PIPE,
                                  stderr=open(os.path.join(logdir,
                                                           "sink.err"), "ab"))
        self.count = 0
        self.last_ms = None
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        wait_port(25)

    def _read(self):
        buf = b""
        while True:
            chunk = self.p.stdout.read1(65536)
            if not chunk:
                return
            buf += chunk
            *lines, buf = buf.split(b"\r")
            for line in reversed(lines):
                m = re.search(rb"mesg=(\d+)", line)
                if m:
                    n = int(m.group(1))
                    if n != self.count:
                        self.count = n
                        self.last_ms = now_ms()
                    break

    def accepted(self):
        return self.count

    def last_accept_ms(self):
        return self.last_ms

    def stop(self):
        self.p.terminate()
        self.p.wait(10)


class RealSink:
    """sluice-sink with W5's faults; its stats JSON says when the last
    message was accepted."""

    def __init__(self, build, logdir, seed, capture=None):
        self.stats = os.path.join(logdir, "sink-stats.json")
        argv = [os.path.join(build, "bench/sink/sluice-sink"),
                "--listen", "0.0.0.0:25", "--stats", self.stats,
                "--seed", str(seed)]
        if capture is None:
            argv += ["--tempfail-pct", "3", "--permfail-pct", "2",
                     "--max-conn-per-domain", "20"]
        else:
            argv += ["--capture", capture]
        self.p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                  stderr=open(os.path.join(logdir,
                                                           "sink.err"), "ab"))
        wait_port(25)

    def read(self):
        try:
            os.unlink(self.stats)
        except OSError:
            pass
        self.p.send_signal(signal.SIGUSR1)
        for _ in range(100):
            try:
                with open(self.stats) as f:
                    return json.load(f)
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError("sluice-sink wrote no stats")

    def accepted(self):
        return self.read()["messages"]

    def last_accept_ms(self):
        v = self.read().get("last_accept_ms")
        return v if v and v > 0 else None

    def stop(self):
        self.p.terminate()
        self.p.wait(10)


def wait_port(port, host="127.0.0.1", limit=10.0):
    """Wait until something listens on host:port."""
    end = time.time() + limit
    while time.time() < end:
        s = socket.socket()
        try:
            s.connect((host, port))
            return
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    raise RuntimeError("nothing listens on %s:%d" % (host, port))
