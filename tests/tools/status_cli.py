#!/usr/bin/python3
"""status_cli.py - `sluice status`, `pause`, `resume` and `paused` end to end.

A spool filled by spool-fill (uneven queued counts over six domains) and a
hand-written status.json in the shape sluiced writes: the merged rows sum
the spool's queued counts per site, pauses from the spool mark their rows
(and split a paused domain out of its site), a stale or missing
status.json reads as "sluiced is not running", sluiced.conf's status_file
(--config or $SLUICE_CONFIG) is read instead of the spool's status.json,
--sort and --limit order
and cut the rows, --watch ends cleanly on SIGINT.  pause/resume/paused
round-trip across separate invocations with the documented exit codes:
0, 64 usage or invalid name, 66 resume of something not paused, 65
foreign spool.

usage: status_cli.py SLUICE SPOOL_FILL
"""
import json
import os
import signal
import subprocess
import sys
import time

import harness

SLUICE, FILL = sys.argv[1], sys.argv[2]
H = harness.Cli(SLUICE, "sluice-status-", timeout=30,
                env=dict(harness.base_env(fast_hash=False), USER="tester",
                         COLUMNS="200"))
T, SPOOL, ENV = H.tmp, H.spool, H.env
check, sluice = H.check, H.run


def status_json(*args):
    rc, out, err = sluice("status", "--json", *args)
    check(f"status --json {' '.join(args)} exits 0", rc == 0, err)
    try:
        return json.loads(out)
    except ValueError:
        check("status --json is JSON", False, out[:200])
        return {"rows": [], "sluiced": {}}


def rows_by_name(doc):
    return {r["name"]: r for r in doc["rows"]}


def fill(n, domains):
    subprocess.run([FILL, "--spool", SPOOL, "-n", str(n), "--domains",
                    str(domains), "--suffix", "test", "--size", "100"],
                   check=True, timeout=60)


def write_status(age_ms=0, path=None, pid=4242):
    """status.json in the spool, or at path (a status_file)."""
    path = path or os.path.join(SPOOL, "status.json")
    now = int(time.time() * 1000)
    doc = {
        "time_ms": now - age_ms, "pid": pid, "sessions": 12,
        "max_sessions": 1000, "inflight": 340,
        "rate": 16.0, "rate_window_s": 5,
        "sites": [
            {"name": "google", "kind": "site",
             "domains": ["d0.test", "d1.test"],
             "connections": 4, "max_connections": 20, "rate": 12.5,
             "max_rate": "100/min", "max_rate_per_s": 1.6667,
             "state": "backoff", "concurrency_limit": 10, "rate_factor": 0.5,
             "last_error": "421 4.7.0 try again later",
             "next_retry_ms": now + 250000,
             "delivered": 100, "deferred": 3, "bounced": 1, "waiting": 57},
            {"name": "yahoo", "kind": "site",
             "domains": ["d2.test", "unknown.test"],
             "connections": 2, "max_connections": 10, "rate": 3.0,
             "max_rate": "", "max_rate_per_s": 0, "state": "normal",
             "concurrency_limit": 10, "rate_factor": 1.0, "last_error": "",
             "next_retry_ms": 0, "delivered": 5, "deferred": 9,
             "bounced": 1, "waiting": 0},
            {"name": "d4.test", "kind": "domain", "domains": [],
             "connections": 1, "max_connections": 2, "rate": 0.5,
             "max_rate": "1/s", "max_rate_per_s": 1, "state": "suspended",
             "concurrency_limit": 1, "rate_factor": 1.0,
             "last_error": "550 5.7.1 blocked", "next_retry_ms": 0,
             "delivered": 0, "deferred": 0, "bounced": 0, "waiting": 0},
        ]}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.rename(tmp, path)


