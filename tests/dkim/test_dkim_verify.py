#!/usr/bin/python3
"""test_dkim_verify.py - sign with sluice's dkim/, verify independently.

Usage: test_dkim_verify.py DKIM_SIGN_TOOL DKIM_VERIFY_OPENDKIM

Makes an rsa-2048 and an ed25519 key with the tool, publishes both TXT
records from a dnsmasq on 127.0.0.1 (spare port, stopped by PID), signs a set
of awkward messages and checks each with dkimpy (DNS through dnsmasq) and
with libopendkim (key record from a file: opendkim-testmsg cannot be given a
nameserver port).  Each signed message is also altered by one byte in a
signed header and in the body, and an extra From is prepended; all three
must fail.  Exit 0 only if every check holds.
"""
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

import dkim
import dns.resolver

TOOL, OPENDKIM = sys.argv[1], sys.argv[2]
DOMAIN = "example.test"
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def txt_strings(value):
    """dnsmasq txt-record argument: the value cut into <=255-byte strings."""
    parts = [value[i:i + 255] for i in range(0, len(value), 255)]
    return ",".join('"%s"' % p for p in parts)


def crlf(text):
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


MESSAGES = {
    "plain": crlf("From: Alice <alice@example.test>\nTo: bob@example.net\n"
                  "Subject: hello\nDate: Mon, 2 Nov 2026 10:00:00 +0000\n"
                  "Message-ID: <1@example.test>\nMIME-Version: 1.0\n"
                  "Content-Type: text/plain; charset=utf-8\n\nHello Bob.\n"),
    "folded": crlf("From: Alice\n  <alice@example.test>\nTo: a@example.net,\n"
                   "\tb@example.net,   \n c@example.net\n"
                   "Subject:   a   subject\t with  \n   folding   \n"
                   "Content-Type: multipart/alternative;\n"
                   "\tboundary=\"xyz\"\n\n--xyz\n\nx\n--xyz--\n"),
    "empty_body": crlf("From: alice@example.test\nSubject: empty\n\n"),
    "no_body_at_all": b"From: alice@example.test\r\nSubject: nothing\r\n",
    "blank_lines_only": crlf("From: alice@example.test\nSubject: b\n\n\n  \n\t\n"),
    "no_final_crlf": b"From: alice@example.test\r\nSubject: x\r\n\r\n"
                     b"line one\r\nlast line  without crlf",
    "long_lines": crlf("From: alice@example.test\nSubject: long\n"
                       "List-Unsubscribe: <" + "https://example.test/u/" +
                       "a" * 300 + ">,\n <mailto:u@example.test>\n"
                       "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n"
                       "Feedback-ID: c1:c2:c3:sluice\n\n" + "x" * 990 + "\n" +
                       ("word \t " * 150) + "\n"),
    "utf8_subject": crlf("From: =?UTF-8?B?SsO8cmdlbg==?= <j@example.test>\n"
                         "To: b@example.net\n"
                         "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\n"
                         "MIME-Version: 1.0\n"
                         "Content-Type: text/plain; charset=utf-8\n"
                         "Content-Transfer-Encoding: 8bit\n\n" +
                         "Grüße  \t aus Köln\n\n\n"),
    "repeated": crlf("Received: from a by b\nReceived: from c by d\n"
                     "From: alice@example.test\nTo: one@example.net\n"
                     "Reply-To: r@example.test\nTo: two@example.net\n"
                     "Subject: repeated\nX-Other: 1\n\nbody\n  trailing ws \n"
                     "\n\nend\n\n\n"),
}


