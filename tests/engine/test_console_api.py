"""test_console_api.py - the web console's server side against a real
sluiced: its pages, sign-in (wrong password, TOTP, lock-out), the session
cookie and its idle timeout, CSRF tokens, API keys, the roles of a
sub-account user, a campaign paused from the console that stops at the
sink, an incident acknowledged to resolved, body caps and the audit
records of it all.

usage: /usr/bin/python3 test_console_api.py SLUICED SLUICE SINK
(SLUICE_INCIDENT_PUT: the incident_put helper)
"""
import base64
import calendar
import hashlib
import hmac
import http.client
import json
import os
import struct
import subprocess
import time

import peers
from incident_base import IncidentTest
from peers import wait_for

IDLE_S = 6
RCPTS = 400


def totp(secret_b32, t=None):
    """RFC 6238 code (SHA-1, 30 s, 6 digits) of a base32 secret."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    step = int((time.time() if t is None else t) // 30)
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    code = (struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000
    return "%06d" % code


def unix(text):
    """Unix seconds of "YYYY-MM-DDTHH:MM:SSZ"."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


class Client:
    """One browser: a cookie and a CSRF token."""

    def __init__(self, port):
        self.port = port
        self.cookie = None
        self.csrf = None

    def call(self, method, path, body=None, headers=None, raw=None,
             csrf=True):
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if self.cookie:
            h["Cookie"] = self.cookie
        if method == "POST" and csrf and self.csrf:
            h["X-CSRF-Token"] = self.csrf
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        payload = r.read()
        c.close()
        try:
            doc = json.loads(payload)
        except ValueError:
            doc = payload
        return r.status, doc, r

    def login(self, user, password, code=None):
        body = {"user": user, "password": password}
        if code is not None:
            body["totp"] = code
        st, doc, r = self.call("POST", "/console/api/login", body)
        if st == 200:
            self.cookie = r.getheader("Set-Cookie").split(";")[0]
            self.csrf = doc["csrf"]
        return st, doc, r


