"""peers.py - the engine integration tests' harness: real peers on loopback.

DESCRIPTION
    Starts and stops dnsmasq, sluice-sink, Postfix's smtp-sink, a fake
    DNS server that answers SERVFAIL, and sluiced, each by PID with a
    timeout; finds free ports; makes a temp dir per test; writes sluiced
    configs; reads the JSON event log, the spool (through the sluice CLI)
    and the sink's stats and captures.

    Every child gets PR_SET_PDEATHSIG, so a test that dies takes its peers
    with it.  Nothing listens or connects outside 127.0.0.0/8.

    A test file is run as
        /usr/bin/python3 test_x.py SLUICED SLUICE SINK
    and reads the binaries with binaries().

DIAGNOSTICS
    A peer that does not come up within its timeout raises PeerError with
    the tail of its log.  Temp dirs are kept when a test fails
    (SLUICE_KEEP_TMP=1 keeps them always) and their path is printed.
"""
import ctypes
import datetime
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

DNSMASQ = "/usr/sbin/dnsmasq"
SMTP_SINK = "/usr/sbin/smtp-sink"

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class PeerError(Exception):
    pass


# ------------------------------------------------------------ arguments

_BIN = {}


def binaries():
    """SLUICED, SLUICE, SINK paths given on the command line."""
    return _BIN


def main():
    """Run unittest with the binary paths taken off argv."""
    args = sys.argv[1:]
    if len(args) < 3:
        sys.stderr.write("usage: %s SLUICED SLUICE SINK [unittest args]\n"
                         % sys.argv[0])
        sys.exit(64)
    _BIN["sluiced"], _BIN["sluice"], _BIN["sink"] = (
        os.path.abspath(a) for a in args[:3])
    rest = args[3:]
    if rest and rest[0].startswith("--shard="):
        sys.exit(_run_shard(rest[0][len("--shard="):]))
    unittest.main(argv=[sys.argv[0], "-v"] + rest)


def _run_shard(spec):
    """--shard=I/N: the cases of the calling file whose index (in name
    order) is I modulo N, so ctest can run one long file as N entries side
    by side (every case starts its own peers).  Exit status 0 or 1."""
    i, n = (int(x) for x in spec.split("/"))
    loader = unittest.TestLoader()
    main_mod = sys.modules["__main__"]
    cases = []
    for name in sorted(dir(main_mod)):
        obj = getattr(main_mod, name)
        if isinstance(obj, type) and issubclass(obj, unittest.TestCase):
            cases += [(name, m) for m in loader.getTestCaseNames(obj)]
    mine = [c for k, c in enumerate(cases) if k % n == i]
    if not mine:
        sys.stderr.write("shard %s: no test cases\n" % spec)
        return 1
    suite = unittest.TestSuite(
        loader.loadTestsFromName("%s.%s" % c, main_mod) for c in mine)
    ok = unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful()
    return 0 if ok else 1


# ------------------------------------------------------------ ports, dirs

def _port_free(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


PORT_DIR = os.path.join(tempfile.gettempdir(), "sluice-test-ports")


def _port_range():
    """Ports below the kernel's ephemeral range: a port the kernel hands
    to a client socket or a bind to port 0 (sinks in other tests, c-ares,
    outgoing SMTP) is never one of ours."""
    lo = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return (20000, lo) if lo > 21000 else (20000, 60000)


def _reserve(port):
    """Claim port for this test process with a file made O_EXCL, so two
    tests running side by side never pick the same port between the
    check and the bind.  A claim whose process is gone is taken over."""
    os.makedirs(PORT_DIR, exist_ok=True)
    path = os.path.join(PORT_DIR, str(port))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    owner = int(f.read().strip() or "0")
                if owner == os.getpid():
                    return False
                if owner > 0:
                    os.kill(owner, 0)
                    return False
            except ProcessLookupError:
                pass
            except (OSError, ValueError):
                return False
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def free_port():
    """A port free for TCP and UDP on 127.0.0.1, below the ephemeral
    range and claimed for this process (_reserve)."""
    rnd = random.Random(os.getpid() ^ time.monotonic_ns())
    lo, hi = _port_range()
    for _ in range(500):
        port = rnd.randrange(lo, hi)
        if _port_free(port) and _reserve(port):
            return port
    raise PeerError("no free port")


def _dns_answers(port, token):
    """Whether the dnsmasq on 127.0.0.1:port answers the probe TXT record
    with token (start_dns)."""
    import dns.exception
    import dns.message
    import dns.query
    q = dns.message.make_query("peers-probe.test", "TXT")
    try:
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.5)
    except (dns.exception.DNSException, OSError):
        return False
    return any(token.encode() in b"".join(rd.strings)
               for rrset in r.answer for rd in rrset)


