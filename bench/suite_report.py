"""suite_report.py - what bench/suite.py writes: medians with min and
max, the machine it ran on, its section of bench/RESULTS.md and the SVG
plot (gnuplot).
"""

import os
import platform
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def summary(values):
    """median, min and max of a list of numbers."""
    v = sorted(values)
    return {"median": round(statistics.median(v), 3), "min": v[0],
            "max": v[-1]}


def machine_info(build):
    """What the figures were measured on."""
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            mem = int(line.split()[1]) // 1024

    def ver(pkg):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return r.stdout.decode() or None
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                         stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL).stdout.decode().strip()
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            autogroup = f.read().strip() == "1"
    except OSError:
        autogroup = None
    return {"cpus": os.cpu_count(), "cpu": cpu, "mem_mb": mem,
            "sched_autogroup": autogroup,
            "kernel": platform.release(), "sluice_commit": rev,
            "postfix": ver("postfix"), "opendkim": ver("opendkim"),
            "openssl": ver("openssl"), "lmdb": ver("liblmdb0"),
            "build_type": "RelWithDebInfo"}


# per system, summarised when every run has them
OPTIONAL = ("accepted_per_s", "share_of_ceiling", "sink_cpu_us_per_msg",
            "sink_cores", "harness_cores", "harness_cpu_us_per_msg",
            "first_pass_s", "first_pass_msg_per_s", "tail_s", "rcpt_retries",
            "first_pass_share_of_ceiling", "smtp_sessions",
            "connections", "transactions", "connections_per_domain",
            "max_connections_one_domain", "messages_per_connection")


def aggregate(runs, systems):
    out = {}
    for s in systems:
        out[s] = {k: summary([r[s][k] for r in runs]) for k in
                  ("msg_per_s", "cpu_us_per_msg", "peak_mb", "peak_pss_mb",
                   "max_rss_mb", "seconds")}
        for k in OPTIONAL:
            if runs and all(r[s].get(k) is not None for r in runs):
                out[s][k] = summary([r[s][k] for r in runs])
    for k in ("sluice_over_postfix", "sluice_over_ceiling"):
        if all(k in r for r in runs) and runs:
            out[k] = summary([r[k] for r in runs])
    return out


def pct(s):
    """A share as a percentage: median (min-max)."""
    return fmt({k: v * 100 for k, v in s.items()}) + " %"


def fmt(s, nd=0):
    """median (min-max); the value alone after a single run."""
    f = "%%.%df" % nd
    if s["min"] == s["max"]:
        return f % s["median"]
    return "%s (%s-%s)" % (f % s["median"], f % s["min"], f % s["max"])


