#!/usr/bin/python3
"""dkim_cli.py - `sluice dkim keygen|list|check` end to end.

keygen makes keys in a fresh spool's key store (dirs 0700, keys 0600, the
spool created on the way) and prints a record whose strings are at most 255
octets; bad domains, selectors, algorithms and sizes exit 64 with a reason,
an existing key 73, an IDN domain lands under its A-label.  The printed
records are served by a dnsmasq on 127.0.0.1 (spare port, stopped by PID)
next to altered ones, and check must say match, mismatch, wrong type,
revoked, missing or dns error with exit 0, 65 or 69; no key in the store
66, a key readable by others 78 with the chmod that fixes it.  dkimpy
verifies mail signed (dkim_sign_tool) with the generated keys against the
records served by dnsmasq.  --json output parses and has its fields.

usage: dkim_cli.py SLUICE DKIM_SIGN_TOOL
"""
import json
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time

import dkim
import dns.resolver

import harness

SLUICE, SIGN_TOOL = sys.argv[1], sys.argv[2]
DNSMASQ = "/usr/sbin/dnsmasq"
ENV = harness.base_env("SLUICE_DNS", fast_hash=False)
H = harness.Cli(SLUICE, "sluice-dkim-cli-", spool=("new", "spool"),
                env=ENV, timeout=30)
T, SPOOL = H.tmp, H.spool                    # the spool does not exist yet
check, sluice = H.check, H.run
free_port, port_free = harness.free_port, harness.port_free


def parse_record(out):
    """(name, [strings]) of the zone-file line keygen prints."""
    m = re.search(r'^(\S+)\. IN TXT \(((?: "[^"]*")+) \)$', out, re.M)
    if not m:
        return None, []
    return m.group(1), re.findall(r'"([^"]*)"', m.group(2))


def keygen(domain, selector, *extra):
    """keygen with --json; returns the parsed document (or {})."""
    rc, out, err = sluice("dkim", "keygen", domain, "--selector", selector,
                          "--json", *extra)
    check("keygen %s %s %s exits 0" % (domain, selector, extra), rc == 0, err)
    try:
        return json.loads(out)
    except ValueError:
        check("keygen --json is JSON", False, out[:200])
        return {}


def txt_arg(strings):
    """dnsmasq txt-record value: quoted strings, comma-separated."""
    return ",".join('"%s"' % s for s in strings)


def split255(value):
    return [value[i:i + 255] for i in range(0, len(value), 255)] or [""]


def pvalue(txt):
    return txt.split("p=", 1)[1]


