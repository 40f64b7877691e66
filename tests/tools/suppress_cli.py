#!/usr/bin/python3
"""suppress_cli.py - who sees, removes and is blocked by the entries of a
shared suppression list, end to end through `sluice`.

A master m with sub-accounts b and c, both sharing m's suppression list
(the default).  Users: m-admin (admin on m, the first user: every command
after it runs with --as), m-manager and m-viewer on m, b-mgr on b, c-mgr
on c.  Then:

  added by    b's manager suppresses x@ (`suppress add`); a DSN for b's
              campaign delivery to bb@ (ingested by the master's admin,
              VERP-matched) records the bounce: both entries are b's; c's
              manager adds own@: c's.  Listings show "added by" (JSON
              added_by, text column, export column).
  views       c's manager lists and exports only own@; b's manager only
              its two; a user with a role on the master (viewer, admin)
              sees all of them whatever account is named.
  remove      c's manager removing x@ is refused (77, "added by b: only an
              admin of the master may remove it", audited as a refusal)
              and x@ stays; the master's manager is refused b's bb@ too;
              b's manager removes its own x@; the master's admin removes
              bb@ through c; the master's manager removes an entry of the
              master's.
  blocking    c's campaign to a list holding x@, bb@ and own@ skips all
              three at send (b's entries block c's mail) and queues none
              of them.
  import      c's import of a file holding b's x@ and a new address: x@ is
              "already" and stays b's (reason unchanged), the new one is
              c's.
  old format  an entry written in the record layout from before "added
              by" (u8 1, i64 since, str8 reason, str8 source; put with
              mdb_load) lists as the master's, marked "(old)" and
              added_by_recorded false; c's manager cannot see or remove
              it; `spool check` finds the spool sound; the master's
              manager removes it.

usage: suppress_cli.py SLUICE FEEDBACK_IDS SAMPLE_DIR
"""
import csv
import io
import json
import os
import struct
import subprocess
import sys

import harness

SLUICE, IDS, SAMPLES = sys.argv[1], sys.argv[2], sys.argv[3]
# no call acts through $SLUICE_USER: each names its user (or none: the
# bootstrap)
H = harness.Cli(SLUICE, "sluice-suppress-")
T, SPOOL = H.tmp, H.spool
check, run, ok, write = H.check, H.run, H.ok, H.write


def js(name, *args, **kw):
    out = ok(name, *(list(args) + ["--json"]), **kw)
    try:
        return json.loads(out)
    except ValueError:
        check(name + " is JSON", False, out[:300])
        return None


def listing(acct, user):
    """`suppress list --account acct --json` as user: {email: entry}."""
    j = js("list %s as %s" % (acct, user), "suppress", "list", "--account",
           acct, user=user) or []
    return {r["email"]: r for r in j}


def deliveries():
    out = subprocess.run([IDS, SPOOL], capture_output=True, text=True,
                         check=True).stdout
    rows = []
    for line in out.splitlines():
        i, c, a, rcpt, verp, msgid = line.split()
        rows.append({"id": int(i), "campaign": int(c), "account": int(a),
                     "rcpt": rcpt, "verp": verp, "message_id": msgid})
    return rows


def dsn_for(d):
    """The Postfix DSN sample filled in for delivery d (VERP-matched)."""
    with open(os.path.join(SAMPLES, "postfix.eml"), "rb") as f:
        text = f.read().decode("latin-1")
    text = (text.replace("@@VERP@@", d["verp"] + "@b.example")
            .replace("@@RCPT@@", d["rcpt"])
            .replace("@@RDOM@@", d["rcpt"].split("@")[1])
            .replace("@@MSGID@@", "unknown@elsewhere.example")
            .replace("@@FBID@@", "0:0:0:other"))
    path = os.path.join(T, "dsn-%d.eml" % d["id"])
    with open(path, "wb") as f:
        f.write(text.encode("latin-1"))
    return path


X, BB, OWN = "x@r.example", "bb@r.example", "own@r.example"
OTHERS = ["p%d@r.example" % i for i in range(4)]
ADMIN, MMGR, MVIEW, BM, CM = "m-admin", "m-manager", "m-viewer", "b-mgr", \
    "c-mgr"
ID = {}


def setup():
    for a in ("m", "b", "c"):
        ok("create " + a, "account", "create", a)
    H.add_user(ADMIN, "m", "admin", label="first user")
    for u, acct, role in ((MMGR, "m", "manager"), (MVIEW, "m", "viewer"),
                          (BM, "b", "manager"), (CM, "c", "manager")):
        H.add_user(u, acct, role, user=ADMIN)
    for a in ("m", "b", "c"):
        j = js("show " + a, "account", "show", a, user=ADMIN) or {}
        ID[a] = j.get("id")
        if a != "m":
            check(a + " shares the master's list",
                  j.get("suppression") == "shared", j)
    for a in ("b", "c"):
        ok("domain " + a, "domain", "add", a + ".example", "--account", a,
           "--algo", "ed25519", user=ADMIN)
        ok("verify " + a, "domain", "verify", a + ".example", "--force",
           user=ADMIN)
    html = write("t.html", "<p>Hi</p><a href=\"{{unsubscribe_url}}\">u</a>")
    for a, rows in (("b", [X, BB] + OTHERS[:2]),
                    ("c", [X, BB, OWN] + OTHERS)):
        mgr = BM if a == "b" else CM
        ok("list " + a, "list", "create", "news", "--account", a, user=mgr)
        ok("import " + a, "list", "import", "news",
           write(a + ".csv", "email\n" + "\n".join(rows) + "\n"),
           "--account", a, user=mgr)
    return html