def write_md(path, doc, svg_rel):
    """Rewrite the suite's section of RESULTS.md."""
    m = doc["machine"]
    key = "suite-full" if doc["fraction"] >= 1 else "suite"
    L = ["<!-- %s:begin (written by bench/suite.py; edits here are "
         "lost) -->" % key, "",
         "## Side by side: sluice, Postfix, the raw ceiling (%s)" %
         ("the full workloads, `bench/suite.py --full`" if key ==
          "suite-full" else "`make bench`: %g of each workload's messages"
          % doc["fraction"]),
         "",
         "Run %s, %s. Machine: %d "
         "cores (%s), %d MiB, kernel %s; sluice %s (%s), Postfix %s, "
         "OpenDKIM %s, OpenSSL %s. Command: `%s`; every command and "
         "configuration is in `bench/results/%s`." %
         (doc["started"], "one run per figure" if doc["runs"] == 1 else
          "%d runs per figure: median (min-max)" % doc["runs"], m["cpus"], m["cpu"], m["mem_mb"],
          m["kernel"], m["sluice_commit"], m["build_type"], m["postfix"],
          m["opendkim"], m["openssl"], doc["command"],
          "suite-full.json" if key == "suite-full" else "suite.json"), "",
         "![throughput per workload and system](%s)" % svg_rel, "",
         "| workload | system | msg/s | share of the ceiling | CPU µs/msg | "
         "sink CPU µs/msg (cores) | peak memory MB | sluice/Postfix |",
         "|---|---|---|---|---|---|---|---|"]
    above = False
    for wname, wd in doc["workloads"].items():
        agg = wd["summary"]
        first = True
        for s in doc["systems"]:
            if s not in agg:
                continue
            a = agg[s]
            r1 = share = sink = ""
            if s == "sluice" and "sluice_over_postfix" in agg:
                r1 = fmt(agg["sluice_over_postfix"], 2)
            if "share_of_ceiling" in a:
                share = pct(a["share_of_ceiling"])
                above = above or a["share_of_ceiling"]["median"] > 1
            elif s == "sluice" and "sluice_over_ceiling" in agg:
                share = pct(agg["sluice_over_ceiling"])  # an older run
                above = above or agg["sluice_over_ceiling"]["median"] > 1
            if "sink_cpu_us_per_msg" in a:
                sink = fmt(a["sink_cpu_us_per_msg"], 1)
                if "sink_cores" in a:
                    sink += " (%s)" % fmt(a["sink_cores"], 2)
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                ("**%s** %s" % (wname, wd["title"])) if first else "", s,
                fmt(a["msg_per_s"]), share, fmt(a["cpu_us_per_msg"], 1),
                sink, fmt(a["peak_mb"], 1), r1))
            first = False
    if "ceiling_procs" not in doc:
        L += ["", "The ceiling of this (older) run was one `smtp-source` "
              "process, which does not pipeline and was slower than the "
              "sink: a share above 100% says that, not that a system beat "
              "what the sink can take."]
    else:
        L += ["", "The ceiling is %s `smtp-source` process%s sharing the "
              "sessions, straight into the sink: no queue, no DNS, no "
              "signing. Its sink cores near 1 mean the sink, one process "
              "on one core, was what stopped it. Share of the ceiling is "
              "a system's msg/s over the ceiling's in the same run. %s" % (
                  doc["ceiling_procs"],
                  "es" if doc["ceiling_procs"] != 1 else "",
                  "A share above 100% is not faster than the ceiling: "
                  "that system cost the sink less CPU per message (it "
                  "pipelines, one round trip per message; smtp-source "
                  "does not), so the sink could take more of its "
                  "messages; compare the sink column." if above else
                  "The sink's CPU per message differs between systems "
                  "(pipelining lowers it), so compare the sink column "
                  "too.")]
    sessions = ("Every process of a comparison runs in the suite's own "
                "session (Postfix's master with -d, OpenDKIM with -f): a "
                "new session is a new scheduler autogroup (%s on this "
                "machine), which the kernel shares the CPU with as a whole, "
                "whatever the nice values." % (
                    {True: "enabled", False: "disabled"}.get(
                        m.get("sched_autogroup"), "unknown"))
                if "ceiling_procs" in doc else "")
    harness = [(wn, wd) for wn, wd in doc["workloads"].items()
               if any("harness_cores" in wd["summary"].get(s, {})
                      for s in doc["systems"])]
    if harness:
        L += ["", "The harness's own CPU during each timed run (this "
              "script: the sink's counters, the memory sampling), not "
              "counted above; cores = CPU seconds over the run's seconds:",
              ""]
        for wname, wd in harness:
            L.append("- %s: %s" % (wname, "; ".join(
                "%s %s cores (%s µs/msg)" % (
                    s, fmt(wd["summary"][s]["harness_cores"], 2),
                    fmt(wd["summary"][s]["harness_cpu_us_per_msg"], 1))
                for s in doc["systems"]
                if "harness_cores" in wd["summary"].get(s, {}))))
    first_pass = [(wn, wd) for wn, wd in doc["workloads"].items()
                  if any("first_pass_s" in wd["summary"].get(s, {})
                         for s in doc["systems"])]
    if first_pass:
        L += ["", "Realistic sink: the first pass (from the start to the "
              "last recipient the sink saw for the first time) and the "
              "retry tail after it (to the last acceptance; both MTAs "
              "retry a tempfailed recipient after 2, 4, then 8 s):", ""]
        for wname, wd in first_pass:
            for s in doc["systems"]:
                a = wd["summary"].get(s, {})
                if "first_pass_s" not in a:
                    continue
                L.append("- %s %s: first pass %s s (%s msg/s%s), tail %s s, "
                         "%s retried RCPTs" % (
                             wname, s, fmt(a["first_pass_s"], 1),
                             fmt(a["first_pass_msg_per_s"]),
                             ", %s of the ceiling" %
                             pct(a["first_pass_share_of_ceiling"])
                             if "first_pass_share_of_ceiling" in a else "",
                             fmt(a["tail_s"], 1),
                             fmt(a["rcpt_retries"]) if "rcpt_retries" in a
                             else "?"))
    conns = [(wn, wd) for wn, wd in doc["workloads"].items()
             if any("connections" in wd["summary"].get(s, {})
                    for s in doc["systems"])]
    if conns:
        L += ["", "Connections the sink saw (sluice-sink), to %s:" %
              ", ".join("%s %s domains" % (wn, format(wd["domains"], ","))
                        for wn, wd in conns), ""]
        for wname, wd in conns:
            for s in doc["systems"]:
                a = wd["summary"].get(s, {})
                if "connections" not in a:
                    continue
                per_domain = (
                    "every message to one domain" if s == "ceiling" else
                    "%s connections per domain (at most %s to one)" % (
                        fmt(a["connections_per_domain"], 2),
                        fmt(a["max_connections_one_domain"])))
                L.append("- %s %s: %s connections, %s SMTP sessions (EHLO), "
                         "%s transactions (MAIL), %s, %s messages per "
                         "connection" % (
                             wname, s, fmt(a["connections"]),
                             fmt(a["smtp_sessions"]) if "smtp_sessions" in a
                             else "?", fmt(a["transactions"]), per_domain,
                             fmt(a["messages_per_connection"], 1)))
    relay = [(wn, wd) for wn, wd in doc["workloads"].items()
             if any("accepted_per_s" in wd["summary"].get(s, {})
                    for s in doc["systems"])]
    if relay:
        L += ["", "Relay workloads, messages accepted per second over SMTP "
              "(the injectors' last 250; each one durably queued):", ""]
        for wname, wd in relay:
            L.append("- %s: %s" % (wname, "; ".join(
                "%s %s" % (s, fmt(wd["summary"][s]["accepted_per_s"]))
                for s in doc["systems"]
                if "accepted_per_s" in wd["summary"].get(s, {}))))
    L += ["", "Checks before the timed runs (a capturing sink, dkimpy):", ""]
    for wname, wd in doc["workloads"].items():
        for s, c in wd.get("checks", {}).items():
            L.append("- %s %s: %s" % (wname, s, c))
    sc = doc.get("scale")
    if sc and "error" not in sc:
        mb = lambda kb: "%.0f MB" % (kb / 1024.0)
        L += ["", "### Scale: %s queued campaign recipients" %
              format(sc["recipients"], ","), "",
              "Command: `%s` (%s domains)." % (sc["command"],
                                               format(sc["domains"], ",")),
              "", "| figure | value |", "|---|---|",
              "| list import | %.1f s (%s contacts/s) |" % (
                  sc["import_ms"] / 1000.0, format(sc["import_per_s"], ",")),
              "| `sluice campaign send` | %.1f s (%s recipients/s) |" % (
                  sc["send_ms"] / 1000.0, format(sc["send_per_s"], ",")),
              "| spool on disk (du) | %s, %.0f bytes per recipient "
              "(%.0f added by the send) |" % (
                  mb(sc["spool_du_kb"]), sc["bytes_per_rcpt_du"],
                  sc["send_bytes_per_rcpt_du"]),
              "| sluiced RSS while scheduling (%d s) | peak %s, VmHWM %s, "
              "anonymous %s at the end |" % (
                  sc["hold_s"], mb(sc["rss_peak_kb"]), mb(sc["vmhwm_kb"]),
                  mb(sc["rss_anon_end_kb"])),
              "| time to first delivery | %s ms after sluiced's start, %s ms "
              "after `campaign send` began |" % (
                  sc["first_delivery_ms_from_start"],
                  sc["first_delivery_ms_from_send"]),
              "| delivered while held | %s recipients in %d s |" % (
                  format(sc["delivered_hold"], ","), sc["hold_s"]),
              "| SIGTERM | exit %d after %d ms |" % (sc["exit_code"],
                                                    sc["drain_ms"])]
    elif sc:
        L += ["", "Scale run failed: %s" % sc.get("error")]
    L += ["", "How it is measured: see the header of `bench/suite.py`. "
          "msg/s is end to end (sluice: from `sluice campaign send` to the "
          "last message accepted at the sink, rendering and signing "
          "included; Postfix: from the injector's first connection to the "
          "last acceptance); CPU is every process of the system (Postfix: "
          "master and all its daemons plus OpenDKIM; sluice: the send "
          "command plus sluiced); peak memory is the largest sum of PSS "
          "over the system's processes, sampled every 50 ms (less often, 2 ms per process, when there are more than 25), or the "
          "biggest single process's VmHWM when that is larger (sluiced, "
          "smtp-source). The W5 ceiling "
          "is measured against the clean sink (smtp-source stops at the "
          "first rejection). In W5 both MTAs retry a tempfailed recipient after "
          "2, 4 and 8 s, so its end to end time includes the wait for the "
          "last recipient that was tempfailed two or three times in a row; "
          "the first pass above is the throughput without that wait. " +
          sessions,
          "", "<!-- %s:end -->" % key]
    text = "\n".join(L) + "\n"
    old = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    end = "<!-- %s:end -->" % key
    b, e = old.find("<!-- %s:begin" % key), old.find(end)
    if b >= 0 and e > b:
        new = old[:b] + text + old[e + len(end) + 1:]
    elif max(old.rfind("<!-- suite:end -->"),
             old.rfind("<!-- suite-full:end -->")) >= 0:
        # right after the other section the suite wrote
        last = max(old.rfind("<!-- suite:end -->"),
                   old.rfind("<!-- suite-full:end -->"))
        cut = old.find("\n", last) + 1
        new = old[:cut] + "\n" + text + old[cut:]
    else:
        cut = old.find("\n## ")
        new = (old[:cut + 1] + "\n" + text + "\n" + old[cut + 1:]
               if cut >= 0
               else old + "\n" + text)
    with open(path, "w") as f:
        f.write(new)


