#!/usr/bin/python3
"""test_prepare.py - dkim_prepare() checked by an independent MIME parser.

Usage: test_prepare.py PREPARE_TOOL

Runs prepare_tool over a corpus of messages (clean, bare LF/CR, long
header and body lines, 8-bit bodies and headers, multipart nesting,
message/rfc822, base64 and quoted-printable parts, malformed MIME), each
with and without --7bit, then over random mutations of the corpus.  For
every output:

  - every line ends in CRLF and none is over 998 octets;
  - with --7bit the output is ASCII but where the case allows 8-bit
    (an 8-bit addr-spec or a field of fixed syntax), and the tool's 8bit
    bit says whether 8-bit is left;
  - a clean message comes back zero-copy;
  - Python's email package (policy=email.policy.default) reads input and
    output alike: the same tree of content types, the same decoded octets
    in every leaf part (line ends normalised), the same decoded header
    values (Content-Type compared by type and parameters; fields the tool
    may add or set - Content-Transfer-Encoding, MIME-Version - skipped).

Mutated messages are checked for the line and 8-bit rules only.  Exit 0
only if every check holds.
"""
import email
import email.policy
import os
import random
import re
import subprocess
import sys
import tempfile

TOOL = sys.argv[1]
failures = []
ADDED = {"content-transfer-encoding", "mime-version"}


def check(ok, what):
    if not ok:
        print("FAIL " + what, flush=True)
        failures.append(what)
    return ok


def run(data, sevenbit, tmp):
    """Prepare data; returns (output bytes, info dict)."""
    src, dst = os.path.join(tmp, "in.eml"), os.path.join(tmp, "out.eml")
    with open(src, "wb") as f:
        f.write(data)
    args = [TOOL] + (["--7bit"] if sevenbit else []) + [src, dst]
    r = subprocess.run(args, capture_output=True, timeout=30)
    if r.returncode != 0:
        return None, {"rc": r.returncode, "err": r.stderr.decode(errors="replace")}
    info = dict(kv.split("=") for kv in r.stdout.decode().split())
    with open(dst, "rb") as f:
        return f.read(), {k: int(v) for k, v in info.items()}


def line_rules(name, out):
    """CRLF everywhere, no line over 998 octets."""
    lines = out.split(b"\r\n")
    check(out == b"" or out.endswith(b"\r\n"), name + ": ends in CRLF")
    bad = [i for i, ln in enumerate(lines) if b"\r" in ln or b"\n" in ln]
    check(not bad, name + ": bare CR or LF on lines %s" % bad[:5])
    long_ = [i for i, ln in enumerate(lines) if len(ln) > 998]
    check(not long_, name + ": lines over 998 octets: %s" % long_[:5])


def eightbit_rules(name, out, info, allow):
    """ASCII-only output under --7bit, except lines matching allow."""
    high = any(b >= 0x80 for b in out)
    check(bool(info["8bit"]) == high, name + ": 8bit bit matches the output")
    for ln in out.split(b"\r\n"):
        if any(b >= 0x80 for b in ln):
            check(allow is not None and re.search(allow, ln),
                  name + ": 8-bit left in %r" % ln[:80])


def norm(b):
    return (b or b"").replace(b"\r\n", b"\n").replace(b"\r", b"\n").rstrip(b"\n")


def tree(msg):
    """(content type, params, decoded leaf octets) for each entity."""
    out = []
    for part in msg.walk():
        ct = part.get_content_type()
        params = sorted((k.lower(), str(v)) for k, v in
                        (part.get_params() or [])[1:])
        if part.is_multipart():
            out.append((ct, params, None))
        else:
            out.append((ct, params, norm(part.get_payload(decode=True))))
    return out


def headers(msg):
    """Decoded header values of every entity, minus what may be added."""
    out = []
    for part in msg.walk():
        for k, v in part.items():
            if k.lower() in ADDED or k.lower() == "content-type":
                continue
            out.append((k.lower(), re.sub(r"\s+", " ", str(v)).strip()))
    return out