def wait_for(pred, timeout, what, interval=0.02):
    """Poll pred() until true; raise after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise PeerError("timed out after %.1fs waiting for %s"
                            % (timeout, what))
        time.sleep(interval)


def _tail(path, n=2000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode("utf-8", "replace")
    except OSError:
        return "(no log)"


class Proc:
    """A child process with its output in a log file, stopped by PID."""

    def __init__(self, argv, log, name):
        self.name = name
        self.log = log
        self.argv = argv
        with open(log, "ab") as f:
            self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                      stdout=f, stderr=f,
                                      preexec_fn=_die_with_parent)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout):
        """Exit status, or raise PeerError (after killing) on timeout."""
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise PeerError("%s (pid %d) did not exit within %.0fs; log:\n%s"
                            % (self.name, self.pid, timeout, _tail(self.log)))

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                return self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
        return self.p.wait()

    def output(self):
        return _tail(self.log, 1 << 20)


# ------------------------------------------------------------ test base

class PeerTest(unittest.TestCase):
    """Gives each test a temp dir and stops every peer it started."""

    def setUp(self):
        self.bin = binaries()
        self.dir = tempfile.mkdtemp(prefix="sluice-it-%s-" % self._testMethodName)
        self.procs = []
        self.threads = []

    def tearDown(self):
        for p in reversed(self.procs):
            try:
                p.stop(5)
            except Exception:
                pass
        for t in self.threads:
            t.stop()
        failed = False
        outcome = getattr(self, "_outcome", None)
        if outcome is not None:
            res = getattr(outcome, "result", None)
            if res is not None:
                failed = any(t is self for t, _ in res.failures + res.errors)
        if failed:
            # the kept dir is gone with a CI machine: the tail of each
            # peer's log goes with the failure
            for p in self.procs:
                sys.stderr.write("\n[%s (pid %d, exit %s) log tail]\n%s\n"
                                 % (p.name, p.pid, p.p.returncode,
                                    _tail(p.log, 1500)))
        if failed or os.environ.get("SLUICE_KEEP_TMP"):
            sys.stderr.write("\n[kept %s]\n" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def _proc(self, argv, name):
        p = Proc(argv, self.path(name + ".log"), name)
        self.procs.append(p)
        return p

    # ---------------------------------------------------------- dnsmasq

    def start_dns(self, domains=None, extra=(), servfail_domains=()):
        """dnsmasq on 127.0.0.1:PORT.  domains maps a domain to a list of
        (pref, address) MX entries; each gets its own host name
        mxN.DOMAIN.  Unknown *.test names answer NXDOMAIN.
        servfail_domains are forwarded to a fake server that answers
        SERVFAIL.  Returns "127.0.0.1:PORT" for dns_servers."""
        lines = ["local=/test/"]
        for dom, mxs in (domains or {}).items():
            for i, (pref, addr) in enumerate(mxs):
                host = "mx%d.%s" % (i + 1, dom)
                lines.append("mx-host=%s,%s,%d" % (dom, host, pref))
                lines.append("host-record=%s,%s" % (host, addr))
        if servfail_domains:
            sf = ServfailServer()
            self.threads.append(sf)
            for dom in servfail_domains:
                lines.insert(0, "server=/%s/127.0.0.1#%d" % (dom, sf.port))
        lines.extend(extra)
        # a token only this dnsmasq answers: a port that is busy is ours
        token = "%d-%d" % (os.getpid(), time.monotonic_ns())
        lines.append('txt-record=peers-probe.test,"%s"' % token)
        conf = self.path("dnsmasq.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        for attempt in range(5):
            port = free_port()
            p = self._proc([DNSMASQ, "--no-daemon", "--port=%d" % port,
                            "--listen-address=127.0.0.1", "--bind-interfaces",
                            "--no-resolv", "--no-hosts", "--no-negcache",
                            "--conf-file=" + conf,
                            "--pid-file=" + self.path("dnsmasq.pid"),
                            "--user=root", "--group=root"], "dnsmasq")

            def up():
                if not p.alive():
                    return "exited"
                return "up" if _dns_answers(port, token) else None
            state = wait_for(up, 10, "dnsmasq on port %d" % port)
            if state == "up":
                self.dns_port = port
                return "127.0.0.1:%d" % port
            # another process took the port between the check and the bind
        raise PeerError("dnsmasq did not start: " + p.output())

    # ---------------------------------------------------------- sinks

    def start_sink(self, port, listen="0.0.0.0", args=(), name="sink",
                   capture=True):
        """sluice-sink on listen:port with stats (and a capture dir)."""
        s = Sink(self, port, listen, list(args), name, capture)
        self.procs.append(s.proc)
        return s

    def start_smtp_sink(self, port, args=(), name="smtp-sink"):
        """Postfix's smtp-sink on 127.0.0.1:port with extra args, dumping
        each message into a directory (-d)."""
        d = self.path(name + "-dump")
        os.makedirs(d)
        p = self._proc([SMTP_SINK, "-u", "root", "-d", d + "/%M."] +
                       list(args) + ["127.0.0.1:%d" % port, "100"], name)

        def up():
            if not p.alive():
                raise PeerError("smtp-sink exited: " + p.output())
            return not _port_free(port)
        wait_for(up, 10, "smtp-sink on port %d" % port)
        p.dump_dir = d
        return p

    # ---------------------------------------------------------- spool/CLI

    def sluice(self, *args, spool=None, check=True):
        argv = [self.bin["sluice"], "--spool", spool or self.path("spool")]
        argv += list(args)
        r = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        if check and r.returncode != 0:
            raise PeerError("%s -> %d: %s" % (" ".join(argv), r.returncode,
                                              r.stderr.decode()))
        return r

    def shop_list(self, emails):
        """The master, its sub-account shop sending from shop.test (DKIM
        selector s1, verified without DNS) and shop's list "news" of
        emails, imported from CSV."""
        self.sluice("account", "create", "master")
        self.sluice("account", "create", "shop")
        self.sluice("domain", "add", "shop.test", "--account", "shop",
                    "--selector", "s1")
        self.sluice("domain", "verify", "shop.test", "--force")
        csv = self.path("news.csv")
        with open(csv, "w") as f:
            f.write("email\n" + "\n".join(emails) + "\n")
        self.sluice("list", "create", "news", "--account", "shop")
        self.sluice("list", "import", "news", csv, "--account", "shop")

    def inject(self, sender, rcpts, body, spool=None, account=None):
        """Queue one message for rcpts; returns the delivery ids."""
        if isinstance(body, str):
            body = body.encode()
        f = self.path("inject-%d.eml" % time.monotonic_ns())
        with open(f, "wb") as fh:
            fh.write(body)
        args = ["inject", "--from", sender]
        if account is not None:
            args += ["--account", str(account)]
        for r in rcpts:
            args += ["--to", r]
        out = self.sluice(*(args + [f]), spool=spool).stdout.decode()
        os.unlink(f)
        # "queued message M for N recipients (deliveries A..B)" or "(delivery A)"
        tail = out.rsplit("(", 1)[1].rstrip().rstrip(")")
        nums = tail.split()[-1].split("..")
        first = int(nums[0])
        last = int(nums[-1])
        ids = list(range(first, last + 1))
        if len(ids) != len(rcpts):
            raise PeerError("inject said %r for %d recipients" % (out, len(rcpts)))
        return ids

    def spool_info(self, spool=None):
        return json.loads(self.sluice("--json", "spool", "info",
                                      spool=spool).stdout)

    def spool_events(self, spool=None):
        out = self.sluice("spool", "events", "--json", "--limit", "0",
                          spool=spool).stdout.decode()
        return [json.loads(l) for l in out.splitlines() if l.strip()]

    def history(self, delivery, spool=None):
        out = self.sluice("spool", "history", "--json", str(delivery),
                          spool=spool).stdout.decode()
        evs = [json.loads(l) for l in out.splitlines() if l.strip()]
        return sorted(evs, key=lambda e: e["seq"])

    # ---------------------------------------------------------- sluiced

    def write_config(self, dns=None, smtp_port=25, domains=None, name="sluiced.conf",
                     spool=None, accounts=None, allow_unsigned=True, **keys):
        """A sluiced config: [sluiced] keys (defaults fit tests),
        [domain NAME] sections from domains = {name: {key: value}}, and
        [account N] sections from accounts = {N: {key: value}}.  Mail of
        accounts without a section may leave unsigned unless
        allow_unsigned is False."""
        base = {
            "spool": spool or self.path("spool"),
            "ehlo_hostname": "client.test",
            "smtp_port": str(smtp_port),
            "event_log": self.path("events.jsonl"),
            "retry": "1s",
            "max_age": "1h",
            "timeout_connect": "2s",
            "timeout_greeting": "5s",
            "drain_timeout": "5s",
            "dns_timeout": "500ms",
            "dns_tries": "2",
            "nosync": "yes",
        }
        if dns:
            base["dns_servers"] = dns
        base.update({k: str(v) for k, v in keys.items() if v is not None})
        lines = ["[sluiced]"] + ["%s = %s" % kv for kv in base.items()]
        lines += ["", "[account default]",
                  "allow_unsigned = %s" % ("yes" if allow_unsigned else "no")]
        for acct, kv in (accounts or {}).items():
            lines.append("")
            lines.append("[account %s]" % acct)
            lines += ["%s = %s" % item for item in kv.items()]
        for dom, kv in (domains or {}).items():
            lines.append("")
            lines.append("[domain %s]" % dom)
            lines += ["%s = %s" % item for item in kv.items()]
        path = self.path(name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def start_sluiced(self, conf, exit_when_empty=True, verbose=False,
                      name="sluiced"):
        argv = [self.bin["sluiced"], "-c", conf]
        if exit_when_empty:
            argv.append("--exit-when-empty")
        if verbose:
            argv.append("-v")
        return self._proc(argv, name)

    def run_sluiced(self, conf, timeout=30, name="sluiced"):
        """Run sluiced --exit-when-empty to the end; assert exit 0."""
        p = self.start_sluiced(conf, name=name)
        rc = p.wait(timeout)
        self.assertEqual(rc, 0, "sluiced exited %d:\n%s" % (rc, p.output()[-3000:]))
        return p

    def event_log(self, path=None):
        """The JSON-lines event log, one object per line, the files its
        rotation made (event_log_rotate: PATH.STAMP[.N][.gz]) first, in
        the order they were made.  A last line without its newline is
        still being written (or was cut by kill -9: the next start removes
        it) and is left out; a rotated file ends in a whole line; any
        other line that does not parse fails the test."""
        path = path or self.path("events.jsonl")
        data = b""
        for name in rotated_logs(path):
            with open(name, "rb") as f:
                chunk = f.read()
            if name.endswith(".gz"):
                import gzip
                chunk = gzip.decompress(chunk)
            if chunk and not chunk.endswith(b"\n"):
                raise AssertionError("%s ends in a torn line" % name)
            data += chunk
        try:
            with open(path, "rb") as f:
                data += f.read()
        except FileNotFoundError:
            if not data:
                return []
        evs = []
        for i, line in enumerate(data.split(b"\n")[:-1]):
            try:
                evs.append(json.loads(line))
            except ValueError:
                raise AssertionError("event log line %d is torn: %r"
                                     % (i + 1, line[:300]))
        return evs

    def assert_log_matches_spool(self, path=None, since=0):
        """The event log holds every spool event with seq > since exactly
        once, in seq order, each line the stored event (the log's field
        names, the spool's values), and ends with a whole line; lines
        without a seq (site, domain) are left aside.  Returns the spool
        events compared."""
        path = path or self.path("events.jsonl")
        with open(path, "rb") as f:
            data = f.read()
        self.assertTrue(not data or data.endswith(b"\n"),
                        "event log ends in a torn line: %r" % data[-200:])
        lines = [e for e in self.event_log(path) if "seq" in e]
        seqs = [e["seq"] for e in lines]
        dups = len(seqs) - len(set(seqs))
        self.assertEqual(dups, 0, "%d seqs twice in the event log" % dups)
        self.assertEqual(seqs, sorted(seqs), "event log out of seq order")
        spool = [e for e in self.spool_events() if e["seq"] > since]
        want = [spool_line(e) for e in spool]
        got = [e for e in lines if e["seq"] > since]
        missing = sorted(set(e["seq"] for e in spool) - set(seqs))
        extra = sorted(set(seqs) - set(e["seq"] for e in spool))
        self.assertFalse(missing, "%d spool events not in the event log, "
                         "e.g. seq %r" % (len(missing), missing[:5]))
        self.assertFalse(extra, "%d event log seqs not in the spool, e.g. "
                         "%r" % (len(extra), extra[:5]))
        ident = set()
        for g, w in zip(got, want):
            self.assertEqual({k: g.get(k) for k in w}, w,
                             "event log line differs from the spool")
            self.assertLessEqual(set(g) - set(w), set(STREAM_KEYS), g)
            check_stream_fields(self, g)
            ident.add(g["id"].rsplit("-", 1)[0])
        self.assertLessEqual(len(ident), 1, "one spool, one identity")
        return spool

    def wait_events(self, pred, timeout, what, path=None):
        """Poll the event log until pred(events) is true."""
        return wait_for(lambda: pred(self.event_log(path)), timeout, what,
                        interval=0.1)

    # ---------------------------------------------------------- assertions

    def assert_terminal_once(self, ids, spool=None, log=True, queued=0):
        """Each delivery in ids has exactly one terminal event (delivered,
        bounced, expired, suppressed, cancelled) in the spool's events (and
        in the JSON log when log is true), and the spool has `queued`
        deliveries left.  Returns {id: terminal spool event}."""
        terminal = TERMINAL
        ids = set(ids)
        found = {}
        for e in self.spool_events(spool):
            if e["type"] in terminal:
                self.assertNotIn(e["delivery"], found,
                                 "two terminal spool events: %r and %r"
                                 % (found.get(e["delivery"]), e))
                found[e["delivery"]] = e
        missing = ids - set(found)
        self.assertFalse(missing, "no terminal spool event for %d deliveries, "
                         "e.g. %r" % (len(missing), sorted(missing)[:5]))
        if log:
            seen = {}
            for e in self.event_log():
                if e["type"] in terminal:
                    self.assertNotIn(e["delivery"], seen,
                                     "two terminal log events: %r" % e)
                    seen[e["delivery"]] = e
            self.assertEqual(set(seen) & ids, ids,
                             "event log lacks terminal events")
            for d in ids:
                self.assertEqual(seen[d]["type"], found[d]["type"])
        info = self.spool_info(spool)
        self.assertEqual(info["counts"]["queued"], queued, info)
        return {d: found[d] for d in ids}


# ------------------------------------------------------------ events

# bounce category names by number (queue/records.c)
CATEGORIES = ("", "bad-mailbox", "bad-domain", "inactive-mailbox",
              "quota-issues", "no-answer-from-host", "routing-errors",
              "policy-related", "spam-related", "content-related",
              "protocol-errors", "message-expired", "other", "admin")


# the outcome types that end a delivery (queue.h QUEUE_EV_TERMINAL)
TERMINAL = ("delivered", "bounced", "expired", "suppressed", "cancelled")
# the outcome types sluiced counts (its stop line)
OUTCOMES = ("delivered", "deferred", "bounced", "expired", "suppressed",
            "cancelled")
# the event stream's fields beside the stored ones (engine/event_json.c)
STREAM_KEYS = ("id", "time", "message_id", "campaign_name", "account_name",
               "feedback_type")


def rfc3339_ms(ms):
    """time_ms as the stream's `time`: RFC 3339 UTC with milliseconds."""
    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def check_stream_fields(t, g):
    """The stream fields of one log line agree with its stored ones."""
    t.assertRegex(g["id"], r"^[0-9a-f]{32}-%d$" % g["seq"], g)
    t.assertEqual(g["time"], rfc3339_ms(g["time_ms"]), g)
    t.assertTrue(g["message_id"] is None or
                 (isinstance(g["message_id"], int) and g["message_id"] > 0),
                 g)
    if g["campaign"]:
        t.assertIsInstance(g["campaign_name"], (str, type(None)), g)
    else:
        t.assertIsNone(g["campaign_name"], g)
    if g["type"] == "complaint":
        t.assertEqual(g["feedback_type"], g["text"], g)


