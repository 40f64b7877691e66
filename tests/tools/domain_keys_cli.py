#!/usr/bin/python3
"""domain_keys_cli.py - `sluice domain key add|list|retire` and `domain
verify` over several selectors, end to end.

A master (acme) with two sub-accounts (shop, blog), each with a sending
domain; shop's admin, manager and viewer, blog's admin.  Then:

  add       a second key for a domain: made 0600 in the key store, pending,
            its DKIM record printed (--json: `records` objects shaped as
            `domain add` prints them, strings of at most 255 octets); a key
            made earlier by `sluice dkim keygen` is adopted as it is;
  refused   adding a selector the domain already has: 65 with the reason,
            the key file untouched; a full domain (four keys, none
            retired): 65 and no key file left behind; a sub-account's
            admin on another account's domain: 77 (audited as refused), no
            key file; a manager may list but not add; a viewer not even
            list;
  verify    dnsmasq serves one matching and one wrong record: exit 65, the
            matching key becomes active, the other stays pending; with the
            record fixed both are active;
  retire    --after 7d: retiring, with the date; retiring the last key
            without a retire date is refused (65) unless --last; a retired
            key cannot be retired again; a full domain makes room by
            dropping its retired keys (their files stay); unknown selector
            66, bad duration 64;
  audit     every add and retire is in the audit trail.

usage: domain_keys_cli.py SLUICE
"""
import calendar
import os
import stat
import subprocess
import sys
import time

import harness

H = harness.Cli(sys.argv[1], "sluice-domain-keys-")
check, run, ok, js = H.check, H.run, H.ok, H.js
SPOOL = H.spool
DNSMASQ = "/usr/sbin/dnsmasq"


def key_path(domain, sel):
    return os.path.join(SPOOL, "dkim", domain, sel + ".key")


def states(domain, **kw):
    """{selector: state} of `domain key list --json`."""
    doc = js("domain", "key", "list", domain, **kw) or {}
    return {k["selector"]: k["state"] for k in doc.get("selectors", [])}


def record_of(domain, sel):
    """The DKIM record value `domain show --json` gives for sel."""
    doc = js("domain", "show", domain) or {}
    for r in doc.get("records", []):
        if r["name"] == "%s._domainkey.%s" % (sel, domain):
            return r
    return None


