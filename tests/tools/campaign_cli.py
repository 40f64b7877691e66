#!/usr/bin/python3
"""campaign_cli.py - `sluice campaign` end to end.

A master (acme, domain acme.example verified, unverified.example not) with
two sub-accounts (shop, sharing acme's suppression list, and blog); users
holding each role on acme (m-ROLE), nobody (no role) and b-owner (owner of
blog only).  Lists are imported from CSV with `sluice list import`.  Then:

  create      refused (77, audited) for a From domain that is not verified
              for the account, 66 for a list name of another account and
              77 for another account's list id, 65 with the part, line and
              column for a template that does not compile, 64/65 for a bad
              or past --schedule; update changes drafts only;
  preview     the message of one contact: merged fields, html-escaped in
              the html part and as-is in the text part, a non-ASCII subject
              as RFC 2047 encoded words, List-Unsubscribe with mailto and
              https, List-Unsubscribe-Post One-Click, Feedback-ID, and the
              VERP envelope sender (stderr and --json); --config takes the
              engine's unsubscribe host and bounce domain;
  send        queues exactly the contacts not suppressed (the master's list
              for a sub-account that shares it), refuses a second send
              (65); a scheduled campaign stays scheduled;
  controls    pause, resume and cancel set and clear the controls that
              `sluice paused` lists, and each writes an audit record;
  test        queues one rendered message and prints its delivery;
  matrix      every campaign command as viewer, sender, manager, admin,
              owner and no role: allowed or 77 naming the role needed;
  tenancy     blog's owner can neither see nor act on acme's campaigns;
  show        --json carries every documented field.

usage: campaign_cli.py SLUICE
"""
import email
import email.policy
import json
import re
import sys

import harness

H = harness.Cli(sys.argv[1], "sluice-campaign-")
SLUICE, T, SPOOL = H.sluice, H.tmp, H.spool
ROLES = ["viewer", "sender", "manager", "admin", "owner"]
RANK = {"none": 0, "viewer": 1, "sender": 2, "manager": 3, "admin": 4,
        "owner": 5}
# who acts when a call names no user: the bootstrap until setup() made the
# first user, then "ops", an owner of the master, through $SLUICE_USER (the
# bootstrap ends with the first user)
ADMIN = H.admin
check, run, ok, js, uniq, write = H.check, H.run, H.ok, H.js, H.uniq, H.write


def audit_actions():
    return [(r["action"], r["object"], r["result"])
            for r in (js("audit", "list") or [])]


# ------------------------------------------------------------------ setup

HTML = None
NEWS = ["ann@a.example,Ann,Lee", "bob@b.example,Bob,", "cy@c.example,Zoë <b>&,X"]


def setup():
    global HTML
    H.add_accounts("acme", "shop", "blog")
    H.add_user("ops", "acme", "owner")
    ADMIN[0] = "ops"
    for r in ROLES:
        H.add_user("m-" + r, "acme", r)
    H.add_user("nobody", None, "none")
    H.add_user("b-owner", "blog", "owner")
    for acct in ("acme", "shop", "blog"):
        H.add_domain(acct + ".example", acct, label=acct)
    ok("unverified domain", "domain", "add", "unverified.example",
       "--account", "acme", "--algo", "ed25519")
    lists = {
        ("acme", "news"): ["email,first,last"] + NEWS,
        ("shop", "shoplist"): ["email,first", "s1@s.example,S1",
                               "s2@s.example,S2", "shared@x.example,Sh"],
        ("blog", "bloglist"): ["email,first", "r@blog-readers.example,R"],
        ("acme", "count"): ["email,first"] + ["user%d@d%d.example,U%d" %
                                              (i, i % 4, i)
                                              for i in range(50)],
    }
    for (acct, name), rows in lists.items():
        ok("list " + name, "list", "create", name, "--account", acct)
        ok("import " + name, "list", "import", name,
           write(name + ".csv", "\n".join(rows) + "\n"), "--account", acct)
    HTML = write("t.html", "<html><body><p>Hi {{first|friend}} {{last}}</p>"
                 "<a href=\"{{unsubscribe_url}}\">unsubscribe</a>"
                 "</body></html>\n")


