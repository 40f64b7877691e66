"""test_audit.py - sluiced and the keyed audit trail.

sluiced appends audit records of its own (a one-click unsubscribe at its
HTTP endpoint): with audit_key they are keyed, with audit_checkpoint each
one's head goes to the checkpoint file, and the event log gets an
{"type":"audit","audit_seq":N,"head":HEX} line for it, which `sluice
audit verify --checkpoint EVENTLOG` compares with the chain.  The audit lines do not disturb the
log's resume rule (a restart writes every event once).  On a keyed spool
sluiced without the key refuses to start (78) rather than fail each
unsubscribe later.

usage: /usr/bin/python3 test_audit.py SLUICED SLUICE SINK
"""
import json
import os
import re
import signal
import subprocess
import urllib.request

import peers
from peers import PeerTest

MSG = "From: s@sender.test\nSubject: audit\n\nbody\n"


class Audit(PeerTest):

    def setUp(self):
        super().setUp()
        self.key = self.path("etc", "audit.key")
        self.checkpoint = self.path("log", "audit.checkpoint")
        os.makedirs(self.path("etc"))
        os.makedirs(self.path("log"))
        self.saved = os.environ.get("SLUICE_CONFIG")
        os.environ["SLUICE_CONFIG"] = ""     # until the config is written

    def tearDown(self):
        if self.saved is None:
            os.environ.pop("SLUICE_CONFIG", None)
        else:
            os.environ["SLUICE_CONFIG"] = self.saved
        super().tearDown()

    def keyed_config(self, port, http, **keys):
        self.sluice("audit", "keygen", self.key)
        conf = self.write_config(
            smtp_port=port, http_listen="127.0.0.1:%d" % http,
            unsubscribe_host="u.shop.test", audit_key=self.key,
            audit_checkpoint=self.checkpoint,
            domains={"dest.test": {"route": "127.0.0.1:%d" % port}}, **keys)
        os.environ["SLUICE_CONFIG"] = conf   # the tools use the key too
        return conf

    def campaign_token(self, conf):
        """A campaign of shop to one contact; the contact's one-click
        unsubscribe token."""
        self.shop_list(["c0@dest.test"])
        html = self.path("t.html")
        with open(html, "w") as f:
            f.write("<p>hi <a href=\"{{unsubscribe_url}}\">leave</a></p>\n")
        r = self.sluice("campaign", "create", "hello", "--account", "shop",
                        "--list", "news", "--from", "Shop <news@shop.test>",
                        "--subject", "Hi", "--html", html, "--json")
        cid = str(json.loads(r.stdout)["id"])
        pv = self.sluice("campaign", "preview", cid, "--contact",
                         "c0@dest.test", "--config", conf).stdout.decode()
        return re.search(r"/u/([a-z0-9]+)>", pv).group(1)

    def audit_lines(self):
        return [e for e in self.event_log() if e.get("type") == "audit"]

    def test_sluiced_appends_keyed_and_exports_heads(self):
        port = peers.free_port()
        http = peers.free_port()
        self.start_sink(port, listen="127.0.0.1")
        conf = self.keyed_config(port, http)
        token = self.campaign_token(conf)
        self.inject("s@sender.test", ["r@dest.test"], MSG)
        p = self.start_sluiced(conf, exit_when_empty=False)
        peers.wait_for(lambda: any(e["type"] == "delivered"
                                   for e in self.event_log()),
                       30, "the delivery")
        r = urllib.request.urlopen(urllib.request.Request(
            "http://127.0.0.1:%d/u/%s" % (http, token),
            data=b"List-Unsubscribe=One-Click", method="POST"), timeout=10)
        self.assertEqual(r.status, 200)
        recs = json.loads(self.sluice("audit", "list", "--json").stdout)
        last = recs[-1]
        self.assertEqual(last["user"], "(one-click)", last)
        seq = last["seq"]
        # the checkpoint line sluiced wrote after the commit
        with open(self.checkpoint) as f:
            lines = [l.split() for l in f.read().splitlines()]
        self.assertIn([str(seq), last["hash"]], [l[:2] for l in lines])
        self.assertEqual(sorted(int(l[0]) for l in lines),
                         list(range(1, seq + 1)))
        # the event log's audit line, within the poll's second
        peers.wait_for(lambda: any(e["audit_seq"] == seq and
                                   e["head"] == last["hash"]
                                   for e in self.audit_lines()),
                       10, "the audit line of record %d" % seq)
        v = json.loads(self.sluice("audit", "verify", "--json").stdout)
        self.assertTrue(v["intact"], v)
        self.assertEqual(v["keyed_from"], 1, v)   # every record keyed
        self.assertEqual(v["checkpoints"], seq, v)
        r = self.sluice("audit", "verify", "--checkpoint",
                        self.path("events.jsonl"), "--json")
        v = json.loads(r.stdout)
        self.assertTrue(v["intact"], v)
        self.assertEqual(v["checkpoints"], 1, v)
        self.assertNotIn(b"not a checkpoint", r.stderr)
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0, p.output())
        # a restart: the audit lines do not move the log's resume point
        self.sluice("account", "create", "late")
        self.inject("s@sender.test", ["r2@dest.test"], MSG)
        self.run_sluiced(conf)
        self.assert_log_matches_spool()
        # one line per head sluiced appended; the tools' records are in
        # the checkpoint file only
        heads = [e["audit_seq"] for e in self.audit_lines()]
        self.assertEqual(heads, [seq])
        with open(self.checkpoint) as f:
            self.assertEqual(len(f.read().splitlines()), seq + 2)

    def test_keyed_spool_needs_the_key(self):
        port = peers.free_port()
        http = peers.free_port()
        self.keyed_config(port, http)
        self.sluice("account", "create", "master")    # a keyed record
        plain = self.write_config(smtp_port=port, name="plain.conf")
        p = self.start_sluiced(plain)
        self.assertEqual(p.wait(30), 78, p.output())
        self.assertIn("audit trail is keyed: set audit_key", p.output())
        r = subprocess.run([self.bin["sluiced"], "-t", "-c", plain],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 78, r.stderr)


if __name__ == "__main__":
    peers.main()
