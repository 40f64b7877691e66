"""incident_base.py - what the incident tests (test_incident.py,
test_incident_gauges.py, test_breaker.py) share: accounts with verified
sending domains, a campaign from a list of addresses, the incident CLI
read as JSON, an incident record stored as sluiced writes it, and a clean
stop of sluiced.  The web console's tests use it too."""
import json
import os
import signal
import subprocess

from peers import PeerTest


class IncidentTest(PeerTest):

    def account_id(self, name):
        r = self.sluice("account", "show", name, "--json")
        return json.loads(r.stdout)["id"]

    def accounts(self, *subs):
        """The master and sub-accounts subs, each sending from a verified
        SUB.test (DKIM selector s1)."""
        self.sluice("account", "create", "master")
        for s in subs:
            self.sluice("account", "create", s)
            self.sluice("domain", "add", "%s.test" % s, "--account", s,
                        "--selector", "s1")
            self.sluice("domain", "verify", "%s.test" % s, "--force")

    def campaign(self, account, name, rcpts, send=True, lst=None):
        """A campaign of account to a new list of rcpts (named lst, or
        as the campaign); sent unless send is False.  Its id."""
        lst = lst or name
        csv = self.path("%s.csv" % lst)
        with open(csv, "w") as f:
            f.write("email\n" + "\n".join(rcpts) + "\n")
        self.sluice("list", "create", lst, "--account", account)
        self.sluice("list", "import", lst, csv, "--account", account)
        html = self.path("t.html")
        with open(html, "w") as f:
            f.write("<p>Hello</p>\n")
        r = self.sluice("campaign", "create", name, "--account", account,
                        "--list", lst, "--from",
                        "Shop <news@%s.test>" % account, "--subject", "Hi",
                        "--html", html, "--json")
        cid = str(json.loads(r.stdout)["id"])
        if send:
            self.sluice("campaign", "send", cid)
        return cid

    def incidents(self, *args):
        r = self.sluice("incident", "list", "--json", *args)
        return json.loads(r.stdout)

    def show(self, iid):
        return json.loads(self.sluice("incident", "show", str(iid),
                                      "--json").stdout)

    def put_incident(self, account_id, campaign, **fields):
        """An open incident of a campaign, stored as sluiced's opening
        writes it ($SLUICE_INCIDENT_PUT, incident_put.c): rule "blocks"
        (block_rate, critical, action alert) with fields added or replaced
        (None leaves a field out).  Its id."""
        rec = {"rule": "blocks", "signal": "block_rate", "scope": "campaign",
               "scope_name": str(campaign), "account": account_id,
               "campaign": int(campaign), "severity": "critical",
               "numbers": {"value": 0.5, "threshold": 0.1, "volume": 20,
                           "window_s": 300},
               "root_cause": {"replies": [], "mx": [], "domains": [],
                              "first_ms": 0, "last_ms": 0, "samples": [],
                              "events": 0},
               "action": "alert"}
        rec.update(fields)
        rec = {k: v for k, v in rec.items() if v is not None}
        f = self.path("incident.json")
        with open(f, "w") as fh:
            json.dump(rec, fh)
        r = subprocess.run([os.environ["SLUICE_INCIDENT_PUT"],
                            self.path("spool"), str(account_id),
                            str(campaign), f],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(r.stdout)

    def add(self, conf, text):
        with open(conf, "a") as f:
            f.write(text)

    def stop(self, p):
        """SIGTERM sluiced p; it exits 0."""
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(60), 0, p.output()[-2000:])