def create(name=None, acct="acme", lst="news", frm="Acme <news@acme.example>",
           extra=(), user=None):
    """Create a campaign; returns (rc, id or None, stderr)."""
    name = name or uniq("c")
    rc, out, err = run("campaign", "create", name, "--account", acct,
                       "--list", lst, "--from", frm, "--subject",
                       "Héllo {{first|friend}}", "--html", HTML, "--json",
                       *extra, user=user)
    cid = None
    if rc == 0:
        try:
            cid = str(json.loads(out)["id"])
        except (ValueError, KeyError):
            check("create --json gives an id", False, out[:200])
    return rc, cid, err


def draft(**kw):
    rc, cid, err = create(**kw)
    check("prep draft", rc == 0 and cid, "exit %d: %s" % (rc, err.strip()))
    return cid or "0"


def sending():
    cid = draft()
    ok("prep send", "campaign", "send", cid)
    return cid


def paused_():
    cid = sending()
    ok("prep pause", "campaign", "pause", cid)
    return cid


# ----------------------------------------------------------------- create

def test_create_checks():
    before = len(audit_actions())
    rc, _, err = create(frm="X <x@unverified.example>")
    check("unverified From domain: 77", rc == 77, "%d %s" % (rc, err))
    check("... says why", "unverified.example is not a verified sending "
          "domain of account acme" in err, err)
    recs = audit_actions()
    check("... refusal audited", len(recs) == before + 1 and
          recs[-1][0] == "campaign create" and
          recs[-1][2].startswith("refused"), str(recs[-1:]))
    rc, _, err = create(frm="X <x@sub.acme.example>")
    check("From a subdomain of a verified domain: ok", rc == 0, err)
    rc, _, err = create(lst="shoplist")
    check("list name of another account: 66", rc == 66, "%d %s" % (rc, err))
    shop = js("list", "show", "shoplist", "--account", "shop") or {}
    rc, _, err = create(lst=str(shop.get("id", 0)))
    check("list id of another account: 77", rc == 77, "%d %s" % (rc, err))
    check("... says so", "belongs to another account" in err, err)
    bad = write("bad.html", "<p>fine</p>\n<p>{{ first name }}</p>\n")
    rc, out, err = run("campaign", "create", uniq("bad"), "--account",
                       "acme", "--list", "news", "--from",
                       "A <a@acme.example>", "--subject", "s", "--html", bad)
    check("bad html template: 65", rc == 65, "%d %s" % (rc, err))
    check("... with part, line and column",
          re.search(r"html: line 2, column \d+", err) is not None, err)
    rc, out, err = run("campaign", "create", uniq("bad"), "--account",
                       "acme", "--list", "news", "--from",
                       "A <a@acme.example>", "--subject", "Hi {{first",
                       "--html", HTML)
    check("bad subject template: 65 with position", rc == 65 and
          re.search(r"subject: line 1, column \d+", err) is not None,
          "%d %s" % (rc, err))
    rc, _, err = create(extra=["--schedule", "30m"])
    check("schedule without +: 64", rc == 64, "%d %s" % (rc, err))
    rc, _, err = create(extra=["--schedule", "2001-01-01T00:00:00Z"])
    check("schedule in the past: 65", rc == 65, "%d %s" % (rc, err))
    rc, _, err = create(name="dup")
    rc, _, err = create(name="dup")
    check("duplicate name in one account: 65", rc == 65, "%d %s" % (rc, err))
    rc, _, err = create(name="dup", acct="shop", lst="shoplist",
                        frm="S <s@shop.example>")
    check("same name in another account: ok", rc == 0, err)
    rc, _, err = run("campaign", "create", "x", "--list", "news")
    check("missing options: 64", rc == 64, err)
    # update: drafts only
    cid = draft()
    ok("update subject", "campaign", "update", cid, "--subject", "New {{x}}")
    j = js("campaign", "show", cid) or {}
    check("subject updated", j.get("subject") == "New {{x}}", str(j))
    rc, _, err = run("campaign", "update", cid, "--html", bad)
    check("update to a bad template: 65", rc == 65, err)
    rc, _, err = run("campaign", "update", cid, "--from",
                     "X <x@unverified.example>")
    check("update to an unverified From: 77", rc == 77, err)
    ok("send it", "campaign", "send", cid)
    rc, _, err = run("campaign", "update", cid, "--subject", "late")
    check("update after send: 65", rc == 65 and "draft" in err, err)


# ---------------------------------------------------------------- preview

def parse(msg):
    return email.message_from_string(msg, policy=email.policy.default)


