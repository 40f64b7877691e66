#!/usr/bin/python3
"""feedback_cli.py - `sluice feedback ingest` and `sluice suppress`
remove/import/export end to end.

Real deliveries first: account acme (domain acme.example verified with
--force), a list of contacts, a campaign sent; feedback-ids prints each
delivery with its VERP address and the Message-ID the renderer gives it
(the spool's secret).  The samples in tests/tools/feedback carry
placeholders (@@VERP@@, @@RCPT@@, @@MSGID@@, @@FBID@@, @@RDOM@@) filled
with one delivery each, then:

  postfix, exim, gmail, microsoft (text/rfc822-headers, CRLF)
      map through the VERP address to their delivery: bounced event with a
      hard category, suppressed as sluiced suppresses (reason "hard
      bounce: CATEGORY", added by the delivery's account) with source
      "dsn" (exim carries a
      Message-ID of the form sluice used before the MAC: the VERP token
      still matches);
  delayed     counted, no event, no suppression;
  bounce_rules  sluiced.conf (--config, and $SLUICE_CONFIG) names a rules
              file whose rule makes the postfix DSN quota-issues: the
              event carries that category and the address is not
              suppressed; a rules file that does not load exits 78;
  arf-yahoo   complaint: suppressed "complaint"/"arf", audit record;
  msgid-only  matched by the rendered Message-ID (inactive-mailbox,
              suppressed); the Message-ID of `campaign preview` verifies
              (delivery 0 is none: quarantined, not as a forgery);
  fbid-only   ARF matched only by Feedback-ID + Original-Rcpt-To: not
              authenticated, quarantined, audited as evidence, nothing
              suppressed;
  fbid-dsn    issue 15's case: a DSN with an unknown VERP address, an
              unknown Message-ID, the campaign's Feedback-ID and the
              contact as Final-Recipient: quarantined, no event, not
              suppressed, counted and audited;
  forged VERP + real Message-ID, forged VERP next to a genuine one, a
              Message-ID of sluice's form with a wrong MAC, a genuine VERP
              with a forged Message-ID: each quarantined as forged,
              delivery untouched, nothing suppressed;
  again       the postfix report a second time: a late bounce, no second
              terminal event, suppression already there;
  forged      a VERP token with one character changed: quarantined,
              delivery untouched;
  malformed   truncated multipart, missing boundary, garbage bytes: each
              quarantined with a .reason naming the problem;
  maildir     --maildir new/ messages handled and moved to cur/ with S;
              one the quarantine cannot take (exit 73) stays unseen in
              new/ and the next run takes it;
  roles       a viewer is refused (77) and the report quarantined;
  suppress    remove, import (CSV with reason/source, plain lines, bad
              lines), export CSV with reason, source, time.

usage: feedback_cli.py SLUICE FEEDBACK_IDS SAMPLE_DIR
"""
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys

import harness

SLUICE, IDS, SAMPLES = sys.argv[1], sys.argv[2], sys.argv[3]
# who acts when a call names no user (H.admin[0]): the bootstrap until
# setup() made the first user, then "ops", an owner of the master, through
# $SLUICE_USER (the bootstrap ends with the first user)
H = harness.Cli(SLUICE, "sluice-feedback-")
T, SPOOL = H.tmp, H.spool
check, run, ok, write = H.check, H.run, H.ok, H.write
CID = None


def deliveries():
    out = subprocess.run([IDS, SPOOL], capture_output=True, text=True,
                         check=True).stdout
    rows = {}
    for line in out.splitlines():
        i, c, a, rcpt, verp, mid = line.split()
        rows[rcpt] = {"id": int(i), "campaign": int(c), "account": int(a),
                      "verp": verp + "@acme.example", "msgid": mid}
    return rows


def sample(name, d, verp=None, msgid=True, orig_verp=None):
    """The sample filled for delivery d: its VERP address (or verp), its
    rendered Message-ID (msgid True; False: a foreign one; or a string),
    and orig_verp, when given, as the original's Return-Path only."""
    with open(os.path.join(SAMPLES, name), "rb") as f:
        text = f.read().decode("latin-1")
    rcpt = d["rcpt"]
    if orig_verp:
        text = text.replace("Return-Path: <@@VERP@@>",
                            "Return-Path: <%s>" % orig_verp)
    if msgid is True:
        msgid = d["msgid"]
    text = (text.replace("@@VERP@@", verp or d["verp"])
            .replace("@@RCPT@@", rcpt)
            .replace("@@RDOM@@", rcpt.split("@")[1])
            .replace("@@MSGID@@", msgid or "x@y.example")
            .replace("@@FBID@@", "%d:%d:1:sluice" % (d["campaign"],
                                                   d["account"])))
    path = os.path.join(T, "in-" + name)
    with open(path, "wb") as f:
        f.write(text.encode("latin-1"))
    return path