def write_svg(path, doc):
    """Grouped bars, one group per workload, with min-max error bars."""
    dat = path + ".dat"
    systems = [s for s in doc["systems"]]
    with open(dat, "w") as f:
        f.write("# workload " + " ".join("%s %s_min %s_max" % (s, s, s)
                                       for s in systems) + "\n")
        for wname, wd in doc["workloads"].items():
            row = [wname]
            for s in systems:
                a = wd["summary"].get(s, {}).get("msg_per_s")
                row += ([str(a["median"]), str(a["min"]), str(a["max"])]
                        if a else ["0", "0", "0"])
            f.write(" ".join(row) + "\n")
    cols = ", ".join(
        "'%s' using %d:%d:%d:xtic(1) title '%s'" %
        (dat, 2 + 3 * i, 3 + 3 * i, 4 + 3 * i, s)
        for i, s in enumerate(systems))
    script = """set terminal svg size 900,480 dynamic enhanced font 'sans,12'
set output '%s'
set title 'Messages per second end to end (median, bars: min-max), %d cores'
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.8 border -1
set key outside top center horizontal
set ylabel 'msg/s (log scale)'
set logscale y
set yrange [10:*]
set grid ytics mytics
plot %s
""" % (path, doc["machine"]["cpus"], cols)
    r = subprocess.run(["gnuplot"], input=script.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    os.unlink(dat)
    if r.returncode != 0:
        raise RuntimeError("gnuplot: " + r.stdout.decode())
