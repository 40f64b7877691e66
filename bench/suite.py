#!/usr/bin/python3
"""suite.py - `make bench`: sluice side by side with Postfix and the raw
ceiling, in one run, on loopback.

Workloads (N messages of SIZE bytes, one recipient each, to D domains):
  W1  100,000 x 5 KB to 1,000 domains, no DKIM
  W2  the same, signed rsa-sha256 (2048-bit key)
  W3  the same, signed ed25519-sha256
  W4  20,000 x 100 KB, signed rsa-sha256
  W5  W2 against a realistic sink: 3% of recipients tempfailed (451), 2%
      permfailed (550), 421 for a session beyond 20 open ones per domain
  W6  "relay": 100,000 x 5 KB submitted over SMTP by Postfix's smtp-source
      (8 processes, one destination domain each) to the MTA's listener,
      which signs (rsa-sha256) and delivers to the sink; figures: messages
      accepted per second (the injectors' last 250, durable) and end to end
  W6a the same submission unsigned, deliveries held (sluice: every
      destination domain paused; Postfix: defer_transports = smtp): what the
      listener takes into its queue per second, durably
  W7  50,000 x 5 KB to 10,000 domains, 5 recipients each, no DKIM (with
      --fraction F the domains shrink with the messages, 5 each); the
      sink, for every system, is sluice-sink, which counts the
      connections, SMTP sessions (EHLO/HELO) and transactions (MAIL) it
      saw, per domain (each domain's MX is its own address) too

Systems, each against the same sink in the same run (W6/W6a: see
"relay" below):
  sluice   a campaign of N contacts (list imported and campaign created
           before the clock starts); timed from the start of `sluice
           campaign send` to the last acceptance at the sink; sluiced runs
           with --exit-when-empty right after the send returns, so it also
           renders (merge fields, List-Unsubscribe, ...) and signs each
           message itself.
  postfix  Debian's Postfix, a private instance (its own config, queue and
           data directories bind-mounted over the system ones in this
           suite's mount namespace), relaying to the sink after MX lookups,
           with Debian's OpenDKIM milter (smtpd_milters) signing the signed
           workloads; the same N messages submitted over SMTP by
           bench/smtp-inject (20 sessions, pipelined); timed from the
           injector's start to the last acceptance at the sink.
  ceiling  CEILING_PROCS (--ceiling-procs, 4; W6/W6a: RELAY_PROCS, as
           their injectors) Postfix smtp-source
           processes sharing the outbound session count, straight into the
           sink, the same message size; no queue, no DNS, no signing: what
           the sink can take.  smtp-sink is one process and saturates one
           core, and one smtp-source (which does not pipeline) cannot
           saturate it, so a single-sender "ceiling" was the sender's,
           not the sink's.  smtp-source stops at the first rejected
           recipient, so for W5 it runs against the clean smtp-sink of
           W1-W4 (noted in the results).

  relay    (W6, W6a) every system is fed the same way: RELAY_PROCS
           smtp-source processes (-s sessions/8 each) to the listener
           (sluiced: smtp_listen with smtp_relay_networks = 127.0.0.0/8 as
           the account bench, started before the clock; Postfix: port 2525,
           mynetworks); timed from the injectors' start to their last 250
           (accepted) and to the last acceptance at the sink (end to end).
           The ceiling is smtp-source straight into smtp-sink.

Everything runs in a private network and mount namespace (unshare -n -m)
made at start: only a loopback interface exists, dnsmasq answers on
127.0.0.1:53 (/etc/resolv.conf is bind-mounted to point there, so Postfix
and OpenDKIM use it too), every domain's MX is its own 127.1.x.y address
and the sink listens on port 25.  No packet can leave the machine.

Sessions: every process of a comparison runs in this script's session.
Postfix's master runs with -d and OpenDKIM with -f (in the foreground):
`postfix start` and a detaching daemon call setsid(), and with
CONFIG_SCHED_AUTOGROUP a new session is a new autogroup, which the
scheduler gives a fair share of the CPU as a whole before nice values
count, so an MTA in a session of its own would compete for the two cores
on other terms than the sink and injector (`nice` cannot fix that across
sessions).  Each run records how many autogroups its processes were in.

Figures per run: messages/s end to end, and the headline, each MTA's
share of the ceiling (its msg/s over the ceiling's, in the same run; W5:
of the first pass too); the sink's CPU microseconds per message and its
busy cores for each system (wait4 of the sink: pipelining lowers its cost
per message, so a share above 1 means the MTA asked less of the sink, not
that it beat the ceiling); the harness's own CPU (this script's threads,
which read smtp-sink's counters (every 5 ms) and poll, plus the
subreaper's memory sampling), in cores and microseconds per message,
which the systems' figures do not count but which shares the machine
with them; W5 (sluice-sink --track-recipients): the first pass, from the
start to the last recipient the sink saw for the first time, in seconds
and msg/s, the drain time of the retry tail after it and the RCPTs that
were retries; W7: connections, SMTP sessions, transactions, connections
per domain and the most to one domain; CPU microseconds per message (user
+ system of every process of the system, from wait4 rusage: the processes
run under a subreaper, so even Postfix's daemons, which detach, are reaped
and counted; for sluice the send command and sluiced; the sink and the
injector are not counted); peak memory (largest sum of the PSS of all the
system's processes, sampled every 50 ms (less often, 2 ms per process, when there are more than 25), or the largest VmHWM of one of
them when that is larger, as for sluiced).
Each figure is the median of RUNS runs with min and max; the ratio
sluice/Postfix and the shares of the ceiling are computed within each run,
then the median taken.  Before the timed runs each system sends a few messages to a
capturing sink and dkimpy verifies them (signed workloads must carry a
valid signature of the right algorithm, W1 none).

Scale: bench/scale_campaign.sh queues SCALE campaign recipients (default
10,000,000) and reports spool size, sluiced RSS while scheduling and time
to first delivery.

Results: bench/results/suite.json (machine, versions, every command, every
run), bench/RESULTS.md (the section between the suite markers is
rewritten; --no-md leaves it), bench/results/throughput.svg (gnuplot;
with --json F and no --svg, the plot goes beside F instead).

usage: bench/suite.py [--build DIR] [--runs R] [--fraction F | --full |
                      --quick] [--workloads W1,..] [--systems
                      sluice,postfix,ceiling] [--sessions S]
                      [--ceiling-procs P] [--scale N]
                      [--scale-hold S] [--postfix-set 'NAME = VALUE']
                      [--json F] [--svg F] [--md F | --no-md] [--keep]
(--help explains each.)  The default sends a tenth of each workload's
messages (Postfix needs ~35 minutes per pass of the full ones here).
Exit: 0 done, 1 a run failed its checks, 64 usage, 69 a peer missing.

Written here: no packaged tool runs two MTAs against one sink and reports
ratios per run.
"""