def ingest(*paths, user=None, extra=()):
    rc, out, err = run("feedback", "ingest", *paths, "--json", *extra,
                       user=user)
    try:
        j = json.loads(out)
    except ValueError:
        check("ingest --json is JSON", False, out[:300] + err[:300])
        j = {"reports": [], "summary": {}}
    return rc, j, err


def history(did):
    rc, out, err = run("spool", "history", str(did), "--json")
    try:
        return [json.loads(x) for x in out.splitlines() if x.strip()]
    except ValueError:
        return None


def suppressions():
    rc, out, _ = run("suppress", "list", "--json")
    return {r["email"]: r for r in json.loads(out)} if rc == 0 else {}


def audits(action):
    rc, out, _ = run("audit", "list", "--json")
    return [a for a in json.loads(out) if a["action"] == action] \
        if rc == 0 else []


def flip(s, i):
    """s with its character i replaced by another base32 character."""
    return s[:i] + ("a" if s[i] != "a" else "b") + s[i + 1:]


CONTACTS = ["pf@p.example", "ex@e.example", "gm@g.example",
            "ms@m.example", "dl@d.example", "ya@y.example",
            "mi@i.example", "fb@f.example", "fo@o.example",
            "u8@u.example", "fv@v.example", "fw@w.example",
            "fm@n.example", "fg@j.example", "br@r.example",
            "bs@s.example"]


def setup():
    ok("account", "account", "create", "acme")
    ok("domain", "domain", "add", "acme.example", "--account", "acme",
       "--algo", "ed25519")
    ok("verify", "domain", "verify", "acme.example", "--force")
    ok("user ops", "user", "add", "ops", "--account", "acme", "--role",
       "owner", "--password-stdin", stdin="pw-ops\n")
    H.admin[0] = "ops"
    ok("user viewer", "user", "add", "v", "--account", "acme", "--role",
       "viewer", "--password-stdin", stdin="pw-v\n")
    ok("list", "list", "create", "news", "--account", "acme")
    ok("import", "list", "import", "news",
       write("news.csv", "email\n" + "\n".join(CONTACTS) + "\n"),
       "--account", "acme")
    html = write("t.html", "<p>Hi</p><a href=\"{{unsubscribe_url}}\">u</a>")
    rc, out, err = run("campaign", "create", "c1", "--account", "acme",
                       "--list", "news", "--from", "Acme <news@acme.example>",
                       "--subject", "Hello", "--html", html, "--json")
    check("campaign create", rc == 0, err)
    cid = str(json.loads(out)["id"])
    ok("campaign send", "campaign", "send", cid)
    rows = deliveries()
    for r, d in rows.items():
        d["rcpt"] = r
    check("a delivery per contact", len(rows) == len(CONTACTS), rows)
    global CID
    CID = cid
    return rows


def one(j):
    reps = j.get("reports") or [{}]
    return reps[0]


def test_dsns(D):
    for name, rcpt, cat in (("postfix.eml", "pf@p.example", "bad-mailbox"),
                            ("exim.eml", "ex@e.example", "bad-mailbox"),
                            ("gmail.eml", "gm@g.example", "bad-mailbox"),
                            ("microsoft.crlf.eml", "ms@m.example",
                             ("bad-domain", "bad-mailbox"))):
        d = D[rcpt]
        # exim: a message sent before the Message-ID had its MAC
        old = "%d.%d.abcdefghijklm@acme.example" % (d["campaign"], d["id"])
        rc, j, err = ingest(sample(name, d, msgid=old if name == "exim.eml"
                                   else True))
        r = one(j)
        check(name + " exits 0", rc == 0, err)
        check(name + " matched by verp", r.get("matched_by") == "verp", r)
        check(name + " right delivery", r.get("delivery") == d["id"], r)
        check(name + " bounced", r.get("outcome") == "bounced", r)
        check(name + " category", r.get("category") in
              ((cat,) if isinstance(cat, str) else cat), r)
        check(name + " suppressed", r.get("suppressed") == "added", r)
        h = history(d["id"]) or []
        check(name + " bounced event", len(h) == 1 and
              h[0].get("type") == "bounced", h)
        s = suppressions().get(rcpt, {})
        # the entry sluiced's own bounce makes; only the source differs
        check(name + " suppression as sluiced's, source dsn",
              s.get("source") == "dsn" and
              s.get("reason") == "hard bounce: " + r.get("category", "?") and
              s.get("added_by") == "acme", s)