def campaign(acct, mgr, html):
    rc, out, err = run("campaign", "create", "c-" + acct, "--account", acct,
                       "--list", "news", "--from",
                       "N <news@%s.example>" % acct, "--subject", "Hello",
                       "--html", html, "--json", user=mgr)
    check("campaign create " + acct, rc == 0, err)
    cid = str(json.loads(out)["id"]) if rc == 0 else "0"
    return js("campaign send " + acct, "campaign", "send", cid,
              "--account", acct, user=mgr) or {}


def test_added_by(html):
    # b's own action
    out = ok("b suppresses x", "suppress", "add", X, "--account", "b",
             "--reason", "asked by phone", user=BM)
    check("add says who added it", "added by b" in out, out)
    # b's contact's action: a hard bounce of b's delivery, matched by VERP,
    # ingested by the master's admin (attributed to the delivery's account)
    campaign("b", BM, html)
    d = [r for r in deliveries() if r["rcpt"] == BB and
         r["account"] == ID["b"]]
    check("b has a delivery to bb", len(d) == 1, d)
    if d:
        rc, out, err = run("feedback", "ingest", dsn_for(d[0]), "--json",
                           user=ADMIN)
        rep = (json.loads(out).get("reports") or [{}])[0] if rc == 0 else {}
        check("dsn ingested", rc == 0 and rep.get("outcome") == "bounced",
              (rc, out[:300], err[:300]))
    # c's own
    ok("c suppresses own", "suppress", "add", OWN, "--account", "c",
       user=CM)
    s = listing("m", ADMIN)
    check("x is b's", s.get(X, {}).get("added_by") == "b" and
          s[X].get("added_by_recorded") is True, s.get(X))
    check("the bounce is b's", s.get(BB, {}).get("added_by") == "b" and
          s[BB].get("source") == "dsn", s.get(BB))
    check("own is c's", s.get(OWN, {}).get("added_by") == "c", s.get(OWN))


def test_views():
    s = listing("c", CM)
    check("c's manager sees only c's entries", set(s) == {OWN}, set(s))
    rc, out, err = run("suppress", "list", "--account", "c", user=CM)
    check("c's text listing: no x, no bb", rc == 0 and OWN in out and
          X not in out and BB not in out, out)
    check("text listing has the ADDED BY column", "ADDED BY" in out, out)
    rc, out, err = run("suppress", "export", "--account", "c", user=CM)
    rows = list(csv.DictReader(io.StringIO(out)))
    check("c's export: only own, with added_by",
          rc == 0 and [(r["email"], r.get("added_by")) for r in rows] ==
          [(OWN, "c")], (rc, out, err))
    s = listing("b", BM)
    check("b's manager sees b's two", set(s) == {X, BB}, set(s))
    for u in (MVIEW, ADMIN):
        s = listing("c", u)
        check("%s (role on the master) sees all through c" % u,
              set(s) == {X, BB, OWN} and s[X].get("added_by") == "b", s)
    rc, out, err = run("suppress", "export", "--account", "m", user=MVIEW)
    rows = {r["email"]: r.get("added_by")
            for r in csv.DictReader(io.StringIO(out))}
    check("master's export names who added each",
          rows == {X: "b", BB: "b", OWN: "c"}, rows)


def test_blocking(html):
    j = campaign("c", CM, html)
    check("c's send skips x, bb (b's) and own (c's)",
          j.get("suppressed") == 3 and j.get("recipients") == len(OTHERS),
          j)
    mailed = {r["rcpt"] for r in deliveries() if r["account"] == ID["c"]}
    check("c queued none of them", mailed == set(OTHERS), mailed)


