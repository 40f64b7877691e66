"""test_inject_api.py - POST /api/inject/v1 on sluiced's HTTP server.

An application's JSON (KumoMTA's inject v1 shape) is queued for its
recipients and delivered to a real sink (sluice-sink on 127.0.0.1):
substitutions merged into the bytes the sink receives, a CRLF in a value
never adds a header field, the builder's html + text + attachment parse
with Python's email package, 10,000 recipients in one request are all
delivered.  Bad requests are refused with the right status and a reason
(400 malformed JSON, wrong types, missing or unknown fields; 401 no or a
bad key; 403 a key that may not send as the account, or a From: domain
not the account's; 413 over max_request_size, with or without
Content-Length) and queue nothing.  Each request leaves one audit record.
A 200 means committed: sluiced killed with SIGKILL right after it
delivers the message after a restart.  Clients: curl and http.client.

usage: /usr/bin/python3 test_inject_api.py SLUICED SLUICE SINK
"""
import base64
import errno
import email
import email.policy
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess

import peers
from peers import PeerTest

PATH = "/api/inject/v1"


class InjectApi(PeerTest):

    def setUp(self):
        super().setUp()
        self.saved = {k: os.environ.get(k)
                      for k in ("SLUICE_USER", "SLUICE_PASSWORD")}
        self.sluice("account", "create", "master")
        self.sluice("account", "create", "shop")
        self.sluice("account", "create", "other")
        self.sluice("domain", "add", "shop.test", "--account", "shop",
                    "--selector", "s1")
        self.sluice("domain", "verify", "shop.test", "--force")
        self.add_user("ops", "master", "owner")
        os.environ["SLUICE_USER"] = "ops"
        os.environ["SLUICE_PASSWORD"] = "ops-pass-1234"
        self.add_user("app", "shop", "sender")
        self.add_user("peek", "shop", "viewer")
        self.key = self.apikey("app", "shop", "send")
        self.port = peers.free_port()
        self.http = peers.free_port()

    def tearDown(self):
        if getattr(self, "fs", None):   # peers first, then the tmpfs
            for p in reversed(self.procs):
                p.stop(10)
            r = subprocess.run(["umount", self.fs])
            if r.returncode:
                subprocess.run(["umount", "-l", self.fs])
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        super().tearDown()

    # ------------------------------------------------------------ helpers

    def add_user(self, name, account, role):
        r = subprocess.run([self.bin["sluice"], "--spool", self.path("spool"),
                            "user", "add", name, "--account", account,
                            "--role", role, "--password-stdin"],
                           input=name.encode() + b"-pass-1234",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)

    def apikey(self, user, account, scope):
        r = self.sluice("--json", "apikey", "create", "--user", user,
                        "--account", account, "--scope", scope)
        return json.loads(r.stdout)["key"]

    def start(self, exit_when_empty=False, name="sluiced", **keys):
        keys.setdefault("http_listen", "127.0.0.1:%d" % self.http)
        conf = self.write_config(
            smtp_port=self.port,
            domains={"dest.test": {"route": "127.0.0.1:%d" % self.port}},
            name=name + ".conf", **keys)
        p = self.start_sluiced(conf, exit_when_empty=exit_when_empty,
                               name=name)
        peers.wait_for(self.http_up, 30, "sluiced's HTTP endpoint")
        return p

    def stop_clean(self, p):
        """SIGTERM: sluiced drains and exits 0 (under ASan: no leak)."""
        rc = p.stop(60)
        self.assertEqual(rc, 0, p.output()[-3000:])

    def http_up(self):
        try:
            socket.create_connection(("127.0.0.1", self.http), 1).close()
            return True
        except OSError:
            return False

    def post(self, body, key=None, query="", headers=None):
        """POST with http.client: (status, headers, decoded JSON)."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        h = {"Content-Type": "application/json"}
        if key is not False:
            h["Authorization"] = "Bearer " + (key or self.key)
        h.update(headers or {})
        c = http.client.HTTPConnection("127.0.0.1", self.http, timeout=120)
        c.request("POST", PATH + query, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, r, json.loads(data)

    def curl(self, body, key=None, extra=()):
        """POST with curl: (status, decoded JSON)."""
        f = self.path("curl-body.json")
        with open(f, "wb") as fh:
            fh.write(body if isinstance(body, bytes)
                     else json.dumps(body).encode())
        out = subprocess.run(
            ["curl", "-sS", "--max-time", "120", "-o",
             self.path("curl-out.json"), "-w", "%{http_code}",
             "-H", "Authorization: Bearer " + (key or self.key),
             "-H", "Content-Type: application/json",
             "--data-binary", "@" + f] + list(extra) +
            ["http://127.0.0.1:%d%s" % (self.http, PATH)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180)
        self.assertEqual(out.returncode, 0, out.stderr)
        with open(self.path("curl-out.json"), "rb") as fh:
            return int(out.stdout), json.loads(fh.read())

    def raw(self, data):
        """Send data on a fresh socket; all the answer until close."""
        s = socket.create_connection(("127.0.0.1", self.http), 30)
        s.settimeout(30)
        try:
            s.sendall(data)
        except OSError:
            pass   # the server may answer and close before all is sent
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        s.close()
        return out

    def queued(self, spool=None):
        return self.spool_info(spool)["deliveries"]

    def delivered(self, n, timeout=120):
        """Wait for n delivered events in the log; {rcpt: event}."""
        got = {}

        def enough():
            got.clear()
            for e in self.event_log():
                if e.get("type") == "delivered":
                    got[e["rcpt"]] = e
            return len(got) >= n
        peers.wait_for(enough, timeout, "%d deliveries" % n, interval=0.2)
        return dict(got)

    def audits(self):
        out = self.sluice("audit", "list", "--json").stdout
        return [a for a in json.loads(out) if a["action"] == "inject"]

    def messages(self, sink):
        """{rcpt: email.message.Message} of what the sink captured."""
        out = {}
        for _, rcpts, body in sink.captures():
            for r in rcpts:
                out[r] = email.message_from_bytes(body,
                                                  policy=email.policy.default)
        return out

    # -------------------------------------------------------------- tests

    def test_raw_content_merged_at_the_sink(self):
        """curl: a raw message with global and per-recipient values; a
        CRLF in a value stays inside its header field; a bad address is
        a failed recipient while the rest are queued."""
        sink = self.start_sink(self.port)
        p = self.start()
        req = {
            "envelope_sender": "bounce@shop.test",
            "content": "From: Shop <news@shop.test>\r\n"
                       "Subject: Hello {{name}}\r\n"
                       "X-Code: {{code}}\r\n\r\n"
                       "Dear {{ name }}, your code is {{code}}.\r\n"
                       "Coupon: {{coupon|none}}\r\n",
            "substitutions": {"code": "G-1", "coupon": "TEN"},
            "recipients": [
                {"email": "ann@dest.test", "name": "Ann",
                 "substitutions": {"code": 42}},
                {"email": "bob@dest.test",
                 "substitutions": {"name": "Bob\r\nBcc: evil@dest.test",
                                   "code": "7\nX-Injected: yes"}},
                {"email": "not an address"},
            ]}
        status, ans = self.curl(req)
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans["success_count"], 2)
        self.assertEqual(ans["fail_count"], 1)
        self.assertEqual(ans["failed_recipients"], ["not an address"])
        self.assertEqual(len(ans["errors"]), 1)
        self.delivered(2)
        msgs = {}
        for sender, rcpts, body in sink.captures():
            self.assertEqual(sender, "bounce@shop.test")
            msgs[rcpts[0]] = body
        self.assertEqual(set(msgs), {"ann@dest.test", "bob@dest.test"})
        ann = msgs["ann@dest.test"]
        self.assertIn(b"\r\nSubject: Hello Ann\r\n", ann)
        self.assertIn(b"\r\nX-Code: 42\r\n", ann)
        self.assertIn(b"Dear Ann, your code is 42.\r\nCoupon: TEN\r\n", ann)
        bob = msgs["bob@dest.test"]
        head = bob.split(b"\r\n\r\n", 1)[0]
        fields = [l.split(b":", 1)[0].lower() for l in head.split(b"\r\n")
                  if l and l[:1] not in b" \t"]
        self.assertNotIn(b"bcc", fields, head)
        self.assertNotIn(b"x-injected", fields, head)
        self.assertIn(b"\r\nSubject: Hello Bob Bcc: evil@dest.test\r\n", bob)
        self.assertIn(b"\r\nX-Code: 7 X-Injected: yes\r\n", bob)
        self.assertNotIn(b"evil@dest.test", [r for _, rs, _ in
                                             sink.captures() for r in rs])
        # one audit record for the request
        recs = self.audits()
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0]["user"], "app")
        self.assertEqual(recs[0]["account"], "shop")
        self.assertEqual(recs[0]["result"], "ok: 2 queued, 1 failed")
        self.stop_clean(p)

    def test_builder_html_text_attachment(self):
        """http.client: the builder's message parses as multipart/mixed
        with text and html alternatives and the attachment's bytes; html
        values are escaped, header values cleaned."""
        sink = self.start_sink(self.port)
        p = self.start()
        blob = bytes(range(256)) * 40
        req = {
            "envelope_sender": "bounce@shop.test",
            "content": {
                "from": {"email": "news@shop.test", "name": "Shöp, News"},
                "reply_to": {"email": "help@shop.test"},
                "subject": "Order {{order}} for {{name}}",
                "headers": {"X-Order": "{{order}}",
                            "X-Campaign": "spring"},
                "text_body": "Hi {{name}},\nyour order {{order}}.\n",
                "html_body": "<p>Hi {{name}}, order <b>{{order}}</b></p>",
                "attachments": [{"data": base64.b64encode(blob).decode(),
                                 "content_type": "application/pdf",
                                 "file_name": "invoice.pdf"}],
            },
            "recipients": [{"email": "cy@dest.test", "name": "Cy <&> Co",
                            "substitutions": {
                                "order": "A1\r\nX-Evil: 1"}}],
        }
        status, _, ans = self.post(req)
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans, {"success_count": 1, "fail_count": 0,
                               "failed_recipients": [], "errors": []})
        self.delivered(1)
        m = self.messages(sink)["cy@dest.test"]
        self.assertEqual(m.get_content_type(), "multipart/mixed")
        self.assertEqual(m["From"].addresses[0].display_name, "Shöp, News")
        self.assertEqual(m["From"].addresses[0].addr_spec, "news@shop.test")
        self.assertEqual(m["Reply-To"].addresses[0].addr_spec,
                         "help@shop.test")
        self.assertEqual(m["To"].addresses[0].addr_spec, "cy@dest.test")
        self.assertEqual(m["To"].addresses[0].display_name, "Cy <&> Co")
        self.assertEqual(str(m["Subject"]),
                         "Order A1 X-Evil: 1 for Cy <&> Co")
        self.assertEqual(str(m["X-Order"]), "A1 X-Evil: 1")
        self.assertEqual(str(m["X-Campaign"]), "spring")
        self.assertIsNone(m["X-Evil"])
        self.assertTrue(m["Message-ID"] and m["Date"])
        parts = list(m.iter_parts())
        self.assertEqual([p.get_content_type() for p in parts],
                         ["multipart/alternative", "application/pdf"])
        alt = list(parts[0].iter_parts())
        self.assertEqual([p.get_content_type() for p in alt],
                         ["text/plain", "text/html"])
        # quoted-printable hard line breaks are CRLF on the wire
        text = [p.get_content().replace("\r\n", "\n") for p in alt]
        self.assertEqual(text[0],
                         "Hi Cy <&> Co,\nyour order A1\nX-Evil: 1.\n")
        self.assertEqual(text[1],
                         "<p>Hi Cy &lt;&amp;&gt; Co, order <b>A1\nX-Evil: "
                         "1</b></p>")
        self.assertEqual(parts[1].get_filename(), "invoice.pdf")
        self.assertEqual(parts[1].get_content(), blob)
        self.stop_clean(p)

    def test_ten_thousand_recipients(self):
        """One request of 10,000 recipients, each with its own value: 200
        after all are committed, and all are delivered with their own
        bytes; one more than max_request_recipients is refused."""
        sink = self.start_sink(self.port)
        self.start()
        n = 10000
        rcpts = [{"email": "r%05d@dest.test" % i,
                  "substitutions": {"n": i}} for i in range(n)]
        req = {"envelope_sender": "bounce@shop.test",
               "content": {"from": {"email": "news@shop.test"},
                           "subject": "number {{n}}",
                           "text_body": "you are number {{n}}\n"},
               "recipients": rcpts}
        status, ans = self.curl(req)
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans["success_count"], n)
        self.assertEqual(ans["fail_count"], 0)
        self.assertEqual(self.queued(), n)
        got = self.delivered(n, timeout=600)
        self.assertEqual(set(got), {r["email"] for r in rcpts})
        seen = 0
        for _, rs, body in sink.captures():
            for r in rs:
                i = int(r[1:6])
                self.assertIn(b"\r\nSubject: number %d\r\n" % i, body)
                seen += 1
        self.assertEqual(seen, n)
        # 10,001: refused whole, nothing more queued
        req["recipients"].append({"email": "over@dest.test"})
        status, _, ans = self.post(req)
        self.assertEqual(status, 400, ans)
        self.assertIn("max_request_recipients", ans["error"])
        self.assertEqual(self.queued(), n)

    def test_malformed_bodies(self):
        """Each malformed request is 400 with its reason, and queues
        nothing; jansson's reason names the place."""
        p = self.start()
        good = {"envelope_sender": "b@shop.test",
                "content": "From: news@shop.test\r\nSubject: x\r\n\r\nx\r\n",
                "recipients": [{"email": "a@dest.test"}]}
        cases = [
            (json.dumps(good)[:-7], "invalid JSON"),
            ("", "invalid JSON"),
            ("[1,2]", "must be a JSON object"),
            ('{"envelope_sender":"a@shop.test","envelope_sender":"b"}',
             "duplicate"),
            (dict(good, envelope_sender=7), "envelope_sender"),
            ({k: v for k, v in good.items() if k != "content"}, "content"),
            ({k: v for k, v in good.items() if k != "recipients"},
             "recipients"),
            (dict(good, recipients=[]), "recipients"),
            (dict(good, recipients="a@dest.test"), "recipients"),
            (dict(good, recipients=[{"name": "x"}]), "recipients[0].email"),
            (dict(good, recipients=[{"email": 5}]), "recipients[0].email"),
            (dict(good, recipients=[{"email": "a@dest.test",
                                     "substitutions": {"x": [1]}}]),
             "substitutions.x"),
            (dict(good, substitutions=[1]), "substitutions"),
            (dict(good, deferred=True), "unknown field"),
            (dict(good, envelope_sender="not an address"),
             "envelope_sender"),
            (dict(good, content="no header line here\r\n\r\nbody"),
             "header"),
            (dict(good, content="Subject: {{oops\r\n\r\nx"), "line 1"),
            (dict(good, content={"subject": "x", "text_body": "x"}),
             "content.from"),
            (dict(good, content={"from": {"email": "news@shop.test"},
                                 "subject": "x"}), "text_body"),
            (dict(good, content={"from": {"email": "news@shop.test"},
                                 "text_body": 5}), "content.text_body"),
            (dict(good, content={"from": {"email": "news@shop.test"},
                                 "text_body": "x",
                                 "headers": {"Content-Type": "text/x"}}),
             "Content-Type"),
            (dict(good, content={"from": {"email": "news@shop.test"},
                                 "text_body": "x",
                                 "headers": {"Bad Name": "v"}}),
             "Bad Name"),
            (dict(good, content={"from": {"email": "news@shop.test"},
                                 "text_body": "x", "attachments": [
                                     {"data": "***not base64***"}]}),
             "base64"),
        ]
        for body, why in cases:
            status, _, ans = self.post(body)
            self.assertEqual(status, 400, (body, ans))
            self.assertIn(why, ans["error"], body)
        status, _, ans = self.post(json.dumps(good)[:-7])
        self.assertRegex(ans["error"], r"line 1, column \d+ \(byte \d+\)")
        self.assertEqual(self.queued(), 0)
        refused = [a for a in self.audits()
                   if a["result"].startswith("refused: 400")]
        self.assertEqual(len(refused), len(cases) + 1)
        self.stop_clean(p)

    def test_keys_and_accounts(self):
        """401 without a good key, 403 for a key that may not send as
        the account or a From: domain not the account's; each audited;
        nothing queued."""
        p = self.start()
        good = {"envelope_sender": "b@shop.test",
                "content": "From: news@shop.test\r\nSubject: x\r\n\r\nx\r\n",
                "recipients": [{"email": "a@dest.test"}]}
        status, r, ans = self.post(good, key=False)
        self.assertEqual(status, 401, ans)
        self.assertEqual(r.getheader("WWW-Authenticate"), "Bearer")
        # the key with its last digit changed (never to itself)
        forged = self.key[:-1] + ("0" if self.key[-1] != "0" else "1")
        for key in ("nonsense", forged, "sk_99_" + "a" * 64):
            status, _, ans = self.post(good, key=key)
            self.assertEqual(status, 401, (key, ans))
        revoked = self.apikey("app", "shop", "send")
        self.sluice("apikey", "revoke", revoked.split("_")[1])
        status, _, ans = self.post(good, key=revoked)
        self.assertEqual(status, 401, ans)
        viewer = self.apikey("peek", "shop", "read")
        status, _, ans = self.post(good, key=viewer)
        self.assertEqual(status, 403, ans)
        status, _, ans = self.post(good, query="?account=other")
        self.assertEqual(status, 403, ans)
        status, _, ans = self.post(dict(good, content="From: x@else.test\r\n"
                                        "Subject: x\r\n\r\nx\r\n"))
        self.assertEqual(status, 403, ans)
        self.assertIn("else.test", ans["error"])
        self.assertEqual(self.queued(), 0)
        res = [a["result"] for a in self.audits()]
        self.assertEqual(sum(r.startswith("refused: 401") for r in res), 5)
        self.assertEqual(sum(r.startswith("refused: 403") for r in res), 3)
        # and a good one goes through, as ?account=shop too
        status, _, ans = self.post(good, query="?account=shop")
        self.assertEqual(status, 200, ans)
        self.assertEqual(self.queued(), 1)
        self.stop_clean(p)

    def test_too_large(self):
        """413 past max_request_size: at once when Content-Length says
        so (curl, a bare socket), and for a chunked body as it passes;
        nothing queued."""
        p = self.start(max_request_size=1)
        big = {"envelope_sender": "b@shop.test",
               "content": "From: news@shop.test\r\n\r\n" + "x" * (2 << 20),
               "recipients": [{"email": "a@dest.test"}]}
        status, ans = self.curl(big)
        self.assertEqual(status, 413, ans)
        self.assertIn("max_request_size", ans["error"])
        out = self.raw(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: "
                        "Bearer %s\r\nContent-Length: 900000000\r\n\r\n"
                        % (PATH, self.key)).encode())
        self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out[:200])
        chunk = b"x" * 65536
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk)
                        for _ in range(18)) + b"0\r\n\r\n"
        out = self.raw(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: "
                        "Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n"
                        % (PATH, self.key)).encode() + body)
        self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out[:200])
        # just under the cap is fine
        ok = dict(big, content="From: news@shop.test\r\n\r\n" +
                  "x" * ((1 << 20) - 300))
        status, ans = self.curl(ok)
        self.assertEqual(status, 200, ans)
        self.assertEqual(self.queued(), 1)
        self.stop_clean(p)

    def test_200_survives_kill9(self):
        """A 200 means committed: sluiced killed with SIGKILL just after
        answering (nothing delivered: no sink yet) delivers every message
        after a restart."""
        p = self.start(nosync="no")
        rcpts = [{"email": "k%d@dest.test" % i,
                  "substitutions": {"i": i}} for i in range(50)]
        status, _, ans = self.post({
            "envelope_sender": "b@shop.test",
            "content": "From: news@shop.test\r\nSubject: k{{i}}\r\n\r\nx\r\n",
            "recipients": rcpts})
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans["success_count"], 50)
        p.signal(signal.SIGKILL)
        p.wait(30)
        sink = self.start_sink(self.port)
        self.start(exit_when_empty=True, name="sluiced2", nosync="no")
        got = self.delivered(50)
        self.assertEqual(set(got), {r["email"] for r in rcpts})
        self.assertEqual(len(sink.captures()), 50)

    def test_spool_full_is_503(self):
        """With the spool's filesystem full nothing of a request is
        queued: 503 with Retry-After; with space back the same request
        is 200."""
        self.fs = self.path("fs")
        os.makedirs(self.fs)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700",
                        "tmpfs", self.fs], check=True)
        spool = os.path.join(self.fs, "spool")
        shutil.copytree(self.path("spool"), spool)
        p = self.start(spool=spool)
        req = {"envelope_sender": "b@shop.test",
               "content": "From: news@shop.test\r\nSubject: {{n}}\r\n\r\n"
                          + "x" * 4000 + "\r\n",
               "recipients": [{"email": "f%d@dest.test" % i,
                               "substitutions": {"n": i}}
                              for i in range(20)]}
        filler = os.path.join(self.fs, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        for size in (1 << 20, 4096, 64):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as e:
                    self.assertEqual(e.errno, errno.ENOSPC)
                    break
        os.close(fd)
        status, r, ans = self.post(req)
        self.assertEqual(status, 503, ans)
        self.assertEqual(r.getheader("Retry-After"), "30")
        self.assertIn("nothing queued", ans["error"])
        os.unlink(filler)
        self.assertEqual(self.queued(spool), 0)
        status, _, ans = self.post(req)
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans["success_count"], 20)
        self.assertEqual(self.queued(spool), 20)
        self.stop_clean(p)


if __name__ == "__main__":
    peers.main()