class ConsoleApi(IncidentTest):

    def add_user(self, name, account, role):
        env = dict(os.environ, SLUICE_PWHASH_FAST="1")
        r = subprocess.run([self.bin["sluice"], "--spool", self.path("spool"),
                            "user", "add", name, "--account", account,
                            "--role", role, "--password-stdin"],
                           input=(name + "-pass-1234").encode(), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)

    def incident(self, account, campaign):
        """An open incident of account (as sluiced's opening writes it,
        without an action); its id."""
        return self.put_incident(self.account_id(account), campaign)

    def delivered(self, sink):
        return sink.stats().get("messages", 0)

    def test_console(self):
        # the spool: the master, sub-accounts shop and other; ops owns the
        # master, sam sends for shop, tess (TOTP) and lou view
        self.accounts("shop", "other")
        self.add_user("ops", "master", "owner")
        os.environ["SLUICE_USER"] = "ops"
        os.environ["SLUICE_PASSWORD"] = "ops-pass-1234"
        self.addCleanup(os.environ.pop, "SLUICE_USER", None)
        self.addCleanup(os.environ.pop, "SLUICE_PASSWORD", None)
        self.add_user("sam", "shop", "sender")
        self.add_user("tess", "master", "viewer")
        self.add_user("lou", "shop", "viewer")
        self.add_user("dan", "shop", "viewer")
        secret = json.loads(self.sluice("--json", "user", "totp", "tess",
                                        "enable").stdout)["secret"]
        key = json.loads(self.sluice("--json", "apikey", "create", "--user",
                                     "sam", "--account", "shop", "--scope",
                                     "send").stdout)["key"]
        shop = int(self.campaign("shop", "spring", ["r%d@dest.test" % i
                                                    for i in range(RCPTS)],
                                 send=False))
        other = int(self.campaign("other", "autumn", ["x@dest.test"],
                                  send=False))
        self.sluice("campaign", "send", str(shop))
        inc = self.incident("other", other)

        port, http = peers.free_port(), peers.free_port()
        sink = self.start_sink(port, capture=False)
        conf = self.write_config(
            smtp_port=port, http_listen="127.0.0.1:%d" % http,
            console_idle_timeout="%ds" % IDLE_S,
            domains={"dest.test": {"route": "127.0.0.1:%d" % port,
                                   "max_rate": "20/s"}})
        p = self.start_sluiced(conf, exit_when_empty=False)
        anon = Client(http)

        def up():
            try:
                return anon.call("GET", "/")[0] == 200
            except OSError:
                return False
        wait_for(up, 30, "the console at /")

        # the pages: embedded, with the security headers
        st, page, r = anon.call("GET", "/")
        self.assertIn(b"/static/app.js", page)
        self.assertEqual(r.getheader("Content-Security-Policy").split(";")[0],
                         "default-src 'self'")
        self.assertEqual(r.getheader("X-Content-Type-Options"), "nosniff")
        self.assertEqual(r.getheader("X-Frame-Options"), "DENY")
        st, _, r = anon.call("GET", "/static/app.js")
        self.assertEqual(st, 200)
        self.assertTrue(r.getheader("Content-Type").startswith(
            "text/javascript"))
        self.assertEqual(anon.call("GET", "/static/nothing.js")[0], 404)
        self.assertEqual(anon.call("GET", "/console/api/campaigns")[0], 401)

        # sign-in: wrong password 401; a good one sets the cookie
        st, doc, _ = anon.login("ops", "wrong-password")
        self.assertEqual((st, doc["totp_required"]), (401, False))
        st, doc, _ = anon.login("nobody", "x")
        self.assertEqual(st, 401)
        ops = Client(http)
        st, doc, r = ops.login("ops", "ops-pass-1234")
        self.assertEqual(st, 200, doc)
        cookie = r.getheader("Set-Cookie")
        self.assertRegex(cookie, r"^sluice_console=[0-9a-f]{64};")
        for attr in ("HttpOnly", "SameSite=Strict", "Path=/"):
            self.assertIn(attr, cookie)
        self.assertNotIn("Secure", cookie)
        self.assertEqual((doc["user"], doc["role"], doc["account"]),
                         ("ops", "owner", "master"))
        self.assertEqual(r.getheader("Cache-Control"), "no-store")
        st, doc, _ = ops.call("GET", "/console/api/session")
        self.assertEqual((st, doc["user"]), (200, "ops"))

        # TOTP: asked for after the right password, then checked
        tess = Client(http)
        st, doc, _ = tess.login("tess", "tess-pass-1234")
        self.assertEqual((st, doc["totp_required"]), (401, True))
        good = totp(secret)
        bad = "%06d" % ((int(good) + 1) % 1000000)
        st, doc, _ = tess.login("tess", "tess-pass-1234", bad)
        self.assertEqual((st, doc["totp_required"]), (401, True))
        st, doc, _ = tess.login("tess", "tess-pass-1234", good)
        self.assertEqual(st, 200, doc)
        # a viewer of the master may look but not pause a site
        self.assertEqual(tess.call("GET", "/console/api/overview")[0], 200)
        st, _, _ = tess.call("POST", "/console/api/sites/dest.test/pause")
        self.assertEqual(st, 403)

        # sending: the campaign's mail reaches the sink
        wait_for(lambda: self.delivered(sink) >= 20, 30, "mail at the sink")
        st, doc, _ = ops.call("GET", "/console/api/campaigns/%d" % shop)
        self.assertEqual((st, doc["state"], doc["total"]),
                         (200, "sending", RCPTS))
        self.assertTrue(0 < doc["progress"] < 1, doc)

        # its ETA is `campaign show`'s: dest.test at its 20/s decides, and
        # the console and the CLI say the same time at the same moment
        # (once sluiced's status.json describes the site: before, the
        # console knows no rate for it and says so)
        def described():
            doc = ops.call("GET", "/console/api/sites")[1]
            return "dest.test" in [x["name"] for x in doc["sites"]]
        wait_for(described, 10, "status.json describing dest.test",
                 interval=0.2)
        st, web, _ = ops.call("GET", "/console/api/campaigns/%d" % shop)
        cli = json.loads(self.sluice("campaign", "show", str(shop),
                                     "--json").stdout)
        self.assertTrue(web["eta"] and cli["eta"], (web, cli))
        self.assertLessEqual(abs(unix(web["eta"]) - unix(cli["eta"])), 2,
                             (web["eta_basis"], cli["eta_basis"]))
        basis = web["eta_basis"]
        self.assertEqual((basis["kind"], basis["what"], basis["rate_per_s"]),
                         ("site", "dest.test", 20.0), basis)
        self.assertEqual(basis["text"].split(",")[0],
                         "slowest: site dest.test", basis)
        self.assertEqual(sorted(basis), sorted(cli["eta_basis"]))
        self.assertGreater(unix(web["eta"]), time.time())
        # the list gives the sending campaign's ETA too; a draft has none
        st, doc, _ = ops.call("GET", "/console/api/campaigns")
        rows = {c["id"]: c for c in doc["campaigns"]}
        self.assertLessEqual(abs(unix(rows[shop]["eta"]) -
                                 unix(web["eta"])), 2, rows[shop])
        self.assertEqual(rows[shop]["eta_basis"]["what"], "dest.test")
        self.assertIsNone(rows[other]["eta"])
        self.assertEqual(rows[other]["eta_basis"]["text"], "not sent")
        # a campaign cap below the site's limit decides instead, as
        # sluiced applies it (status.json's rate_caps), in both
        self.sluice("limits", "set", "campaign", str(shop), "max_rate=10/s")

        def capped():
            b = ops.call("GET", "/console/api/campaigns/%d" % shop)[1]
            return b["eta_basis"] if b["eta_basis"]["kind"] != "site" else None
        basis = wait_for(capped, 10, "the campaign cap in the console's ETA",
                         interval=0.2)
        self.assertEqual((basis["kind"], basis["what"], basis["rate_per_s"]),
                         ("campaign cap", "campaign %d" % shop, 10.0), basis)
        cli = json.loads(self.sluice("campaign", "show", str(shop),
                                     "--json").stdout)["eta_basis"]
        self.assertEqual((cli["kind"], cli["rate_per_s"]),
                         ("campaign cap", 10.0), cli)
        self.sluice("limits", "unset", "campaign", str(shop))

        # a POST without the CSRF token is refused and changes nothing
        st, doc, _ = ops.call("POST", "/console/api/campaigns/%d/pause"
                              % shop, csrf=False)
        self.assertEqual(st, 403, doc)
        self.assertIn("CSRF", doc["error"])
        st, doc, _ = ops.call("POST", "/console/api/campaigns/%d/pause"
                              % shop, {"reason": "console test"},
                              headers={"X-CSRF-Token": "0" * 64},
                              csrf=False)
        self.assertEqual(st, 403)
        self.assertEqual(ops.call("GET", "/console/api/campaigns/%d" %
                                  shop)[1]["state"], "sending")

        # with it the pause works and the sink stops receiving
        st, doc, _ = ops.call("POST", "/console/api/campaigns/%d/pause"
                              % shop, {"reason": "console test"})
        self.assertEqual((st, doc["state"]), (200, "paused"), doc)
        self.assertEqual((doc["eta"], doc["eta_basis"]["kind"]),
                         ("paused", "paused"), doc)
        last = [-1]

        def settled():
            n = self.delivered(sink)
            same = n == last[0]
            last[0] = n
            return same
        wait_for(settled, 20, "the sink to stop growing", interval=1.5)
        held = last[0]
        time.sleep(2)
        self.assertEqual(self.delivered(sink), held)
        self.assertLess(held, RCPTS)
        # (the wait may outlast the short idle timeout of this test)
        self.assertEqual(ops.login("ops", "ops-pass-1234")[0], 200)
        st, doc, _ = ops.call("GET", "/console/api/campaigns/%d" % shop)
        self.assertEqual(doc["state"], "paused")
        self.assertEqual(doc["eta"], "paused")
        self.assertGreater(doc["pending"], 0)

        # an API key acts without cookie or CSRF token, with its own role:
        # sam's sender key resumes but may not cancel
        bearer = {"Authorization": "Bearer " + key}
        st, doc, _ = anon.call("GET", "/console/api/campaigns",
                               headers=bearer)
        self.assertEqual([c["id"] for c in doc["campaigns"]], [shop])
        st, doc, _ = anon.call("POST", "/console/api/campaigns/%d/resume"
                               % shop, headers=bearer)
        self.assertEqual((st, doc["state"]), (200, "sending"), doc)
        wait_for(lambda: self.delivered(sink) > held, 20,
                 "sending again after the resume")
        st, _, _ = anon.call("POST", "/console/api/campaigns/%d/cancel"
                             % shop, headers=bearer)
        self.assertEqual(st, 403)
        st, doc, _ = anon.call("GET", "/console/api/campaigns",
                               headers={"Authorization": "Bearer sk_1_" +
                                        "0" * 64})
        self.assertEqual(st, 401)

        # a sub-account user sees only its own account's campaigns
        sam = Client(http)
        self.assertEqual(sam.login("sam", "sam-pass-1234")[0], 200)
        st, doc, _ = sam.call("GET", "/console/api/campaigns")
        self.assertEqual([c["id"] for c in doc["campaigns"]], [shop])
        st, doc, _ = sam.call("GET", "/console/api/campaigns/%d" % other)
        self.assertEqual(st, 403, doc)
        self.assertEqual(sam.call("GET", "/console/api/campaigns/999")[0],
                         404)
        self.assertEqual(sam.call("GET", "/console/api/overview")[0], 403)
        st, doc, _ = ops.call("GET", "/console/api/campaigns")
        self.assertEqual(sorted(c["id"] for c in doc["campaigns"]),
                         sorted([shop, other]))
        st, doc, _ = sam.call("GET", "/console/api/accounts")
        self.assertEqual([a["account"] for a in doc["accounts"]], ["shop"])

        # the rest of the API answers for the master's owner
        for path in ("overview", "sites", "accounts", "incidents"):
            st, doc, _ = ops.call("GET", "/console/api/" + path)
            self.assertEqual(st, 200, (path, doc))
        st, doc, _ = ops.call("GET", "/console/api/sites")
        self.assertIn("dest.test", [s["name"] for s in doc["sites"]])
        st, doc, _ = ops.call("GET", "/console/api/overview")
        self.assertGreater(doc["delivered"], 0)
        # the report: `sluice report`'s object, the master's the platform's
        day = time.strftime("%Y-%m-%d", time.gmtime())
        q = "/console/api/report?from=%s&to=%s" % (day, day)
        st, doc, _ = ops.call("GET", q)
        self.assertEqual(st, 200, doc)
        self.assertIsNone(doc["account"])
        self.assertGreater(doc["summary"]["delivered"], 0)
        st, doc, _ = sam.call("GET", q)
        self.assertEqual((st, doc["account"]), (200, "shop"), doc)
        self.assertEqual(sam.call("GET", q + "&account=other")[0], 403)
        self.assertEqual(ops.call("GET", "/console/api/report?from=2026-13-01"
                                  )[0], 400)
        self.assertEqual(ops.call("GET", "/console/api/nothing")[0], 404)
        self.assertEqual(ops.call("DELETE", "/console/api/campaigns")[0],
                         405)
        st, doc, _ = ops.call("POST", "/console/api/campaigns/%d/cancel"
                              % shop)
        self.assertEqual((st, doc["state"]), (200, "cancelled"), doc)
        # once the counts settle, the console's report is the CLI's
        def same_report():
            cli = json.loads(self.sluice("report", "summary", "--json",
                                         "--from", day, "--to",
                                         day).stdout)["summary"]
            web = ops.call("GET", q)[1]["summary"]
            return cli == web and web["cancelled"] > 0
        wait_for(same_report, 30, "the console's report equal to the CLI's")

        # the master's admin pauses and resumes a site, as `sluice pause`
        site = "/console/api/sites/DEST.test/"
        st, doc, _ = ops.call("POST", site + "pause", {"reason": "look"})
        self.assertEqual((st, doc), (200, {"site": "dest.test",
                                           "paused": True}))
        st, doc, _ = ops.call("GET", "/console/api/sites")
        row = [x for x in doc["sites"] if x["name"] == "dest.test"][0]
        self.assertTrue(row["paused"])
        self.assertRegex(self.sluice("paused").stdout.decode(),
                         r"site +dest\.test .* ops .* look")
        self.assertEqual(ops.call("POST", site + "resume")[0], 200)
        self.assertEqual(ops.call("POST", site + "resume")[0], 409)
        self.assertEqual(ops.call("POST", "/console/api/sites/a%20b/pause"
                                  )[0], 400)

        # incidents: another account's is out of sam's sight; the master's
        # owner acknowledges, assigns, notes and resolves it
        st, doc, _ = sam.call("GET", "/console/api/incidents")
        self.assertEqual((st, doc["incidents"]), (200, []))
        self.assertEqual(sam.call("GET", "/console/api/incidents/%d" %
                                  inc)[0], 403)
        self.assertEqual(sam.call("POST", "/console/api/incidents/%d/ack" %
                                  inc)[0], 403)
        st, doc, _ = ops.call("GET", "/console/api/incidents")
        self.assertEqual([i["id"] for i in doc["incidents"]], [inc])
        base = "/console/api/incidents/%d/" % inc
        self.assertEqual(ops.call("POST", base + "ack", csrf=False)[0], 403)
        for verb, body in (("ack", None), ("assign", {"user": "sam"}),
                           ("note", {"text": "a look at the MX"}),
                           ("resolve", {"text": "fixed"})):
            st, doc, _ = ops.call("POST", base + verb, body)
            self.assertEqual(st, 200, (verb, doc))
        self.assertEqual(ops.call("POST", base + "note", {})[0], 400)
        self.assertEqual(ops.call("POST", base + "ack")[0], 409)
        st, doc, _ = ops.call("GET", "/console/api/incidents/%d" % inc)
        self.assertEqual((doc["state"], doc["assignee"]), ("resolved", "sam"))
        self.assertEqual([(e["what"], e["who"]) for e in doc["timeline"]][1:],
                         [("acknowledged", "ops"), ("assigned", "ops"),
                          ("noted", "ops"), ("resolved", "ops")])

        # an oversized body: 413 before it is read
        st, _, _ = anon.call("POST", "/console/api/login",
                             raw=b"{" + b" " * 100000 + b"}",
                             headers={"Content-Type": "application/json"})
        self.assertEqual(st, 413)
        st, _, _ = anon.call("POST", "/console/api/login", raw=b"[1,2",
                             headers={"Content-Type": "application/json"})
        self.assertEqual(st, 400)
        st, doc, _ = anon.call("POST", "/console/api/login",
                               {"user": 5, "password": ["x"]})
        self.assertEqual(st, 400, doc)
        st, doc, _ = anon.call("POST", "/console/api/login",
                               {"user": "ops" * 100, "password": "x"})
        self.assertEqual(st, 400, doc)
        self.assertEqual(anon.call("GET", "/static/../index.html")[0], 404)
        self.assertEqual(anon.call("POST", "/")[0], 405)
        # a cross-site form can only post text/plain: refused unread
        st, doc, _ = anon.call("POST", "/console/api/login",
                               raw=json.dumps({"user": "ops", "password":
                                               "ops-pass-1234"}).encode(),
                               headers={"Content-Type": "text/plain"})
        self.assertEqual(st, 400, doc)
        self.assertIn("application/json", doc["error"])
        # behind an HTTPS proxy the cookie is Secure too
        st, _, r = anon.call("POST", "/console/api/login",
                             {"user": "ops", "password": "ops-pass-1234"},
                             headers={"X-Forwarded-Proto": "https"})
        self.assertEqual(st, 200)
        self.assertIn("; Secure", r.getheader("Set-Cookie"))

        # lock-out after repeated failures: 429, even for the right password
        codes = [anon.login("lou", "wrong-%d" % i)[0] for i in range(5)]
        self.assertEqual(codes[:4], [401] * 4)
        st, doc, _ = anon.login("lou", "lou-pass-1234")
        self.assertEqual(st, 429, doc)
        self.assertIn("locked out", doc["error"])

        # disabling a user ends their sessions
        dan = Client(http)
        self.assertEqual(dan.login("dan", "dan-pass-1234")[0], 200)
        self.sluice("user", "disable", "dan")
        st, doc, _ = dan.call("GET", "/console/api/session")
        self.assertEqual((st, doc["error"]), (401, "user dan is disabled"))

        # logout ends the session at once; an idle one ends by itself
        self.assertEqual(sam.call("POST", "/console/api/logout")[0], 200)
        self.assertEqual(sam.call("GET", "/console/api/session")[0], 401)
        idle = Client(http)
        self.assertEqual(idle.login("ops", "ops-pass-1234")[0], 200)
        self.assertEqual(idle.call("GET", "/console/api/session")[0], 200)
        time.sleep(IDLE_S + 1)
        st, doc, _ = idle.call("GET", "/console/api/session")
        self.assertEqual(st, 401, doc)

        # a user's 17th session ends their own oldest, no one else's
        other_user = Client(http)
        self.assertEqual(other_user.login("sam", "sam-pass-1234")[0], 200)
        many = [Client(http) for _ in range(17)]
        for c in many:
            self.assertEqual(c.login("ops", "ops-pass-1234")[0], 200)
        self.assertEqual([c.call("GET", "/console/api/session")[0]
                          for c in many], [401] + [200] * 16)
        self.assertEqual(other_user.call("GET", "/console/api/session")[0],
                         200)

        # the audit trail holds it all, the console's user as the actor
        ops = Client(http)
        self.assertEqual(ops.login("ops", "ops-pass-1234")[0], 200)
        st, doc, _ = ops.call("GET", "/console/api/audit?limit=500")
        self.assertEqual(st, 200, doc)
        recs = [(r["user"], r["action"], r["result"][:7])
                for r in doc["records"]]
        for want in (("ops", "console login", "ok"),
                     ("ops", "campaign pause", "ok"),
                     ("sam", "campaign resume", "ok"),
                     ("ops", "campaign cancel", "ok"),
                     ("sam", "campaign cancel", "refused"),
                     ("sam", "campaign show", "refused"),
                     ("sam", "console logout", "ok"),
                     ("lou", "console login", "refused"),
                     ("tess", "pause", "refused"),
                     ("ops", "pause", "ok"), ("ops", "resume", "ok"),
                     ("ops", "incident ack", "ok"),
                     ("ops", "incident resolve", "ok"),
                     ("sam", "incident show", "refused"),
                     ("sam", "report", "refused")):
            self.assertIn(want, recs)
        vias = {r["via"] for r in doc["records"] if r["user"] == "sam" and
                r["action"] == "campaign resume"}
        self.assertTrue(all(v.startswith("console apikey:") for v in vias),
                        vias)
        cli = self.sluice("--json", "audit", "list").stdout.decode()
        self.assertIn("campaign pause", cli)

        # sessions live in sluiced's memory: a restart signs everyone out
        p.signal(15)
        self.assertEqual(p.wait(60), 0, p.output()[-2000:])
        p = self.start_sluiced(conf, exit_when_empty=False, name="sluiced2")
        wait_for(up, 30, "the console after a restart")
        self.assertEqual(ops.call("GET", "/console/api/session")[0], 401)
        self.assertEqual(ops.login("ops", "ops-pass-1234")[0], 200)
        self.assertEqual(ops.call("GET", "/console/api/session")[0], 200)
        p.signal(15)
        self.assertEqual(p.wait(60), 0, p.output()[-2000:])


if __name__ == "__main__":
    peers.main()
