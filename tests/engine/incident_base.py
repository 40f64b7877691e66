"""incident_base.py - what the incident tests (test_incident.py,
test_incident_gauges.py, test_breaker.py) share: accounts with verified
sending domains, a campaign from a list of addresses, the incident CLI
read as JSON, and a clean stop of sluiced."""
import json
import signal

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

    def campaign(self, account, name, rcpts, send=True):
        """A campaign of account to a list name of rcpts; sent unless
        send is False.  Its id."""
        csv = self.path("%s.csv" % name)
        with open(csv, "w") as f:
            f.write("email\n" + "\n".join(rcpts) + "\n")
        self.sluice("list", "create", name, "--account", account)
        self.sluice("list", "import", name, csv, "--account", account)
        html = self.path("t.html")
        with open(html, "w") as f:
            f.write("<p>Hello</p>\n")
        r = self.sluice("campaign", "create", name, "--account", account,
                        "--list", name, "--from",
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

    def add(self, conf, text):
        with open(conf, "a") as f:
            f.write(text)

    def stop(self, p):
        """SIGTERM sluiced p; it exits 0."""
        p.signal(signal.SIGTERM)
        self.assertEqual(p.wait(60), 0, p.output()[-2000:])
