#!/usr/bin/python3
"""test_render.py - rendered campaign messages as Python's email package
sees them.

render_tool (tests/engine/render_tool.c) renders a corpus of templates and
contacts; each message is parsed with email.policy.default and checked
against an independent Python rendering of the documented template rules:
exactly one of each header field, no parser defects, the subject and From
name decode to the expected text, the text and html parts decode to the
expected content (values HTML-escaped in the html part only), every line
ends in CRLF and is at most 998 octets, the output is 7-bit ASCII, and the
VERP and unsubscribe tokens decode back to their ids.

Usage: test_render.py RENDER_TOOL
"""
import json
import os
import re
import subprocess
import sys
import tempfile
from email import policy
from email.parser import BytesParser

TOOL = sys.argv[1]
SECRET = "73656372657420666f722074657374696e672072656e646572"
ONCE = ["Date", "From", "To", "Subject", "Message-ID", "MIME-Version",
        "List-Unsubscribe", "List-Unsubscribe-Post", "Feedback-ID",
        "Content-Type"]
FAILED = []


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL:", what)


# ---- the documented rules, written again in Python ----

TAG = re.compile(r"\{\{\{\{|\{\{[ \t\r\n]*([A-Za-z0-9_.-]+)[ \t\r\n]*"
                 r"(?:\|(.*?))?\}\}", re.S)


def merge(tpl, fields, email, url, esc=lambda v: v):
    def one(m):
        if m.group(0) == "{{{{":
            return "{{"
        name = m.group(1).lower()
        if name == "email":
            v = email
        elif name == "unsubscribe_url":
            v = url
        else:
            v = next((fv for fn, fv in fields if fn.lower() == name), "")
        if not v:
            v = (m.group(2) or "").strip(" \t\r\n")
        return esc(v)
    return TAG.sub(one, tpl)