def same_content(name, data, out, loose_headers=False):
    pol = email.policy.default
    a = email.message_from_bytes(data, policy=pol)
    b = email.message_from_bytes(out, policy=pol)
    ta, tb = tree(a), tree(b)
    check(len(ta) == len(tb), name + ": %d entities, was %d" % (len(tb), len(ta)))
    for i, (x, y) in enumerate(zip(ta, tb)):
        check(x[0] == y[0], name + ": part %d type %s, was %s" % (i, y[0], x[0]))
        check(x[1] == y[1] or (x[0] == "text/plain" and not x[1]),
              name + ": part %d params %s, was %s" % (i, y[1], x[1]))
        check(x[2] == y[2], name + ": part %d content differs:\n  %r\n  %r"
              % (i, (x[2] or b"")[:120], (y[2] or b"")[:120]))
    ha, hb = headers(a), headers(b)
    if loose_headers:
        ha = [(k, re.sub(r"\s", "", v)) for k, v in ha]
        hb = [(k, re.sub(r"\s", "", v)) for k, v in hb]
    check(ha == hb, name + ": headers differ:\n  %s\n  %s" %
          ([h for h in ha if h not in hb][:3], [h for h in hb if h not in ha][:3]))


def crlf(s):
    if isinstance(s, str):
        s = s.encode("utf-8")
    return s.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


H = "From: Shop <news@shop.example>\nTo: user@example.org\nSubject: Offers\n" \
    "Date: Mon, 2 Nov 2026 10:00:00 +0000\nMessage-ID: <m1@shop.example>\n"
LONG = " ".join("word%d" % i for i in range(400))          # ~3.5 KB, spaces
NOWSP = "x" * 1500                                         # no white space
UTF = "Grüße aus Köln – café, thé, naïve Übermaß ✓ "


def mp(boundary, parts, kind="mixed", pre="", epi="", close=True):
    s = pre + "".join("--%s\n%s\n" % (boundary, p) for p in parts)
    if close:
        s += "--%s--\n" % boundary
    return "Content-Type: multipart/%s; boundary=\"%s\"\n\n%s%s" % (
        kind, boundary, s, epi)


def b64(data, width=76):
    import base64
    e = base64.b64encode(data).decode()
    return "\n".join(e[i:i + width] for i in range(0, len(e), width) or [0])


def qp(text):
    import quopri
    return quopri.encodestring(text.encode("utf-8")).decode()


def case(name, data, allow=None, loose=False, zero=False, content=True):
    """A corpus entry: allow is a regex of output lines that may keep 8-bit
    under --7bit, loose compares header values without white space, zero
    expects zero-copy under both flag settings, content=False skips the
    decoded-content comparison (for bodies the tool must cut)."""
    return dict(name=name, data=data, allow=allow, loose=loose, zero=zero,
                content=content)