class ServfailServer(threading.Thread):
    """Answers every UDP query with SERVFAIL (rcode 2)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def run(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            if len(data) < 12:
                continue
            flags = 0x8000 | (data[2] & 0x79) << 8 | 0x80 | 2
            self.sock.sendto(data[:2] + flags.to_bytes(2, "big") +
                             data[4:6] + b"\0\0\0\0\0\0" + data[12:], peer)


# ------------------------------------------------------------- keygen

def test_help():
    for args in (["dkim", "--help"], ["dkim", "keygen", "--help"],
                 ["dkim", "list", "--help"], ["dkim", "check", "--help"]):
        rc, out, _ = sluice(*args)
        check(" ".join(args) + " exits 0 with usage",
              rc == 0 and out.startswith("usage: sluice dkim"), out[:100])
    rc, _, err = sluice("dkim")
    check("dkim without a command exits 64", rc == 64 and "usage" in err)
    rc, _, err = sluice("dkim", "frob")
    check("dkim frob exits 64", rc == 64 and "unknown subcommand" in err, err)


def test_keygen_text():
    """Text output: the record line, its strings, the key path, modes."""
    rc, out, err = sluice("dkim", "keygen", "Text.TEST.", "--selector", "T1")
    check("keygen (text) exits 0", rc == 0, err)
    name, strings = parse_record(out)
    check("keygen prints NAME. IN TXT ( ... )",
          name == "t1._domainkey.text.test", out)
    check("record strings are at most 255 octets",
          strings and all(len(s) <= 255 for s in strings), strings)
    check("record starts v=DKIM1; k=rsa; p=",
          "".join(strings).startswith("v=DKIM1; k=rsa; p=MII"), strings[:1])
    path = os.path.join(SPOOL, "dkim", "text.test", "t1.key")
    check("keygen names the key path", "key: " + path in out, out)
    check("spool created", os.path.isdir(SPOOL))
    for d in (os.path.join(SPOOL, "dkim"), os.path.dirname(path)):
        mode = stat.S_IMODE(os.stat(d).st_mode)
        check("%s mode 0700" % d, mode == 0o700, oct(mode))
    mode = stat.S_IMODE(os.stat(path).st_mode)
    check("key file mode 0600", mode == 0o600, oct(mode))

    before = open(path, "rb").read()
    rc, _, err = sluice("dkim", "keygen", "text.test", "--selector", "t1")
    check("keygen over an existing key exits 73", rc == 73, (rc, err))
    check("the refusal names the file", path in err, err)
    check("the existing key is untouched", open(path, "rb").read() == before)


def test_keygen_refusals():
    cases = [
        (["exa mple.test", "--selector", "s"], "domain"),
        (["-a.test", "--selector", "s"], "unknown option"),
        (["a-.test", "--selector", "s"], "domain"),
        (["a..test", "--selector", "s"], "domain"),
        (["localhost", "--selector", "s"], "two labels"),
        (["192.0.2.1", "--selector", "s"], "address"),
        (["a_b.test", "--selector", "s"], "domain"),
        ([("x" * 64) + ".test", "--selector", "s"], "63"),
        (["ok.test", "--selector", "s_1"], "selector"),
        (["ok.test", "--selector", "-s"], "selector"),
        (["ok.test", "--selector", "a..b"], "selector"),
        (["ok.test", "--selector", "s/x"], "selector"),
        (["ok.test"], "--selector is required"),
        (["ok.test", "--selector", "s", "--algo", "dsa"], "--algo"),
        (["ok.test", "--selector", "s", "--bits", "512"], "1024 to 4096"),
        (["ok.test", "--selector", "s", "--bits", "8192"], "1024 to 4096"),
        (["ok.test", "--selector", "s", "--bits", "2k"], "1024 to 4096"),
        (["ok.test", "--selector", "s", "--algo", "ed25519", "--bits",
          "2048"], "--bits"),
        (["a\u2488.test", "--selector", "s"], "IDN"),
        (["xn--zz.test", "--selector", "s"], "IDN"),
    ]
    for args, what in cases:
        rc, out, err = sluice("dkim", "keygen", *args)
        check("keygen %r exits 64" % (args,), rc == 64, (rc, out, err))
        check("keygen %r says %r" % (args, what), what in err, err)
    check("refused keygens wrote nothing for ok.test",
          not os.path.exists(os.path.join(SPOOL, "dkim", "ok.test")) or
          not os.listdir(os.path.join(SPOOL, "dkim", "ok.test")))


def test_keygen_idn_and_key_path():
    doc = keygen("B\u00fccher.test", "idn", "--algo", "ed25519")
    check("IDN domain becomes its A-label",
          doc.get("domain") == "xn--bcher-kva.test", doc)
    check("IDN key under the A-label directory", os.path.isfile(
        os.path.join(SPOOL, "dkim", "xn--bcher-kva.test", "idn.key")))
    alt = os.path.join(T, "elsewhere.pem")
    doc = keygen("alt.test", "a", "--key", alt)
    check("--key PATH writes there", doc.get("key") == alt and
          os.path.isfile(alt), doc)
    check("--key PATH file mode 0600",
          stat.S_IMODE(os.stat(alt).st_mode) == 0o600)
    check("--key PATH leaves the store alone", not os.path.exists(
        os.path.join(SPOOL, "dkim", "alt.test")))


def test_list():
    rc, out, err = sluice("dkim", "list")
    check("list exits 0", rc == 0, err)
    check("list shows text.test t1 rsa 2048", re.search(
        r"^text\.test\s+t1\s+rsa\s+2048\s+\S+t1\.key$", out, re.M), out)
    rc, out, err = sluice("dkim", "list", "d1.test", "--json")
    check("list DOMAIN --json exits 0", rc == 0, err)
    try:
        rows = json.loads(out)
    except ValueError:
        rows = []
        check("list --json is JSON", False, out[:200])
    want = {("r2048", "rsa", 2048), ("ed", "ed25519", 256),
            ("r4096", "rsa", 4096)}
    check("list --json has d1.test's keys", {
        (r["selector"], r["algorithm"], r["bits"]) for r in rows} == want,
        rows)
    check("list --json rows have all fields", all(
        set(r) >= {"domain", "selector", "algorithm", "bits", "key",
                   "warning"} and r["warning"] is None for r in rows), rows)
    rc, out, _ = sluice("dkim", "list", "nokey.test")
    check("list of a domain without keys exits 66", rc == 66, rc)


# ------------------------------------------------------------- check

def setup_store():
    """Keys in the store and the records dnsmasq will serve."""
    recs = {}       # name -> list of records (each a list of strings)
    keys = {}       # (domain, selector) -> keygen document

    def gen(dom, sel, *extra, publish=True):
        doc = keygen(dom, sel, *extra)
        keys[(dom, sel)] = doc
        if publish and doc:
            recs.setdefault(doc["name"], []).append(doc["strings"])
        return doc

    d = gen("d1.test", "r2048")
    check("keygen json fields", set(d) >= {"domain", "selector", "algorithm",
                                           "bits", "key", "name", "txt"}, d)
    check("keygen json rsa 2048", d.get("algorithm") == "rsa" and
          d.get("bits") == 2048, d)
    check("keygen json txt is the strings joined",
          "".join(d.get("strings", [])) == d.get("txt"), d)
    d = gen("d1.test", "ed", "--algo", "ed25519")
    check("ed25519 record", d.get("txt", "").startswith(
        "v=DKIM1; k=ed25519; p=") and d.get("bits") == 256, d)
    check("ed25519 key mode 0600", d and stat.S_IMODE(
        os.stat(d["key"]).st_mode) == 0o600)
    d = gen("d1.test", "r4096", "--bits", "4096")
    check("RSA-4096 record is cut into 4 strings of <= 255 octets",
          len(d.get("strings", [])) == 4 and
          all(len(s) <= 255 for s in d["strings"]), d.get("strings"))

    # published key differs
    other = os.path.join(T, "other-rsa.pem")
    o = keygen("mm.test", "x", "--key", other)
    gen("mm.test", "s", publish=False)
    recs["s._domainkey.mm.test"] = [o["strings"]]
    other_ed = os.path.join(T, "other-ed.pem")
    oe = keygen("mm.test", "y", "--algo", "ed25519", "--key", other_ed)
    gen("mm.test", "e", "--algo", "ed25519", publish=False)
    recs["e._domainkey.mm.test"] = [oe["strings"]]
    # nothing published; only an SPF record at the name
    gen("miss.test", "s", publish=False)
    gen("miss.test", "spf", publish=False)
    recs["spf._domainkey.miss.test"] = [["v=spf1 -all"]]
    # revoked
    gen("rev.test", "s", publish=False)
    recs["s._domainkey.rev.test"] = [["v=DKIM1; k=rsa; p="]]
    # k=ed25519 for an rsa key
    gen("wt.test", "s", publish=False)
    recs["s._domainkey.wt.test"] = [["v=DKIM1; k=ed25519; p=" +
                                     pvalue(oe["txt"])]]
    # two TXT records at the name, one of them ours
    gen("two.test", "s", publish=False)
    recs["s._domainkey.two.test"] = [["v=spf1 -all"],
                                     keys[("two.test", "s")]["strings"]]
    # whitespace around tags and inside p=, odd string boundaries
    w = gen("ws.test", "s", publish=False)
    p = pvalue(w["txt"])
    spaced = " ".join(p[i:i + 40] for i in range(0, len(p), 40))
    value = "v=DKIM1 ;  k = rsa ;\th=sha1:sha256; s=email ; t=y;p= " + spaced
    recs["s._domainkey.ws.test"] = [[value[i:i + 100]
                                     for i in range(0, len(value), 100)]]
    # h=sha1 only: sluice signs sha256
    h = gen("hash.test", "s", publish=False)
    recs["s._domainkey.hash.test"] = [["v=DKIM1; h=sha1; p=" +
                                       pvalue(h["txt"])]]
    # the RSA key as a bare PKCS#1 RSAPublicKey
    k = gen("pkcs1.test", "s", publish=False)
    der = subprocess.run(["openssl", "rsa", "-in", k["key"],
                          "-RSAPublicKey_out", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    import base64
    recs["s._domainkey.pkcs1.test"] = [split255(
        "v=DKIM1; p=" + base64.b64encode(der).decode())]
    # one good, one missing
    gen("mixed.test", "good")
    gen("mixed.test", "bad", publish=False)
    # a key group and others may read
    pk = gen("perm.test", "s")
    os.chmod(pk["key"], 0o644)
    return keys, recs


def start_dnsmasq(recs):
    port = free_port()
    lines = ["local=/test/"]
    for name, records in recs.items():
        for strings in records:
            lines.append("txt-record=%s,%s" % (name, txt_arg(strings)))
    conf = os.path.join(T, "dnsmasq.conf")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = subprocess.Popen([DNSMASQ, "--no-daemon", "--port=%d" % port,
                          "--listen-address=127.0.0.1", "--bind-interfaces",
                          "--no-resolv", "--no-hosts", "--no-negcache",
                          "--conf-file=" + conf, "--pid-file=",
                          "--user=root", "--group=root"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while port_free(port):
        if p.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("dnsmasq did not start: %s" %
                               p.stderr.read().decode(errors="replace"))
        time.sleep(0.02)
    return p, port


def check_json(domain, server, *extra, env=None):
    rc, out, err = sluice("dkim", "check", domain, "--dns-server", server,
                          "--json", *extra, env=env)
    try:
        rows = json.loads(out) if out else []
    except ValueError:
        rows = []
        check("check --json is JSON", False, out[:200])
    return rc, {r["selector"]: r for r in rows}, err


def test_check(keys, server, port):
    rc, rows, err = check_json("d1.test", server)
    check("check d1.test (rsa 2048, ed25519, rsa 4096) exits 0", rc == 0,
          (rc, rows, err))
    check("all three match", set(rows) == {"r2048", "ed", "r4096"} and all(
        r["status"] == "match" for r in rows.values()), rows)
    check("check --json rows have their fields", all(
        set(r) >= {"selector", "algorithm", "status", "detail"}
        for r in rows.values()), rows)
    check("check --json algorithm", rows.get("ed", {}).get("algorithm") ==
          "ed25519" and rows.get("r4096", {}).get("algorithm") == "rsa",
          rows)
    for sel in ("r2048", "ed", "r4096"):
        rc, out, err = sluice("dkim", "check", "D1.test.", "--selector", sel,
                              "--dns-server", server)
        check("check --selector %s exits 0" % sel, rc == 0, (out, err))
        check("check --selector %s text says match" % sel, re.search(
            r"^%s\s+\S+\s+match\s" % sel, out, re.M), out)

    def expect(domain, sel, status, code, detail_has=""):
        rc, rows, err = check_json(domain, server, "--selector", sel)
        row = rows.get(sel, {})
        check("%s/%s exits %d" % (domain, sel, code), rc == code,
              (rc, rows, err))
        check("%s/%s is %s" % (domain, sel, status),
              row.get("status") == status, row)
        check("%s/%s detail has %r" % (domain, sel, detail_has),
              detail_has in row.get("detail", ""), row)
        return row

    expect("mm.test", "s", "mismatch", 65, "different 2048-bit RSA key")
    expect("mm.test", "e", "mismatch", 65, "different ed25519 key")
    expect("miss.test", "s", "missing", 65, "NXDOMAIN")
    expect("miss.test", "spf", "missing", 65, "no DKIM record")
    expect("rev.test", "s", "revoked", 65, "revoked")
    expect("wt.test", "s", "wrong_type", 65, "k=ed25519")
    expect("two.test", "s", "match", 0, "")
    expect("ws.test", "s", "match", 0, "t=y")
    expect("hash.test", "s", "mismatch", 65, "h=sha1")
    expect("pkcs1.test", "s", "match", 0, "PKCS#1")

    rc, rows, err = check_json("mixed.test", server)
    check("one match and one missing exits 65", rc == 65 and
          rows.get("good", {}).get("status") == "match" and
          rows.get("bad", {}).get("status") == "missing", (rc, rows, err))

    rc, out, err = sluice("dkim", "check", "rev.test", "--dns-server", server)
    check("text check of a revoked key names it and the record to publish",
          rc == 65 and re.search(r"^s\s+rsa\s+revoked\s", out, re.M) and
          "s._domainkey.rev.test. IN TXT (" in out, (out, err))

    env = dict(ENV, SLUICE_DNS=server)
    rc, out, err = sluice("dkim", "check", "d1.test", "--selector", "ed",
                          env=env)
    check("$SLUICE_DNS names the server", rc == 0, (rc, out, err))
    rc, out, err = sluice("dkim", "check", "d1.test", "--dns-server",
                          "dns.example")
    check("--dns-server that is no address exits 64", rc == 64 and
          "dns.example" in err, (rc, err))
    rc, out, err = sluice("dkim", "check", "d1.test",
                          env=dict(ENV, SLUICE_DNS="nope"))
    check("a bad $SLUICE_DNS exits 78", rc == 78 and "SLUICE_DNS" in err,
          (rc, err))

    # nobody listens: dns error within the 5 s budget (subprocess timeout)
    dead = free_port()
    rc, rows, err = check_json("d1.test", "127.0.0.1:%d" % dead)
    check("a server nobody runs exits 69", rc == 69, (rc, rows, err))
    check("... and every selector says dns_error", rows and all(
        r["status"] == "dns_error" for r in rows.values()), rows)
    sf = ServfailServer()
    sf.start()
    rc, rows, err = check_json("d1.test", "127.0.0.1:%d" % sf.port,
                               "--selector", "ed")
    check("SERVFAIL exits 69", rc == 69 and
          "SERVFAIL" in rows.get("ed", {}).get("detail", ""), (rc, rows))
    sf.sock.close()

    rc, out, err = sluice("dkim", "check", "nokey.test", "--dns-server",
                          server)
    check("no key in the store exits 66", rc == 66 and "keygen" in err,
          (rc, err))
    rc, out, err = sluice("dkim", "check", "d1.test", "--selector", "nope",
                          "--dns-server", server)
    check("no key with that selector exits 66", rc == 66 and "nope" in err,
          (rc, err))
    rc, out, err = sluice("dkim", "check", "d1.test", "--selector", "a_b",
                          "--dns-server", server)
    check("a bad selector exits 64", rc == 64 and "selector" in err, err)
    rc, out, err = sluice("dkim", "check", "--dns-server", server)
    check("check without DOMAIN exits 64", rc == 64, rc)

    perm = keys[("perm.test", "s")]["key"]
    rc, out, err = sluice("dkim", "check", "perm.test", "--dns-server",
                          server)
    check("a key readable by others exits 78", rc == 78, (rc, err))
    check("... naming the fix", "chmod 600 " + perm in err, err)
    rc, out, err = sluice("dkim", "list", "perm.test", "--json")
    rows = json.loads(out) if rc == 0 else []
    check("list warns about the 0644 key with the fix", rows and
          "chmod 600 " + perm in (rows[0].get("warning") or ""), (rc, rows))
    rc, out, err = sluice("dkim", "list", "perm.test")
    check("text list warns on stderr", rc == 0 and "chmod 600" in err, err)
    os.chmod(perm, 0o600)
    rc, out, err = sluice("dkim", "check", "perm.test", "--dns-server",
                          server)
    check("after chmod 600 the key checks", rc == 0, (rc, out, err))


def test_dkimpy(keys, port):
    """Mail signed with the generated keys verifies against the records."""
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ["127.0.0.1"]
    res.port = port
    res.lifetime = 3

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        ans = res.resolve(name.rstrip("."), "TXT")
        return b"".join(b"".join(r.strings) for r in ans)

    msg = os.path.join(T, "msg.eml")
    with open(msg, "wb") as f:
        f.write(b"From: Alice <alice@d1.test>\r\nTo: bob@example.net\r\n"
                b"Subject: keys from sluice dkim keygen\r\n"
                b"Date: Mon, 2 Nov 2026 10:00:00 +0000\r\n"
                b"Message-ID: <k@d1.test>\r\n\r\nHello.\r\n")
    for sel in ("r2048", "ed", "r4096"):
        key = keys[("d1.test", sel)]["key"]
        p = subprocess.run([SIGN_TOOL, "sign", key, "d1.test", sel, msg],
                           capture_output=True)
        check("dkim_sign_tool signs with %s" % sel, p.returncode == 0,
              p.stderr)
        signed = p.stdout
        ok = False
        try:
            ok = dkim.verify(signed, dnsfunc=dnsfunc)
        except Exception as e:   # dkimpy raises on some failures
            check("dkimpy verify %s" % sel, False, repr(e))
        check("dkimpy verifies %s against the published record" % sel, ok)
        bad = signed.replace(b"Hello.", b"Hellp.")
        check("dkimpy rejects an altered body (%s)" % sel,
              not dkim.verify(bad, dnsfunc=dnsfunc))


def main():
    dnsmasq = None
    try:
        test_help()
        test_keygen_text()
        test_keygen_refusals()
        test_keygen_idn_and_key_path()
        keys, recs = setup_store()
        test_list()
        dnsmasq, port = start_dnsmasq(recs)
        server = "127.0.0.1:%d" % port
        test_check(keys, server, port)
        test_dkimpy(keys, port)
    finally:
        if dnsmasq:
            dnsmasq.terminate()
            try:
                dnsmasq.wait(5)
            except subprocess.TimeoutExpired:
                dnsmasq.kill()
                dnsmasq.wait()
    rc = H.summary()
    H.cleanup(keep_on_failure=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