def test_delayed(D):
    d = D["dl@d.example"]
    rc, j, err = ingest(sample("delayed.eml", d))
    r = one(j)
    check("delayed outcome", r.get("outcome") == "delayed", r)
    check("delayed: no event", history(d["id"]) == [], history(d["id"]))
    check("delayed: not suppressed", "dl@d.example" not in suppressions())
    check("delayed summary", j["summary"].get("delayed") == 1, j["summary"])


QUOTA_ISSUES = 4   # queue_category number of "quota-issues" (queue.h)


def test_bounce_rules(D):
    """`sluice feedback` classifies with sluiced.conf's bounce_rules."""
    rules = write("site.rules", "# a site rule ahead of the shipped ones\n"
                  "quota-issues 550 5.1.1 /recipient address rejected/\n")
    conf = write("rules.conf", "[sluiced]\nspool = %s\nehlo_hostname = "
                 "mta.acme.example\nbounce_rules = %s\n" % (SPOOL, rules))
    for rcpt, how in (("br@r.example", "--config"),
                      ("bs@s.example", "SLUICE_CONFIG")):
        d = D[rcpt]
        path = sample("postfix.eml", d)
        if how == "--config":
            rc, out, err = run("--config", conf, "feedback", "ingest", path,
                               "--json")
        else:
            rc, out, err = run("feedback", "ingest", path, "--json",
                               env_extra={"SLUICE_CONFIG": conf})
        try:
            r = one(json.loads(out))
        except ValueError:
            r = {}
        check("bounce_rules (%s) exits 0" % how, rc == 0, err)
        check("bounce_rules (%s): the site rule's category" % how,
              r.get("outcome") == "bounced" and
              r.get("category") == "quota-issues", r)
        h = history(d["id"]) or []
        check("bounce_rules (%s): the event's category" % how,
              len(h) == 1 and h[0].get("category") == QUOTA_ISSUES, h)
        check("bounce_rules (%s): a quota bounce does not suppress" % how,
              rcpt not in suppressions() and not r.get("suppressed"), r)
    bad = write("bad.rules", "no-such-category * * *\n")
    badconf = write("bad.conf", "[sluiced]\nspool = %s\nehlo_hostname = "
                    "mta.acme.example\nbounce_rules = %s\n" % (SPOOL, bad))
    rc, out, err = run("--config", badconf, "feedback", "ingest",
                       sample("postfix.eml", D["br@r.example"]), "--json")
    check("a bounce_rules file that does not load exits 78", rc == 78,
          "exit %d: %s" % (rc, err))
    check("its error names the file and line", "bad.rules:1" in err, err)


def test_arf(D):
    d = D["ya@y.example"]
    rc, j, err = ingest(sample("arf-yahoo.eml", d))
    r = one(j)
    check("arf exits 0", rc == 0, err)
    check("arf complaint", r.get("outcome") == "complaint" and
          r.get("delivery") == d["id"] and r.get("category") == "abuse", r)
    s = suppressions().get("ya@y.example", {})
    check("arf suppression", s.get("reason") == "complaint" and
          s.get("source") == "arf", s)
    rc, out, _ = run("audit", "list", "--json")
    acts = [(a["action"], a["object"]) for a in json.loads(out)]
    check("complaint audited", any(a == "feedback complaint" and
                                   "delivery %d " % d["id"] in o
                                   for a, o in acts), acts[-5:])