def test_preview():
    cid = draft(name="preview-me")
    rc, out, err = run("campaign", "preview", cid, "--contact",
                       "CY@c.example")
    check("preview exits 0", rc == 0, err)
    m = parse(out)
    check("To is the contact", m["To"] == "cy@c.example", str(m["To"]))
    raw_subject = re.search(r"^Subject:(.*(?:\r?\n[ \t].*)*)", out,
                            re.M).group(1)
    check("non-ASCII subject is encoded", "=?utf-8?" in raw_subject.lower()
          and "é" not in raw_subject, raw_subject)
    check("subject merged and decoded", str(m["Subject"]) ==
          "Héllo Zoë <b>&", str(m["Subject"]))
    lu = str(m["List-Unsubscribe"])
    check("List-Unsubscribe mailto + https",
          re.search(r"<mailto:unsub-[a-z2-7]{50}@acme\.example>", lu) and
          re.search(r"<https://acme\.example/u/[a-z2-7]{50}>", lu), lu)
    check("One-Click", m["List-Unsubscribe-Post"] ==
          "List-Unsubscribe=One-Click", str(m["List-Unsubscribe-Post"]))
    check("Feedback-ID", re.fullmatch(r"%s:1:\d+:sluice" % cid,
                                      str(m["Feedback-ID"])) is not None,
          str(m["Feedback-ID"]))
    check("Message-ID", re.fullmatch(r"<%s\.0\.[a-z2-7]{13}\.[a-z2-7]{16}"
                                     r"@acme\.example>" %
                                     cid, str(m["Message-ID"])) is not None,
          str(m["Message-ID"]))
    check("VERP sender on stderr",
          re.search(r"envelope sender: b-[a-z2-7]{44}@acme\.example", err)
          is not None, err)
    parts = {p.get_content_type(): p.get_content()
             for p in m.walk() if not p.is_multipart()}
    html = parts.get("text/html", "")
    text = parts.get("text/plain", "")
    check("html part merged and escaped", "Hi Zoë &lt;b&gt;&amp; X" in html,
          html)
    check("text part merged as-is", "Hi Zoë <b>& X" in text, text)
    check("unsubscribe url merged", "https://acme.example/u/" in html, html)
    # default for a missing field, and --json
    j = js("campaign", "preview", cid, "--contact", "bob@b.example") or {}
    m = parse(j.get("message", ""))
    check("--json mail_from is VERP", re.fullmatch(
        r"b-[a-z2-7]{44}@acme\.example", j.get("mail_from", "")) is not None,
        str(j.get("mail_from")))
    check("--json names the contact", j.get("email") == "bob@b.example",
          str(j))
    # the engine's settings from sluiced.conf
    conf = write("sluiced.conf", "[sluiced]\nspool = %s\nehlo_hostname = "
                 "mx.acme.example\nunsubscribe_host = u.acme.example:8443\n"
                 "bounce_domain = bounces.acme.example\n" % SPOOL)
    j = js("campaign", "preview", cid, "--contact", "ann@a.example",
           "--config", conf) or {}
    m = parse(j.get("message", ""))
    check("--config unsubscribe host",
          "<https://u.acme.example:8443/u/" in str(m["List-Unsubscribe"]),
          str(m["List-Unsubscribe"]))
    check("--config bounce domain", j.get("mail_from", "").endswith(
        "@bounces.acme.example"), str(j.get("mail_from")))
    rc, _, err = run("campaign", "preview", cid, "--contact",
                     "nobody@x.example")
    check("preview of a contact not in the list: 66", rc == 66, err)
    rc, _, err = run("campaign", "preview", "999", "--contact",
                     "ann@a.example")
    check("preview of an unknown campaign: 66", rc == 66, err)
    rc, _, err = run("campaign", "preview", "preview-me", "--account",
                     "acme", "--contact", "ann@a.example")
    check("a campaign by name", rc == 0, err)


# ------------------------------------------------------------------- send

