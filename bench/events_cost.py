#!/usr/bin/python3
"""events_cost.py - what the event stream costs W1 (issue 18: <= 5% msg/s).

W1 of bench/suite.py (5 KB campaign mail to 1,000 domains, no DKIM, into
Postfix's smtp-sink) run by the same sluiced twice per round, alternating
which goes first: once with no consumer of the spool's events, once with
all three kinds: the JSON-lines event log (event_log, rotated at 64MB),
an [accounting] CSV file of eight fields, and a [webhook] (batch 100, four
POSTs in flight) to a local receiver that answers 200 at once and counts
the events.  Both runs use one prepared spool, copied fresh each time; the
figures are the suite's (msg/s from the campaign send to the sink's last
accept, sluiced's CPU us/msg, peak memory).  The receiver runs in this
script's process, on the same two cores: its CPU is part of what the
stream costs the machine and is in the figures.  It is kept lean (its
own minimal HTTP/1.1 reading, no JSON parse), and it checks the ids:
each events run's webhook seqs against the log's (none twice, none the
log lacks: else the run counts as a problem; the number not at the
webhook by the exit is in the figures).

usage: sudo /usr/bin/python3 bench/events_cost.py [--build DIR] [--runs N]
                                                  [--fraction F] [--json F]
exit: 0 done, 1 a run had a problem, 64 usage, 69 a tool missing, 77 not root
"""
import argparse
import glob
import gzip
import json
import os
import re
import shutil
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import suite  # noqa: E402
from suite_sinks import SmtpSink  # noqa: E402
from webhook_bench import Counter  # noqa: E402

LOG_SEQ = re.compile(rb'^\{"seq":(\d+)', re.M)


def enter_namespace(argv):
    """Re-run this script in a private network + mount namespace."""
    if os.environ.get("SLUICE_SUITE_NS") == "1":
        return
    env = dict(os.environ, SLUICE_SUITE_NS="1")
    os.execvpe("unshare", ["unshare", "--net", "--mount", "--propagation",
                           "private", "--", "/usr/bin/python3",
                           os.path.abspath(__file__)] + argv, env)


def events_conf(plain, d, url, consumers):
    """The plain configuration plus the consumers asked for (log, acct,
    hook)."""
    text = open(plain).read()
    if "log" in consumers:
        text = text.replace("[sluiced]\n", "[sluiced]\nevent_log = %s\n"
                            "event_log_rotate = 64MB\n" %
                            os.path.join(d, "events.jsonl"), 1)
    if "acct" in consumers:
        text += ("[accounting acct]\npath = %s\nfields = type, time, rcpt, "
                 "domain, code, enhanced, text, campaign_name\n"
                 % os.path.join(d, "acct.csv"))
    if "hook" in consumers:
        text += ("[webhook bench]\nurl = %s\nbatch = 100\n"
                 "max_in_flight = 4\n" % url)
    conf = os.path.join(d, "sluiced-events.conf")
    with open(conf, "w") as f:
        f.write(text)
    return conf