def test_message_id(D):
    """(e) the Message-ID the renderer gives a delivery authenticates it."""
    d = D["mi@i.example"]
    check("rendered Message-ID form",
          re.fullmatch(r"%d\.%d\.[a-z2-7]{13}\.[a-z2-7]{16}@acme\.example"
                       % (d["campaign"], d["id"]), d["msgid"]) is not None,
          d["msgid"])
    rc, j, err = ingest(sample("msgid-only.eml", d))
    r = one(j)
    check("msgid-only matched by message-id",
          r.get("matched_by") == "message-id" and
          r.get("delivery") == d["id"], r)
    check("msgid-only inactive", r.get("category") == "inactive-mailbox" and
          r.get("suppressed") == "added", r)
    h = history(d["id"]) or []
    check("msgid-only bounced event", len(h) == 1 and
          h[0].get("type") == "bounced", h)
    # `campaign preview` renders for delivery 0 with the spool's secret:
    # its Message-ID verifies (no such delivery: unmatched, not forged)
    rc, out, err = run("campaign", "preview", CID, "--contact",
                       "fw@w.example", "--json")
    msg = json.loads(out).get("message", "") if rc == 0 else ""
    m = re.search(r"^Message-ID: <([^>]+)>\r?$", msg, re.M)
    check("preview Message-ID", m is not None and m.group(1).startswith(
        "%s.0." % CID) and m.group(1).endswith("@acme.example"), msg[:600])
    pd = dict(D["fw@w.example"], id=0)
    rc, j, err = ingest(sample("msgid-only.eml", pd,
                               msgid=m.group(1) if m else "x@y"))
    r = one(j)
    check("preview Message-ID verifies", r.get("outcome") == "quarantined"
          and "Message-ID's delivery unknown" in r.get("reason", ""), r)


def test_unauthenticated(D):
    """(a) a Feedback-ID alone never suppresses nor records a bounce."""
    before = len(audits("feedback unauthenticated"))
    # issue 15's case: unknown VERP, unknown Message-ID, the campaign's
    # Feedback-ID, Final-Recipient u8
    d = D["u8@u.example"]
    rc, j, err = ingest(sample("postfix.eml", d,
                               verp="b-nosuchtoken@acme.example",
                               msgid="20240603.unknown@elsewhere.example"))
    r = one(j)
    check("fbid dsn exits 0", rc == 0, err)
    check("fbid dsn quarantined", r.get("outcome") == "quarantined" and
          r.get("reason") == "matched only by Feedback-ID (not "
          "authenticated)", r)
    check("fbid dsn names the campaign", r.get("campaign") == d["campaign"]
          and r.get("matched_by") == "feedback-id", r)
    check("fbid dsn: u8 not suppressed", "u8@u.example" not in
          suppressions())
    check("fbid dsn: no bounced event", history(d["id"]) == [],
          history(d["id"]))
    check("fbid dsn counted", j["summary"].get("unauthenticated") == 1 and
          j["summary"].get("suppressed") == 0 and
          j["summary"].get("bounced") == 0, j["summary"])
    q = r.get("quarantine", "")
    try:
        reason = open(q[:-4] + ".reason").read()
    except OSError:
        reason = ""
    check("fbid dsn .reason", "matched only by Feedback-ID" in reason, q)
    a = audits("feedback unauthenticated")
    check("fbid dsn audited as evidence", len(a) == before + 1 and
          "campaign %d," % d["campaign"] in a[-1]["object"] and
          "u8@u.example" in a[-1]["object"] and
          "dsn failed 5.1.1" in a[-1]["object"], a[-1:])
    # an ARF complaint with only the Feedback-ID: evidence, not acted on
    d = D["fb@f.example"]
    rc, j, err = ingest(sample("fbid-only.eml", d))
    r = one(j)
    check("fbid arf quarantined", r.get("outcome") == "quarantined" and
          "not authenticated" in r.get("reason", "") and
          r.get("delivery") == d["id"], r)
    check("fbid arf: not suppressed", "fb@f.example" not in suppressions())
    a = audits("feedback unauthenticated")
    check("fbid arf audited", len(a) == before + 2 and
          "arf abuse" in a[-1]["object"], a[-1:])
    check("fbid arf: no complaint recorded",
          not any("delivery %d " % d["id"] in x["object"]
                  for x in audits("feedback complaint")))
    rc, out, err = run("feedback", "ingest", sample("fbid-only.eml", d))
    check("summary line counts it", "1 quarantined (1 matched only by "
          "Feedback-ID)" in out, out)