def test_send():
    for i in (3, 7, 11, 19, 23, 42, 49):
        ok("suppress", "suppress", "add", "USER%d@d%d.example" % (i, i % 4),
           "--account", "acme")
    cid = draft(lst="count")
    j = js("campaign", "send", cid) or {}
    check("send queues the 43 not suppressed", j.get("recipients") == 43,
          str(j))
    check("... and counts 7 suppressed", j.get("suppressed") == 7, str(j))
    check("... state sending", j.get("state") == "sending", str(j))
    s = js("campaign", "show", cid) or {}
    check("show: 43 queued", s.get("queued") == 43 and
          s.get("recipients") == 43 and s.get("suppressed") == 7, str(s))
    rc, _, err = run("campaign", "send", cid)
    check("second send: 65", rc == 65, "%d %s" % (rc, err))
    s2 = js("campaign", "show", cid) or {}
    check("... nothing more queued", s2.get("queued") == 43, str(s2))
    recs = audit_actions()
    check("send audited with counts", any(
        a == "campaign send" and "43 queued, 7 suppressed" in o
        for a, o, _ in recs), str(recs[-3:]))
    # a sub-account sharing the master's suppression list
    ok("suppress shared@", "suppress", "add", "shared@x.example", "--account",
       "acme")
    rc, sid, err = create(acct="shop", lst="shoplist",
                          frm="S <s@shop.example>")
    j = js("campaign", "send", sid or "0") or {}
    check("shop's send skips the master's suppressed address",
          j.get("recipients") == 2 and j.get("suppressed") == 1, str(j))
    # scheduled
    rc, cid, err = create(extra=["--schedule", "+2h"])
    check("create scheduled", rc == 0, err)
    j = js("campaign", "send", cid or "0") or {}
    check("scheduled send stays scheduled", j.get("state") == "scheduled",
          str(j))
    s = js("campaign", "show", cid or "0") or {}
    check("show gives the schedule", s.get("state") == "scheduled" and
          s.get("schedule") and s.get("queued") == 3, str(s))


# -------------------------------------------------------- pause and such

def paused_list():
    return [(p["kind"], p["name"]) for p in (js("paused") or [])]


def test_controls():
    cid = sending()
    out = ok("pause", "campaign", "pause", cid, "--reason", "check links")
    check("pause says paused", "is paused" in out, out)
    check("control set", ("campaign", cid) in paused_list(), str(paused_list()))
    rc, _, err = run("campaign", "pause", cid)
    check("pause twice: 65", rc == 65, err)
    ok("resume", "campaign", "resume", cid)
    check("control cleared", ("campaign", cid) not in paused_list(),
          str(paused_list()))
    rc, _, err = run("campaign", "resume", cid)
    check("resume when not paused: 65", rc == 65, err)
    ok("pause again", "campaign", "pause", cid)
    ok("cancel", "campaign", "cancel", cid, "--reason", "wrong list")
    pl = paused_list()
    check("cancel: cancelled control, pause gone",
          ("cancelled campaign", cid) in pl and ("campaign", cid) not in pl,
          str(pl))
    j = js("campaign", "show", cid) or {}
    check("state cancelled", j.get("state") == "cancelled", str(j))
    rc, _, err = run("campaign", "resume", cid)
    check("resume after cancel: 65", rc == 65, err)
    rc, _, err = run("campaign", "send", cid)
    check("send after cancel: 65", rc == 65, err)
    d = draft()
    rc, _, err = run("campaign", "pause", d)
    check("pause a draft: 65", rc == 65, err)
    ok("cancel a draft", "campaign", "cancel", d)
    check("no control for a cancelled draft",
          ("cancelled campaign", d) not in paused_list())
    recs = audit_actions()
    for act in ("campaign pause", "campaign resume", "campaign cancel"):
        check(act + " audited", any(a == act and "campaign %s " % cid in o
                                    for a, o, _ in recs), act)


def test_test_send():
    cid = draft()
    j = js("campaign", "test", cid, "--to", "ann@a.example") or {}
    check("test queues one delivery", j.get("delivery", 0) > 0 and
          j.get("in_list") is True, str(j))
    j2 = js("campaign", "test", cid, "--to", "someone@else.example") or {}
    check("test to an address not in the list", j2.get("delivery", 0) > 0 and
          j2.get("in_list") is False, str(j2))
    h = ok("history", "spool", "history", str(j.get("delivery", 0)))
    check("the delivery is queued to the address",
          "to ann@a.example: queued" in h, h)
    recs = audit_actions()
    check("test audited", any(a == "campaign test" and "ann@a.example" in o
                              for a, o, _ in recs))
    s = js("campaign", "show", cid) or {}
    check("a test is not a send", s.get("state") == "draft" and
          s.get("queued") == 0, str(s))


# ----------------------------------------------------------------- matrix