class Dns:
    """dnsmasq on a spare 127.0.0.1 port serving TXT records; stopped by
    PID."""

    def __init__(self, records):
        self.port = harness.free_port()
        conf = H.write("dnsmasq-%d.conf" % self.port, "local=/example/\n" +
                       "".join("txt-record=%s,%s\n" % (
                           n, ",".join('"%s"' % s for s in strings))
                           for n, strings in records.items()))
        self.p = subprocess.Popen(
            [DNSMASQ, "--no-daemon", "--port=%d" % self.port,
             "--listen-address=127.0.0.1", "--bind-interfaces",
             "--no-resolv", "--no-hosts", "--conf-file=" + conf,
             "--pid-file=", "--user=root", "--group=root"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while harness.port_free(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.server = "127.0.0.1:%d" % self.port

    def stop(self):
        self.p.terminate()
        self.p.wait(10)


def setup():
    H.add_accounts("acme", "shop")
    ok("create blog", "account", "create", "blog", "--parent", "acme")
    ok("shop.example", "domain", "add", "shop.example", "--account", "shop",
       "--selector", "s1")
    ok("blog.example", "domain", "add", "blog.example", "--account", "blog",
       "--selector", "b1", "--algo", "ed25519")
    H.add_user("ops", "acme", "owner")
    H.admin[0] = "ops"
    for role in ("admin", "manager", "viewer"):
        H.add_user("s-" + role, "shop", role)
    H.add_user("b-admin", "blog", "admin")


def test_add():
    d = js("domain", "key", "add", "shop.example", "--selector", "e1",
           "--algo", "ed25519", user="s-admin")
    check("shop's admin adds a key to shop's domain", d and
          d["selector"] == "e1" and d["algo"] == "ed25519" and
          d["key_created"] and d["state"] == "pending", str(d))
    if not d:
        return
    check("the key file is in the key store",
          d["key"] == key_path("shop.example", "e1") and
          os.path.exists(d["key"]), d["key"])
    check("key is 0600", stat.S_IMODE(os.stat(d["key"]).st_mode) == 0o600)
    recs = d["records"]
    check("one DKIM record, the new key's", len(recs) == 1 and
          recs[0]["name"] == "e1._domainkey.shop.example" and
          recs[0]["what"] == "dkim" and recs[0]["type"] == "TXT" and
          recs[0]["value"].startswith("v=DKIM1; k=ed25519; p="), str(recs))
    check("strings of at most 255 octets that join to the value",
          recs and all(len(s) <= 255 for s in recs[0]["strings"]) and
          "".join(recs[0]["strings"]) == recs[0]["value"])
    shown = record_of("shop.example", "e1")
    check("the same record object as domain show/add give",
          shown == recs[0], "%s != %s" % (shown, recs[0]))
    out = ok("text add", "domain", "key", "add", "shop.example",
             "--selector", "r2", "--bits", "1024", user="s-admin")
    check("text add prints the record and the next step",
          "r2._domainkey.shop.example. IN TXT (" in out and
          "sluice domain verify shop.example" in out, out)
    check("both new keys pending",
          states("shop.example") == {"s1": "pending", "e1": "pending",
                                     "r2": "pending"},
          str(states("shop.example")))
    # a key of `sluice dkim keygen` is adopted, algorithm and all
    ok("keygen", "dkim", "keygen", "blog.example", "--selector", "kg",
       "--algo", "ed25519")
    before = open(key_path("blog.example", "kg"), "rb").read()
    d = js("domain", "key", "add", "blog.example", "--selector", "kg",
           user="b-admin")
    check("a keygen key is taken as it is", d and not d["key_created"] and
          d["algo"] == "ed25519", str(d))
    check("... the file unchanged",
          open(key_path("blog.example", "kg"), "rb").read() == before)


def test_refused():
    path = key_path("shop.example", "e1")
    before = open(path, "rb").read()
    rc, _, err = run("domain", "key", "add", "shop.example", "--selector",
                     "e1", "--algo", "rsa", user="s-admin")
    check("a second key add of a selector: 65 with the reason", rc == 65 and
          "already has the DKIM selector e1" in err,
          "exit %d: %s" % (rc, err))
    check("... its key file untouched", open(path, "rb").read() == before)
    rc, _, err = run("domain", "key", "add", "SHOP.example.", "--selector",
                     "S1", user="s-admin")
    check("the selector domain add made, in other case: 65", rc == 65 and
          "already has the DKIM selector s1" in err,
          "exit %d: %s" % (rc, err))
    # another account's domain
    for args in (["add", "blog.example", "--selector", "x1"],
                 ["retire", "blog.example", "--selector", "b1"]):
        rc, _, err = run("domain", "key", *args, user="s-admin")
        check("shop's admin: key %s on blog's domain refused (77)" % args[0],
              rc == 77 and "refused" in err, "exit %d: %s" % (rc, err))
    check("... and no key file made for it",
          not os.path.exists(key_path("blog.example", "x1")))
    recs = js("audit", "list", "--account", "blog") or []
    check("the refusal is audited", any(
        r["action"] == "domain key add" and r["result"].startswith("refused")
        for r in recs), str(recs[-3:]))
    rc, _, err = run("domain", "key", "add", "shop.example", "--selector",
                     "m1", user="s-manager")
    check("a manager may not add a key (77)", rc == 77 and "admin" in err,
          "exit %d: %s" % (rc, err))
    rc, out, err = run("domain", "key", "list", "shop.example",
                       user="s-manager")
    check("a manager lists the keys", rc == 0 and "e1" in out, err)
    rc, _, err = run("domain", "key", "list", "shop.example",
                     user="s-viewer")
    check("a viewer may not (77)", rc == 77, "exit %d: %s" % (rc, err))
    for code, what, args in (
            (64, "usage", ["add", "shop.example", "--algo", "ed25519"]),
            (64, "invalid selector", ["add", "shop.example", "--selector",
                                      "bad sel"]),
            (64, "usage", ["add", "shop.example", "--selector", "z",
                           "--algo", "dsa"]),
            (66, "no sending domain", ["add", "none.example",
                                       "--selector", "z"]),
            (66, "no sending domain", ["list", "none.example"])):
        rc, _, err = run("domain", "key", *args)
        check("key %s: %d (%s)" % (" ".join(args), code, what),
              rc == code and what in err, "exit %d: %s" % (rc, err))


def test_verify():
    s1 = record_of("shop.example", "s1")
    e1 = record_of("shop.example", "e1")
    r2 = record_of("shop.example", "r2")
    wrong = list(e1["strings"])
    wrong[-1] = wrong[-1][:-4] + ("AAAA" if not wrong[-1].endswith("AAAA")
                                  else "BBBB")
    names = {s: "%s._domainkey.shop.example" % s for s in ("s1", "e1", "r2")}
    dns = Dns({names["s1"]: s1["strings"], names["e1"]: wrong,
               names["r2"]: r2["strings"]})
    try:
        rc, out, err = run("domain", "verify", "shop.example",
                           "--dns-server", dns.server, user="s-admin")
        check("one wrong record: 65, naming it", rc == 65 and
              "selector e1 not verified" in err, "exit %d: %s" % (rc, err))
        check("... the matching ones verified", "selector s1 verified" in out
              and "selector r2 verified" in out, out)
    finally:
        dns.stop()
    check("s1 and r2 active, e1 pending", states("shop.example") ==
          {"s1": "active", "e1": "pending", "r2": "active"},
          str(states("shop.example")))
    dns = Dns({names["s1"]: s1["strings"], names["e1"]: e1["strings"],
               names["r2"]: r2["strings"]})
    try:
        v = js("domain", "verify", "shop.example", "--dns-server",
               dns.server, user="s-admin")
        check("fixed: every selector verified", v and v["complete"] and
              sorted(v["selectors"]) == ["e1", "r2", "s1"], str(v))
    finally:
        dns.stop()
    check("all three active", set(states("shop.example").values()) ==
          {"active"}, str(states("shop.example")))


def test_retire():
    now = time.time()
    d = js("domain", "key", "retire", "shop.example", "--selector", "e1",
           "--after", "7d", user="s-admin")
    t = calendar.timegm(time.strptime(d["retire_at"],
                                      "%Y-%m-%dT%H:%M:%SZ")) if d else 0
    check("retire --after 7d: its date", d and
          now + 6 * 86400 < t < now + 8 * 86400, str(d))
    check("... it is retiring", states("shop.example")["e1"] == "retiring")
    ok("retire r2 at once", "domain", "key", "retire", "shop.example",
       "--selector", "r2", user="s-admin")
    rc, _, err = run("domain", "key", "retire", "shop.example", "--selector",
                     "s1", user="s-admin")
    check("retiring the last key without a date: 65", rc == 65 and
          "without a verified key to sign with" in err,
          "exit %d: %s" % (rc, err))
    check("... s1 still active", states("shop.example")["s1"] == "active")
    ok("retire s1 with --last", "domain", "key", "retire", "shop.example",
       "--selector", "s1", "--last", user="s-admin")
    st = states("shop.example")
    check("s1 and r2 retired, e1 retiring", st == {
        "s1": "retired", "r2": "retired", "e1": "retiring"}, str(st))
    for code, what, args in (
            (65, "already retired", ["--selector", "s1"]),
            (66, "no DKIM selector", ["--selector", "nope"]),
            (64, "not a duration", ["--selector", "e1", "--after", "soon"]),
            (64, "not a duration", ["--selector", "e1", "--after", "400d"]),
            (64, "usage", [])):
        rc, _, err = run("domain", "key", "retire", "shop.example", *args)
        check("retire %s: %d (%s)" % (" ".join(args), code, what),
              rc == code and what in err, "exit %d: %s" % (rc, err))
    # four keys: a fifth and a sixth each drop a retired one
    ok("a fourth key", "domain", "key", "add", "shop.example", "--selector",
       "k4", "--algo", "ed25519")
    check("four keys, none dropped", len(states("shop.example")) == 4)
    ok("a fifth key", "domain", "key", "add", "shop.example", "--selector",
       "k5", "--algo", "ed25519")
    st = states("shop.example")
    check("room made by dropping one retired key", len(st) == 4 and
          "k5" in st and list(st.values()).count("retired") == 1, str(st))
    ok("a sixth key", "domain", "key", "add", "shop.example", "--selector",
       "k6", "--algo", "ed25519")
    st = states("shop.example")
    check("... and the other", set(st) == {"e1", "k4", "k5", "k6"}, str(st))
    rc, _, err = run("domain", "key", "add", "shop.example", "--selector",
                     "k7", "--algo", "ed25519")
    check("full of keys not retired: 65", rc == 65 and
          "none of them retired" in err, "exit %d: %s" % (rc, err))
    check("... and no key file left behind",
          not os.path.exists(key_path("shop.example", "k7")))
    check("the dropped keys' files stay",
          os.path.exists(key_path("shop.example", "s1")) and
          os.path.exists(key_path("shop.example", "r2")))


def test_audit():
    recs = js("audit", "list", "--account", "shop") or []
    acts = [(r["action"], r["object"], r["result"]) for r in recs]
    for a, o in (("domain key add", "domain shop.example selector e1 "
                  "(ed25519)"),
                 ("domain key retire", "domain shop.example selector e1 "
                  "after 604800s"),
                 ("domain verify", "domain shop.example selectors s1,r2 "
                  "(dns)")):
        check("audited: %s %s" % (a, o), (a, o, "ok") in acts, str(acts))


def main():
    check("dnsmasq is installed (tools/deps.sh)", os.path.exists(DNSMASQ))
    setup()
    test_add()
    test_refused()
    test_verify()
    test_retire()
    test_audit()
    rc = H.summary("domain_keys_cli: ")
    H.cleanup(keep_on_failure=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
