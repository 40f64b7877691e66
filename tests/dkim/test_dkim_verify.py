#!/usr/bin/python3
"""test_dkim_verify.py - sign with sluice's dkim/, verify independently.

Usage: test_dkim_verify.py DKIM_SIGN_TOOL DKIM_VERIFY_OPENDKIM

Makes an rsa-2048 and an ed25519 key with the tool and publishes both TXT
records through verifiers.py: dkimpy reads them from a dnsmasq on a spare
127.0.0.1 port, opendkim-testmsg from a dnsmasq on :53 inside a private
network+mount namespace (see verifiers.py for why and how).  Nine awkward
message shapes are signed with each key alone and with both (signed once,
then the output signed again with the other key, in both orders); every
signature of every message must pass dkimpy AND opendkim-testmsg.

opendkim-testmsg passes a multiply-signed message when ANY signature
verifies, and so does libopendkim's dkim_eom() in dkim_verify_opendkim;
verifiers.py therefore also checks each signature alone (the other
DKIM-Signature fields removed), and this test does the same with the
libopendkim API driver (key records from a file).

Negative controls, all in the same batch: each single-signed message with
one byte changed in Subject or in the body, or an extra From on top, must
fail in dkimpy and opendkim-testmsg (and the first two in the libopendkim
driver); a message signed with an unpublished key must fail in both; a
dual-signed message with one broken signature passes opendkim-testmsg as a
whole but that signature fails alone.  A message with two To fields is
verified by dkimpy and the libopendkim driver but refused by
opendkim-testmsg as a syntax error (it enforces RFC 5322 header counts).
Key-file and refusal checks of the tool follow.  Exit 0 only if every
check holds.
"""
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import verifiers  # noqa: E402  (after the path set-up)

TOOL, OPENDKIM = sys.argv[1], sys.argv[2]
DOMAIN = "example.test"
DATE = "Date: Mon, 2 Nov 2026 10:00:00 +0000\n"
failures = []


def check(ok, what, detail=""):
    """Record one check; detail is printed only when it fails."""
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        if detail:
            print(detail, flush=True)
        failures.append(what)


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


# Every shape carries one Date and at most one To/Subject/...:
# opendkim-testmsg refuses other headers as a syntax error.
MESSAGES = {
    "plain": crlf("From: Alice <alice@example.test>\nTo: bob@example.net\n"
                  "Subject: hello\n" + DATE +
                  "Message-ID: <1@example.test>\nMIME-Version: 1.0\n"
                  "Content-Type: text/plain; charset=utf-8\n\nHello Bob.\n"),
    "folded": crlf("From: Alice\n  <alice@example.test>\nTo: a@example.net,\n"
                   "\tb@example.net,   \n c@example.net\n" + DATE +
                   "Subject:   a   subject\t with  \n   folding   \n"
                   "Content-Type: multipart/alternative;\n"
                   "\tboundary=\"xyz\"\n\n--xyz\n\nx\n--xyz--\n"),
    "empty_body": crlf("From: alice@example.test\nSubject: empty\n" + DATE +
                       "\n"),
    "no_body_at_all": crlf("From: alice@example.test\nSubject: nothing\n" +
                           DATE),
    "blank_lines_only": crlf("From: alice@example.test\nSubject: b\n" + DATE +
                             "\n\n  \n\t\n"),
    "no_final_crlf": crlf("From: alice@example.test\nSubject: x\n" + DATE +
                          "\nline one\n") + b"last line  without crlf",
    "long_lines": crlf("From: alice@example.test\nSubject: long\n" + DATE +
                       "List-Unsubscribe: <" + "https://example.test/u/" +
                       "a" * 300 + ">,\n <mailto:u@example.test>\n"
                       "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n"
                       "Feedback-ID: c1:c2:c3:sluice\n\n" + "x" * 990 + "\n" +
                       ("word \t " * 150) + "\n"),
    "utf8_subject": crlf("From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.test>\n"
                         "To: b@example.net\n" + DATE +
                         "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\n"
                         "MIME-Version: 1.0\n"
                         "Content-Type: text/plain; charset=utf-8\n"
                         "Content-Transfer-Encoding: 8bit\n\n" +
                         "Grüße  \t aus Köln\n\n\n"),
    # Repeated fields, signed (Feedback-ID twice in h=) and not (Received).
    "repeated": crlf("Received: from a by b\nReceived: from c by d\n"
                     "From: alice@example.test\nTo: one@example.net\n"
                     "Reply-To: r@example.test\nCc: two@example.net\n"
                     "Feedback-ID: a:b:c:one\nFeedback-ID: a:b:c:two\n" +
                     DATE + "Subject: repeated\nX-Other: 1\n\nbody\n"
                     "  trailing ws \n\n\nend\n\n\n"),
}
# Valid DKIM, invalid RFC 5322 (two To fields).
DUPLICATE_TO = crlf("From: alice@example.test\nTo: one@example.net\n"
                    "To: two@example.net\n" + DATE + "Subject: two To\n\n"
                    "body\n")