CASES = [
    case("clean", crlf(H + "MIME-Version: 1.0\n\nHello.\n"), zero=True),
    case("clean_multipart", crlf(H + "MIME-Version: 1.0\n" + mp("b1", [
        "Content-Type: text/plain\n\nplain text",
        "Content-Type: text/html\nContent-Transfer-Encoding: base64\n\n"
        + b64(b"<p>" + b"html " * 300 + b"</p>")])), zero=True),
    case("empty", b"", zero=True),
    case("headers_only", crlf(H), zero=True),
    case("bare_lf", (H + "\nline one\nline two\n").encode()),
    case("bare_cr", (H + "\nline one\nline two\n").replace("\n", "\r").encode()),
    case("mixed_ends", crlf(H) + b"\r\na\rb\nc\r\nd\n\re"),
    case("no_final_crlf", crlf(H + "\nlast line")),
    case("headers_no_final_crlf", crlf(H).rstrip(b"\r\n")),
    case("long_subject", crlf(H.replace("Offers", LONG) + "\nbody\n")),
    case("long_token_header", crlf(H + "X-Token: " + NOWSP + "\nReferences: " +
                               "".join("<id%d@example.org>" % i for i in range(80)) +
                               "\nTo: " + ",".join("u%d@example.org" % i for i in range(90)) +
                               "\n\nbody\n"), loose=True),
    case("long_body_line", crlf(H + "\n" + LONG + "\nshort =line \n")),
    case("long_body_line_mime", crlf(H + "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n"
                                 "Content-Transfer-Encoding: 7bit\n\n" + LONG + "\n")),
    case("utf8_body", crlf(H + "\n" + UTF * 3 + "\nFrom the start\ntrailing \t\n")),
    case("latin1_body", crlf(H.encode() + b"\ncaf\xe9 cr\xe8me\n")),
    case("alternative", crlf(H + "MIME-Version: 1.0\n" + mp("alt", [
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + UTF,
        "Content-Type: text/html; charset=us-ascii\n\n<p>" + LONG + "</p>",
        "Content-Type: image/png\nContent-Transfer-Encoding: base64\n\n" + b64(bytes(range(256)) * 4),
    ], kind="alternative", pre="This is MIME.\n", epi="bye\n"))),
    case("nested", crlf(H + "MIME-Version: 1.0\n" + mp("outer", [
        mp("inner", ["Content-Type: text/plain; charset=utf-8\n\n" + UTF,
                     "Content-Type: text/html; charset=utf-8\n\n<b>" + UTF + "</b>"],
           kind="alternative"),
        "Content-Type: application/pdf; name=\"a.pdf\"\nContent-Disposition: attachment\n"
        "Content-Transfer-Encoding: base64\n\n" + b64(b"%PDF" + bytes(range(256)) * 8),
    ]))),
    case("base64_one_line", crlf(H + "MIME-Version: 1.0\nContent-Type: application/octet-stream\n"
                             "Content-Transfer-Encoding: base64\n\n" +
                             b64(bytes(range(256)) * 20, width=100000))),
    case("qp_long_line", crlf(H + "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                          "Content-Transfer-Encoding: quoted-printable\n\n" +
                          qp(UTF * 40).replace("=\n", "") + "\n")),
    case("qp_raw_8bit", crlf(H + "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                         "Content-Transfer-Encoding: quoted-printable\n\n" +
                         "caf=C3=A9 and raw caf\u00e9=\nsoft\n")),
    case("utf8_headers", crlf("From: Jöhn Doe <j@x.org>\n"
                          "To: \"Dœ, Jane\" <jane@x.org>, plain@x.org,\n Grüppe: a@b.example, \"é\" <b@c.example>;\n"
                          "Cc: undisclosed-recipients:;\n"
                          "Reply-To: Ünïcode Sender (Öffice) <reply@x.org>\n"
                          "Subject: Re: café au thé, a long subject that needs folding " + UTF * 4 + "\n"
                          "X-Encodedish: =?UTF-8?Q?not_really?= café\n"
                          "Date: Mon, 2 Nov 2026 10:00:00 +0000\n"
                          "\nbody\n")),
    case("latin1_subject", crlf(b"From: a@b.example\nSubject: caf\xe9 cr\xe8me\n\nbody\n")),
    case("utf8_addr_spec", crlf("From: Jöhn <jöhn@exämple.org>\nTo: ü@x.org\nSubject: x\n\nbody\n"),
         allow=rb"^(From|To):"),
    case("utf8_message_id", crlf("From: a@b.example\nMessage-ID: <café@b.example>\nSubject: ok\n\nbody\n"),
         allow=rb"^Message-ID:"),
    case("utf8_filename", crlf(H + "MIME-Version: 1.0\n" + mp("f", [
        "Content-Type: text/plain\n\nsee attached",
        "Content-Type: application/octet-stream; name=\"Ünïcödé – " + "long " * 20 + ".bin\"\n"
        "Content-Disposition: attachment; filename=\"résumé.pdf\"\n"
        "Content-Transfer-Encoding: base64\n\n" + b64(b"data" * 50)]))),
    case("rfc822_attached", crlf(H + "MIME-Version: 1.0\n" + mp("m", [
        "Content-Type: text/plain\n\nforwarded",
        "Content-Type: message/rfc822\n\nFrom: Ïnner <in@x.org>\nSubject: Ïnner subject\n\n"
        "inner body " + UTF + "\n" + LONG]))),
    case("digest", crlf(H + "MIME-Version: 1.0\n" + mp("d", [
        "\nFrom: a@b.example\nSubject: one\n\nfirst " + UTF,
        "\nFrom: c@d.example\nSubject: twö\n\nsecond"], kind="digest"))),
    case("no_closing_boundary", crlf(H + "MIME-Version: 1.0\n" + mp("nc", [
        "Content-Type: text/plain; charset=utf-8\n\n" + UTF,
        "Content-Type: text/plain\n\n" + LONG], close=False))),
    case("boundary_never_found", crlf(H + "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=zzz\n\n"
                                  + UTF + "\n--other\n" + LONG + "\n")),
    case("boundary_quoted_specials", crlf(H + "MIME-Version: 1.0\n" + mp("a; b=(c) \"d", [
        "Content-Type: text/plain; charset=utf-8\n\n" + UTF]).replace('"a; b=(c) "d"', '"a; b=(c) \\"d"'))),
    case("multipart_no_boundary_param", crlf(H + "MIME-Version: 1.0\nContent-Type: multipart/mixed\n\n"
                                         + UTF + "\n")),
    case("ct_case_comments", crlf(H + "MIME-Version: 1.0\nCONTENT-TYPE: MultiPart/Mixed (c) ;\n"
                              " BOUNDARY = (x) \"cc\"\n\n--cc\nContent-Type: text/plain; charset=utf-8\n\n"
                              + UTF + "\n--cc--\n")),
    case("part_without_headers", crlf(H + "MIME-Version: 1.0\n" + mp("p", [
        "\n" + UTF, "no header line " + UTF, ""]))),
    case("garbage_header", crlf(H + "this is not a header\n" + UTF + "\n")),
    case("empty_body_mime", crlf(H + "MIME-Version: 1.0\nContent-Type: text/plain\n\n"), zero=True),
    case("deep_nesting", crlf(H + "MIME-Version: 1.0\n" + "".join(
        "Content-Type: multipart/mixed; boundary=\"d%d\"\n\n--d%d\n" % (i, i) for i in range(24))
        + "Content-Type: text/plain; charset=utf-8\n\n" + UTF + "\n"
        + "".join("--d%d--\n" % i for i in reversed(range(24)))),
         allow=rb"."),
    case("binary_junk", crlf(H + "\n").rstrip(b"\n") + b"\n" + bytes(range(256)) * 3),
    case("unknown_cte", crlf(H + "MIME-Version: 1.0\nContent-Transfer-Encoding: x-uuencode\n\n" + LONG + "\n"),
         content=False),
    case("preamble_8bit", crlf(H + "MIME-Version: 1.0\n" + mp("pe", ["Content-Type: text/plain\n\nok"],
                                                          pre="Präambel " + LONG + "\n",
                                                          epi="Epilög\n"))),
    case("long_line_in_header_block_continuation", crlf(H + "X-Long:\n " + LONG + "\n\nbody\n")),
]