def check_events(s, f, d, hook_seqs):
    """The events run's stream against its log: every event the log has
    reached the webhook once by sluiced's exit (a POST still in flight
    at the exit is sent at the next start: counted as missing here, not
    a failure; an event twice, or one the log lacks, is)."""
    f["webhook_events_by_exit"] = len(hook_seqs)
    log = []
    lp = os.path.join(d, "events.jsonl")
    for name in glob.glob(lp + ".*") + [lp]:  # rotated (order is no matter)
        if os.path.exists(name) and not name.endswith(".tmp"):
            op = gzip.open if name.endswith(".gz") else open
            with op(name, "rb") as lf:
                log += [int(x) for x in LOG_SEQ.findall(lf.read())]
    f["log_lines"] = len(log)
    got, want = set(hook_seqs), set(log)
    f["webhook_repeated"] = len(hook_seqs) - len(got)
    f["webhook_missing"] = len(want - got)
    f["webhook_unknown"] = len(got - want)
    if f["webhook_repeated"] or f["webhook_unknown"] or \
            len(want) != len(log):
        suite.log("  events: webhook %d events (%d repeated, %d not in the "
                  "log), log %d lines (%d distinct)"
                  % (len(hook_seqs), f["webhook_repeated"],
                     f["webhook_unknown"], len(log), len(want)))
        s.failed = True
    elif f["webhook_missing"]:
        suite.log("  events: %d of the log's events not at the webhook by "
                  "the exit" % f["webhook_missing"])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(suite.ROOT, "build"))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--fraction", type=float, default=0.1)
    p.add_argument("--json", default=None)
    p.add_argument("--consumers", default="log,acct,hook",
                   help="which consumers the events run has (default all: "
                        "log,acct,hook)")
    argv = sys.argv[1:]
    a = p.parse_args(argv)
    if a.runs < 1 or not 0 < a.fraction <= 1:
        p.print_usage(sys.stderr)
        sys.exit(64)
    if os.geteuid() != 0:
        suite.log("events_cost: needs root (namespaces)")
        sys.exit(77)
    if shutil.which("unshare") is None or \
            not os.path.exists("/usr/sbin/smtp-sink"):
        suite.log("events_cost: unshare or smtp-sink missing "
                  "(sh tools/deps.sh bench)")
        sys.exit(69)
    enter_namespace(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # what Suite reads of its arguments
    a.sessions, a.limit, a.keep = 100, 600, False
    a.systems, a.workloads = ["sluice"], ["W1"]
    s = suite.Suite(a)
    s.failed = False
    w = dict(suite.WORKLOADS["W1"])
    w["n"] = max(100, int(w["n"] * a.fraction))
    rec = None
    out = {"command": "bench/events_cost.py " + " ".join(argv),
           "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": suite.machine_info(a.build), "n": w["n"], "runs": []}
    try:
        s.setup()
        d = s.sluice_prepare("W1", w)
        plain = os.path.join(d, "sluiced.conf")
        rec = Counter()
        conf = events_conf(plain, d, rec.url, a.consumers.split(","))
        out["config"] = open(conf).read()
        for r in range(a.runs):
            one = {}
            order = ("plain", "events") if r % 2 == 0 else ("events",
                                                            "plain")
            for kind in order:
                for f in glob.glob(os.path.join(d, "events.jsonl*")) + \
                        glob.glob(os.path.join(d, "acct.csv*")):
                    os.unlink(f)
                rec.take_seqs()
                sink = SmtpSink(d)
                try:
                    t0, res, o = s.sluice_run(
                        "W1", w, d, sink,
                        conf=conf if kind == "events" else plain)
                    last, accepted = sink.last_accept_ms(), sink.accepted()
                finally:
                    sink.stop()
                suite.log("  (%s)" % kind)
                f = s.figures("W1", w, "sluice", t0, last, accepted, res, o,
                              sink, suite.self_cpu_s() - s.harness_cpu0)
                if kind == "events":
                    check_events(s, f, d, rec.take_seqs())
                one[kind] = f
            one["events_over_plain"] = round(
                one["events"]["msg_per_s"] / one["plain"]["msg_per_s"], 3)
            suite.log("  round %d: with the stream %.3f of plain" %
                      (r + 1, one["events_over_plain"]))
            out["runs"].append(one)
    finally:
        s.teardown()
    ratios = [r["events_over_plain"] for r in out["runs"]]
    out["events_over_plain"] = {"median": statistics.median(ratios),
                                "min": min(ratios), "max": max(ratios)}
    for kind in ("plain", "events"):
        v = [r[kind]["msg_per_s"] for r in out["runs"]]
        c = [r[kind]["cpu_us_per_msg"] for r in out["runs"]]
        out[kind] = {"msg_per_s_median": statistics.median(v),
                     "cpu_us_per_msg_median": statistics.median(c)}
    suite.log("events_cost: W1 %d msgs, %d rounds: plain %.0f msg/s, with "
              "the event stream %.0f msg/s; ratio median %.3f (%.3f-%.3f)"
              % (w["n"], a.runs, out["plain"]["msg_per_s_median"],
                 out["events"]["msg_per_s_median"],
                 out["events_over_plain"]["median"], min(ratios),
                 max(ratios)))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    print(json.dumps(out["events_over_plain"]))
    sys.exit(1 if s.failed else 0)


if __name__ == "__main__":
    main()