def rotated_logs(base):
    """The files event_log_rotate made of base, oldest first
    (BASE.YYYYMMDDTHHMMSSZ, then .1, .2 within one second; .gz once
    compressed; a .gz.tmp being written is left out)."""
    import glob
    names = [n for n in glob.glob(glob.escape(base) + ".*")
             if not n.endswith(".gz.tmp")]

    def key(n):
        stem = n[len(base) + 1:]
        if stem.endswith(".gz"):
            stem = stem[:-3]
        parts = stem.split(".")
        return (parts[0], int(parts[1]) if len(parts) > 1 else 0)
    return sorted(names, key=key)


def spool_line(e):
    """The event log line of a spool event (`sluice spool events --json`)."""
    return {"seq": e["seq"], "type": e["type"], "delivery": e["delivery"],
            "campaign": e["campaign"], "account": e["account"],
            "rcpt": e["rcpt"], "domain": e["rcpt"].rsplit("@", 1)[-1],
            "mx": e["mx"], "code": e["code"], "enhanced": e["enhanced"],
            "category": CATEGORIES[e["category"]], "text": e["text"],
            "attempts": e["attempt"], "time_ms": e["time_ms"]}


def stop_counts(output):
    """{type: n} of sluiced's last "stopped:" line."""
    m = re.findall(r"sluiced: stopped: delivered (\d+), deferred (\d+), "
                   r"bounced (\d+), expired (\d+), suppressed (\d+), "
                   r"cancelled (\d+)", output)
    if not m:
        raise PeerError("no stop line in:\n" + output[-2000:])
    return dict(zip(OUTCOMES, map(int, m[-1])))