import argparse
import base64
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from suite_report import aggregate, machine_info, write_md, write_svg
from suite_sinks import RealSink, SmtpSink, self_cpu_s, wait_port
from suite_tree import Tree

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INJECT_SESSIONS = 20

WORKLOADS = {
    "W1": dict(n=100000, size=5120, domains=1000, dkim=None, real=False,
               title="%s x 5 KB, 1,000 domains, no DKIM"),
    "W2": dict(n=100000, size=5120, domains=1000, dkim="rsa", real=False,
               title="%s x 5 KB, rsa-sha256 2048"),
    "W3": dict(n=100000, size=5120, domains=1000, dkim="ed25519",
               real=False, title="%s x 5 KB, ed25519-sha256"),
    "W4": dict(n=20000, size=102400, domains=1000, dkim="rsa", real=False,
               title="%s x 100 KB, rsa-sha256"),
    "W5": dict(n=100000, size=5120, domains=1000, dkim="rsa", real=True,
               title="W2 (%s) vs a realistic sink: 3%% 451, 2%% 550, "
                     "421 over 20 sessions/domain"),
    "W6": dict(n=100000, size=5120, domains=8, dkim="rsa", real=False,
               relay="deliver",
               title="relay: %s x 5 KB in over SMTP (smtp-source x 8), "
                     "rsa-sha256, end to end"),
    "W6a": dict(n=100000, size=5120, domains=8, dkim=None, real=False,
                relay="accept",
                title="relay: %s x 5 KB in over SMTP (smtp-source x 8), "
                      "into the queue only"),
    # 5 recipients per domain at every --fraction (the full run: 10,000
    # domains); the sink is sluice-sink for every system, which counts
    # the connections and transactions it saw, per domain too
    "W7": dict(n=50000, size=5120, domains=10000, dkim=None, real=False,
               per_domain=5, counting=True,
               title="%s x 5 KB to %s domains (5 recipients each), "
                     "no DKIM"),
}
SYSTEMS = ("sluice", "postfix", "ceiling")
CEILING_PROCS = 4
RELAY_PROCS = 8
RELAY_PORT = 2526


def log(*a):
    """Progress to stderr, flushed."""
    print(*a, file=sys.stderr, flush=True)


def now_ms():
    """Wall clock in milliseconds."""
    return time.time() * 1000.0


def sh(argv, **kw):
    """Run a command to completion; raise with its output when it fails."""
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       **kw)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d\n%s" % (" ".join(argv), r.returncode,
                                                r.stdout.decode()[-3000:]))
    return r.stdout.decode()