def cases():
    return [
        ("list", "viewer", lambda: ["campaign", "list", "--account", "acme"]),
        ("show", "viewer", lambda: ["campaign", "show", SHOW_ID]),
        ("preview", "viewer", lambda: ["campaign", "preview", SHOW_ID,
                                       "--contact", "ann@a.example"]),
        ("create", "manager", lambda: [
            "campaign", "create", uniq("m"), "--account", "acme", "--list",
            "news", "--from", "A <a@acme.example>", "--subject", "s",
            "--html", HTML]),
        ("update", "manager", lambda: ["campaign", "update", draft(),
                                       "--subject", "changed"]),
        ("test", "sender", lambda: ["campaign", "test", SHOW_ID, "--to",
                                    "ann@a.example"]),
        ("send", "sender", lambda: ["campaign", "send", draft()]),
        ("pause", "sender", lambda: ["campaign", "pause", sending()]),
        ("resume", "sender", lambda: ["campaign", "resume", paused_()]),
        ("cancel", "manager", lambda: ["campaign", "cancel", sending()]),
    ]


SHOW_ID = None


def test_matrix():
    global SHOW_ID
    SHOW_ID = draft()
    for name, need, argv in cases():
        for role in ROLES + ["none"]:
            user = "m-" + role if role != "none" else "nobody"
            rc, out, err = run(*argv(), user=user)
            label = "campaign %s as %s" % (name, role)
            if RANK[role] >= RANK[need]:
                check(label + ": allowed", rc == 0,
                      "exit %d: %s" % (rc, err.strip()))
            else:
                check(label + ": refused 77", rc == 77,
                      "exit %d: %s" % (rc, err.strip()))
                check(label + ": names role " + need,
                      "needs role " + need in err, err.strip())


def test_tenancy():
    cid = sending()
    for argv in (["show", cid], ["preview", cid, "--contact", "ann@a.example"],
                 ["send", draft()], ["pause", cid], ["cancel", cid],
                 ["test", cid, "--to", "x@y.example"],
                 ["update", draft(), "--subject", "x"],
                 ["list", "--account", "acme"],
                 ["show", "preview-me", "--account", "acme"]):
        rc, _, err = run("campaign", *argv, user="b-owner")
        check("blog's owner: campaign %s of acme refused" % argv[0],
              rc == 77, "%d %s" % (rc, err))
    rc, _, err = create(acct="blog", lst="news", frm="B <b@blog.example>",
                        user="b-owner")
    check("blog cannot use acme's list by name (66)", rc == 66, err)
    rc, bid, err = create(acct="blog", lst="bloglist",
                          frm="B <b@blog.example>", user="b-owner")
    check("blog creates its own campaign", rc == 0, err)
    rc, bid2, err = create(acct="blog", lst="bloglist",
                           frm="B <b@acme.example>", user="b-owner")
    check("blog cannot send as acme's domain (77)", rc == 77, err)
    rows = js("campaign", "list", user="b-owner") or []
    check("blog's list shows only blog's campaigns",
          rows and all(r["account"] == "blog" for r in rows), str(rows))
    allrows = js("campaign", "list") or []
    check("the master's list shows every account's",
          {"acme", "shop", "blog"} <= {r["account"] for r in allrows},
          str({r["account"] for r in allrows}))
    ok("acme's state unchanged", "campaign", "show", cid)
    j = js("campaign", "show", cid) or {}
    check("... still sending", j.get("state") == "sending", str(j))


def test_show_json():
    cid = sending()
    j = js("campaign", "show", cid) or {}
    want = {"id", "name", "account", "list", "list_name", "from", "reply_to",
            "subject", "state", "created", "schedule", "started", "finished",
            "recipients", "suppressed", "queued", "sent", "delivered",
            "deferred", "bounced", "expired", "suppressed_in_queue",
            "cancelled", "eta", "rate", "send_complete"}
    check("show --json has every field", want <= set(j), str(want - set(j)))
    check("show --json numbers", j.get("recipients") == 3 and
          j.get("queued") == 3 and j.get("sent") == 0 and
          j.get("delivered") == 0 and j.get("send_complete") is True, str(j))
    rows = js("campaign", "list", "--account", "acme") or []
    check("list --json rows", any(str(r["id"]) == cid and
                                  r["state"] == "sending" for r in rows))
    rc, out, _ = run("campaign", "--help")
    check("--help", rc == 0 and "usage:" in out)


def main():
    try:
        setup()
        test_create_checks()
        test_preview()
        test_send()
        test_controls()
        test_test_send()
        test_matrix()
        test_tenancy()
        test_show_json()
        ok("audit chain intact", "audit", "verify")
    finally:
        H.cleanup()
    return H.summary()


if __name__ == "__main__":
    sys.exit(main())