def flip(msg, i):
    """msg with the byte at i changed."""
    return msg[:i] + bytes([msg[i] ^ 1]) + msg[i + 1:]


def bad_subject(signed):
    """One byte of the Subject value changed."""
    i = signed.index(b"\r\nSubject:") + len(b"\r\nSubject:")
    while signed[i:i + 1] in (b" ", b"\t"):
        i += 1
    return flip(signed, i)


def bad_body(signed):
    """One body byte changed, or a line added to an empty body."""
    hdr_end = signed.find(b"\r\n\r\n")
    body = signed[hdr_end + 4:] if hdr_end >= 0 else b""
    if body.strip():
        return flip(signed, hdr_end + 4 + body.index(body.strip()[:1]))
    return signed + (b"" if hdr_end >= 0 else b"\r\n") + b"x\r\n"


def bad_b(signed, algo):
    """The b= value of the signature with a=ALGO changed in one byte."""
    i = signed.index(b"a=" + algo.encode())
    return flip(signed, re.compile(rb"[;\s]b=").search(signed, i).end())


def main():
    tmp = tempfile.mkdtemp(prefix="sluice-dkim-")
    with open("/etc/resolv.conf", "rb") as f:
        host_resolv = f.read()
    try:
        keys, records = {}, {}
        for algo, bits, sel in (("rsa", 2048, "r2048"), ("ed25519", 0, "ed"),
                                ("rsa", 2048, "gone")):
            path = os.path.join(tmp, sel + ".pem")
            out = subprocess.run([TOOL, "keygen", algo, str(bits), path],
                                 check=True, capture_output=True, text=True)
            txt = out.stdout.strip()
            mode = stat.S_IMODE(os.stat(path).st_mode)
            check(mode == 0o600, "%s key file mode 0600 (got %o)" % (algo, mode))
            check(txt.startswith("v=DKIM1; k=%s; p=" % algo), algo + " TXT form")
            check(verifiers.key_txt(path) == txt,
                  "%s: verifiers.key_txt agrees with keygen" % sel)
            keys[sel] = path
            if sel != "gone":           # "gone" is never published
                records["%s._domainkey.%s" % (sel, DOMAIN)] = txt
        keyfile = os.path.join(tmp, "keys.txt")
        with open(keyfile, "w") as f:
            f.write("".join("%s %s\n" % kv for kv in records.items()))

        def sign(sel, raw, what):
            mpath = os.path.join(tmp, "msg.eml")
            with open(mpath, "wb") as f:
                f.write(raw)
            out = subprocess.run([TOOL, "sign", keys[sel], DOMAIN, sel, mpath],
                                 capture_output=True)
            if out.returncode != 0:
                check(False, what + " signs: " + out.stderr.decode())
                return None
            return out.stdout

        def api_ok(msg):
            # libopendkim (no FIXCRLF) rejects a body without its final
            # CRLF as a syntax error; SMTP always delivers one, and adding
            # it leaves the relaxed body hash unchanged, so give it that.
            if not msg.endswith(b"\r\n"):
                msg += b"\r\n"
            r = subprocess.run([OPENDKIM, keyfile], input=msg,
                               capture_output=True)
            return r.returncode == 0, r.stderr.decode().strip()

        batch = []        # (name, message) for verifiers, all in one go
        expect = {}       # name -> "good" | "bad" | ("one_bad", index)

        def add(name, msg, how):
            batch.append((name, msg))
            expect[name] = how

        for sel in keys:
            if sel == "gone":
                continue
            for label, raw in MESSAGES.items():
                what = "%s/%s" % (sel, label)
                signed = sign(sel, raw, what)
                if signed is None:
                    continue
                field = signed[:len(signed) - len(raw)]
                lines = field.split(b"\r\n")
                check(field.endswith(b"\r\n") and
                      all(len(l) <= 78 for l in lines) and
                      b"\n" not in field.replace(b"\r\n", b""),
                      what + " field folded to <=78 chars, CRLF")
                check(b" l=" not in field and b";l=" not in field,
                      what + " has no l= tag")
                add(what, signed, "good")
                add(what + " +unsigned Received",
                    b"Received: from x by y\r\n" + signed, "good")
                add(what + " altered Subject", bad_subject(signed), "badsig")
                add(what + " altered body", bad_body(signed), "badsig")
                add(what + " extra From",
                    b"From: mallory@evil.test\r\n" + signed, "bad")
                ok, err = api_ok(signed)
                check(ok, what + " verifies in libopendkim API", err)
                check(not api_ok(bad_subject(signed))[0],
                      what + " altered Subject fails in libopendkim API")
                check(not api_ok(bad_body(signed))[0],
                      what + " altered body fails in libopendkim API")

        # Both algorithms: the second signing prepends its field.
        for label, raw in MESSAGES.items():
            for inner, outer in (("r2048", "ed"), ("ed", "r2048")):
                what = "%s+%s/%s" % (outer, inner, label)
                once = sign(inner, raw, what)
                twice = once and sign(outer, once, what)
                if twice is None:
                    continue
                add(what, twice, "good")
                ok, err = api_ok(twice)
                check(ok, what + " verifies in libopendkim API (any-of)", err)
                for i in range(2):
                    ok, err = api_ok(verifiers.only_signature(twice, i))
                    check(ok, "%s signature %d alone verifies in libopendkim "
                          "API" % (what, i), err)
                if label == "plain":    # one signature broken, other intact
                    add(what + " rsa b= broken", bad_b(twice, "rsa-sha256"),
                        ("one_bad", 0 if outer == "r2048" else 1))
                    add(what + " ed25519 b= broken",
                        bad_b(twice, "ed25519-sha256"),
                        ("one_bad", 0 if outer == "ed" else 1))

        # Signed with a key whose record is absent: must fail everywhere.
        signed = sign("gone", MESSAGES["plain"], "gone/plain")
        if signed is not None:
            add("gone/plain key record absent", signed, "bad")
            dual = sign("ed", signed, "ed+gone/plain")
            if dual is not None:
                add("ed+gone/plain", dual, ("one_bad", 1))
        signed = sign("r2048", DUPLICATE_TO, "r2048/duplicate_to")
        if signed is not None:
            add("r2048/duplicate_to", signed, "strict_refused")
            ok, err = api_ok(signed)
            check(ok, "r2048/duplicate_to verifies in libopendkim API", err)

        with verifiers.Verifiers(os.path.join(tmp, "vrf"), records) as v:
            txt = v.dnsfunc("r2048._domainkey." + DOMAIN)
            check(txt is not None and
                  txt.decode() == records["r2048._domainkey." + DOMAIN],
                  "dnsmasq serves the split 2048-bit TXT record whole")
            check(v.dnsfunc("gone._domainkey." + DOMAIN) is None,
                  "unpublished key record is absent (NXDOMAIN)")
            t0 = time.monotonic()
            results = v.verify(batch)
            msgs = dict(batch)
            print("# %d messages verified in %.2f s" %
                  (len(batch), time.monotonic() - t0), flush=True)
            dnsmasq_pid = v.pid
        try:
            os.kill(dnsmasq_pid, 0)
            check(False, "dnsmasq stopped by close()")
        except ProcessLookupError:
            check(True, "dnsmasq stopped by close()")

        for r in results:
            how = expect[r.name]
            if how == "good":
                check(r.ok and r.nsigs >= 1 and r.nsigs == len(
                    verifiers.signature_fields(msgs[r.name])),
                      r.name + " verifies in dkimpy and opendkim-testmsg",
                      r.describe())
            elif how in ("bad", "badsig"):
                # "Bad signature" comes only after the key was fetched: the
                # namespace DNS really serves it, and the check is not vacuous.
                check(not r.testmsg and not any(s.dkimpy or s.testmsg
                                                for s in r.sigs) and
                      (how == "bad" or "Bad signature" in r.testmsg_error),
                      r.name + " fails in dkimpy and opendkim-testmsg" +
                      (" (Bad signature)" if how == "badsig" else ""),
                      r.describe())
            elif how == "strict_refused":
                check(all(s.dkimpy for s in r.sigs) and not r.testmsg and
                      "Syntax error" in r.testmsg_error,
                      r.name + ": dkimpy passes, opendkim-testmsg refuses "
                      "the header (RFC 5322)", r.describe())
            else:
                bad = how[1]
                check(r.nsigs == 2 and r.testmsg and not r.ok and
                      not r.sigs[bad].dkimpy and not r.sigs[bad].testmsg and
                      r.sigs[1 - bad].ok,
                      "%s: opendkim-testmsg passes it whole (any-of), "
                      "signature %d fails alone in both" % (r.name, bad),
                      r.describe())
        absent = [r for r in results if r.name.startswith("gone/")]
        check(len(absent) == 1 and "Key retrieval failed" in
              absent[0].testmsg_error and "missing public key" in
              absent[0].sigs[0].dkimpy_error,
              "absent key record: both verifiers say the key is missing",
              absent[0].describe() if absent else "")
        with open("/etc/resolv.conf", "rb") as f:
            check(f.read() == host_resolv, "host /etc/resolv.conf untouched")

        # A key readable by others is refused with a clear message.
        os.chmod(keys["ed"], 0o640)
        mpath = os.path.join(tmp, "msg.eml")
        out = subprocess.run([TOOL, "sign", keys["ed"], DOMAIN, "ed", mpath],
                             capture_output=True, text=True)
        check(out.returncode != 0 and "readable by group or others" in out.stderr,
              "group-readable key refused: " + out.stderr.strip())
        # No From: refused.
        with open(mpath, "wb") as f:
            f.write(b"Subject: x\r\n\r\nbody\r\n")
        out = subprocess.run([TOOL, "sign", keys["r2048"], DOMAIN, "r2048",
                              mpath], capture_output=True, text=True)
        check(out.returncode != 0, "message without From refused")
        # Bare LF refused.
        with open(mpath, "wb") as f:
            f.write(b"From: a@example.test\nSubject: x\n\nbody\n")
        out = subprocess.run([TOOL, "sign", keys["r2048"], DOMAIN, "r2048",
                              mpath], capture_output=True, text=True)
        check(out.returncode != 0, "bare-LF message refused")
        # Key sizes outside 1024..4096 refused, existing file not overwritten.
        out = subprocess.run([TOOL, "keygen", "rsa", "512",
                              os.path.join(tmp, "small.pem")],
                             capture_output=True, text=True)
        check(out.returncode != 0, "rsa-512 keygen refused")
        out = subprocess.run([TOOL, "keygen", "rsa", "2048", keys["r2048"]],
                             capture_output=True, text=True)
        check(out.returncode != 0, "keygen refuses to overwrite a key file")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