def test_remove():
    rc, out, err = run("suppress", "remove", X, "--account", "c", user=CM)
    check("c removing b's entry: 77", rc == 77, (rc, out, err))
    check("... says who added it",
          "added by b: only an admin of the master may remove it" in err,
          err)
    check("... and it stays", X in listing("m", ADMIN))
    recs = js("audit", "audit", "list", user=ADMIN) or []
    check("the refusal is audited", any(
        r["action"] == "suppress remove" and r["user"] == CM and
        r["result"].startswith("refused") and "added by b" in r["result"]
        for r in recs), recs[-3:])
    rc, out, err = run("suppress", "remove", BB, "--account", "m",
                       user=MMGR)
    check("the master's manager removing b's entry: 77", rc == 77,
          (rc, err))
    ok("b removes its own", "suppress", "remove", X, "--account", "b",
       user=BM)
    check("x is gone", X not in listing("m", ADMIN))
    ok("the master's admin removes b's entry through c", "suppress",
       "remove", BB, "--account", "c", user=ADMIN)
    check("bb is gone", BB not in listing("m", ADMIN))
    recs = js("audit", "audit", "list", user=ADMIN) or []
    check("the admin's removal is audited with who added it", any(
        r["action"] == "suppress remove" and r["user"] == ADMIN and
        r["result"] == "ok" and "(added by b)" in r["object"]
        for r in recs), recs[-3:])
    ok("the master's entry", "suppress", "add", "mm@r.example",
       "--account", "m", user=ADMIN)
    ok("the master's manager removes a master entry", "suppress", "remove",
       "mm@r.example", "--account", "m", user=MMGR)
    rc, out, err = run("suppress", "remove", "nobody@r.example",
                       "--account", "c", user=CM)
    check("an address not listed: 66", rc == 66, (rc, err))


def test_import():
    ok("b's entry again", "suppress", "add", X, "--account", "b",
       "--reason", "b's", user=BM)
    path = write("c-import.csv", "%s,c's reason\nnew-c@r.example\n" % X)
    rc, out, err = run("suppress", "import", path, "--account", "c",
                       "--json", user=CM)
    j = json.loads(out) if rc == 0 else {}
    check("c's import: one added, one already", j == {
        "added": 1, "already": 1, "invalid": 0}, (rc, out, err))
    s = listing("m", ADMIN)
    check("x stays b's, reason unchanged", s.get(X, {}).get("added_by") ==
          "b" and s[X].get("reason") == "b's", s.get(X))
    check("the new one is c's", s.get("new-c@r.example", {})
          .get("added_by") == "c", s.get("new-c@r.example"))


def mdb_put_old(owner, addr, since, reason, source):
    """Put a suppression record of format 1 (before "added by") with
    mdb_load: u8 1, i64 since, str8 reason, str8 source (little-endian);
    key u32 owner (big-endian) . address."""
    key = struct.pack(">I", owner) + addr.encode()
    val = (b"\x01" + struct.pack("<q", since) +
           bytes([len(reason)]) + reason.encode() +
           bytes([len(source)]) + source.encode())
    text = ("VERSION=3\nformat=bytevalue\ntype=btree\nHEADER=END\n"
            " %s\n %s\nDATA=END\n" % (key.hex(), val.hex()))
    p = subprocess.run(["mdb_load", "-s", "suppress", SPOOL], input=text,
                       text=True, capture_output=True, timeout=60)
    check("mdb_load of a format-1 record", p.returncode == 0, p.stderr)


def test_old_format():
    mdb_put_old(ID["m"], "old@r.example", 1700000000, "unsubscribed",
                "one-click")
    rc, out, err = run("spool", "check", user=ADMIN)
    check("spool check takes both formats", rc == 0, (rc, out, err))
    s = listing("m", ADMIN)
    o = s.get("old@r.example", {})
    check("the old entry reads as the master's, not recorded",
          o.get("added_by") == "m" and o.get("added_by_recorded") is False
          and o.get("reason") == "unsubscribed" and
          o.get("source") == "one-click" and
          o.get("since", "").startswith("2023-11-14"), o)
    check("the new ones are recorded", s.get(X, {}).get("added_by_recorded")
          is True, s.get(X))
    rc, out, err = run("suppress", "list", "--account", "m", user=ADMIN)
    line = [x for x in out.splitlines() if x.startswith("old@r.example")]
    check("text listing says (old)", line and "m (old)" in line[0], out)
    check("c does not see it", "old@r.example" not in listing("c", CM))
    rc, out, err = run("suppress", "remove", "old@r.example", "--account",
                       "c", user=CM)
    check("c removing the master's old entry: 77", rc == 77 and
          "added by m" in err, (rc, err))
    j = campaign_probe()
    check("the old entry still blocks", j, j)
    ok("the master's manager removes it", "suppress", "remove",
       "old@r.example", "--account", "m", user=MMGR)
    check("it is gone", "old@r.example" not in listing("m", ADMIN))


def campaign_probe():
    """Whether the old entry is on the list c uses (`list import` into a
    fresh list of c skips it as suppressed)."""
    ok("probe list", "list", "create", "probe", "--account", "c", user=CM)
    rc, out, err = run("list", "import", "probe",
                       write("probe.csv", "email\nold@r.example\n"),
                       "--account", "c", "--json", user=CM)
    try:
        return rc == 0 and json.loads(out).get("suppressed") == 1
    except ValueError:
        return False


def main():
    try:
        html = setup()
        test_added_by(html)
        test_views()
        test_blocking(html)
        test_remove()
        test_import()
        test_old_format()
    finally:
        H.cleanup()
    sys.exit(H.summary("suppress_cli: "))


main()