try:
    # d0: 55, d1..d3: 53, d4, d5: 50 queued
    fill(300, 6)
    fill(12, 4)
    fill(2, 1)
    write_status()

    # ---------------------------------------------------------- merging
    doc = status_json("--limit", "0")
    s = doc["sluiced"]
    check("running", s.get("running") is True and s.get("pid") == 4242, s)
    rows = rows_by_name(doc)
    check("row set", set(rows) == {"google", "yahoo", "d4.test", "d3.test",
                                   "d5.test"}, sorted(rows))
    want = {"google": 108, "yahoo": 53, "d4.test": 50, "d3.test": 53,
            "d5.test": 50}
    for name, q in want.items():
        got = rows.get(name, {}).get("queued")
        check(f"queued of {name}", got == q, f"{got} != {q}")
    g = rows.get("google", {})
    check("live fields pass through",
          g.get("connections") == 4 and g.get("max_rate") == "100/min"
          and g.get("state") == "backoff"
          and g.get("last_error") == "421 4.7.0 try again later", g)
    check("unlisted domain is a domain row without live data",
          rows.get("d3.test", {}).get("kind") == "domain"
          and rows.get("d3.test", {}).get("live") is False
          and rows.get("d3.test", {}).get("state") is None, rows.get("d3.test"))
    check("live domain row", rows.get("d4.test", {}).get("kind") == "domain"
          and rows.get("d4.test", {}).get("state") == "suspended")

    # ---------------------------------------------------- sort and limit
    order = [r["name"] for r in status_json("--limit", "0")["rows"]]
    check("sort queued", order == ["google", "d3.test", "yahoo", "d4.test",
                                   "d5.test"], order)
    order = [r["name"] for r in status_json("--sort", "name")["rows"]]
    check("sort name", order == sorted(order) and len(order) == 5, order)
    order = [r["name"] for r in status_json("--sort", "rate")["rows"]]
    check("sort rate", order == ["google", "yahoo", "d4.test", "d3.test",
                                 "d5.test"], order)
    order = [r["name"] for r in status_json("--sort", "errors")["rows"]]
    check("sort errors", order[:3] == ["yahoo", "google", "d4.test"], order)
    d = status_json("--sort", "name", "--limit", "2")
    check("limit", [r["name"] for r in d["rows"]] == ["d3.test", "d4.test"]
          and d["total_rows"] == 5, d)
    rc, out, _ = sluice("status", "--limit", "2")
    check("text limit notes the rest", "(3 more rows" in out, out)
    rc, _, _ = sluice("status", "--sort", "size")
    check("bad --sort is usage", rc == 64, rc)
    rc, _, _ = sluice("status", "--limit", "-1")
    check("bad --limit is usage", rc == 64, rc)

    # ----------------------------------------------------- text output
    rc, out, err = sluice("status")
    check("status text exits 0", rc == 0, err)
    check("header names sluiced", "sluiced pid 4242: sessions 12/1000, "
          "340 in flight" in out, out)
    # the rate of the last seconds, all sites (status.json's "rate")
    check("header has the recent rate", "in flight, rate 16/s," in out, out)
    line = next((l for l in out.splitlines() if l.startswith("google")), "")
    # next retry 250 s after the file was written: "in 4m10s" less the
    # seconds a slow (ASan) run takes to get here
    for part in ("site", "108", "4/20", "12.5/1.67/s", "backoff", "in 4m",
                 "421 4.7.0 try again later"):
        check(f"google row shows {part}", part in line, line)
    line = next((l for l in out.splitlines() if l.startswith("yahoo")), "")
    check("unlimited rate", " 3/s " in line, line)

    # ------------------------------------------ pause, resume, paused
    rc, out, err = sluice("pause", "domain", "D1.Test.", "--reason",
                          "too many 421s")
    check("pause domain", rc == 0 and "paused domain d1.test" in out,
          (rc, out, err))
    rc, out, err = sluice("pause", "site", "yahoo")
    check("pause site", rc == 0, (rc, err))
    rc, out, err = sluice("paused", "--json")
    lst = json.loads(out) if rc == 0 else []
    check("paused lists both (separate invocation)",
          [(p["kind"], p["name"]) for p in lst] ==
          [("domain", "d1.test"), ("site", "yahoo")], lst)
    check("who and reason stored",
          lst and lst[0]["who"] == "tester"
          and lst[0]["reason"] == "too many 421s", lst)
    rc, out, _ = sluice("paused")
    check("paused text", rc == 0 and "d1.test" in out and "yahoo" in out, out)

    rows = rows_by_name(status_json())
    check("paused domain leaves its site",
          rows.get("google", {}).get("queued") == 55, rows.get("google"))
    d1 = rows.get("d1.test", {})
    check("paused domain has its own row",
          d1.get("queued") == 53 and d1.get("state") == "paused"
          and d1.get("pause", {}).get("reason") == "too many 421s", d1)
    y = rows.get("yahoo", {})
    check("paused site overrides state",
          y.get("state") == "paused" and y.get("paused") is True
          and y.get("connections") == 2, y)

    # ---------------------------------------------- sluiced not running
    write_status(age_ms=60000)
    rc, out, _ = sluice("status")
    check("stale status.json: not running",
          "sluiced is not running (live columns empty)" in out, out)
    doc = status_json("--limit", "0")
    rows = rows_by_name(doc)
    check("stale: running false", doc["sluiced"].get("running") is False)
    check("stale: a row per queued domain plus the paused site",
          set(rows) == {"d0.test", "d1.test", "d2.test", "d3.test",
                        "d4.test", "d5.test", "yahoo"}, sorted(rows))
    check("stale: spool queued kept", rows.get("d0.test", {}).get("queued")
          == 55 and rows.get("d0.test", {}).get("connections") is None)
    check("stale: paused site without live data",
          rows.get("yahoo", {}).get("queued") is None
          and rows.get("yahoo", {}).get("state") == "paused", rows.get("yahoo"))
    check("stale: paused domain", rows.get("d1.test", {}).get("state")
          == "paused")
    os.unlink(os.path.join(SPOOL, "status.json"))
    rc, out, _ = sluice("status")
    check("missing status.json: not running", rc == 0 and
          "sluiced is not running" in out and "d5.test" in out, out)
    with open(os.path.join(SPOOL, "status.json"), "w") as f:
        f.write('{"time_ms": ')
    rc, out, _ = sluice("status")
    check("broken status.json: not running, says why", rc == 0 and
          "sluiced is not running" in out and "status.json:" in out, out)

    # ----------------------- status_file of sluiced.conf (the one reader)
    # sluiced writes its live view where status_file says; the spool's
    # status.json (still broken here) is then not looked at
    live = os.path.join(T, "run", "live.json")
    os.makedirs(os.path.dirname(live))
    write_status(path=live, pid=5151)
    conf = os.path.join(T, "sluiced.conf")
    with open(conf, "w") as f:
        f.write("[sluiced]\nspool = %s\nehlo_hostname = mx.test\n"
                "status_file = %s\n" % (SPOOL, live))
    for how, args, env in (("--config", ("--config", conf), {}),
                           ("$SLUICE_CONFIG", (), {"SLUICE_CONFIG": conf})):
        rc, out, err = sluice(*args, "status", "--json", env_extra=env)
        doc = json.loads(out) if rc == 0 else {}
        check("status_file through %s: live view read" % how,
              doc.get("sluiced", {}).get("running") is True and
              doc["sluiced"].get("pid") == 5151, (rc, err,
                                                  doc.get("sluiced")))
    write_status(path=live, age_ms=60000)
    rc, out, _ = sluice("--config", conf, "status")
    check("stale status_file: not running, named",
          "sluiced is not running" in out and live in out, out)
    with open(conf, "a") as f:
        f.write("no_such_key = 1\n")
    rc, _, err = sluice("--config", conf, "status")
    check("a sluiced.conf that does not load: 78 with the line",
          rc == 78 and conf + ":5:" in err, (rc, err))
    write_status()

    # ------------------------------------------------------ exit codes
    rc, _, err = sluice("resume", "site", "yahoo")
    check("resume site", rc == 0, err)
    rc, _, err = sluice("resume", "site", "yahoo")
    check("resume again: 66", rc == 66 and "not paused" in err, (rc, err))
    rc, _, _ = sluice("resume", "domain", "never.test")
    check("resume unknown: 66", rc == 66, rc)
    rc, _, err = sluice("pause", "domain", "bad name")
    check("invalid name: 64", rc == 64 and "invalid name" in err, (rc, err))
    rc, _, _ = sluice("pause", "domain", "x" * 256)
    check("name too long: 64", rc == 64, rc)
    rc, _, _ = sluice("pause", "host", "x.test")
    check("bad kind: 64", rc == 64, rc)
    rc, _, _ = sluice("pause", "domain")
    check("missing name: 64", rc == 64, rc)
    rc, _, _ = sluice("pause", "domain", "x.test", "--reason", "a\nb")
    check("control character in reason: 64", rc == 64, rc)
    rc, out, _ = sluice("paused", "--json")
    check("after all that only d1.test is paused",
          rc == 0 and [p["name"] for p in json.loads(out)] == ["d1.test"], out)

    foreign = os.path.join(T, "foreign")
    os.mkdir(foreign)
    with open(os.path.join(foreign, "data.mdb"), "wb") as f:
        f.write(os.urandom(65536))
    for args in (("pause", "domain", "x.test"), ("resume", "domain", "x.test"),
                 ("paused",), ("status",)):
        rc, _, _ = sluice(*args, spool=foreign)
        check(f"{args[0]} on a foreign spool: 65", rc == 65, rc)
    # a pause may come before any mail: it creates the spool and holds
    rc, _, _ = sluice("pause", "domain", "x.test",
                      spool=os.path.join(T, "none"))
    check("pause on a missing spool creates it", rc == 0
          and os.path.exists(os.path.join(T, "none", "data.mdb")), rc)
    rc, out, _ = sluice("paused", spool=os.path.join(T, "none"))
    check("and the pause is there", rc == 0 and "x.test" in out, out)
    rc, _, _ = sluice("resume", "domain", "x.test",
                      spool=os.path.join(T, "none2"))
    check("resume on a missing spool: 66, not created", rc == 66
          and not os.path.exists(os.path.join(T, "none2")), rc)

    # ---------------------------------------------------------- --watch
    p = subprocess.Popen([SLUICE, "--spool", SPOOL, "status", "--watch",
                          "0.2", "--limit", "1"], env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    check("watch ends on SIGINT with 0", p.returncode == 0, (p.returncode, err))
    check("watch prints a block per refresh", out.count("\nSITE") >= 2,
          out[:400])
finally:
    H.cleanup()

sys.exit(H.summary())