def count_types(events):
    """{type: n} of events, for the outcome types (the informational ones,
    complaint, unsubscribed, reception, are not counted)."""
    out = dict.fromkeys(OUTCOMES, 0)
    for e in events:
        if e["type"] in out:
            out[e["type"]] += 1
    return out


# ------------------------------------------------------------ sluice-sink

class Sink:
    def __init__(self, t, port, listen, args, name, capture):
        self.t = t
        self.port = port
        self.name = name
        self.stats_path = t.path(name + "-stats.json")
        self.pidfile = t.path(name + ".pid")
        self.capture_dir = t.path(name + "-capture") if capture else None
        argv = [t.bin["sink"], "--listen", "%s:%d" % (listen, port),
                "--stats", self.stats_path, "--pidfile", self.pidfile]
        if capture:
            os.makedirs(self.capture_dir, exist_ok=True)
            argv += ["--capture", self.capture_dir]
        argv += args
        self.proc = Proc(argv, t.path(name + ".log"), name)

        def up():
            if not self.proc.alive():
                raise PeerError("%s exited: %s" % (name, self.proc.output()))
            return os.path.exists(self.pidfile)
        wait_for(up, 15, "%s pidfile" % name)

    def stats(self):
        """Fresh stats from the running sink (SIGUSR1), or the last ones
        written when it has stopped."""
        if self.proc.alive():
            before = self._written()
            self.proc.signal(signal.SIGUSR1)
            wait_for(lambda: self._written() != before, 10,
                     "%s stats" % self.name)
        with open(self.stats_path) as f:
            return json.load(f)

    def _written(self):
        try:
            with open(self.stats_path) as f:
                return json.load(f).get("written_ms")
        except (OSError, ValueError):
            return None

    def stop(self):
        """SIGTERM; returns the final stats."""
        rc = self.proc.stop(15)
        if rc != 0:
            raise PeerError("%s exited %d: %s" % (self.name, rc, self.proc.output()))
        with open(self.stats_path) as f:
            return json.load(f)

    def settled_captures(self):
        """The number of captures once the sink has closed every session:
        after a client was killed, what reached the sink before (a body
        whose dot it reads only now is accepted too) is in."""
        wait_for(lambda: self.stats()["current_sessions"] == 0, 30,
                 "%s to close its sessions" % self.name)
        return len([n for n in os.listdir(self.capture_dir)
                    if n.endswith(".eml")])

    def repeats_per_run(self, bounds):
        """Deliveries repeated, per run of the sender: bounds are the
        settled capture counts at each kill, so run k made the captures
        from bounds[k-1] to bounds[k] and the last run the rest.  A capture
        followed by another of the same recipient was accepted but not
        recorded when its run ended: it counts for that run."""
        seen = {}
        for i, (_, rcpts, _) in enumerate(self.captures()):
            for r in rcpts:
                seen.setdefault(r, []).append(i)
        per_run = [0] * (len(bounds) + 1)
        for idx in seen.values():
            for i in idx[:-1]:
                per_run[sum(i >= b for b in bounds)] += 1
        return per_run

    def captures(self, params=False):
        """[(mail_from, [rcpts], body bytes)] of every captured message;
        with params, (mail_from, [rcpts], body, [MAIL parameters])."""
        out = []
        if not self.capture_dir:
            return out
        for fn in sorted(os.listdir(self.capture_dir)):
            if not fn.endswith(".eml"):
                continue
            with open(os.path.join(self.capture_dir, fn), "rb") as f:
                data = f.read()
            sender, rcpts, mail_params = None, [], []
            while True:
                line, _, rest = data.partition(b"\r\n")
                if line.startswith(b"X-Sink-Mail-From: <"):
                    sender = line[19:-1].decode()
                elif line.startswith(b"X-Sink-Mail-Params: "):
                    mail_params = line[20:].decode().split()
                elif line.startswith(b"X-Sink-Rcpt-To: <"):
                    rcpts.append(line[17:-1].decode())
                else:
                    break
                data = rest
            out.append((sender, rcpts, data, mail_params) if params
                       else (sender, rcpts, data))
        return out


# ------------------------------------------------------------ fake DNS

class ServfailServer:
    """A UDP DNS server on 127.0.0.1 that answers every query SERVFAIL."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.running = True
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while self.running:
            try:
                q, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(q) < 12:
                continue
            self.queries += 1
            qid, flags = struct.unpack("!HH", q[:4])
            rflags = 0x8000 | (flags & 0x7900) | 0x0080 | 2  # QR, RD, RA, SERVFAIL
            resp = struct.pack("!HHHHHH", qid, rflags, 1, 0, 0, 0) + q[12:]
            # keep only the question section (the query has nothing else
            # but an OPT record, which we drop)
            qd = q[12:]
            i = 0
            while i < len(qd) and qd[i] != 0:
                i += qd[i] + 1
            resp = resp[:12] + qd[:i + 5]
            try:
                self.sock.sendto(resp, addr)
            except OSError:
                pass

    def stop(self):
        self.running = False
        self.th.join(2)
        self.sock.close()


def crlf(data):
    """data with every line ending (LF, CR, CRLF) made CRLF, and a final
    CRLF: what the receiver must see for a message injected as data."""
    out = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out
