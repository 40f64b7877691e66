#!/usr/bin/python3
"""accounts_cli.py - accounts, users, roles, API keys, sending domains and
the audit trail through the `sluice` command, end to end.

A master (acme) with two sub-accounts (shop, blog); for each role a user
holding it on the master (m-ROLE) and one holding it on shop (s-ROLE), and
a user with no role (nobody).  Then:

  matrix      every command as every role on the master and on a
              sub-account: allowed (exit 0) or refused (exit 77, the
              message naming the role needed);
  inheritance a role on the master reaches sub-accounts, one set on a
              sub-account overrides it (even lower); an API key acts with
              the lower of its scope and its user's role, on its account;
  tenancy     shop's users cannot read or change blog's domains, users,
              usage, API keys, audit records or account;
  keys        a disabled user's key is refused on the very next command, a
              revoked key too, and both work again once enabled (keys of a
              re-enabled user);
  logins      wrong password, unknown user, TOTP (code computed here with
              hmac) right, wrong and missing, each code once (the same
              code twice, an older code after a newer one: refused), one
              login at the real argon2id cost; no identity and not the
              owner of the spool; five wrong passwords lock a user out
              (the right password is refused, before it is even read)
              until the lock-out is over (login-state moves it into the
              past) or an admin unlocks, each failure and lock-out audited;
  bootstrap   the owner of the spool acts without an identity only until
              the first user exists (who must be an owner or admin of the
              master); after that 77 with the way out, and --bootstrap
              (the owner's break-glass) acts, warns and is audited with
              the uid and $SUDO_USER; not for another uid; $SLUICE_USER is
              the default of --as; every other command of this test acts
              as "ops", an owner of the master, through $SLUICE_USER;
  no access   a spool the caller may not read (root's 0700 spool, sluice
              run as nobody with setpriv): "permission denied", 77;
  audit       `audit verify` passes, then fails (65, naming the record and
              "altered") after one byte of a record is changed with
              mdb_dump/mdb_load (early, middle and last record; in the
              link, the body and the hash), and ("reordered") after two
              records are swapped; removal and truncation are covered by
              tests/queue/test_admin.c;
  bad input   unknown account, duplicate names, invalid domain, malformed
              options, unknown role: a clear message, exit 64/65/66, and
              accounts, users, domains, keys and the audit trail unchanged;
  domains     `domain add` makes the DKIM key (0600 in a 0700 directory)
              and prints the records (strings of at most 255 octets);
              `domain verify` against dnsmasq marks it verified, a wrong
              record does not; inject from an unverified domain is refused.

Password hashing runs at the minimum argon2id cost (SLUICE_PWHASH_FAST=1)
except for one user.  Lists, campaigns and suppressions do not exist yet,
so tenancy covers what does.

usage: accounts_cli.py SLUICE LOGIN_STATE
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import time

import harness

SLUICE = sys.argv[1]
LOGIN_STATE = sys.argv[2]
H = harness.Cli(SLUICE, "sluice-accounts-")
T, SPOOL, BASE_ENV = H.tmp, H.spool, H.env
DNSMASQ = "/usr/sbin/dnsmasq"
ROLES = ["viewer", "sender", "manager", "admin", "owner"]
RANK = {"none": 0, "viewer": 1, "sender": 2, "manager": 3, "admin": 4,
        "owner": 5}
# who acts when a call names nobody: the bootstrap until setup() made the
# first user, then that owner of the master (through $SLUICE_USER)
ADMIN = H.admin
check, run, ok, js, uniq, write = H.check, H.run, H.ok, H.js, H.uniq, H.write
pw = harness.pw


def message(frm):
    return write(uniq("msg") + ".eml",
                 "From: Someone <%s>\r\nTo: r@dest.example\r\nSubject: hi\r\n"
                 "\r\nhello\r\n" % frm)


def totp_code(secret, t=None, step=0):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter_ = int((time.time() if t is None else t) // 30) + step
    mac = hmac.new(key, struct.pack(">Q", counter_), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000
    return "%06d" % code


# ------------------------------------------------------------------ setup

def setup():
    ok("create master", "account", "create", "acme")
    ok("create shop", "account", "create", "shop")
    ok("create blog", "account", "create", "blog", "--parent", "acme")
    # before any user the owner of the spool acts, as the bootstrap
    ok("no user yet: the owner acts without an identity", "account", "show",
       "shop")
    recs = js("audit", "list", "--user", "(bootstrap)") or []
    check("the bootstrap's changes are audited as (bootstrap) with the uid",
          len(recs) == 3 and all(r["via"].startswith("uid:%d" % os.geteuid())
                                 for r in recs), str(recs))
    # the first user ends the bootstrap: one who could not administer is
    # refused, so the spool never lacks an admin
    rc, _, err = run("user", "add", "first", "--account", "shop", "--role",
                     "manager", "--password-stdin", stdin="pw-first\n")
    check("a first user who is no admin of the master: 65", rc == 65 and
          "first user must be an owner" in err, "exit %d: %s" % (rc, err))
    rc, _, err = run("user", "add", "first", "--account", "acme", "--role",
                     "owner", "--no-password")
    check("a first owner without a password: 65", rc == 65 and
          "with a password" in err, "exit %d: %s" % (rc, err))
    H.add_user("ops", "acme", "owner",
               label="the first user: ops, owner of the master")
    ADMIN[0] = "ops"
    for r in ROLES:
        H.add_user("m-" + r, "acme", r)
        H.add_user("s-" + r, "shop", r)
    H.add_user("b-owner", "blog", "owner")
    H.add_user("nobody", None, "none")
    for acct in ("acme", "shop", "blog"):
        H.add_domain(acct + ".example", acct)
    ok("unverified domain", "domain", "add", "shopnew.example", "--account",
       "shop", "--algo", "ed25519")


# ------------------------------------------------------------------ matrix

HEADER = None


def prep_user(acct):
    t = uniq("t")
    ok("prep user", "user", "add", t, "--account", acct, "--role", "viewer",
       "--no-password")
    return t


def prep_key(acct):
    t = prep_user(acct)
    j = js("apikey", "create", "--user", t, "--account", acct, "--scope",
           "read")
    return str(j["id"]) if j else "0"


def prep_domain(acct):
    d = uniq("pd") + ".example"
    ok("prep domain", "domain", "add", d, "--account", acct, "--algo",
       "ed25519")
    return d


def prep_pause():
    d = uniq("pz") + ".test"
    ok("prep pause", "pause", "domain", d)
    return d


def cases(acct):
    """(name, need role, needed on the master, argv builder, after) for
    the context of account acct (acme: the master, shop: a sub-account).
    after(allowed) undoes what must not last."""
    return [
        ("account create", "admin", True,
         lambda: ["account", "create", uniq("new")], None),
        ("account list", "viewer", False, lambda: ["account", "list"], None),
        ("account show", "viewer", False,
         lambda: ["account", "show", acct], None),
        ("account usage", "viewer", False,
         lambda: ["account", "usage", acct, "--days", "2"], None),
        ("account update header", "admin", False,
         lambda: ["account", "update", acct, "--header-file", HEADER], None),
        ("account update limits", "admin", True,
         lambda: ["account", "update", acct, "--daily-cap", "500"], None),
        ("account disable", "owner", False,
         lambda: ["account", "disable", acct],
         # a disabled master stops every user: its re-enabling is the
         # spool owner's break-glass
         lambda allowed: allowed and ok("re-enable", "account", "enable",
                                        acct, bootstrap=acct == "acme")),
        ("user add", "admin", False,
         lambda: ["user", "add", uniq("u"), "--account", acct, "--role",
                  "viewer", "--no-password"], None),
        ("user list", "viewer", False,
         lambda: ["user", "list", "--account", acct], None),
        ("user role", "admin", False,
         lambda: ["user", "role", prep_user(acct), acct, "sender"], None),
        ("user disable", "admin", False,
         lambda: ["user", "disable", prep_user(acct)], None),
        ("user totp", "admin", False,
         lambda: ["user", "totp", prep_user(acct), "enable"], None),
        ("apikey create other", "admin", False,
         lambda: ["apikey", "create", "--user", prep_user(acct), "--account",
                  acct, "--scope", "read"], None),
        ("apikey create own", "viewer", False,
         lambda: ["apikey", "create", "--account", acct, "--scope", "read"],
         None),
        ("apikey list", "viewer", False,
         lambda: ["apikey", "list", "--account", acct], None),
        ("apikey revoke other", "admin", False,
         lambda: ["apikey", "revoke", prep_key(acct)], None),
        ("domain add", "admin", False,
         lambda: ["domain", "add", uniq("dom") + ".example", "--account",
                  acct, "--algo", "ed25519"], None),
        ("domain list", "manager", False,
         lambda: ["domain", "list", "--account", acct], None),
        ("domain show", "manager", False,
         lambda: ["domain", "show", acct + ".example"], None),
        ("domain verify --force", "admin", True,
         lambda: ["domain", "verify", prep_domain(acct), "--force"], None),
        ("audit list", "viewer", False,
         lambda: ["audit", "list", "--account", acct], None),
        ("audit verify", "viewer", True, lambda: ["audit", "verify"], None),
        ("inject", "sender", False,
         lambda: ["inject", "--account", acct, "--from", "b@bounce.example",
                  "--to", "r@dest.example",
                  message("x@%s.example" % acct)], None),
        ("inject without account", "admin", True,
         lambda: ["inject", "--from", "b@bounce.example", "--to",
                  "r@dest.example", message("x@raw.example")], None),
        ("pause", "admin", True,
         lambda: ["pause", "domain", uniq("p") + ".test"], None),
        ("resume", "admin", True,
         lambda: ["resume", "domain", prep_pause()], None),
        ("status", "viewer", True, lambda: ["status"], None),
        ("spool info", "viewer", True, lambda: ["spool", "info"], None),
        ("paused", "viewer", True, lambda: ["paused"], None),
        ("dkim list", "viewer", True, lambda: ["dkim", "list"], None),
        ("dkim keygen", "admin", True,
         lambda: ["dkim", "keygen", uniq("k") + ".example", "--selector",
                  "s1", "--algo", "ed25519"], None),
    ]


def test_matrix():
    global HEADER
    HEADER = write("header.txt", "Header text\n")
    for acct, prefix in (("acme", "m-"), ("shop", "s-")):
        for name, need, on_master, argv, after in cases(acct):
            for role in ROLES + ["none"]:
                user = prefix + role if role != "none" else "nobody"
                args = argv()
                rc, out, err = run(*args, user=user)
                # s-users hold no role on the master
                have = RANK[role] if (acct == "acme" or not on_master) else 0
                allowed = have >= RANK[need]
                label = "%s on %s as %s" % (name, acct, role)
                if allowed:
                    check(label + ": allowed", rc == 0,
                          "exit %d: %s" % (rc, err.strip()))
                else:
                    check(label + ": refused 77", rc == 77,
                          "exit %d: %s" % (rc, err.strip()))
                    check(label + ": names role " + need,
                          "needs role " + need in err, err.strip())
                if after:
                    after(allowed and rc == 0)


# ------------------------------------------------------------ inheritance

def test_inheritance():
    # the master's role reaches the sub-account
    rc, _, err = run("domain", "list", "--account", "shop", user="m-manager")
    check("master manager lists shop's domains", rc == 0, err)
    rc, _, err = run("domain", "list", "--account", "shop", user="m-viewer")
    check("master viewer may not list shop's domains", rc == 77, err)
    check("... names manager and viewer",
          "needs role manager; m-viewer has viewer" in err, err)
    # an override on the sub-account wins, even lower
    ok("override m-admin on shop", "user", "role", "m-admin", "shop",
       "viewer")
    rc, _, err = run("user", "add", uniq("o"), "--account", "shop",
                     "--no-password", user="m-admin")
    check("overridden admin refused on shop", rc == 77 and
          "m-admin has viewer" in err, err)
    rc, _, err = run("user", "add", uniq("o"), "--account", "blog",
                     "--no-password", user="m-admin")
    check("... still admin on blog (inherited)", rc == 0, err)
    ok("drop the override", "user", "role", "m-admin", "shop", "none")
    rc, _, err = run("user", "add", uniq("o"), "--account", "shop",
                     "--no-password", user="m-admin")
    check("admin on shop again without the override", rc == 0, err)
    # a role set higher on the sub-account
    ok("s-viewer promoted on shop only", "user", "role", "s-viewer", "shop",
       "manager")
    rc, _, err = run("domain", "list", "--account", "shop", user="s-viewer")
    check("promoted user lists shop's domains", rc == 0, err)
    ok("demote again", "user", "role", "s-viewer", "shop", "viewer")
    # API keys: the lower of scope and role, only on the key's account
    j = js("apikey", "create", "--account", "acme", "--scope", "read",
           user="m-admin")
    key = j["key"] if j else ""
    rc, _, err = run("user", "add", uniq("k"), "--account", "acme",
                     "--no-password", key=key)
    check("read key of an admin cannot add users", rc == 77 and
          "needs role admin" in err and "API key" in err, err)
    rc, _, err = run("account", "show", "shop", key=key)
    check("a key of the master reads sub-accounts", rc == 0, err)
    j = js("apikey", "create", "--account", "shop", "--scope", "admin",
           user="s-owner")
    skey = j["key"] if j else ""
    rc, _, err = run("user", "add", uniq("k"), "--account", "shop",
                     "--no-password", key=skey)
    check("admin key of shop's owner adds users on shop", rc == 0, err)
    rc, _, err = run("account", "disable", "shop", key=skey)
    check("an admin key never acts as owner", rc == 77 and
          "needs role owner" in err, err)
    rc, _, err = run("apikey", "create", "--account", "shop", "--scope",
                     "admin", user="s-manager")
    check("own key above one's role refused", rc == 77 and
          "needs role admin" in err, err)
    # granting owner needs owner
    t = prep_user("shop")
    rc, _, err = run("user", "role", t, "shop", "owner", user="s-admin")
    check("admin cannot grant owner", rc == 77 and "needs role owner" in err,
          err)
    rc, _, err = run("user", "role", t, "shop", "owner", user="s-owner")
    check("owner grants owner", rc == 0, err)
    rc, _, err = run("user", "role", t, "shop", "viewer", user="s-admin")
    check("admin cannot demote an owner", rc == 77, err)
    # a disabled master stops everyone below it; the bootstrap enables it
    ok("owner disables the master", "account", "disable", "acme",
       user="m-owner")
    for u in ("m-owner", "s-owner"):
        rc, _, err = run("account", "show", "shop", user=u)
        check("%s stopped by a disabled master" % u, rc == 77, err)
    rc, _, err = run("account", "enable", "acme")
    check("... even ops, its owner", rc == 77, err)
    ok("the spool owner's --bootstrap enables the master", "account",
       "enable", "acme", bootstrap=True)
    rc, _, err = run("account", "show", "shop", user="s-owner")
    check("s-owner acts again", rc == 0, err)


# ------------------------------------------------------------- tenancy

def test_tenancy():
    blog_key = prep_key("blog")
    blog_user = prep_user("blog")
    probes = [
        ["domain", "show", "blog.example"],
        ["domain", "list", "--account", "blog"],
        ["domain", "add", uniq("t") + ".example", "--account", "blog"],
        ["domain", "verify", "blog.example"],
        ["user", "list", "--account", "blog"],
        ["user", "role", blog_user, "blog", "admin"],
        ["user", "disable", blog_user],
        ["user", "add", uniq("t"), "--account", "blog", "--no-password"],
        ["account", "usage", "blog"],
        ["account", "show", "blog"],
        ["account", "update", "blog", "--header-file", HEADER],
        ["account", "disable", "blog"],
        ["apikey", "list", "--account", "blog"],
        ["apikey", "revoke", blog_key],
        ["apikey", "create", "--user", blog_user, "--account", "blog",
         "--scope", "read"],
        ["audit", "list", "--account", "blog"],
        ["inject", "--account", "blog", "--from", "b@x.example", "--to",
         "r@dest.example", message("x@blog.example")],
    ]
    j = js("apikey", "create", "--account", "shop", "--scope", "admin",
           user="s-owner")
    skey = j["key"] if j else ""
    for p in probes:
        rc, _, err = run(*p, user="s-owner")
        check("shop's owner: %s refused" % " ".join(p[:2]), rc == 77,
              "exit %d: %s" % (rc, err.strip()))
        rc, _, err = run(*p, key=skey)
        check("shop's admin key: %s refused" % " ".join(p[:2]), rc == 77,
              "exit %d: %s" % (rc, err.strip()))
    # what shop's owner lists is shop's only
    accts = js("account", "list", user="s-owner") or []
    check("shop's owner sees only shop", [a["name"] for a in accts] ==
          ["shop"], str(accts))
    doms = js("domain", "list", user="s-owner") or []
    check("shop's domains only", doms and all(d["account"] == "shop"
                                              for d in doms), str(doms))
    users = js("user", "list", user="s-owner") or []
    names = {u["name"] for u in users}
    check("shop's users (and the master's, who reach shop)",
          "s-viewer" in names and "b-owner" not in names and
          blog_user not in names, str(sorted(names)))
    keys = js("apikey", "list", user="s-owner") or []
    check("shop's keys only", all(k["account"] == "shop" for k in keys),
          str(keys))
    recs = js("audit", "list", user="s-owner") or []
    check("shop's audit records only", recs and
          all(r["account"] == "shop" for r in recs), str(recs[:2]))
    # usage: the master sees every sub-account and the total
    u = js("account", "usage", "acme", "--days", "3")
    every = {a["name"] for a in js("account", "list") or []}
    check("master usage lists every sub-account and a total",
          u and len(u["days"]) == 3 and
          {a["account"] for a in u["days"][0]["accounts"]} == every and
          {"acme", "shop", "blog"} <= every and "total" in u["days"][0],
          str(u)[:300])
    u = js("account", "usage", "shop", user="s-viewer")
    check("shop's usage is shop's", u and
          [a["account"] for a in u["days"][0]["accounts"]] == ["shop"], str(u))


# ------------------------------------------------------------------ keys

def test_keys():
    t = uniq("kuser")
    ok("key user", "user", "add", t, "--account", "shop", "--role", "sender",
       "--password-stdin", stdin=pw(t) + "\n")
    j = js("apikey", "create", "--account", "shop", "--scope", "send",
           user=t)
    key = j["key"] if j else ""
    check("key format", key.startswith("sk_%d_" % j["id"]) and
          len(key.split("_")[2]) == 64, key)
    rc, out, err = run("inject", "--account", "shop", "--from",
                       "b@bounce.example", "--to", "r@dest.example",
                       message("x@shop.example"), key=key)
    check("sender key injects for shop", rc == 0, err)
    rc, _, err = run("account", "show", "shop", key=key[:-1] + (
        "0" if key[-1] != "0" else "1"))
    check("a key with a wrong secret is refused", rc == 77 and
          "unknown API key" in err, err)
    ok("disable the key's user", "user", "disable", t)
    rc, _, err = run("account", "show", "shop", key=key)
    check("disabled user's key refused on the next command", rc == 77 and
          "disabled" in err, err)
    rc, _, err = run("account", "show", "shop", user=t)
    check("disabled user's password refused", rc == 77 and "disabled" in err,
          err)
    ok("enable again", "user", "enable", t)
    rc, _, err = run("account", "show", "shop", key=key)
    check("key works again", rc == 0, err)
    rc, _, err = run("apikey", "revoke", str(j["id"]), key=key)
    check("a key may revoke itself (own key)", rc == 0, err)
    rc, _, err = run("account", "show", "shop", key=key)
    check("revoked key refused", rc == 77 and "revoked" in err, err)
    rc, _, err = run("apikey", "revoke", str(j["id"]))
    check("revoking twice: 65", rc == 65 and "already revoked" in err, err)
    rc, _, err = run("account", "show", "shop", key="sk_1_zz")
    check("malformed key refused", rc == 77, err)
    keys = js("apikey", "list", "--account", "shop")
    mine = [k for k in keys or [] if k["id"] == j["id"]]
    check("revoked key listed as revoked", mine and mine[0]["revoked"],
          str(mine))


# ---------------------------------------------------------------- logins

def test_logins():
    rc, _, err = run("account", "list", user="m-owner", password="nope")
    check("wrong password refused 77", rc == 77 and "wrong user name or "
          "password" in err, err)
    rc, _, err = run("account", "list", user="ghost", password="x")
    check("unknown user refused alike", rc == 77 and "wrong user name or "
          "password" in err, err)
    t = uniq("totp")
    ok("totp user", "user", "add", t, "--account", "acme", "--role", "viewer",
       "--password-stdin", stdin=pw(t) + "\n")
    j = js("user", "totp", t, "enable", user=t)   # one's own
    secret = j["secret"] if j else ""
    check("otpauth uri", j and
          j["uri"].startswith("otpauth://totp/sluice:") and
          "secret=" + secret in j["uri"], str(j))
    rc, _, err = run("account", "list", user=t)
    check("TOTP user without a code refused", rc == 77 and "TOTP" in err, err)
    # codes of the steps around now, computed once: each works once, and
    # never after a newer one
    now = time.time()
    code = {s: totp_code(secret, t=now, step=s) for s in (-1, 0, 1)}
    rc, _, err = run("account", "list", user=t, totp=code[-1])
    check("previous step accepted", rc == 0, err)
    rc, _, err = run("account", "list", user=t, totp=code[0])
    check("TOTP login with the right code", rc == 0, err)
    rc, _, err = run("account", "list", user=t, totp=code[0])
    check("the same code twice: the second refused 77 as a wrong code",
          rc == 77 and "refused: wrong TOTP code" in err, err)
    rc, _, err = run("account", "list", user=t, totp=code[-1])
    check("an older code after a newer one: refused 77", rc == 77 and
          "refused: wrong TOTP code" in err, err)
    rc, _, err = run("account", "list", user=t, totp=code[1])
    check("the next step's code still works once", rc == 0, err)
    rc, _, err = run("account", "list", user=t, totp=code[0])
    check("... and the code before it no more", rc == 77 and
          "wrong TOTP" in err, err)
    recs = js("audit", "list", "--user", t) or []
    check("replays audited as refusals of a code used before",
          len([r for r in recs if r["result"] == "refused: wrong TOTP code "
               "(a code used before)"]) == 3, str(recs))
    good = {totp_code(secret, step=s) for s in (-1, 0, 1)}
    bad = next("%06d" % n for n in range(1000000) if "%06d" % n not in good)
    rc, _, err = run("account", "list", user=t, totp=bad)
    check("wrong TOTP code refused", rc == 77 and "wrong TOTP" in err, err)
    rc, _, err = run("account", "list", user=t, password="nope",
                     totp=totp_code(secret))
    check("right code, wrong password refused", rc == 77, err)
    # one login at the real argon2id cost
    slow = uniq("slow")
    rc, _, err = run("user", "add", slow, "--account", "acme", "--role",
                     "viewer", "--password-stdin", stdin=pw(slow) + "\n",
                     env_extra={"SLUICE_PWHASH_FAST": "0"})
    check("user at full cost", rc == 0 and "weak" not in err, err)
    rc, _, err = run("account", "list", user=slow,
                     env_extra={"SLUICE_PWHASH_FAST": "0"})
    check("login at full cost", rc == 0, err)
    ok("passwd of one's own", "user", "passwd", slow, "--password-stdin",
       user=slow, stdin="newer\n")
    rc, _, err = run("account", "list", user=slow, password="newer")
    check("new password works", rc == 0, err)
    # no identity and not the owner of the spool
    if os.geteuid() == 0:
        st = os.stat(SPOOL)
        os.chown(SPOOL, 65534, 65534)
        try:
            rc, _, err = run("account", "list", anon=True)
            check("not the spool's owner, no identity: 77", rc == 77 and
                  "no identity" in err, err)
            rc, _, err = run("spool", "info", anon=True)
            check("... also for the older commands", rc == 77, err)
            rc, _, err = run("account", "list", user="m-viewer")
            check("a user may act on a spool owned by another", rc == 0, err)
        finally:
            os.chown(SPOOL, st.st_uid, st.st_gid)
    else:
        rc, _, err = run("account", "create", "x", anon=True,
                         spool="/sluice-accounts-test-absent")
        check("not the owner, no identity: 77", rc == 77, err)
    # the bootstrap is recorded as such
    recs = js("audit", "list", "--user", "(bootstrap)")
    check("bootstrap recorded", recs and recs[0]["via"].startswith("uid:"),
          str(recs[:1]))


def login_state(user, *extra):
    p = subprocess.run([LOGIN_STATE, SPOOL, user] + list(extra),
                       capture_output=True, text=True, timeout=60)
    check("login-state %s exits 0" % user, p.returncode == 0, p.stderr)
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {}


def test_lockout():
    """Five wrong passwords lock the user out; the right one is refused
    (before the password is read) until the lock-out is over or an admin
    ends it; each failure and the lock-out are in the audit trail."""
    u = uniq("lock")
    ok("lock-out user", "user", "add", u, "--account", "shop", "--role",
       "viewer", "--password-stdin", stdin=pw(u) + "\n")
    ok("a good login", "account", "show", "shop", user=u)
    for i in range(5):
        rc, _, err = run("account", "show", "shop", user=u, password="nope")
        check("wrong password %d: 77" % (i + 1), rc == 77 and
              "wrong user name or password" in err, err)
    check("the fifth says the user is locked out", "locked out until" in err,
          err)
    # an hour more, so that no step below depends on this machine's speed
    login_state(u, "--age", "-3600")
    rc, _, err = run("account", "show", "shop", user=u)
    check("locked out: the right password is refused 77", rc == 77 and
          "is locked out until" in err, err)
    rc, _, err = run("account", "show", "shop", user=u, password=False)
    check("... before the password is even read (none given)", rc == 77 and
          "is locked out" in err and "no password" not in err, err)
    users = {x["name"]: x for x in js("user", "list", "--account",
                                      "shop") or []}
    check("user list shows the lock-out", u in users and
          users[u]["locked"] and "locked_until" in users[u], str(users.get(u)))
    recs = js("audit", "list", "--user", u) or []
    check("each failed login audited",
          len([r for r in recs if r["result"] == "refused: wrong user name "
               "or password"]) == 5, str(recs))
    check("the lock-out audited", [r for r in recs
                                   if r["action"] == "login lock-out" and
                                   "locked out for 60 s" in r["result"]],
          str(recs))
    check("refusals while locked audited", len(
        [r for r in recs if "is locked out until" in r["result"]]) == 2,
        str(recs))
    st = login_state(u)
    check("one lock-out", st.get("lockouts") == 1 and
          st.get("locked_until", 0) > st.get("fail_since", 0), str(st))
    # an hour later (the lock-out moved into the past): the right password
    # works again and clears the count
    login_state(u, "--age", "7200")
    ok("after the lock-out the right password works", "account", "show",
       "shop", user=u)
    st = login_state(u)
    check("a good login clears failures and lock-outs", st.get("failures") ==
          0 and st.get("lockouts") == 0 and st.get("locked_until") == 0,
          str(st))
    # fewer failures than the limit lock nothing; an admin ends a lock-out
    for i in range(4):
        run("account", "show", "shop", user=u, password="nope")
    ok("four failures lock nothing", "account", "show", "shop", user=u)
    for i in range(5):
        run("account", "show", "shop", user=u, password="nope")
    login_state(u, "--age", "-3600")
    rc, _, err = run("account", "show", "shop", user=u)
    check("locked again", rc == 77 and "locked out" in err, err)
    rc, _, err = run("user", "unlock", u, user="s-manager")
    check("a manager may not unlock: 77", rc == 77 and
          "needs role admin" in err, err)
    ok("an admin unlocks", "user", "unlock", u, user="s-admin")
    ok("unlocked: the right password works", "account", "show", "shop",
       user=u)
    # an unknown name has nothing to lock, and is refused alike
    for i in range(6):
        rc, _, err = run("account", "show", "shop", user="ghost2",
                         password="x")
    check("an unknown user: wrong name or password, no lock-out", rc == 77
          and "wrong user name or password" in err and "locked" not in err,
          err)


WHY_USERS = ("the spool has users: act as one with --as USER or "
             "$SLUICE_API_KEY; the spool owner may use --bootstrap to "
             "recover")


def test_bootstrap():
    """Once users exist, no identity means 77; --bootstrap is the owner's
    audited break-glass; $SLUICE_USER is the default of --as."""
    rc, _, err = run("account", "show", "blog", anon=True)
    check("users exist: no identity refused 77", rc == 77, err)
    check("... saying how to act", WHY_USERS in err, err)
    rc, _, err = run("spool", "info", anon=True)
    check("... also for the older commands", rc == 77 and WHY_USERS in err,
          err)
    rc, out, err = run("account", "show", "blog", bootstrap=True,
                       env_extra={"SUDO_USER": "ann-admin"})
    check("--bootstrap: the owner acts", rc == 0 and "blog" in out, err)
    check("... with a warning on stderr", "warning: --bootstrap" in err, err)
    rc, _, err = run("spool", "info", bootstrap=True,
                     env_extra={"SUDO_USER": "ann-admin"})
    check("--bootstrap for an older command", rc == 0, err)
    recs = js("audit", "list", "--user", "(bootstrap)") or []
    via = "uid:%d sudo:ann-admin" % os.geteuid()
    check("--bootstrap audited with the uid and $SUDO_USER", len(
        [r for r in recs if r["via"] == via and
         r["object"] == "--bootstrap (break-glass)" and
         r["action"] in ("account show", "spool")]) == 2, str(recs[-4:]))
    recs = js("audit", "list", "--user", "(none)") or []
    check("refusals for want of an identity audited", len(
        [r for r in recs if r["result"] == "refused: " + WHY_USERS]) >= 2,
        str(recs[-3:]))
    rc, _, err = run("account", "show", "blog", bootstrap=True, user="ops")
    check("--bootstrap with --as: 64", rc == 64, err)
    # $SLUICE_USER: the default of --as; --as and a key come first
    as_viewer = {"SLUICE_USER": "s-viewer", "SLUICE_PASSWORD": pw("s-viewer")}
    rc, _, err = run("account", "show", "shop", anon=True, env_extra=as_viewer)
    check("$SLUICE_USER acts as that user", rc == 0, err)
    rc, _, err = run("account", "show", "blog", anon=True, env_extra=as_viewer)
    check("... with that user's roles", rc == 77 and "s-viewer has none" in
          err, err)
    rc, _, err = run("account", "show", "blog", user="m-viewer",
                     env_extra={"SLUICE_USER": "s-viewer"})
    check("--as comes before $SLUICE_USER", rc == 0, err)
    if os.geteuid() == 0:
        st = os.stat(SPOOL)
        os.chown(SPOOL, 65534, 65534)
        try:
            rc, _, err = run("account", "show", "blog", bootstrap=True)
            check("--bootstrap by another uid: 77", rc == 77 and
                  "only the owner" in err, err)
        finally:
            os.chown(SPOOL, st.st_uid, st.st_gid)
    else:
        rc, _, err = run("account", "show", "x", bootstrap=True,
                         spool="/sluice-accounts-test-absent")
        check("--bootstrap by another uid: 77", rc == 77 and
              "only the owner" in err, err)


def test_no_access():
    """A spool the caller may not read: "permission denied", 77 (not "no
    spool here", 66)."""
    if os.geteuid() == 0:
        # root's spool in a 0700 directory, sluice run as nobody
        os.chmod(T, 0o755)
        spool = os.path.join(T, "private")
        ok("root's private spool", "account", "create", "priv", anon=True,
           spool=spool)
        os.chmod(spool, 0o700)
        # with an identity: the open is what fails, not the bootstrap rule
        env = dict(BASE_ENV, SLUICE_PASSWORD=pw("ops"))
        base = ["setpriv", "--reuid=nobody", "--regid=nogroup",
                "--clear-groups", SLUICE, "--spool", spool, "--as", "ops"]
        cases = [(["account", "show", "priv"], "the directory"),
                 (["spool", "info"], "the directory"),
                 (["spool", "check"], "the directory")]
        for args, what in cases + [(["account", "show", "priv"],
                                    "data.mdb")]:
            if what == "data.mdb":    # a directory open to all, its data not
                os.chmod(spool, 0o755)
                os.chmod(os.path.join(spool, "data.mdb"), 0o600)
            p = subprocess.run(base + args, env=env, capture_output=True,
                               text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            label = "as nobody, %s (%s not readable)" % (" ".join(args), what)
            check(label + ": 77", p.returncode == 77,
                  "exit %d: %s" % (p.returncode, p.stderr))
            check(label + ": permission denied",
                  "permission denied" in p.stderr.lower() and
                  "no spool here" not in p.stderr, p.stderr)
    else:
        spool = os.path.join(T, "private")
        ok("a private spool", "account", "create", "priv", anon=True,
           spool=spool)
        os.chmod(spool, 0)
        try:
            rc, _, err = run("account", "show", "priv", user="ops",
                             spool=spool)
            check("a spool one may not read: 77 permission denied",
                  rc == 77 and "permission denied" in err.lower(), err)
        finally:
            os.chmod(spool, 0o700)


def test_apikey_tenants():
    """A key for another tenant's user, or for a user the caller may not
    manage: refused 77 and audited."""
    def refused_creates():
        return len([r for r in js("audit", "list") or []
                    if r["action"] == "apikey create" and
                    r["result"].startswith("refused")])
    before = refused_creates()
    blog_user = prep_user("blog")
    rc, _, err = run("apikey", "create", "--user", blog_user, "--account",
                     "shop", "--scope", "read", user="s-admin")
    check("shop's admin: key for blog's user on shop: 77", rc == 77, err)
    rc, _, err = run("apikey", "create", "--user", blog_user, "--account",
                     "blog", "--scope", "read", user="s-admin")
    check("shop's admin: key for blog's user on blog: 77", rc == 77, err)
    rc, _, err = run("apikey", "create", "--user", "m-manager", "--account",
                     "shop", "--scope", "read", user="s-admin")
    check("shop's admin: key for a master's manager (who reaches shop): 77",
          rc == 77 and "acme" in err, err)
    rc, _, err = run("apikey", "create", "--user", blog_user, "--account",
                     "shop", "--scope", "read")
    check("even the master's owner: a key where its user has no role: 77",
          rc == 77 and "no role on shop" in err, err)
    rc, _, err = run("apikey", "create", "--user", "nobody", "--account",
                     "acme", "--scope", "read")
    check("a key for a user without any role: 77", rc == 77 and
          "no role" in err, err)
    check("each refused key creation audited",
          refused_creates() - before == 5, "%d" % (refused_creates() - before))
    shop_user = prep_user("shop")
    rc, _, err = run("apikey", "create", "--user", shop_user, "--account",
                     "shop", "--scope", "read", user="s-admin")
    check("shop's admin: key for shop's own user: 0", rc == 0, err)


# ----------------------------------------------------------------- audit

def tamper_copy(what, rec=3, off=40):
    """A copy of the spool whose audit trail mdb_dump/mdb_load changed:
    one byte of record rec flipped ("byte"), or records 2 and 3 swapped
    ("swap").  mdb_load overwrites the records it is given."""
    copy = os.path.join(T, uniq("tamper"))
    shutil.copytree(SPOOL, copy)
    dump = subprocess.run(["mdb_dump", "-s", "audit", copy],
                          capture_output=True, text=True, check=True).stdout
    lines = dump.split("\n")
    start = lines.index("HEADER=END") + 1
    end = lines.index("DATA=END")
    pairs = [[lines[i], lines[i + 1]] for i in range(start, end, 2)]
    if what == "byte":
        h = pairs[rec - 1][1][1:]
        b = int(h[2 * off:2 * off + 2], 16) ^ 0x01
        pairs[rec - 1][1] = " " + h[:2 * off] + "%02x" % b + h[2 * off + 2:]
        body = [pairs[rec - 1]]
    else:
        pairs[1][1], pairs[2][1] = pairs[2][1], pairs[1][1]
        body = pairs[1:3]
    text = "\n".join(lines[:start] + [x for p in body for x in p] +
                     lines[end:])
    subprocess.run(["mdb_load", "-s", "audit", copy], input=text, text=True,
                   check=True, stderr=subprocess.DEVNULL)
    return copy


def test_audit():
    rc, out, err = run("audit", "verify")
    check("audit verify passes", rc == 0 and "intact" in out, err)
    v = js("audit", "verify")
    check("verify --json", v and v["intact"] and v["records"] > 100, str(v))
    # one byte flipped: in the prev hash, the body, the own hash of a
    # record early, in the middle and the last
    rc, out, _ = run("audit", "list", "--json")
    n = len(json.loads(out)) if rc == 0 else 0
    for rec, off in ((1, 0), (3, 40), (n // 2, 33), (n // 2, 50), (n, 70)):
        copy = tamper_copy("byte", rec, off)
        rc, out, err = run("audit", "verify", spool=copy)
        check("verify after a byte of record %d changed: 65" % rec,
              rc == 65, "exit %d %s" % (rc, err))
        check("... names record %d altered" % rec,
              "record %d: altered" % rec in err, err)
        rc, _, err = run("account", "list", spool=copy)
        check("the spool still works otherwise", rc == 0, err)
    copy = tamper_copy("swap")
    rc, out, err = run("audit", "verify", spool=copy)
    check("verify after two records swapped: 65 reordered",
          rc == 65 and "reordered" in err, err)
    rc, _, err = run("account", "create", uniq("late"), spool=copy)
    check("changes still append to a tampered trail (verify tells)", rc == 0,
          err)
    # refusals are in the trail
    recs = js("audit", "list") or []
    check("refusals are audited", any(r["result"].startswith("refused")
                                      for r in recs))
    since = js("audit", "list", "--since", "1h") or []
    check("--since 1h", len(since) == len(recs), "%d vs %d" % (len(since),
                                                               len(recs)))
    later = js("audit", "list", "--since", str(int(time.time()) + 3600)) or []
    check("--since the future: none", later == [], str(later[:1]))
    byuser = js("audit", "list", "--user", "m-owner") or []
    check("--user", byuser and all(r["user"] == "m-owner" for r in byuser))


# ------------------------------------------------------------- bad input

def snapshot():
    snap = {}
    for args in (["account", "list"], ["user", "list"], ["domain", "list"],
                 ["apikey", "list"], ["audit", "list"]):
        rc, out, _ = run(*(args + ["--json"]))
        snap[" ".join(args)] = out if rc == 0 else "exit %d" % rc
    snap["dkim dirs"] = sorted(os.listdir(os.path.join(SPOOL, "dkim")))
    return snap


def test_bad_input():
    before = snapshot()
    hf = write("big.txt", "x" * 9000)
    bad = [
        (65, "taken", ["account", "create", "acme"]),
        (65, "taken", ["account", "create", "shop"]),
        (65, "invalid account name", ["account", "create", "Bad Name"]),
        (64, "--daily-cap", ["account", "create", "x1", "--daily-cap", "abc"]),
        (65, "rate cap", ["account", "create", "x1", "--rate-cap", "fast"]),
        (64, "--suppression", ["account", "create", "x1", "--suppression",
                               "maybe"]),
        (64, "unknown option", ["account", "create", "x1", "--bogus"]),
        (64, "needs a value", ["account", "create", "x1", "--parent"]),
        (65, "one level", ["account", "create", "x1", "--parent", "shop"]),
        (66, "no such account", ["account", "create", "x1", "--parent",
                                 "nosuch"]),
        (66, "no such account", ["account", "show", "nosuch"]),
        (66, "no such account", ["account", "update", "nosuch",
                                 "--daily-cap", "1"]),
        (64, "nothing to change", ["account", "update", "shop"]),
        (65, "inherit", ["account", "update", "acme", "--inherit-header"]),
        (66, "longer than", ["account", "update", "shop", "--header-file",
                             hf]),
        (66, "No such file", ["account", "update", "shop", "--footer-file",
                              "/nonexistent/f"]),
        (64, "usage", ["account", "usage", "shop", "--days", "0"]),
        (65, "taken", ["user", "add", "m-owner", "--no-password"]),
        (65, "invalid user name", ["user", "add", "Bad User",
                                   "--no-password"]),
        (64, "unknown role", ["user", "add", "x2", "--role", "superuser",
                              "--no-password"]),
        (66, "no such account", ["user", "add", "x2", "--account", "nosuch",
                                 "--no-password"]),
        (64, "unknown role", ["user", "role", "m-owner", "acme", "god"]),
        (66, "no such user", ["user", "role", "nosuch", "acme", "viewer"]),
        (66, "no such account", ["user", "role", "m-owner", "nosuch",
                                 "viewer"]),
        (66, "no such user", ["user", "disable", "nosuch"]),
        (64, "usage", ["user", "totp", "m-owner", "maybe"]),
        (64, "unknown scope", ["apikey", "create", "--user", "m-owner",
                               "--scope", "root"]),
        (66, "no API key", ["apikey", "revoke", "99999"]),
        (64, "usage", ["apikey", "revoke", "abc"]),
        (65, "invalid domain", ["domain", "add", "bad domain!"]),
        (65, "invalid domain", ["domain", "add", "nodot"]),
        (65, "already", ["domain", "add", "acme.example"]),
        (65, "already", ["domain", "add", "ACME.Example."]),
        (65, "another account", ["domain", "add", "shop.example",
                                 "--account", "acme"]),
        (66, "no such account", ["domain", "add", "x3.example", "--account",
                                 "nosuch"]),
        (64, "usage", ["domain", "add", "x3.example", "--algo", "dsa"]),
        (66, "no sending domain", ["domain", "show", "nosuch.example"]),
        (66, "no sending domain", ["domain", "verify", "nosuch.example",
                                   "--force"]),
        (64, "not a time", ["audit", "list", "--since", "yesterdayish"]),
        (66, "no such account", ["audit", "list", "--account", "nosuch"]),
        (64, "usage", ["audit", "verify", "extra"]),
        (66, "no such account", ["inject", "--account", "nosuch", "--from",
                                 "a@b.example", "--to", "r@d.example",
                                 message("x@acme.example")]),
        (64, "unknown subcommand", ["account", "frobnicate"]),
    ]
    for code, text, args in bad:
        rc, out, err = run(*args)
        label = " ".join(args[:4])
        check("bad: %s exits %d" % (label, code), rc == code,
              "exit %d: %s" % (rc, err.strip()))
        check("bad: %s says '%s'" % (label, text), text.lower() in
              err.lower(), err.strip())
    check("nothing changed by bad input", snapshot() == before)
    rc, _, err = run("account", "list", spool=os.path.join(T, "none"))
    check("no spool: 66", rc == 66, err)


# --------------------------------------------------------------- domains

def test_domains():
    d = js("domain", "add", "news.acme.example", "--account", "acme",
           "--selector", "s2024")
    check("domain add --json", d and d["selector"] == "s2024" and
          d["algo"] == "rsa" and d["key_created"], str(d))
    if not d:
        return
    key = d["key"]
    check("key is 0600", stat.S_IMODE(os.stat(key).st_mode) == 0o600)
    check("key dir is 0700",
          stat.S_IMODE(os.stat(os.path.dirname(key)).st_mode) == 0o700)
    check("key in SPOOL/dkim/DOMAIN/SELECTOR.key",
          key.endswith("/dkim/news.acme.example/s2024.key"), key)
    dk = [r for r in d["records"] if r["what"] == "dkim"]
    check("DKIM record", dk and dk[0]["name"] ==
          "s2024._domainkey.news.acme.example" and
          dk[0]["value"].startswith("v=DKIM1; k=rsa; p="), str(dk))
    check("strings of at most 255 octets", dk and
          all(len(s) <= 255 for s in dk[0]["strings"]) and
          "".join(dk[0]["strings"]) == dk[0]["value"])
    check("SPF and DMARC suggested",
          {r["what"] for r in d["records"]} == {"dkim", "spf", "dmarc"})
    out = ok("domain add (text)", "domain", "add", "text.example",
             "--account", "acme", "--algo", "ed25519")
    check("text lists the records", "._domainkey.text.example. IN TXT (" in
          out and "_dmarc.text.example." in out, out)
    uni = js("domain", "add", "bücher.example", "--account", "acme",
             "--algo", "ed25519")
    check("IDN stored as A-label", uni and
          uni["domain"] == "xn--bcher-kva.example", str(uni))
    # verify over DNS: dnsmasq serves the right record for news., a wrong
    # one for text.
    check("dnsmasq is installed (tools/deps.sh)", os.path.exists(DNSMASQ),
          DNSMASQ)
    txt = js("domain", "show", "text.example")
    wrong = [r for r in txt["records"] if r["what"] == "dkim"][0]["value"]
    wrong = wrong[:-4] + ("AAAA" if not wrong.endswith("AAAA") else "BBBB")
    port = harness.free_port()
    conf = write("dnsmasq.conf", "local=/example/\n"
                 "txt-record=s2024._domainkey.news.acme.example,%s\n"
                 "txt-record=%s._domainkey.text.example,%s\n" % (
                     ",".join('"%s"' % s for s in dk[0]["strings"]),
                     [r for r in txt["selectors"]][0]["selector"],
                     '"%s"' % wrong))
    p = subprocess.Popen([DNSMASQ, "--no-daemon", "--port=%d" % port,
                          "--listen-address=127.0.0.1", "--bind-interfaces",
                          "--no-resolv", "--no-hosts", "--conf-file=" + conf,
                          "--pid-file=", "--user=root", "--group=root"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)
        server = "127.0.0.1:%d" % port
        rc, out, err = run("domain", "verify", "news.acme.example",
                           "--dns-server", server)
        check("verify over DNS", rc == 0 and "verified" in out, err)
        rc, out, err = run("domain", "verify", "text.example",
                           "--dns-server", server)
        check("a wrong record does not verify (65)", rc == 65, err)
        shown = js("domain", "show", "text.example")
        check("... and it stays unverified", shown and
              not shown["verified"], str(shown))
        shown = js("domain", "show", "news.acme.example")
        check("verified shows", shown and shown["verified"], str(shown))
        rc, _, err = run("domain", "verify", "text.example", "--dns-server",
                         server, user="s-owner")
        check("shop's owner may not verify acme's domain", rc == 77, err)
    finally:
        p.terminate()
        p.wait(5)


def test_inject_domains():
    rc, _, err = run("inject", "--account", "shop", "--from", "b@x.example",
                     "--to", "r@dest.example",
                     message("x@shopnew.example"), user="s-sender")
    check("From an unverified domain: refused 77", rc == 77 and
          "not a verified sending domain of account shop" in err, err)
    rc, _, err = run("inject", "--account", "shop", "--from", "b@x.example",
                     "--to", "r@dest.example", message("x@acme.example"),
                     user="s-sender")
    check("From another account's domain: refused 77", rc == 77, err)
    rc, _, err = run("inject", "--account", "shop", "--from", "b@x.example",
                     "--to", "r@dest.example",
                     message("x@news.shop.example"), user="s-sender")
    check("From a subdomain of a verified domain", rc == 0, err)
    nofrom = write(uniq("nf") + ".eml", "To: r@dest.example\r\n\r\nx\r\n")
    rc, _, err = run("inject", "--account", "shop", "--from", "b@x.example",
                     "--to", "r@dest.example", nofrom, user="s-sender")
    check("no From: header: 65", rc == 65, err)
    ok("disable blog", "account", "disable", "blog")
    rc, _, err = run("inject", "--account", "blog", "--from", "b@x.example",
                     "--to", "r@dest.example", message("x@blog.example"))
    check("inject into a disabled account: 77", rc == 77 and
          "disabled" in err, err)
    rc, _, err = run("account", "show", "blog", user="b-owner")
    check("a disabled sub-account's own users lose their roles", rc == 77,
          err)
    ok("enable blog", "account", "enable", "blog")
    # the master's owner injects and pauses as before, and both are audited
    out = ok("owner inject", "inject", "--from", "b@x.example", "--to",
             "r@dest.example", message("x@raw.example"))
    check("inject output unchanged", out.startswith("queued message "), out)
    ok("owner pause", "pause", "site", "google", "--reason", "test")
    recs = js("audit", "list") or []
    check("pause audited", any(r["action"] == "pause" and
                               "site google" in r["object"] for r in recs))
    check("inject audited", any(r["action"] == "inject" for r in recs))


def test_help():
    for grp in ("account", "user", "apikey", "domain", "audit"):
        rc, out, _ = run(grp, "--help", spool=os.path.join(T, "nowhere"))
        check("%s --help" % grp, rc == 0 and "usage:" in out, out[:80])
        rc, out, _ = run(grp, "list", "--help",
                         spool=os.path.join(T, "nowhere"))
        check("%s list --help" % grp, rc == 0 and "usage:" in out, out[:80])


def main():
    try:
        test_help()
        setup()
        test_matrix()
        test_inheritance()
        test_tenancy()
        test_keys()
        test_logins()
        test_lockout()
        test_bootstrap()
        test_apikey_tenants()
        test_no_access()
        test_inject_domains()
        test_domains()
        test_bad_input()
        test_audit()
    finally:
        H.cleanup()
    return H.summary()


if __name__ == "__main__":
    sys.exit(main())
