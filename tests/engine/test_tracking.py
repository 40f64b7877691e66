"""test_tracking.py - opens and clicks of a tracked campaign, end to end.

Two campaigns to one list, sent by sluiced to a capturing sink: one
created with --track opens,clicks, one without.  The tracked messages'
html parts have their web links rewritten to https://HOST/c/TOKEN (HOST:
unsubscribe_host) and an open pixel before </body>; mailto:, the
unsubscribe link and a link to HOST itself stay; the text part is the
untracked campaign's, byte for byte; the untracked messages have neither.
Fetching the pixel gives a no-store 1x1 GIF and an "open" event of the
right campaign and recipient; a link gives 302 to the link's own URL and a
"click" event with it, and a query string added to the click URL changes
nothing; campaign show counts unique and total opens and clicks.  A token
with a changed character or the wrong length answers 400/404 and records
nothing; HEAD requests and a scanner's User-Agent are answered but not
counted.  `campaign preview` shows the same bytes as the sink got apart
from what is made per render or per delivery (tokens included).

sluiced runs with track_scanner_window = 0: the window rule (a click soon
after delivery is a scanner's) has its unit test (test_track.c), as its
timing cannot be asserted here.

usage: /usr/bin/python3 test_tracking.py SLUICED SLUICE SINK
"""
import email
import email.policy
import http.client
import json
import re

import peers
from peers import PeerTest

CONTACTS = ["ann@d0.test", "bob@d0.test", "cy@d0.test"]
SALE = "https://shop.example/sale?id=7&ref=mail"
BLOG = "http://blog.example/post?next=https://evil.example/"
HTML = ("<html><body><p>Hi {{email}}</p>\n"
        "<a href=\"https://shop.example/sale?id=7&amp;ref=mail\">Sale</a>\n"
        "<A class=x HREF='" + BLOG + "'>Blog</A>\n"
        "<a href=\"mailto:help@shop.test\">Mail us</a>\n"
        "<a href=\"{{unsubscribe_url}}\">leave</a>\n"
        "<a href=\"https://u.shop.test/prefs\">prefs</a>\n"
        "</body></html>\n")
CLICK = re.compile(r"https://u\.shop\.test/c/([a-z2-7]{66})")
OPEN = re.compile(r"<img src=\"https://u\.shop\.test/o/([a-z2-7]{56})\"")
MSGID = re.compile(rb"^Message-ID: <(\d+)\.(\d+)\.[a-z2-7]{13}\.[a-z2-7]{16}"
                   rb"@shop\.test>\r\n", re.M)
BOUNDARY = re.compile(rb'boundary="(=_[a-z2-7]{13}\.\d+)"')
DATE = re.compile(rb"^Date: [^\r\n]+\r\n", re.M)
TOKENS = re.compile(rb"/([co])/[a-z2-7]{56,66}")


def strip_dkim(raw):
    head, sep, body = raw.partition(b"\r\n\r\n")
    out, skipping = [], False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = line.lower().startswith(b"dkim-signature:")
        if not skipping:
            out.append(line)
    return b"\r\n".join(out) + sep + body


def masked(raw):
    """raw with what each render or delivery makes anew masked: Date, the
    Message-ID's delivery, nonce and MAC, the boundary and the tracking
    tokens (the quoted-printable soft line breaks joined first: tokens
    have one length, so the breaks fall alike)."""
    raw = strip_dkim(raw)
    m = MSGID.search(raw)
    raw = raw.replace(m.group(0), b"Message-ID: <%s.D@shop.test>\r\n"
                      % m.group(1))
    b = BOUNDARY.search(raw)
    raw = raw.replace(b.group(1), b"=_BOUNDARY")
    raw = DATE.sub(b"Date: DATE\r\n", raw)
    return TOKENS.sub(rb"/\1/TOKEN", raw.replace(b"=\r\n", b""))