def html_escape(v):
    return (v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def body_text(s):
    """What a body part decodes to: NUL dropped, line ends CRLF."""
    s = s.replace("\0", "")
    return re.sub(r"\r\n|\r|\n", "\r\n", s)


def clean_subject(s):
    out, blank = [], False
    for ch in s:
        o = ord(ch)
        if o == 0:
            continue
        if o < 0x20 or o == 0x7F or 0x80 <= o <= 0x9F or ch in " \u2028\u2029":
            blank = bool(out)
            continue
        if blank:
            out.append(" ")
        blank = False
        out.append(ch)
    b = "".join(out).encode()
    if len(b) > 2048:
        b = b[:2048].decode("utf-8", "ignore").rstrip(" ").encode()
    return b.decode()


# ---- the corpus ----

def base(**kw):
    d = {"campaign": 9001, "account": 17, "list": 3,
         "from": "Acme News <news@mail.example.com>",
         "unsub_host": "u.example.com", "secret": SECRET,
         "feedback_sender": "acme"}
    d.update(kw)
    return d


INJECT = ["\r\nBcc: x@evil.example", "\nSubject: x", "\rX: y", "%0d%0aBcc: z",
          "a\0b", "line\u2028sep\u2029para", "nel\u0085x", "\tTab\x0bVT",
          "=?utf-8?b?QmNjOiB4?=", "a" * 100 * 1024,
          ("word " * 30000) + "end", "\r\n" * 5000 + "tail",
          "--=_boundary-like =_ =3D", "<script>alert('x')</script> & \"q\""]

CASES = []


def add(inp, fields, email="rcpt@example.org", delivery=1, contact=55,
        preview=False, want_from=None):
    CASES.append({"input": inp, "preview": preview,
                  "contact": {"id": contact, "delivery": delivery,
                              "email": email,
                              "fields": [list(f) for f in fields]},
                  "want_from": want_from})


add(base(subject="Hello {{ first_name | there }} — {{city}}",
         html="<html><body><h1>Hi {{first_name|friend}}</h1>"
              "<p>{{ note }}</p></body></html>",
         text="Hi {{first_name|friend}}\n{{note}}\n",
         header_html="<div>H {{email}}</div>",
         footer_html="<p><a href=\"{{unsubscribe_url}}\">unsub</a></p>",
         header_text="H {{email}}\n", footer_text="\nunsub: {{unsubscribe_url}}",
         reply_to="Help <help@example.com>",
         **{"from": "Zoë Café <news@mail.example.com>"}),
    [("FIRST_NAME", "Ann"), ("City", "Kraków"), ("note", "a < b & c")],
    want_from="Zoë Café")
add(base(subject="Hello {{ first_name | there }}",
         html="<p>{{first_name}}</p>", text="{{first_name}}"), [])
for i, v in enumerate(INJECT):
    add(base(subject="News {{v}} end", html="<p>{{v}}</p>\r\n<i>{{v}}</i>",
             text="T {{v}} T"), [("v", v)], delivery=100 + i, contact=100 + i)
for i, s in enumerate(["Grüße aus Köln", "日本語のお知らせ" * 6,
                       "🎉 " * 40, "x" * 300, "Ünïcödé " + "y" * 90,
                       "mixed ascii and a single é at the very end of a "
                       "long line of text that must be folded somewhere"]):
    add(base(subject="{{s}}", html="<p>{{s}}</p>", text="{{s}}"),
        [("s", s)], delivery=200 + i)
add(base(subject="Derived", html="<html><head><style>p{}</style></head><body>"
         "<p>Shop at <a href=\"https://shop.example/?a=1&amp;c={{code}}\">our "
         "shop</a></p><ul><li>one</li></ul></body></html>"),
    [("code", "X&Y")], delivery=300)
add(base(subject="Long lines", html="<p>" + "x=y " * 2000 + "</p>\n" +
         "\u00e9" * 3000, text="z" * 5000 + "\r\n" + "é " * 2000),
    [], delivery=301)
add(base(subject="Preview {{first_name}}", html="<p>p</p>", text="p"),
    [("first_name", "Pat")], delivery=999, preview=True)
add(base(subject="Quoted name", html="h", text="t",
         **{"from": "\"ACME, Inc.\" <news@mail.example.com>"}), [],
    delivery=302, want_from="ACME, Inc.")
add(base(subject="Broken", html="<p>{{name</p>", text="t"), [], delivery=303)


def expected_url(msg):
    lu = str(msg["List-Unsubscribe"])
    return re.search(r"<(https://[^>]+)>", lu).group(1)


def decode_tool(kind, token):
    r = subprocess.run([TOOL, kind, token, SECRET], capture_output=True,
                       text=True)
    return r.returncode, r.stdout.split()


def check_case(i, case, res):
    inp, contact = case["input"], case["contact"]
    tag = "case %d (%s)" % (i, inp["subject"][:30])
    if "{{name</p>" in inp["html"]:
        check(not res["ok"] and "html: line 1, column 4: unterminated"
              in res["error"], tag + ": compile error names the place")
        return None
    check(res["ok"], tag + ": rendered")
    if not res["ok"]:
        return None
    raw = res["message"].encode("ascii")    # 7-bit: ascii or an exception
    check(raw.endswith(b"\r\n"), tag + ": ends with CRLF")
    check(b"\n" not in raw.replace(b"\r\n", b"")
          and b"\r" not in raw.replace(b"\r\n", b""), tag + ": CRLF only")
    check(max(len(l) for l in raw.split(b"\r\n")) <= 998,
          tag + ": lines <= 998")
    check(all(b < 128 for b in raw), tag + ": 7-bit")
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    for name in ONCE + (["Reply-To"] if inp.get("reply_to") else []):
        check(len(msg.get_all(name) or []) == 1, tag + ": one " + name)
    check(msg.get_all("Bcc") is None and msg.get_all("X") is None,
          tag + ": no injected header")
    for p in msg.walk():
        check(not p.defects, tag + ": parser defects %r" % p.defects)
    for name in ("Subject", "From", "To"):
        check(not msg[name].defects,
              tag + ": %s defects %r" % (name, msg[name].defects))
    fields = contact["fields"]
    url = expected_url(msg)
    email = contact["email"]
    want = clean_subject(merge(inp["subject"], fields, email, url))
    check(str(msg["Subject"]) == want,
          tag + ": subject %r != %r" % (str(msg["Subject"])[:80], want[:80]))
    check(msg["To"].addresses[0].addr_spec == email, tag + ": To")
    if case["want_from"]:
        check(msg["From"].addresses[0].display_name == case["want_from"],
              tag + ": From name %r" % msg["From"].addresses[0].display_name)
    check(msg["Date"].datetime is not None
          and msg["Date"].datetime.utcoffset().total_seconds() == 0,
          tag + ": Date")
    check(str(msg["Feedback-ID"]) == "%d:%d:%d:acme" % (
        inp["campaign"], inp["account"], inp["list"]), tag + ": Feedback-ID")
    check(str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click",
          tag + ": List-Unsubscribe-Post")
    check(msg.get_content_type() == "multipart/alternative", tag + ": type")
    parts = list(msg.iter_parts())
    check([p.get_content_type() for p in parts] == ["text/plain", "text/html"],
          tag + ": parts in order")
    for p in parts:
        check(p.get_content_charset() == "utf-8"
              and p["Content-Transfer-Encoding"] == "quoted-printable",
              tag + ": part charset and encoding")
    html = merge(inp["html"], fields, email, url, html_escape)
    m = re.search(r"<body[^>]*>", html, re.I)
    hh = merge(inp.get("header_html") or "", fields, email, url, html_escape)
    fh = merge(inp.get("footer_html") or "", fields, email, url, html_escape)
    at = m.end() if m else 0
    html = html[:at] + hh + html[at:]
    close = html.lower().rfind("</body")
    html = html[:close] + fh + html[close:] if close >= 0 else html + fh
    got_html = parts[1].get_content()
    check(got_html == body_text(html),
          tag + ": html %r != %r" % (got_html[:200], body_text(html)[:200]))
    got_text = parts[0].get_content()
    if inp.get("text") is not None:
        text = merge(inp["text"], fields, email, url)
        if inp.get("header_text"):
            text = merge(inp["header_text"], fields, email, url) + text
        if inp.get("footer_text"):
            text = text + merge(inp["footer_text"], fields, email, url)
        check(got_text == body_text(text),
              tag + ": text %r != %r" % (got_text[:200], body_text(text)[:200]))
    else:
        code = next(v for n, v in fields if n == "code")
        check("our shop (https://shop.example/?a=1&c=%s)" % code in got_text
              and "- one" in got_text and "p{}" not in got_text,
              tag + ": derived text %r" % got_text)
    # tokens: VERP envelope sender and both unsubscribe forms
    mf = res["mail_from"]
    check(re.fullmatch(r"b-[a-z2-7]{44}@mail\.example\.com", mf) is not None,
          tag + ": mail_from form " + mf)
    check(len(mf.split("@")[0]) <= 64, tag + ": VERP local part <= 64")
    rc, ids = decode_tool("verp-decode", mf)
    want_d = 0 if case["preview"] else contact["delivery"]
    check(rc == 0 and ids == [str(want_d), str(inp["campaign"])],
          tag + ": VERP decodes %r" % ids)
    lu = str(msg["List-Unsubscribe"])
    mt = re.search(r"<mailto:(unsub-[a-z2-7]{50})@([^>]+)>", lu)
    check(mt is not None and len(mt.group(1)) <= 64, tag + ": mailto form")
    want_ids = [str(inp["account"]), str(inp["campaign"]), str(contact["id"])]
    for tok in (mt.group(1), url.rsplit("/", 1)[1]):
        rc, ids = decode_tool("unsub-decode", tok)
        check(rc == 0 and ids == want_ids, tag + ": unsub decodes %r" % ids)
    forged = mf[:10] + ("a" if mf[10] != "a" else "b") + mf[11:]
    rc, _ = decode_tool("verp-decode", forged)
    check(rc == 1, tag + ": forged VERP refused")
    mid = str(msg["Message-ID"])
    check(re.fullmatch(r"<\d+\.\d+\.[a-z2-7]{13}\.[a-z2-7]{16}@"
                       r"mail\.example\.com>", mid) is not None,
          tag + ": Message-ID form " + mid)
    rc, ids = decode_tool("msgid-decode", mid)
    check(rc == 0 and ids == [str(inp["campaign"]), str(want_d)],
          tag + ": Message-ID verifies %r" % ids)
    forged = mid[:-20] + ("a" if mid[-20] != "a" else "b") + mid[-19:]
    rc, _ = decode_tool("msgid-decode", forged)
    check(rc == 1, tag + ": forged Message-ID refused")
    return mid


def main():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "cases.json")
        with open(path, "w") as f:
            json.dump([{k: c[k] for k in ("input", "contact", "preview")}
                       for c in CASES], f)
        out = subprocess.run([TOOL, "render", path], capture_output=True,
                             check=True).stdout
    results = json.loads(out)
    check(len(results) == len(CASES), "one result per case")
    ids = []
    for i, (case, res) in enumerate(zip(CASES, results)):
        mid = check_case(i, case, res)
        if mid:
            ids.append(mid)
    check(len(set(ids)) == len(ids), "Message-IDs unique")
    print("%d cases, %d failures" % (len(CASES), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