def test_forgeries(D):
    """(b), (c): a token that does not verify quarantines the report,
    whatever else in it matches."""
    d = D["fv@v.example"]
    v = d["verp"]
    cases = (
        # (b) the version character changed, with the real Message-ID
        ("forged VERP (version) + real Message-ID", "fv@v.example",
         dict(verp=flip(v, 2)), "forged VERP"),
        # (b) the MAC changed in the report's envelope, the genuine one in
        # the original's Return-Path, and the real Message-ID
        ("forged VERP next to a genuine one", "fv@v.example",
         dict(verp=flip(v, 40), orig_verp=v), "forged VERP"),
        # (c) the Message-ID's MAC changed, no VERP address
        ("Message-ID with a wrong MAC", "fm@n.example",
         dict(msgid=flip(D["fm@n.example"]["msgid"],
                         D["fm@n.example"]["msgid"].index("@") - 1)),
         "forged Message-ID"),
        # a genuine VERP token with a forged Message-ID
        ("genuine VERP + forged Message-ID", "fg@j.example",
         dict(msgid=flip(D["fg@j.example"]["msgid"],
                         D["fg@j.example"]["msgid"].index("@") - 3)),
         "forged Message-ID"),
        # genuine tokens of two different deliveries
        ("VERP and Message-ID of different deliveries", "fg@j.example",
         dict(msgid=D["fv@v.example"]["msgid"]), "different deliveries"),
    )
    for name, rcpt, kw, why in cases:
        d = D[rcpt]
        smp = "msgid-only.eml" if "verp" not in kw and \
            name.startswith("Message-ID") else "postfix.eml"
        rc, j, err = ingest(sample(smp, d, **kw))
        r = one(j)
        check(name + ": exits 0", rc == 0, err)
        check(name + ": quarantined", r.get("outcome") == "quarantined" and
              why in r.get("reason", ""), r)
        check(name + ": no event", history(d["id"]) == [], history(d["id"]))
        check(name + ": not suppressed", rcpt not in suppressions())
        check(name + ": nothing done", j["summary"].get("bounced") == 0 and
              j["summary"].get("suppressed") == 0, j["summary"])


def test_late(D):
    d = D["pf@p.example"]
    rc, j, err = ingest(sample("postfix.eml", d))
    r = one(j)
    check("late bounce", r.get("outcome") == "late-bounce" and
          r.get("suppressed") == "already", r)
    check("late: still one terminal event", len(history(d["id"]) or []) == 1)
    check("late summary", j["summary"].get("late_bounces") == 1, j)


def test_forged(D):
    d = D["fo@o.example"]
    v = d["verp"]
    i = 10
    forged = v[:i] + ("a" if v[i] != "a" else "b") + v[i + 1:]
    rc, j, err = ingest(sample("postfix.eml", d, verp=forged, msgid=False))
    r = one(j)
    check("forged quarantined", r.get("outcome") == "quarantined" and
          "forged" in r.get("reason", ""), r)
    check("forged: delivery untouched", history(d["id"]) == [])
    check("forged: not suppressed", "fo@o.example" not in suppressions())
    q = r.get("quarantine", "")
    check("forged: quarantine file", os.path.isfile(q) and
          os.path.isfile(q[:-4] + ".reason"), q)


def test_malformed(D):
    d = D["fo@o.example"]
    qdir = os.path.join(T, "quar")
    for name, why in (("bad-truncated.eml", "truncated multipart"),
                      ("bad-noboundary.eml", "without a boundary"),
                      ("bad-garbage.eml", "not a multipart/report")):
        rc, j, err = ingest(sample(name, d), extra=("--quarantine", qdir))
        r = one(j)
        check(name + " exits 0", rc == 0, err)
        check(name + " quarantined", r.get("outcome") == "quarantined" and
              why in r.get("reason", ""), r)
        q = r.get("quarantine", "")
        check(name + " in --quarantine dir", q.startswith(qdir + "/"), q)
        try:
            reason = open(q[:-4] + ".reason").read()
        except OSError:
            reason = ""
        check(name + " .reason", why in reason, reason)
    check("malformed: delivery untouched", history(d["id"]) == [])