def main():
    tmp = tempfile.mkdtemp(prefix="sluice-dkim-")
    dnsmasq = None
    try:
        keys = {}
        conf = []
        keyfile_lines = []
        for algo, bits, sel in (("rsa", 2048, "r2048"), ("ed25519", 0, "ed")):
            path = os.path.join(tmp, sel + ".pem")
            out = subprocess.run([TOOL, "keygen", algo, str(bits), path],
                                 check=True, capture_output=True, text=True)
            txt = out.stdout.strip()
            mode = stat.S_IMODE(os.stat(path).st_mode)
            check(mode == 0o600, "%s key file mode 0600 (got %o)" % (algo, mode))
            check(txt.startswith("v=DKIM1; k=%s; p=" % algo), algo + " TXT form")
            keys[sel] = path
            name = "%s._domainkey.%s" % (sel, DOMAIN)
            conf.append("txt-record=%s,%s" % (name, txt_strings(txt)))
            keyfile_lines.append("%s %s" % (name, txt))
        keyfile = os.path.join(tmp, "keys.txt")
        with open(keyfile, "w") as f:
            f.write("\n".join(keyfile_lines) + "\n")
        confpath = os.path.join(tmp, "dnsmasq.conf")
        with open(confpath, "w") as f:
            f.write("\n".join(conf) + "\n")

        port = free_port()
        dnsmasq = subprocess.Popen(
            ["/usr/sbin/dnsmasq", "--no-daemon", "--port=%d" % port,
             "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
             "--no-hosts", "--conf-file=" + confpath, "--user=root",
             "--pid-file="], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = ["127.0.0.1"]
        res.port = port
        res.lifetime = 2

        def dnsfunc(name, timeout=5):
            if isinstance(name, bytes):
                name = name.decode()
            ans = res.resolve(name.rstrip("."), "TXT")
            return b"".join(b"".join(r.strings) for r in ans)

        for _ in range(50):
            try:
                dnsfunc("r2048._domainkey." + DOMAIN)
                break
            except Exception:
                time.sleep(0.1)
        rsa_txt = dnsfunc("r2048._domainkey." + DOMAIN).decode()
        check(rsa_txt == keyfile_lines[0].split(" ", 1)[1],
              "dnsmasq serves the split 2048-bit TXT record whole")

        def opendkim_ok(msg):
            r = subprocess.run([OPENDKIM, keyfile], input=msg,
                               capture_output=True)
            return r.returncode == 0, r.stderr.decode().strip()

        for sel, keypath in keys.items():
            for label, raw in MESSAGES.items():
                mpath = os.path.join(tmp, "msg.eml")
                with open(mpath, "wb") as f:
                    f.write(raw)
                out = subprocess.run([TOOL, "sign", keypath, DOMAIN, sel, mpath],
                                     capture_output=True)
                what = "%s/%s" % (sel, label)
                if out.returncode != 0:
                    check(False, what + " signs: " + out.stderr.decode())
                    continue
                signed = out.stdout
                field = signed[:len(signed) - len(raw)]
                lines = field.split(b"\r\n")
                check(field.endswith(b"\r\n") and
                      all(len(l) <= 78 for l in lines) and
                      b"\n" not in field.replace(b"\r\n", b""),
                      what + " field folded to <=78 chars, CRLF")
                check(b" l=" not in field and b";l=" not in field,
                      what + " has no l= tag")
                check(dkim.verify(signed, dnsfunc=dnsfunc),
                      what + " verifies in dkimpy")
                # libopendkim rejects a body without its final CRLF as a
                # syntax error; SMTP always delivers one, and adding it
                # leaves the relaxed body hash unchanged, so give it that.
                ok, err = opendkim_ok(signed if signed.endswith(b"\r\n")
                                      else signed + b"\r\n")
                check(ok, what + " verifies in libopendkim " + err)

                # One byte changed in a signed header value: must fail.
                i = signed.index(b"\r\nSubject:") + len(b"\r\nSubject:")
                while signed[i:i + 1] in (b" ", b"\t"):
                    i += 1
                bad = signed[:i] + bytes([signed[i] ^ 1]) + signed[i + 1:]
                check(not dkim.verify(bad, dnsfunc=dnsfunc),
                      what + " altered Subject fails in dkimpy")
                check(not opendkim_ok(bad)[0],
                      what + " altered Subject fails in libopendkim")
                # An added From (over-signed): must fail.
                bad = b"From: mallory@evil.test\r\n" + signed
                check(not dkim.verify(bad, dnsfunc=dnsfunc),
                      what + " extra From fails in dkimpy")
                # One body byte changed (or added to an empty body).
                hdr_end = signed.find(b"\r\n\r\n")
                if hdr_end >= 0 and len(signed) > hdr_end + 4 and \
                        signed[hdr_end + 4:].strip():
                    j = hdr_end + 4 + signed[hdr_end + 4:].index(
                        signed[hdr_end + 4:].strip()[:1])
                    bad = signed[:j] + bytes([signed[j] ^ 1]) + signed[j + 1:]
                else:
                    bad = signed + (b"" if hdr_end >= 0 else b"\r\n") + b"x\r\n"
                check(not dkim.verify(bad, dnsfunc=dnsfunc),
                      what + " altered body fails in dkimpy")
                check(not opendkim_ok(bad)[0],
                      what + " altered body fails in libopendkim")
                # An unsigned header added on top still verifies.
                ok2 = dkim.verify(b"Received: from x by y\r\n" + signed,
                                  dnsfunc=dnsfunc)
                check(ok2, what + " unsigned Received added still verifies")

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
        if dnsmasq is not None:
            dnsmasq.terminate()
            try:
                dnsmasq.wait(5)
            except subprocess.TimeoutExpired:
                dnsmasq.kill()
                dnsmasq.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
