"""test_unsubscribe.py - the rules of sluiced's one-click endpoint.

POST /u/TOKEN unsubscribes only with the RFC 8058 body
List-Unsubscribe=One-Click (url-encoded or multipart/form-data): another
body is 400 and suppresses nobody, a body over the cap is 413, and a
malformed request sent raw on the socket gets "HTTP/1.1 400" and a closed
connection instead of silence.  The page that GET shows posts the right
body, as a browser would send it.

usage: /usr/bin/python3 test_unsubscribe.py SLUICED SLUICE SINK
"""
import html.parser
import http.client
import json
import re
import socket
import urllib.parse

import peers
from peers import PeerTest

CONTACTS = ["c%d@d0.test" % i for i in range(6)]


class FormReader(html.parser.HTMLParser):
    """The first form of a page: its method, action and fields."""

    def __init__(self):
        super().__init__()
        self.method = self.action = None
        self.fields = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.method = (a.get("method") or "get").lower()
            self.action = a.get("action")
            self.enctype = a.get("enctype") or \
                "application/x-www-form-urlencoded"
        elif tag == "input" and a.get("name"):
            self.fields.append((a["name"], a.get("value", "")))


class Unsubscribe(PeerTest):

    def setUp(self):
        super().setUp()
        self.shop_list(CONTACTS)
        page = self.path("t.html")
        with open(page, "w") as f:
            f.write("<p>Hello</p>\n")
        text = self.path("t.txt")
        with open(text, "w") as f:
            f.write("Hello\n")
        r = self.sluice("campaign", "create", "welcome", "--account", "shop",
                        "--list", "news", "--from", "Shop <news@shop.test>",
                        "--subject", "Hi", "--html", page, "--text", text,
                        "--json")
        self.cid = str(json.loads(r.stdout)["id"])
        self.http = peers.free_port()
        conf = self.write_config(unsubscribe_host="u.shop.test",
                                 http_listen="127.0.0.1:%d" % self.http)
        self.start_sluiced(conf, exit_when_empty=False)
        peers.wait_for(self.http_up, 30, "sluiced's HTTP endpoint")

    def http_up(self):
        try:
            socket.create_connection(("127.0.0.1", self.http), 1).close()
            return True
        except OSError:
            return False

    def token(self, contact):
        """The one-click token of contact, from the campaign's preview."""
        pv = self.sluice("campaign", "preview", self.cid, "--contact",
                         contact).stdout.decode()
        return re.search(r"/u/([a-z0-9]+)>", pv).group(1)

    def suppressed(self):
        out = self.sluice("suppress", "list", "--account", "shop",
                          "--json").stdout.decode()
        return {c for c in CONTACTS if c in out}

    def post(self, path, body, ctype="application/x-www-form-urlencoded"):
        c = http.client.HTTPConnection("127.0.0.1", self.http, timeout=30)
        headers = {"Content-Type": ctype} if ctype else {}
        c.request("POST", path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def raw(self, data):
        """Send data on a fresh socket; everything the server answers
        until it closes the connection."""
        s = socket.create_connection(("127.0.0.1", self.http), 30)
        s.settimeout(30)   # generous: a silent server fails the test
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        s.close()
        return out

    def test_only_the_one_click_body_unsubscribes(self):
        tok = self.token(CONTACTS[0])
        path = "/u/" + tok
        wrong = [(b"foo=bar", "application/x-www-form-urlencoded"),
                 (b"", "application/x-www-form-urlencoded"),
                 (b"List-Unsubscribe=One-Click&foo=bar",
                  "application/x-www-form-urlencoded"),
                 (b"List-Unsubscribe=Yes",
                  "application/x-www-form-urlencoded"),
                 (b"List-Unsubscribe=One-Click\x00",
                  "application/x-www-form-urlencoded"),
                 (b"List-Unsubscribe=One-Click", "text/plain"),
                 (b"List-Unsubscribe=One-Click", None)]
        for body, ctype in wrong:
            status, text = self.post(path, body, ctype)
            self.assertEqual(status, 400, (body, ctype, text))
        self.assertEqual(self.suppressed(), set(),
                         "a POST without the one-click body unsubscribed")

        # over the cap: 413, whether Content-Length says so or not
        status, _ = self.post(path, b"List-Unsubscribe=One-Click&x=" +
                              b"y" * 8000)
        self.assertEqual(status, 413)
        out = self.raw(("POST %s HTTP/1.1\r\nHost: u\r\nContent-Type: "
                        "application/x-www-form-urlencoded\r\nTransfer-"
                        "Encoding: chunked\r\n\r\n" % path).encode() +
                       b"1000\r\n" + b"a" * 4096 + b"\r\n" +
                       b"1000\r\n" + b"a" * 4096 + b"\r\n0\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out[:200])
        self.assertEqual(self.suppressed(), set())

        # the body of RFC 8058, url-encoded
        status, _ = self.post(path, b"List-Unsubscribe=One-Click")
        self.assertEqual(status, 200)
        self.assertEqual(self.suppressed(), {CONTACTS[0]})

        # and as multipart/form-data (what RFC 8058 says SHOULD be sent)
        tok = self.token(CONTACTS[1])
        body = (b"--b0undary\r\nContent-Disposition: form-data; "
                b"name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n"
                b"--b0undary--\r\n")
        status, _ = self.post("/u/" + tok, body,
                              "multipart/form-data; boundary=b0undary")
        self.assertEqual(status, 200)
        self.assertEqual(self.suppressed(), {CONTACTS[0], CONTACTS[1]})
        out = self.sluice("suppress", "list", "--account", "shop",
                          "--json").stdout.decode()
        self.assertEqual(out.count("one-click"), 2, out)

    def test_malformed_request_gets_400(self):
        for data in (b"\x00\xff\r\n\r\n", b"GARBAGE\r\n\r\n",
                     b"GET /u/x HTTP/1.1 junk\r\n\r\n"):
            out = self.raw(data)
            self.assertTrue(out.startswith(b"HTTP/1.1 400 "),
                            "%r answered %r" % (data, out[:200]))
        # the endpoint still serves after them
        status, _ = self.post("/u/" + self.token(CONTACTS[2]),
                              b"List-Unsubscribe=One-Click")
        self.assertEqual(status, 200)
        self.assertEqual(self.suppressed(), {CONTACTS[2]})

    def test_get_form_posts_the_right_body(self):
        tok = self.token(CONTACTS[3])
        c = http.client.HTTPConnection("127.0.0.1", self.http, timeout=30)
        c.request("GET", "/u/" + tok)
        r = c.getresponse()
        page = r.read().decode()
        c.close()
        self.assertEqual(r.status, 200)
        self.assertEqual(self.suppressed(), set(), "a GET unsubscribed")
        form = FormReader()
        form.feed(page)
        self.assertEqual(form.method, "post", page)
        # what a browser sends when the button is pressed
        target = urllib.parse.urljoin("http://127.0.0.1:%d/u/%s"
                                      % (self.http, tok), form.action)
        body = urllib.parse.urlencode(form.fields).encode()
        status, _ = self.post(urllib.parse.urlsplit(target).path, body,
                              form.enctype)
        self.assertEqual(status, 200)
        self.assertEqual(self.suppressed(), {CONTACTS[3]})


if __name__ == "__main__":
    peers.main()