def test_maildir(D):
    md = os.path.join(T, "Maildir")
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(md, sub))
    d = D["fo@o.example"]
    shutil.copy(sample("delayed.eml", d), os.path.join(md, "new", "1.a.h"))
    shutil.copy(sample("bad-garbage.eml", d), os.path.join(md, "new",
                                                          "2.b.h"))
    rc, out, err = run("feedback", "ingest", "--maildir", md)
    check("maildir exits 0", rc == 0, err)
    check("maildir summary line", "2 reports" in out and "1 delayed" in out
          and "1 quarantined" in out, out)
    check("maildir: handled moved to cur with S",
          os.listdir(os.path.join(md, "cur")) == ["1.a.h:2,S"] and
          os.listdir(os.path.join(md, "new")) == [],
          (os.listdir(os.path.join(md, "cur")),
           os.listdir(os.path.join(md, "new"))))
    rc, out, err = run("feedback", "ingest", "--maildir", md)
    check("maildir: seen ones skipped", "0 reports" in out, out)
    # a report that cannot be kept (the quarantine is a plain file) stays
    # unseen in new/ for the next run, which takes it
    plain = os.path.join(T, "not-a-dir")
    write(plain, "")
    shutil.copy(sample("bad-garbage.eml", d), os.path.join(md, "new",
                                                          "3.c.h"))
    rc, out, err = run("feedback", "ingest", "--maildir", md,
                       "--quarantine", plain)
    check("maildir: quarantine not writable exits 73", rc == 73, (rc, err))
    check("maildir: the message says why", plain in err, err)
    check("maildir: unkept report stays in new/",
          os.listdir(os.path.join(md, "new")) == ["3.c.h"] and
          os.listdir(os.path.join(md, "cur")) == ["1.a.h:2,S"],
          (os.listdir(os.path.join(md, "new")),
           os.listdir(os.path.join(md, "cur"))))
    rc, out, err = run("feedback", "ingest", "--maildir", md)
    check("maildir: taken on the next run", rc == 0 and "1 quarantined" in out
          and os.listdir(os.path.join(md, "new")) == [], (rc, out, err))


def test_roles(D):
    d = D["fo@o.example"]
    rc, j, err = ingest(sample("delayed.eml", d), user="v")
    r = one(j)
    check("viewer refused 77", rc == 77, (rc, err))
    check("viewer: quarantined as refused", "refused" in r.get("reason", ""),
          r)


def test_suppress():
    rc, out, err = run("suppress", "remove", "gm@g.example")
    check("remove exits 0", rc == 0, err)
    check("removed", "gm@g.example" not in suppressions())
    rc, out, err = run("suppress", "remove", "gm@g.example")
    check("remove again: 66", rc == 66, (rc, err))
    path = write("supp.csv", "email,reason,source\n"
                 "a1@x.example,spam trap,vendor\n"
                 "\"a2@x.example\",\"old, bounced\"\n"
                 "a3@x.example\n"
                 "# comment\n"
                 "not-an-address\n"
                 "ya@y.example,dup,dup\n")
    rc, out, err = run("suppress", "import", path, "--reason", "legacy",
                       "--json")
    check("import exits 0", rc == 0, err)
    j = json.loads(out) if rc == 0 else {}
    check("import counts", j == {"added": 3, "already": 1, "invalid": 1}, j)
    check("import names the bad line", "line 6" in err, err)
    s = suppressions()
    check("import reason/source", s.get("a1@x.example", {}).get("reason") ==
          "spam trap" and s["a1@x.example"].get("source") == "vendor", s)
    check("import quoted reason, default source",
          s.get("a2@x.example", {}).get("reason") == "old, bounced" and
          s["a2@x.example"].get("source") == "import", s)
    check("import default reason", s.get("a3@x.example", {}).get("reason")
          == "legacy", s)
    check("import keeps the first record",
          s.get("ya@y.example", {}).get("reason") == "complaint")
    rc, out, err = run("suppress", "export")
    check("export exits 0", rc == 0, err)
    rows = list(csv.DictReader(io.StringIO(out)))
    by = {r["email"]: r for r in rows}
    check("export header",
          out.startswith("email,reason,source,since,added_by\n"), out[:80])
    check("export added_by", by.get("a1@x.example", {}).get("added_by") ==
          "acme", by.get("a1@x.example"))
    check("export all", set(by) == set(s), (set(by), set(s)))
    check("export quoting", by.get("a2@x.example", {}).get("reason") ==
          "old, bounced", by.get("a2@x.example"))
    check("export time", all(r["since"].endswith("Z") for r in rows), rows)
    rc, out, err = run("suppress", "import", path, user="v")
    check("viewer import refused", rc == 77, (rc, err))
    rc, out, err = run("suppress", "export", user="v")
    check("viewer export allowed", rc == 0, err)


def main():
    try:
        D = setup()
        test_dsns(D)
        test_delayed(D)
        test_bounce_rules(D)
        test_arf(D)
        test_message_id(D)
        test_unauthenticated(D)
        test_forgeries(D)
        test_late(D)
        test_forged(D)
        test_malformed(D)
        test_maildir(D)
        test_roles(D)
        test_suppress()
    finally:
        H.cleanup()
    sys.exit(H.summary("feedback_cli: "))


main()