def mx_addr(i):
    """The loopback address of domain i's MX."""
    return "127.1.%d.%d" % (i // 250, i % 250 + 1)


# ---------------------------------------------------------------- namespace

def enter_namespace(argv):
    """Re-run this script in a private network + mount namespace."""
    if os.environ.get("SLUICE_SUITE_NS") == "1":
        return
    if shutil.which("unshare") is None:
        log("suite: unshare (util-linux) is missing")
        sys.exit(69)
    env = dict(os.environ, SLUICE_SUITE_NS="1")
    os.execvpe("unshare", ["unshare", "--net", "--mount",
                           "--propagation", "private", "--",
                           "/usr/bin/python3", os.path.abspath(__file__)] +
               argv, env)


def bind(src, dst):
    """Bind-mount src over dst (inside our own mount namespace)."""
    sh(["mount", "--bind", src, dst])


# ------------------------------------------------------------------- suite

class Suite:
    def __init__(self, args):
        self.a = args
        self.build = os.path.abspath(args.build)
        self.sluice = os.path.join(self.build, "tools/sluice")
        self.sluiced = os.path.join(self.build, "engine/sluiced")
        self.inject = os.path.join(self.build, "bench/smtp-inject")
        self.T = tempfile.mkdtemp(prefix="sluice-suite-", dir="/tmp")
        self.dns = None
        self.commands = {}
        self.checks = {}
        self.sluice_txt = {}

    # --- machine-wide set-up
    def setup(self):
        sh(["ip", "link", "set", "lo", "up"])
        with open(os.path.join(self.T, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.1\noptions attempts:2 timeout:1\n")
        bind(os.path.join(self.T, "resolv.conf"), "/etc/resolv.conf")
        domains = max(w["domains"] for w in WORKLOADS.values())
        with open(os.path.join(self.T, "dns.conf"), "w") as f:
            f.write("no-resolv\nno-hosts\nlocal=/bench/\n")
            for i in range(domains):
                f.write("mx-host=d%d.bench,mx.d%d.bench,10\n" % (i, i))
                f.write("host-record=mx.d%d.bench,%s\n" % (i, mx_addr(i)))
            f.write("host-record=u.sender.bench,127.0.0.1\n")
        self.dns = subprocess.Popen(
            ["/usr/sbin/dnsmasq", "--no-daemon", "--port=53",
             "--listen-address=127.0.0.1", "--bind-interfaces",
             "--conf-file=" + os.path.join(self.T, "dns.conf"),
             "--user=root", "--cache-size=10000"],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.T, "dns.log"), "w"))
        # Postfix's private directories over the system's ones
        pf = os.path.join(self.T, "postfix")
        os.makedirs(pf)
        shutil.copytree("/etc/postfix", os.path.join(pf, "etc"))
        for d in ("spool", "lib"):
            os.makedirs(os.path.join(pf, d))
        shutil.chown(os.path.join(pf, "lib"), "postfix")
        bind(os.path.join(pf, "etc"), "/etc/postfix")
        bind(os.path.join(pf, "spool"), "/var/spool/postfix")
        bind(os.path.join(pf, "lib"), "/var/lib/postfix")
        # OpenDKIM's keys (sluice makes its own with `sluice domain add`)
        kd = os.path.join(self.T, "odkim")
        os.makedirs(kd, mode=0o700)
        sh(["openssl", "genrsa", "-out", os.path.join(kd, "rsa.key"),
            "2048"])
        sh(["openssl", "genpkey", "-algorithm", "ed25519", "-out",
            os.path.join(kd, "ed25519.key")])
        self.odkim_txt = {}
        for algo in ("rsa", "ed25519"):
            der = subprocess.run(["openssl", "pkey", "-in",
                                  os.path.join(kd, algo + ".key"), "-pubout",
                                  "-outform", "DER"], check=True,
                                 stdout=subprocess.PIPE).stdout
            if algo == "ed25519":
                der = der[-32:]
            self.odkim_txt["pf%s._domainkey.sender.bench" % algo] = (
                "v=DKIM1; k=%s; p=%s" % (algo, base64.b64encode(der).decode()))
        wait_port(53)

    def teardown(self):
        """Stop whatever still runs in our network namespace (an
        interrupted run leaves Postfix, OpenDKIM or a sink behind)."""
        mine = os.readlink("/proc/self/ns/net")
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                if os.readlink("/proc/%s/ns/net" % d) == mine:
                    os.kill(int(d), signal.SIGKILL)
            except OSError:
                pass
        if not self.a.keep:
            shutil.rmtree(self.T, ignore_errors=True)

    # --- sluice
    def sluice_prepare(self, wname, w):
        """A spool with the account, its domain, the lists and the
        campaigns; copied fresh for every run."""
        d = os.path.join(self.T, wname, "sluice")
        os.makedirs(d)
        sp = os.path.join(d, "template")
        S = [self.sluice, "--spool", sp]
        sh(S + ["account", "create", "bench"])
        out = sh(S + ["--json", "domain", "add", "sender.bench", "--account",
                      "bench", "--selector", "s1", "--algo",
                      w["dkim"] or "rsa"])
        txt = {}
        for rec in json.loads(sh(S + ["--json", "domain", "show",
                                       "sender.bench"]))["records"]:
            if rec["what"] == "dkim":
                txt[rec["name"]] = rec["value"]
        self.sluice_txt = txt
        del out
        sh(S + ["domain", "verify", "sender.bench", "--force"])
        if w.get("relay"):
            return self.sluice_relay_prepare(wname, w, d, S)
        csv = os.path.join(d, "contacts.csv")
        with open(csv, "w") as f:
            f.write("email,first_name,city\n")
            for i in range(w["n"]):
                f.write("user%d@d%d.bench,Name%d,City %d\n" %
                        (i, i % w["domains"], i, i % 97))
        chk = os.path.join(d, "check.csv")
        with open(chk, "w") as f:
            f.write("email,first_name,city\n")
            for i in range(10):
                f.write("check%d@d%d.bench,Check%d,Town\n" % (i, i, i))
        html = os.path.join(d, "t.html")
        para = ("<p>Dear {{first_name|customer}} in {{city}}, this is the "
                "weekly letter with the news of the week and offers.</p>\n")

        def template(reps):
            with open(html, "w") as f:
                f.write("<html><body>%s<a href=\"{{unsubscribe_url}}\">"
                        "unsubscribe</a></body></html>\n" % (para * reps))

        def rendered():
            return len(sh(S + ["campaign", "preview", "main", "--account",
                               "bench", "--contact", "user1@d1.bench"]
                          ).encode())
        for lst, path in (("main", csv), ("check", chk)):
            sh(S + ["list", "create", lst, "--account", "bench"])
            sh(S + ["list", "import", lst, path, "--account", "bench"])
        # size the template so that a rendered message is about SIZE bytes
        template(10)
        sh(S + ["campaign", "create", "main", "--account", "bench",
                "--list", "main", "--from", "Bench <news@sender.bench>",
                "--subject", "Weekly letter for {{first_name}}",
                "--html", html])
        s10 = rendered()
        template(20)
        sh(S + ["campaign", "update", "main", "--html", html])
        per = (rendered() - s10) / 10.0
        template(max(1, int(10 + (w["size"] - s10) / per)))
        sh(S + ["campaign", "update", "main", "--html", html])
        sh(S + ["campaign", "create", "check", "--account", "bench",
                "--list", "check", "--from", "Bench <news@sender.bench>",
                "--subject", "Weekly letter for {{first_name}}",
                "--html", html])
        w["sluice_size"] = rendered()
        conf = self.sluice_conf(w, d)
        self.commands.setdefault(wname, {})["sluice"] = {
            "config": open(conf).read(),
            "timed": [" ".join(S[:2] + [os.path.join(d, "spool"),
                                        "campaign", "send", "main",
                                        "--account", "bench"]),
                      "%s -c %s --exit-when-empty" % (self.sluiced, conf)],
        }
        return d

    def sluice_conf(self, w, d, extra=""):
        """sluiced.conf of a run (extra: more [sluiced] lines)."""
        conf = os.path.join(d, "sluiced.conf")
        with open(conf, "w") as f:
            f.write("[account default]\nallow_unsigned = %s\n" %
                    ("yes" if w["dkim"] is None else "no"))
            f.write("[sluiced]\nspool = %s\nehlo_hostname = bench.sluice.test\n"
                    "dns_servers = 127.0.0.1:53\nsmtp_port = 25\n"
                    "max_connections = %d\nmax_inflight = 60000\n"
                    "group_ms = 25\nretry = 2s,4s,8s,8s,8s,8s,8s,8s\n"
                    "unsubscribe_host = u.sender.bench\n"
                    "dkim_sign = %s\n%s"
                    "[domain default]\nmax_connections = %d\n"
                    "max_messages_per_connection = 1000\n" %
                    (os.path.join(d, "spool"), self.a.sessions,
                     "no" if w["dkim"] is None else "yes", extra,
                     # relay: a few domains carry everything
                     max(4, self.a.sessions // max(1, w["domains"]))
                     if w.get("relay") else 4))
        return conf

    def sluice_relay_prepare(self, wname, w, d, S):
        """W6/W6a: the account's spool (domains paused for W6a) and a
        sluiced.conf that listens as the bench account's relay."""
        if w["relay"] == "accept":
            for k in range(w["domains"]):
                sh(S + ["pause", "domain", "d%d.bench" % k, "--reason",
                        "W6a: into the queue only"])
        w["sluice_size"] = w["size"]
        conf = self.sluice_conf(
            w, d, "smtp_listen = 127.0.0.1:%d\n"
                  "smtp_relay_networks = 127.0.0.0/8\n"
                  "smtp_default_account = bench\n" % RELAY_PORT)
        self.commands.setdefault(wname, {})["sluice"] = {
            "config": open(conf).read(),
            "timed": [self.relay_argv(RELAY_PORT, w, w["n"], 0)[0] +
                      " ... (x%d)" % RELAY_PROCS],
        }
        return d

    def relay_argv(self, port, w, n, k):
        """smtp-source k of RELAY_PROCS (its share of n messages)."""
        per = n // RELAY_PROCS + (1 if k < n % RELAY_PROCS else 0)
        sess = max(1, min(per, self.a.sessions // RELAY_PROCS))
        argv = ["/usr/sbin/smtp-source", "-d", "-s", str(sess), "-m",
                str(per), "-l", str(w["size"]), "-f", "news@sender.bench",
                "-t", "w6@d%d.bench" % (k % w["domains"]),
                "127.0.0.1:%d" % port]
        return " ".join(argv), argv, per

    def relay_submit(self, port, w, n, d):
        """Run the RELAY_PROCS injectors to the end; returns the ms they
        took and how many failed (smtp-source stops at a refusal)."""
        t0 = now_ms()
        procs = []
        for k in range(RELAY_PROCS):
            _, argv, per = self.relay_argv(port, w, n, k)
            if per:
                procs.append(subprocess.Popen(
                    argv, stdout=subprocess.DEVNULL,
                    stderr=open(os.path.join(d, "source.log"), "ab")))
        failed = 0
        for p in procs:
            try:
                failed += p.wait(timeout=self.a.limit) != 0
            except subprocess.TimeoutExpired:
                p.kill()
                failed += 1
        return now_ms() - t0, failed

    def spool_queued(self, sp):
        out = sh([self.sluice, "--spool", sp, "--json", "spool", "info"])
        return json.loads(out)["counts"]["queued"]

    def sluice_relay_run(self, wname, w, d, sink, n=None):
        n = n or w["n"]
        sp = os.path.join(d, "spool")
        shutil.rmtree(sp, ignore_errors=True)
        shutil.copytree(os.path.join(d, "template"), sp)
        tree = Tree(d)
        pid = tree.run([self.sluiced, "-c", os.path.join(d, "sluiced.conf")],
                       wait=False, name="sluiced")["pid"]
        stop = [["pkill", "-TERM", "-P", str(pid)]]
        try:
            wait_port(RELAY_PORT, limit=30)
        except Exception:
            tree.finish(stop)
            raise RuntimeError("sluiced did not listen: see %s/sluiced.log"
                               % d)
        t0 = self.clock()
        took, failed = self.relay_submit(RELAY_PORT, w, n, d)
        if w["relay"] == "deliver":
            end = time.time() + self.a.limit
            while time.time() < end and sink.accepted() < n:
                time.sleep(0.05)
        queued = self.spool_queued(sp)
        res = tree.finish(stop, timeout=self.a.limit)
        return t0, res, {"accepted_ms": took, "sources_failed": failed,
                         "queued": queued,
                         "delivered": sink.accepted()
                         if w["relay"] == "deliver" else 0}

    def sluice_run(self, wname, w, d, sink, campaign="main", conf=None):
        sp = os.path.join(d, "spool")
        shutil.rmtree(sp, ignore_errors=True)
        shutil.copytree(os.path.join(d, "template"), sp)
        tree = Tree(d)
        t0 = self.clock()
        r = tree.run([self.sluice, "--spool", sp, "campaign", "send",
                      campaign, "--account", "bench"], name="send")
        if r["rc"] != 0:
            tree.finish()
            raise RuntimeError("campaign send failed: see %s/send.log" % d)
        # SLUICE_BENCH_WRAP="perf record -g -o F --" profiles the run
        # (its figures then include the wrapper's cost: not for results)
        wrap = shlex.split(os.environ.get("SLUICE_BENCH_WRAP", ""))
        tree.run(wrap + [self.sluiced, "-c",
                         conf or os.path.join(d, "sluiced.conf"),
                         "--exit-when-empty"], wait=False, name="sluiced")
        res = tree.finish(timeout=self.a.limit)
        out = open(os.path.join(d, "sluiced.log")).read()
        m = re.findall(r"stopped: delivered (\d+), deferred (\d+), "
                       r"bounced (\d+), expired (\d+)", out)
        if not m:
            raise RuntimeError("sluiced did not finish:\n" + out[-2000:])
        dl, _, bo, ex = (int(x) for x in m[-1])
        return t0, res, {"delivered": dl, "bounced": bo, "expired": ex}

    # --- postfix
    def postfix_configure(self, wname, w):
        d = os.path.join(self.T, wname, "postfix")
        os.makedirs(d)
        milter = w["dkim"] is not None
        main = [
            "compatibility_level = 3.6",
            "myhostname = mta.bench", "mydomain = bench",
            "myorigin = sender.bench", "mydestination =",
            "inet_interfaces = 127.0.0.1", "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            "queue_directory = /var/spool/postfix",
            "data_directory = /var/lib/postfix",
            "mail_owner = postfix", "setgid_group = postdrop",
            "maillog_file = %s/maillog" % d, "maillog_file_prefixes = /tmp",
            "smtpd_peername_lookup = no", "biff = no",
            "append_dot_mydomain = no",
            "smtp_tls_security_level = none",
            "smtpd_tls_security_level = none",
            "default_process_limit = %d" % max(100, self.a.sessions),
            # the workloads' sender: its bounces are discarded
            "transport_maps = inline:{sender.bench=discard:}",
            "alias_maps =", "alias_database =", "local_recipient_maps =",
            # W5: retry soon, as sluiced does (retry = 2s,4s,8s,...);
            # with a 1 s backoff a loaded qmgr can find a message due
            # again while its deferral is still being recorded, and then
            # leaves it in the incoming queue for minutes
            "queue_run_delay = 1s", "minimal_backoff_time = 2s",
            "maximal_backoff_time = 8s",
        ]
        if w.get("relay") == "accept":
            main += ["defer_transports = smtp"]  # W6a: into the queue only
        main += self.a.postfix_set
        if milter:
            main += ["smtpd_milters = inet:127.0.0.1:8891",
                     "milter_default_action = tempfail"]
        with open("/etc/postfix/main.cf", "w") as f:
            f.write("\n".join(main) + "\n")
        master = open(os.path.join(HERE, "postfix-master.cf")).read()
        master = master.replace("@SESSIONS@", str(self.a.sessions))
        with open("/etc/postfix/master.cf", "w") as f:
            f.write(master)
        conf = os.path.join(d, "opendkim.conf")
        if milter:
            algo = w["dkim"]
            with open(conf, "w") as f:
                f.write("Syslog no\nMode s\nDomain sender.bench\n"
                        "Selector pf%s\nKeyFile %s/odkim/%s.key\n"
                        "SignatureAlgorithm %s-sha256\n"
                        "Canonicalization relaxed/relaxed\n"
                        "Socket inet:8891@127.0.0.1\n"
                        "PidFile %s/opendkim.pid\nUMask 007\n"
                        "RequireSafeKeys no\n" %
                        (algo, self.T, algo, algo, d))
        self.commands.setdefault(wname, {})["postfix"] = {
            "main.cf": "\n".join(main) + "\n", "master.cf": master,
            "opendkim.conf": open(conf).read() if milter else None,
            "timed": ["%s --connect 127.0.0.1:2525 -n %d --sessions %d "
                      "--domains %d --size %d --json" %
                      (self.inject, w["n"], INJECT_SESSIONS, w["domains"],
                       w.get("sluice_size", w["size"]))]
            if not w.get("relay") else
            [self.relay_argv(2525, w, w["n"], 0)[0] +
             " ... (x%d)" % RELAY_PROCS],
        }
        return d

    def postfix_clean(self):
        """Empty queue and data directories for the next run."""
        for base in ("/var/spool/postfix", "/var/lib/postfix"):
            for e in os.listdir(base):
                p = os.path.join(base, e)
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)

    def postfix_queued(self):
        """Messages still in Postfix's queue."""
        n = 0
        for q in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join("/var/spool/postfix", q)):
                n += len(files)
        return n

    def postfix_run(self, wname, w, d, sink, n=None, wait_all=True):
        n = n or w["n"]
        self.postfix_clean()
        try:
            os.unlink(os.path.join(d, "maillog"))
        except OSError:
            pass
        tree = Tree(d)
        stop = [["postfix", "stop"]]
        # Both in the foreground, in the suite's session: `postfix start`
        # and a detaching OpenDKIM call setsid(), and a new session is a
        # new scheduler autogroup, which the kernel gives a fair share of
        # the CPU of its own, so the MTA would not compete for the CPU on
        # the same terms as the sink and the injector (see the header)
        if w["dkim"]:
            pid = tree.run(["/usr/sbin/opendkim", "-f", "-x",
                            os.path.join(d, "opendkim.conf")],
                           wait=False, name="opendkim")["pid"]
            stop.append(["pkill", "-TERM", "-P", str(pid)])
        if tree.run(["postfix", "check"], name="postfix")["rc"] != 0:
            tree.finish(stop)
            raise RuntimeError("postfix check failed: see %s/postfix.log"
                               % d)
        tree.run(["/usr/lib/postfix/sbin/master", "-d"], wait=False,
                 name="postfix")
        try:
            wait_port(2525, limit=30)
            if w["dkim"]:
                wait_port(8891, limit=30)
        except RuntimeError:
            tree.finish(stop, timeout=30)
            raise RuntimeError("postfix or opendkim did not start: see "
                               "%s/maillog and %s/postfix.log" % (d, d))
        t0 = self.clock()
        if w.get("relay"):
            return self.postfix_relay_finish(w, d, sink, n, tree, stop, t0)
        inj = subprocess.Popen(
            [self.inject, "--connect", "127.0.0.1:2525", "-n", str(n),
             "--sessions", str(min(INJECT_SESSIONS, n)), "--domains",
             str(w["domains"]), "--size",
             str(w.get("sluice_size", w["size"])), "--json"],
            stdout=subprocess.PIPE,
            stderr=open(os.path.join(d, "inject.log"), "ab"))
        out, _ = inj.communicate(timeout=self.a.limit)
        injected = json.loads(out.decode().strip().splitlines()[-1])
        end = time.time() + self.a.limit
        if wait_all:
            # every message has left the queue (delivered or bounced)
            while time.time() < end and self.postfix_queued() > 0:
                time.sleep(0.1)
        else:
            while time.time() < end and sink.accepted() < n:
                time.sleep(0.05)
        t_stop = time.time()
        res = tree.finish(stop)
        ml = open(os.path.join(d, "maillog")).read()
        self.pf_runs = getattr(self, "pf_runs", 0) + 1
        os.rename(os.path.join(d, "maillog"),
                  os.path.join(d, "maillog.%d" % self.pf_runs))
        log("    (postfix: injected in %.1f s, stopped in %.1f s)" %
            ((t_stop - t0 / 1000.0), time.time() - t_stop))
        sent = len(re.findall(r" relay=mx\.d\d+\.bench.*status=sent", ml))
        bounced = len(re.findall(r"status=bounced", ml))
        return t0, res, {"delivered": sent, "bounced": bounced,
                         "injected": injected["accepted"],
                         "inject_failed": injected["failed"]}

    def postfix_relay_finish(self, w, d, sink, n, tree, stop, t0):
        """W6/W6a through Postfix: the same injectors to port 2525, then
        (W6) every message at the sink."""
        took, failed = self.relay_submit(2525, w, n, d)
        end = time.time() + self.a.limit
        if w["relay"] == "deliver":
            while time.time() < end and sink.accepted() < n:
                time.sleep(0.05)
        # messages in the queue, by distinct queue id (files alone also
        # count Postfix's own bookkeeping; a message the queue manager is
        # moving between queues may be listed twice or not at all, so count
        # until the figure is n or holds still for a second)
        queued, last, still = -1, -2, 0
        while time.time() < end and queued != n and still < 4:
            q = subprocess.run(["postqueue", "-j"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL).stdout.decode()
            ids = set()
            for line in q.splitlines():
                if line.startswith("{"):
                    ids.add(json.loads(line).get("queue_id"))
            queued = len(ids)
            still = still + 1 if queued == last else 0
            last = queued
            if queued != n:
                time.sleep(0.25)
        res = tree.finish(stop)
        ml = open(os.path.join(d, "maillog")).read()
        self.pf_runs = getattr(self, "pf_runs", 0) + 1
        os.rename(os.path.join(d, "maillog"),
                  os.path.join(d, "maillog.%d" % self.pf_runs))
        sent = len(re.findall(r" relay=mx\.d\d+\.bench.*status=sent", ml))
        return t0, res, {"accepted_ms": took, "sources_failed": failed,
                         "queued": queued, "delivered": sent}

    def clock(self):
        """The start of a timed run: wall ms, and the harness's own CPU
        from here on is counted (see figures())."""
        self.harness_cpu0 = self_cpu_s()
        return now_ms()

    # --- ceiling
    def ceiling_procs(self, w):
        """Senders of the ceiling: the relay workloads' own injector
        count (they feed the MTAs with RELAY_PROCS), else --ceiling-procs."""
        return RELAY_PROCS if w.get("relay") else self.a.ceiling_procs

    def ceiling_argv(self, w, k):
        """smtp-source k of --ceiling-procs: its share of the messages and
        of the sessions (sessions are never fewer than processes)."""
        P = self.ceiling_procs(w)
        n = w["n"] // P + (1 if k < w["n"] % P else 0)
        sess = max(1, min(n, self.a.sessions // P))
        return ["/usr/sbin/smtp-source", "-d", "-s", str(sess), "-l",
                str(w.get("sluice_size", w["size"])), "-m", str(n), "-f",
                "news@sender.bench", "-t", "ceiling@d0.bench",
                "%s:25" % mx_addr(0)], n

    def ceiling_run(self, wname, w, d, sink):
        """Several smtp-source processes straight into the sink: one
        process, one core, is slower than the sink (it does not pipeline
        either), so the ceiling is the sink's, not the injector's."""
        cmds = [self.ceiling_argv(w, k) for k in range(self.ceiling_procs(w))]
        self.commands.setdefault(wname, {})["ceiling"] = {
            "timed": [" ".join(a) for a, n in cmds if n]}
        tree = Tree(d)
        t0 = self.clock()
        for k, (argv, n) in enumerate(cmds):
            if n:
                tree.run(argv, wait=False, name="smtp-source")
        res = tree.finish(timeout=self.a.limit)
        return t0, res, {"delivered": sink.accepted(),
                         "sender_procs": sum(1 for _, n in cmds if n)}

    # --- checks: a few messages through a capturing sink, dkimpy verifies
    def check_output(self, wname, w, system, d):
        if w.get("relay") == "accept":
            self.checks.setdefault(wname, {})[system] = (
                "nothing is delivered in %s: each run checks that the "
                "queue holds every message" % wname)
            return
        cap = os.path.join(d, "capture")
        os.makedirs(cap, exist_ok=True)
        sink = RealSink(self.build, d, 1, capture=cap)
        try:
            if system == "sluice" and w.get("relay"):
                self.sluice_relay_run(wname, w, d, sink, n=10)
            elif system == "sluice":
                self.sluice_run(wname, w, d, sink, campaign="check")
            else:
                self.postfix_run(wname, w, d, sink, n=10)
        finally:
            sink.stop()
        msgs = [open(os.path.join(cap, f), "rb").read()
                for f in sorted(os.listdir(cap))]
        if len(msgs) != 10:
            raise RuntimeError("%s %s: %d of 10 check messages arrived" %
                               (wname, system, len(msgs)))
        import dkim
        txt = dict(self.odkim_txt)
        txt.update(self.sluice_txt)

        def dnsfunc(name, timeout=5):
            v = txt.get(name.decode().rstrip("."))
            return v.encode() if v else None
        ok = 0
        for m in msgs:
            m = re.sub(rb"^(X-Sink-[^\r\n]*\r\n)+", b"", m)
            sigs = re.findall(rb"^DKIM-Signature:[^\r\n]*a=([a-z0-9-]+)", m,
                              re.M | re.I)
            if w["dkim"] is None:
                if sigs:
                    raise RuntimeError("%s %s: unsigned workload but signed"
                                       % (wname, system))
                ok += 1
                continue
            want = ("rsa-sha256" if w["dkim"] == "rsa" else
                    "ed25519-sha256").encode()
            if sigs != [want]:
                raise RuntimeError("%s %s: signatures %r, want one %s" %
                                   (wname, system, sigs, want))
            if not dkim.verify(m, dnsfunc=dnsfunc):
                raise RuntimeError("%s %s: dkimpy: signature does not verify"
                                   % (wname, system))
            ok += 1
        self.checks.setdefault(wname, {})[system] = (
            "%d/%d messages %s" % (ok, len(msgs), "unsigned" if w["dkim"] is
                                    None else "verified by dkimpy (%s)" %
                                    want.decode()))
        log("  check %s: %s" % (system, self.checks[wname][system]))

    # --- one workload
    def workload(self, wname, w):
        log("== %s: %s" % (wname, w["title"]))
        base = os.path.join(self.T, wname)
        dirs = {}
        if "sluice" in self.a.systems:
            dirs["sluice"] = self.sluice_prepare(wname, w)
            self.check_output(wname, w, "sluice", dirs["sluice"])
        if "postfix" in self.a.systems:
            dirs["postfix"] = self.postfix_configure(wname, w)
            self.check_output(wname, w, "postfix", dirs["postfix"])
        if "ceiling" in self.a.systems:
            dirs["ceiling"] = os.path.join(base, "ceiling")
            os.makedirs(dirs["ceiling"])
        runs = []
        for r in range(1, self.a.runs + 1):
            one = {}
            for sysname in self.a.systems:
                d = dirs[sysname]
                real = w["real"] and sysname != "ceiling"
                if w.get("counting"):
                    # W7: connections and transactions, per domain too
                    sink = RealSink(self.build, d, r, faults=False)
                elif real:
                    # W5: which recipient was tried first when
                    sink = RealSink(self.build, d, r, track=w["n"] + 1000)
                else:
                    sink = SmtpSink(d)
                try:
                    if sysname == "sluice" and w.get("relay"):
                        t0, res, out = self.sluice_relay_run(wname, w, d,
                                                             sink)
                    elif sysname == "sluice":
                        t0, res, out = self.sluice_run(wname, w, d, sink)
                    elif sysname == "postfix":
                        t0, res, out = self.postfix_run(
                            wname, w, d, sink, wait_all=real)
                    else:
                        t0, res, out = self.ceiling_run(wname, w, d, sink)
                    last = sink.last_accept_ms()
                    accepted = sink.accepted()
                    if w.get("relay") == "accept" and sysname != "ceiling":
                        last = t0 + out["accepted_ms"]
                        accepted = out["queued"]
                finally:
                    sink.stop()
                harness = self_cpu_s() - self.harness_cpu0
                one[sysname] = self.figures(wname, w, sysname, t0, last,
                                            accepted, res, out, sink,
                                            harness)
            if "sluice" in one and "postfix" in one:
                one["sluice_over_postfix"] = round(
                    one["sluice"]["msg_per_s"] /
                    one["postfix"]["msg_per_s"], 3)
            if "ceiling" in one and one["ceiling"]["msg_per_s"] > 0:
                # the headline: how much of what the sink can take
                for sysname in ("sluice", "postfix"):
                    if sysname in one:
                        one[sysname]["share_of_ceiling"] = round(
                            one[sysname]["msg_per_s"] /
                            one["ceiling"]["msg_per_s"], 3)
                        if "first_pass_msg_per_s" in one[sysname]:
                            one[sysname]["first_pass_share_of_ceiling"] = \
                                round(one[sysname]["first_pass_msg_per_s"] /
                                      one["ceiling"]["msg_per_s"], 3)
            runs.append(one)
        return runs

    def sink_figures(self, w, sink, t0, last, secs):
        """What the sink saw: its CPU per message and how busy it was
        (cores), and from sluice-sink's stats the connections and
        transactions (W7) or the first pass and the retry tail (W5)."""
        n = w["n"]
        f = {}
        cpu = getattr(sink, "cpu_s", None)
        if cpu is not None:
            f["sink_cpu_s"] = cpu
            f["sink_cpu_us_per_msg"] = round(cpu * 1e6 / n, 1)
            if secs > 0:
                f["sink_cores"] = round(cpu / secs, 2)
        st = getattr(sink, "final", None)
        if not st:
            return f
        if w.get("counting"):
            # every sender connects to a domain's MX address (the
            # ceiling to d0's); 127.0.0.1 only had wait_port's probes
            per = [a["sessions"] for k, a in st.get("by_addr", {}).items()
                   if k != "127.0.0.1"]
            conns = sum(per)
            f.update({"connections": conns,
                      "smtp_sessions": st.get("smtp_sessions"),
                      "transactions": st.get("transactions"),
                      "messages_per_connection":
                          round(st["messages"] / conns, 2) if conns else 0,
                      "domains_connected": len(per),
                      "connections_per_domain":
                          round(conns / len(per), 3) if per else 0,
                      "max_connections_one_domain": max(per or [0]),
                      "max_concurrency": st.get("max_concurrency")})
        if st.get("last_first_rcpt_ms") is not None:
            first = (st["last_first_rcpt_ms"] - t0) / 1000.0
            end = max(last or t0, st["last_first_rcpt_ms"])
            f.update({"first_pass_s": round(first, 3),
                      "first_pass_msg_per_s":
                          round(n / first, 1) if first > 0 else 0,
                      "tail_s": round((end - st["last_first_rcpt_ms"]) /
                                      1000.0, 3),
                      "rcpt_first": st.get("rcpt_first"),
                      "rcpt_retries": st.get("rcpt_again"),
                      "rcpt_untracked": st.get("rcpt_untracked")})
        return f

    def figures(self, wname, w, sysname, t0, last, accepted, res, out,
                sink, harness):
        """One run's figures, checked: every message has its outcome."""
        n = w["n"]
        problems = []
        if last is None:
            problems.append("nothing reached the sink")
        if res.get("timed_out"):
            problems.append("did not finish within %d s" % self.a.limit)
        if out.get("sources_failed"):
            problems.append("%d of the injectors failed (a refusal)" %
                            out["sources_failed"])
        if w.get("relay") == "accept" and sysname != "ceiling":
            if out["queued"] != n:
                problems.append("%d of %d queued" % (out["queued"], n))
        elif w["real"] and sysname != "ceiling":
            if out["delivered"] + out["bounced"] != n:
                problems.append("%d delivered + %d bounced != %d" %
                                (out["delivered"], out["bounced"], n))
        elif accepted != n or out.get("delivered", n) != n:
            problems.append("sink accepted %d, delivered %s of %d" %
                            (accepted, out.get("delivered"), n))
        secs = ((last or t0) - t0) / 1000.0
        f = {"msg_per_s": round(n / secs, 1) if secs > 0 else 0,
             "seconds": round(secs, 3),
             "cpu_us_per_msg": round(res["cpu_s"] * 1e6 / n, 1),
             # the larger of the sampled PSS sum and the biggest single
             # process's own high-water mark (exact for one process)
             "peak_mb": round(max(res["peak_pss_kb"],
                                  res["max_rss_kb"]) / 1024.0, 1),
             "peak_pss_mb": round(res["peak_pss_kb"] / 1024.0, 1),
             "max_rss_mb": round(res["max_rss_kb"] / 1024.0, 1),
             "accepted_at_sink": accepted}
        # the harness: this script (the smtp-sink counter reader thread,
        # the sink polls) and the subreaper (memory sampling), not
        # counted in the system's CPU above but taking CPU from it
        h = harness + res.get("tree_cpu_s", 0)
        f.update({"harness_cpu_s": round(h, 3),
                  "harness_cpu_us_per_msg": round(h * 1e6 / n, 1),
                  "harness_cores": round(h / secs, 3) if secs > 0 else 0,
                  "autogroups": len(res.get("autogroups", []))})
        if not (w.get("relay") == "accept" and sysname != "ceiling"):
            # W6a: nothing reaches the sink
            f.update(self.sink_figures(w, sink, t0, last, secs))
        if "accepted_ms" in out and out["accepted_ms"] > 0:
            # relay: the injectors' last 250 (durably queued)
            f["accepted_per_s"] = round(n * 1000.0 / out["accepted_ms"], 1)
        f.update(out)
        if problems:
            f["problems"] = problems
            self.failed = True
        extra = ""
        if "sink_cpu_us_per_msg" in f:
            extra += "  sink %5.1f us/msg %4.2f cores" % (
                f["sink_cpu_us_per_msg"], f.get("sink_cores", 0))
        extra += "  harness %4.2f cores" % f["harness_cores"]
        if "connections" in f:
            extra += "  %d conns, %d sessions, %d transactions, " \
                "%.2f conns/domain" % (
                f["connections"], f["smtp_sessions"] or 0,
                f["transactions"] or 0,
                f["connections_per_domain"])
        if "first_pass_s" in f:
            extra += "  first pass %.1f s (%.0f msg/s), tail %.1f s" % (
                f["first_pass_s"], f["first_pass_msg_per_s"], f["tail_s"])
        log("  %-8s %9.0f msg/s  %6.1f s  CPU %7.1f us/msg  peak %6.1f MB"
            "%s%s" % (sysname, f["msg_per_s"], secs, f["cpu_us_per_msg"],
                      f["peak_mb"], extra,
                    ("  PROBLEM: " + "; ".join(problems)) if problems
                    else ""))
        return f

    # --- scale
    def scale(self):
        log("== scale: %d queued campaign recipients" % self.a.scale)
        out = os.path.join(self.T, "scale.jsonl")
        cmd = ["sh", os.path.join(HERE, "scale_campaign.sh"), self.build]
        env = dict(os.environ, N=str(self.a.scale), OUT=out,
                   HOLD=str(self.a.scale_hold))
        r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        text = r.stdout.decode()
        log("  " + text.strip().replace("\n", "\n  "))
        if r.returncode != 0:
            self.failed = True
            return {"error": "exit %d" % r.returncode, "output": text[-2000:]}
        rec = json.loads(open(out).read().strip().splitlines()[-1])
        rec["command"] = "N=%d HOLD=%d sh bench/scale_campaign.sh %s" % (
            self.a.scale, self.a.scale_hold, self.a.build)
        return rec


# -------------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--fraction", type=float, default=0.1,
                   help="share of each workload's messages to send "
                        "(default 0.1: Postfix needs ~35 min per pass of "
                        "the full workloads on 2 cores)")
    p.add_argument("--full", action="store_true",
                   help="the full workloads (--fraction 1)")
    p.add_argument("--quick", action="store_true",
                   help="2%% of every workload, one run, scale 1M")
    p.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6,W6a,W7")
    p.add_argument("--systems", default="sluice,postfix,ceiling")
    p.add_argument("--sessions", type=int, default=100)
    p.add_argument("--ceiling-procs", type=int, default=CEILING_PROCS,
                   help="smtp-source processes of the ceiling, sharing "
                        "--sessions (default %d: one does not saturate "
                        "the sink)" % CEILING_PROCS)
    p.add_argument("--scale", type=int, default=10000000)
    p.add_argument("--scale-hold", type=int, default=30,
                   help="seconds sluiced runs on the scale spool")
    p.add_argument("--limit", type=int, default=600,
                   help="seconds a run may take")
    p.add_argument("--json", default=None,
                   help="default bench/results/suite.json (suite-full.json "
                        "with --full)")
    p.add_argument("--md", default=os.path.join(HERE, "RESULTS.md"))
    p.add_argument("--svg", default=None,
                   help="default bench/results/throughput.svg "
                        "(throughput-full.svg with --full); with --json F "
                        "and no --svg, F's name with .svg")
    p.add_argument("--no-md", action="store_true",
                   help="do not touch RESULTS.md")
    p.add_argument("--keep", action="store_true", help="keep the temp dir")
    p.add_argument("--report", metavar="SUITE.json",
                   help="run nothing: write the plot and the RESULTS.md "
                        "section again from a saved run")
    p.add_argument("--postfix-set", action="append", default=[],
                   metavar="'NAME = VALUE'",
                   help="one more main.cf line for Postfix (repeatable)")
    argv = sys.argv[1:]
    a = p.parse_args(argv)
    a.systems = [s for s in a.systems.split(",") if s]
    a.workloads = [w for w in a.workloads.split(",") if w]
    if any(s not in SYSTEMS for s in a.systems) or \
            any(w not in WORKLOADS for w in a.workloads) or a.runs < 1 \
            or a.ceiling_procs < 1:
        p.print_usage(sys.stderr)
        sys.exit(64)
    if a.full:
        a.fraction = 1.0
    tag = "-full" if a.fraction >= 1 else ""
    if a.json and not a.svg:
        # a run saved elsewhere keeps its plot beside it, not over the
        # one of bench/results
        a.svg = os.path.splitext(a.json)[0] + ".svg"
    a.json = a.json or os.path.join(HERE, "results", "suite%s.json" % tag)
    a.svg = a.svg or os.path.join(HERE, "results", "throughput%s.svg" % tag)
    if a.quick:
        a.runs = 1 if "--runs" not in " ".join(argv) else a.runs
        a.scale = min(a.scale, 1000000)
        a.fraction = min(a.fraction, 0.02)
    if not 0 < a.fraction <= 1:
        p.print_usage(sys.stderr)
        sys.exit(64)
    for w in WORKLOADS.values():
        w["full_n"] = w["n"]
        w["n"] = max(100, int(w["n"] * a.fraction))
        if w.get("per_domain"):
            w["domains"] = min(w["domains"], max(1, w["n"] //
                                                 w["per_domain"]))
            w["title"] = w["title"] % (format(w["n"], ","),
                                       format(w["domains"], ","))
        else:
            w["title"] = w["title"] % format(w["n"], ",")
    if a.report:
        doc = json.load(open(a.report))
        tag = "-full" if doc["fraction"] >= 1 else ""
        svg = os.path.join(HERE, "results", "throughput%s.svg" % tag)
        write_svg(svg, doc)
        write_md(a.md, doc, os.path.relpath(svg, os.path.dirname(a.md)))
        sys.exit(0)
    for tool in ("/usr/sbin/smtp-sink", "/usr/sbin/smtp-source",
                 "/usr/sbin/postfix", "/usr/sbin/opendkim",
                 "/usr/sbin/dnsmasq", "/usr/bin/gnuplot"):
        if not os.path.exists(tool):
            log("suite: %s is missing (sh tools/deps.sh bench)" % tool)
            sys.exit(69)
    if os.geteuid() != 0:
        log("suite: needs root (network and mount namespaces, Postfix)")
        sys.exit(77)
    enter_namespace(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    s = Suite(a)
    s.failed = False
    doc = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "command": "bench/suite.py " + " ".join(argv) if argv else
           "make bench", "runs": a.runs, "fraction": a.fraction, "systems": a.systems,
           "sessions": a.sessions, "ceiling_procs": a.ceiling_procs,
           "machine": machine_info(a.build),
           "workloads": {}}
    t_start = time.time()
    try:
        s.setup()
        for wname in a.workloads:
            w = WORKLOADS[wname]
            runs = s.workload(wname, w)
            doc["workloads"][wname] = {
                "title": w["title"], "n": w["n"], "full_n": w["full_n"],
                "size": w["size"],
                "message_bytes": w.get("sluice_size"),
                "domains": w["domains"], "dkim": w["dkim"],
                "realistic_sink": w["real"], "runs": runs,
                "summary": aggregate(runs, a.systems),
                "checks": s.checks.get(wname, {}),
                "commands": s.commands.get(wname, {})}
        if a.scale > 0:
            doc["scale"] = s.scale()
    finally:
        s.teardown()
    doc["seconds"] = round(time.time() - t_start, 1)
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=1)
    write_svg(a.svg, doc)
    if not a.no_md:
        write_md(a.md, doc, os.path.relpath(a.svg, os.path.dirname(a.md)))
    log("suite: %.0f s; %s, %s%s" % (doc["seconds"], a.json, a.svg,
                                    "" if a.no_md else ", " + a.md))
    sys.exit(1 if s.failed else 0)


if __name__ == "__main__":
    main()