def run_case(c, sevenbit, tmp):
    """All checks of one corpus entry under one flag setting."""
    data = c["data"]
    tag = c["name"] + (" --7bit" if sevenbit else "")
    out, info = run(data, sevenbit, tmp)
    if not check(out is not None, tag + ": tool failed %s" % info):
        return
    line_rules(tag, out)
    if sevenbit:
        eightbit_rules(tag, out, info, c["allow"])
    else:
        check(bool(info["8bit"]) == any(b >= 0x80 for b in out),
              tag + ": 8bit bit matches the output")
    if c["zero"]:
        check(info["zerocopy"] == 1 and out == data,
              tag + ": clean message comes back zero-copy")
    check(info["changed"] == (out != data), tag + ": changed bit")
    check(info["zerocopy"] == (not info["changed"]),
          tag + ": zero-copy iff unchanged")
    if c["content"]:
        same_content(tag, data, out, c["loose"])
    again, info2 = run(out, sevenbit, tmp)
    check(again == out and info2.get("zerocopy") == 1,
          tag + ": preparing the output again changes nothing")


def main():
    with tempfile.TemporaryDirectory(prefix="sluice-prep-") as tmp:
        for c in CASES:
            for sevenbit in (False, True):
                run_case(c, sevenbit, tmp)
        rng = random.Random(6376)
        seeds = [c["data"] for c in CASES if c["data"]]
        for i in range(300):
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 6)):
                op = rng.randrange(4)
                pos = rng.randrange(len(data) + 1)
                if op == 0:
                    del data[pos:pos + rng.randint(1, 200)]
                elif op == 1:
                    data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
                elif op == 2:
                    data[pos:pos] = rng.choice([b"\n--", b"\r", b"\n\n", b"=", b"\"", b"(",
                                                b"<", b"x" * 1200, "é".encode() * 600])
                else:
                    data = data[:pos]
            sevenbit = bool(i & 1)
            tag = "mutation %d%s" % (i, " --7bit" if sevenbit else "")
            out, info = run(bytes(data), sevenbit, tmp)
            if not check(out is not None, tag + ": tool failed %s" % info):
                continue
            line_rules(tag, out)
            check(bool(info["8bit"]) == any(b >= 0x80 for b in out), tag + ": 8bit bit")
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