class Tracking(PeerTest):

    def create(self, name, *extra):
        html = self.path(name + ".html")
        with open(html, "w") as f:
            f.write(HTML)
        r = self.sluice("campaign", "create", name, "--account", "shop",
                        "--list", "news", "--from", "Shop <news@shop.test>",
                        "--subject", name, "--html", html, "--json", *extra)
        return str(json.loads(r.stdout)["id"])

    def show(self, cid):
        return json.loads(self.sluice("campaign", "show", cid,
                                      "--json").stdout)

    def get(self, path, method="GET", ua="Mozilla/5.0 (X11; Linux) test"):
        c = http.client.HTTPConnection("127.0.0.1", self.http, timeout=30)
        headers = {"User-Agent": ua} if ua else {}
        c.request(method, path, headers=headers)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), \
            body

    def tracked_events(self):
        return [e for e in self.spool_events()
                if e["type"] in ("open", "click")]

    def wait_tracked(self, n, what):
        peers.wait_for(lambda: len(self.tracked_events()) >= n, 20, what,
                       interval=0.1)
        evs = self.tracked_events()
        self.assertEqual(len(evs), n, evs)
        return evs

    def test_opens_and_clicks(self):
        port = peers.free_port()
        self.http = peers.free_port()
        self.shop_list(CONTACTS)
        tracked = self.create("tracked", "--track", "opens,clicks")
        plain = self.create("plain")
        st = self.show(tracked)
        self.assertEqual(st["track"], ["opens", "clicks"])
        self.assertEqual(self.show(plain)["track"], [])
        bad = self.sluice("campaign", "create", "x", "--account", "shop",
                          "--list", "news", "--from", "Shop <news@shop.test>",
                          "--subject", "x", "--html", self.path("plain.html"),
                          "--track", "views", check=False)
        self.assertEqual(bad.returncode, 64, bad.stderr)

        dns = self.start_dns({"d0.test": [(10, "127.0.0.1")]})
        sink = self.start_sink(port, listen="127.0.0.1")
        conf = self.write_config(dns=dns, smtp_port=port,
                                 unsubscribe_host="u.shop.test",
                                 http_listen="127.0.0.1:%d" % self.http,
                                 track_scanner_window="0")
        self.sluice("campaign", "send", tracked)
        self.sluice("campaign", "send", plain)
        self.start_sluiced(conf, exit_when_empty=False)
        peers.wait_for(lambda: len([e for e in self.spool_events()
                                    if e["type"] == "delivered"]) == 6,
                       30, "six deliveries")
        delivery = {}
        for e in self.spool_events():
            if e["type"] == "delivered":
                delivery[(str(e["campaign"]), e["rcpt"])] = e["delivery"]

        # ---- what the sink got
        msgs = {}
        for _, rcpts, raw in sink.captures():
            m = email.message_from_bytes(raw, policy=email.policy.default)
            cid = str(m["Feedback-ID"]).split(":")[0]
            msgs[(cid, rcpts[0])] = (raw, m)
        self.assertEqual(len(msgs), 6)
        links = {}
        for rcpt in CONTACTS:
            _, tm = msgs[(tracked, rcpt)]
            _, pm = msgs[(plain, rcpt)]
            th = tm.get_body(("html",)).get_content()
            ph = pm.get_body(("html",)).get_content()
            clicks = CLICK.findall(th)
            self.assertEqual(len(clicks), 2, th)
            self.assertNotIn("shop.example", th)
            self.assertNotIn("blog.example", th)
            self.assertIn("href=\"mailto:help@shop.test\"", th)
            self.assertIn("href=\"https://u.shop.test/u/", th)
            self.assertIn("href=\"https://u.shop.test/prefs\"", th)
            self.assertRegex(th, r"<a href=\"https://u\.shop\.test/c/[a-z2-7]+"
                                 r"\">Sale</a>")
            self.assertRegex(th, r"<A class=x HREF='https://u\.shop\.test/c/"
                                 r"[a-z2-7]+'>Blog</A>")
            opens = OPEN.findall(th)
            self.assertEqual(len(opens), 1, th)
            self.assertTrue(re.search(r"<img src=[^>]*>\s*</body>", th), th)
            self.assertNotIn("/c/", ph)
            self.assertNotIn("/o/", ph)
            self.assertIn("href=\"https://shop.example/sale?id=7&amp;ref="
                          "mail\"", ph)
            # the text part is left alone (the unsubscribe token names
            # the campaign: masked)
            def text(m):
                return re.sub(r"/u/[a-z2-7]+", "/u/T",
                              m.get_body(("plain",)).get_content())
            self.assertEqual(text(tm), text(pm))
            self.assertIn(SALE, tm.get_body(("plain",)).get_content())
            links[rcpt] = (opens[0], clicks[0], clicks[1])

        # ---- opens: a no-store GIF and an event; twice is one unique
        ann = CONTACTS[0]
        o, sale, blog = links[ann]
        status, h, body = self.get("/o/" + o)
        self.assertEqual(status, 200)
        self.assertEqual(h["content-type"], "image/gif")
        self.assertIn("no-store", h["cache-control"])
        self.assertTrue(body.startswith(b"GIF89a") and len(body) < 100)
        evs = self.wait_tracked(1, "the open event")
        self.assertEqual((evs[0]["type"], str(evs[0]["campaign"]),
                          evs[0]["rcpt"], evs[0]["delivery"]),
                         ("open", tracked, ann, delivery[(tracked, ann)]))
        self.get("/o/" + o)

        # ---- clicks: 302 to the link's own URL, whatever the query says
        status, h, _ = self.get("/c/" + sale)
        self.assertEqual(status, 302)
        self.assertEqual(h["location"], SALE)
        status, h, _ = self.get("/c/" + blog + "?url=https://evil.example/")
        self.assertEqual(status, 302)
        self.assertEqual(h["location"], BLOG)
        evs = self.wait_tracked(4, "two opens and two clicks")
        clicks = [e for e in evs if e["type"] == "click"]
        self.assertEqual([(c["text"], c["rcpt"], str(c["campaign"]),
                           c["delivery"]) for c in clicks],
                         [(SALE, ann, tracked, delivery[(tracked, ann)]),
                          (BLOG, ann, tracked, delivery[(tracked, ann)])])

        # ---- forged, altered, misplaced tokens: refused, nothing recorded
        flip = sale[:30] + ("a" if sale[30] != "a" else "b") + sale[31:]
        for path, want in (("/c/" + flip, 400), ("/c/" + sale[:-1], 404),
                           ("/c/" + o, 404), ("/o/" + sale, 404),
                           ("/o/" + o[:20] + ("b" if o[20] != "b" else "c")
                            + o[21:], 400),
                           ("/c/" + sale.upper(), 404)):
            status, h, _ = self.get(path)
            self.assertEqual(status, want, path)
            self.assertNotIn("location", h)
        # ---- HEAD and scanners: answered, not counted
        self.assertEqual(self.get("/o/" + o, "HEAD")[0], 200)
        self.assertEqual(self.get("/c/" + sale, "HEAD")[0], 302)
        scanner = "Mozilla/5.0 (compatible; Barracuda Sentinel)"
        self.assertEqual(self.get("/c/" + sale, ua=scanner)[0], 302)
        self.assertEqual(self.get("/o/" + o, ua=None)[0], 200)
        # one counted request after them: once its event is in, any the
        # refused ones had made would be too (one writer, in order)
        bob = CONTACTS[1]
        self.assertEqual(self.get("/c/" + links[bob][2])[0], 302)
        evs = self.wait_tracked(5, "bob's click")
        self.assertEqual((evs[-1]["type"], evs[-1]["rcpt"], evs[-1]["text"]),
                         ("click", bob, BLOG))

        st = self.show(tracked)
        self.assertEqual((st["opened"], st["opened_unique"], st["clicked"],
                          st["clicked_unique"]), (2, 1, 3, 2), st)
        st = self.show(plain)
        self.assertEqual((st["opened"], st["clicked"]), (0, 0), st)
        text = self.sluice("campaign", "show", tracked).stdout.decode()
        self.assertIn("opened      2 (1 unique)", text)
        self.assertIn("clicked     3 (2 unique)", text)

        # ---- the preview is what the sink got, tokens aside
        for rcpt in CONTACTS:
            p = json.loads(self.sluice("--config", conf, "campaign",
                                       "preview", tracked, "--contact", rcpt,
                                       "--json").stdout)
            pre = p["message"].encode()
            self.assertEqual(masked(pre), masked(msgs[(tracked, rcpt)][0]),
                             "preview of %s differs" % rcpt)
        # a preview's link works (delivery 0) and records nothing
        pm = email.message_from_bytes(pre, policy=email.policy.default)
        pclick = CLICK.findall(pm.get_body(("html",)).get_content())[0]
        status, h, _ = self.get("/c/" + pclick)
        self.assertEqual((status, h["location"]), (302, SALE))
        self.assertEqual(self.get("/c/" + links[CONTACTS[2]][1])[0], 302)
        evs = self.wait_tracked(6, "cy's click")
        self.assertEqual(evs[-1]["rcpt"], CONTACTS[2])
        # the event stream carries them by their names
        self.wait_events(lambda evs: len([e for e in evs if e["type"] in
                                          ("open", "click")]) == 6,
                         20, "the tracked events in the event log")
        self.assert_log_matches_spool()
        log = [e for e in self.event_log() if e.get("type") == "click"]
        self.assertEqual(log[0]["campaign_name"], "tracked")
        # the counts and marks are records the spool check knows
        r = self.sluice("spool", "check", check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    peers.main()
