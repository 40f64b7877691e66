"""suite_sinks.py - the sinks of bench/suite.py: Postfix's smtp-sink with
its -c counters read as they come, and sluice-sink with W5's faults, a
capture directory or neither (W7: it counts connections and SMTP
transactions), each telling when the last message was accepted and, once
stopped, how much CPU it used (wait4: user + system, exact).
"""

import json
import os
import resource
import re
import signal
import socket
import subprocess
import threading
import time


def now_ms():
    """Wall clock in milliseconds."""
    return time.time() * 1000.0


READ_EVERY = 0.005


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
            # smtp-sink writes its counters at every message: a read per
            # message cost this harness 0.1-0.2 of a core, taken from the
            # systems it measures; a read at most every 5 ms costs little
            # and puts the last acceptance at most 5 ms late
            time.sleep(READ_EVERY)
            chunk = self.p.stdout.read1(1 << 20)
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
        self.cpu_s = stop_counted(self.p)


def stop_counted(p):
    """SIGTERM a sink and reap it with wait4: its CPU seconds (user +
    system) over its whole life."""
    p.terminate()
    end = time.time() + 10
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return round(ru.ru_utime + ru.ru_stime, 3)
        if time.time() > end:
            p.kill()
        time.sleep(0.01)


def self_cpu_s():
    """CPU seconds of this process so far (every thread: the smtp-sink
    counter reader included)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class RealSink:
    """sluice-sink with W5's faults (faults=True), capturing (capture=DIR)
    or plain; its stats JSON says when the last message was accepted, how
    many connections and transactions it saw and, with track=N, when the
    last recipient was tried for the first time (the end of a sender's
    first pass)."""

    def __init__(self, build, logdir, seed, capture=None, faults=True,
                 track=0):
        self.stats = os.path.join(logdir, "sink-stats.json")
        argv = [os.path.join(build, "bench/sink/sluice-sink"),
                "--listen", "0.0.0.0:25", "--stats", self.stats,
                "--seed", str(seed)]
        if capture is not None:
            argv += ["--capture", capture]
        elif faults:
            argv += ["--tempfail-pct", "3", "--permfail-pct", "2",
                     "--max-conn-per-domain", "20"]
        if track:
            argv += ["--track-recipients", str(track)]
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
        """Stop the sink; self.final is its last stats document."""
        try:
            self.final = self.read()
        except RuntimeError:
            self.final = None
        self.cpu_s = stop_counted(self.p)


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
