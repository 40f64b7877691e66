"""test_console_browser.py - the web console in a real browser.

Debian's headless chromium, driven by chromedriver through python3-selenium,
against a real sluiced (http_listen) with a sink behind dnsmasq's MX.  A
master (acme) with two sub-accounts (shop, blog), each with a campaign;
users ops (owner of acme), tina (viewer of acme, with TOTP) and sam
(manager of shop).  One sluiced, one browser, the cases in order:

  sign-in     a wrong password is refused with a visible message and the
              page stays on the form; tina's password brings up the code
              field, a code computed here (RFC 6238, hmac) signs her in;
  live        ops opens shop's campaign (5 recipients a second): its
              progress bar's value grows while sluiced sends;
  pause       the console's Pause button: within 2 s the sink's count
              stops growing (read twice after the pause settled);
  tenancy     sam sees shop's campaign and not blog's; blog's campaign by
              URL answers 403 and the page says "Not allowed";
  csrf        a POST from the page without X-CSRF-Token is refused (403)
              and changes nothing; the same POST with it is done;
  401         a session ended behind the page's back: its next poll
              brings back the sign-in form, saying so;
  text        blog's campaign is named with markup: the page shows it as
              text (no element made, no handler run);
  incident    an open incident acknowledged and noted from its page: the
              timeline shows both, `sluice incident show` the state;
  reports     the reports page draws its charts from GET
              /console/api/report, its delivered count the sink's, one
              sub-account's report on asking; printed, it keeps the
              charts and leaves out navigation and forms;
  sites       a site paused and resumed by its button (`sluice paused`
              agrees);
  pages       a screenshot of every page (and the sign-in form) saved
              under $SLUICE_ARTEFACTS (the build dir's artefacts/console/),
              the path printed;
  log         the browser's console log holds no error but the expected
              refusals of the API (the 401s of the sign-in, the 403s the
              test provoked): no script error, no CSP violation, no
              missing asset.

usage: /usr/bin/python3 test_console_browser.py SLUICED SLUICE SINK
"""
import base64
import hashlib
import hmac
import json
import os
import re
import struct
import subprocess
import time

import peers
from incident_base import IncidentTest

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
RATE = 5                       # recipients a second to the sink
NRCPT = 60                     # shop's campaign: about 12 s at RATE
PASSWORDS = {"ops": "ops-console-pw", "tina": "tina-console-pw",
             "sam": "sam-console-pw"}
BLOG_NAME = "digest<img src=x onerror=window.__xss=1>"
PAGES = ("overview", "sites", "campaigns", "accounts", "incidents",
         "reports", "audit")


def totp_code(secret, t=None):
    """The RFC 6238 code (SHA-1, 6 digits, 30 s) of a base32 secret."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    step = int((time.time() if t is None else t) // 30)
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF)
                     % 1000000)


class ConsoleBrowser(IncidentTest):

    def setUp(self):
        super().setUp()
        self.env_saved = {k: os.environ.get(k) for k in
                          ("SLUICE_USER", "SLUICE_PASSWORD",
                           "SLUICE_PWHASH_FAST", "SLUICE_CONFIG")}
        os.environ["SLUICE_PWHASH_FAST"] = "1"
        os.environ["SLUICE_CONFIG"] = ""
        os.environ.pop("SLUICE_USER", None)
        os.environ.pop("SLUICE_PASSWORD", None)
        self.driver = None
        self.log = []
        # kept after the test (the temp dir is not): ctest's build dir, or
        # ./artefacts/console when run by hand
        self.shots = os.path.abspath(os.environ.get("SLUICE_ARTEFACTS") or
                                     os.path.join("artefacts", "console"))
        os.makedirs(self.shots, exist_ok=True)
        for old in os.listdir(self.shots):
            if old.endswith(".png"):
                os.unlink(os.path.join(self.shots, old))

    def tearDown(self):
        if self.driver is not None:
            try:
                self.driver.quit()
            except WebDriverException:
                pass
        for k, v in self.env_saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        super().tearDown()

    # ------------------------------------------------------------ set-up

    def campaign(self, account, name, rcpts):
        """A campaign of account named name, to a list of rcpts; its id."""
        csv = self.path("%s.csv" % account)
        with open(csv, "w") as f:
            f.write("email\n" + "\n".join(rcpts) + "\n")
        self.sluice("list", "create", account, "--account", account)
        self.sluice("list", "import", account, csv, "--account", account)
        html = self.path("%s.html" % account)
        with open(html, "w") as f:
            f.write("<p>Hello from %s</p>\n" % account)
        r = self.sluice("campaign", "create", name, "--account", account,
                        "--list", account, "--from",
                        "News <news@%s.test>" % account, "--subject", "Hi",
                        "--html", html, "--json")
        return str(json.loads(r.stdout)["id"])

    def user(self, name, account, role):
        r = subprocess.run([self.bin["sluice"], "--spool", self.path("spool"),
                            "user", "add", name, "--account", account,
                            "--role", role, "--password-stdin"],
                           input=(PASSWORDS[name] + "\n").encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode())

    def world(self):
        """Accounts, campaigns, users; sinks, dnsmasq and sluiced."""
        self.sluice("account", "create", "acme")
        for a in ("shop", "blog"):
            self.sluice("account", "create", a)
            self.sluice("domain", "add", "%s.test" % a, "--account", a,
                        "--selector", "s1")
            self.sluice("domain", "verify", "%s.test" % a, "--force")
        self.shop_cid = self.campaign(
            "shop", "spring", ["s%03d@dest.test" % i for i in range(NRCPT)])
        # markup in a name is text on the page, never an element
        self.blog_cid = self.campaign(
            "blog", BLOG_NAME, ["b%03d@other.test" % i for i in range(3)])
        self.user("ops", "acme", "owner")          # ends the bootstrap
        os.environ["SLUICE_USER"] = "ops"
        os.environ["SLUICE_PASSWORD"] = PASSWORDS["ops"]
        self.user("tina", "acme", "viewer")
        self.user("sam", "shop", "manager")
        r = self.sluice("--json", "user", "totp", "tina", "enable")
        self.tina_secret = json.loads(r.stdout)["secret"]
        self.incident_id = self.incident("shop", self.shop_cid)

        port = peers.free_port()
        self.sink = self.start_sink(port, listen="127.0.0.1")
        dns = self.start_dns({"dest.test": [(10, "127.0.0.1")],
                              "other.test": [(10, "127.0.0.1")]})
        self.http = peers.free_port()
        conf = self.write_config(dns=dns, smtp_port=port,
                                 http_listen="127.0.0.1:%d" % self.http,
                                 pause_recheck="1s", allow_unsigned=True)
        with open(conf, "a") as f:
            f.write("\n[domain default]\nmax_rate = %d/s\n" % RATE)
        self.sluiced = self.start_sluiced(conf, exit_when_empty=False)
        self.base = "http://127.0.0.1:%d" % self.http

        def up():
            if not self.sluiced.alive():
                raise peers.PeerError("sluiced exited:\n" +
                                      self.sluiced.output()[-3000:])
            try:
                import urllib.request
                with urllib.request.urlopen(self.base + "/", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False
        peers.wait_for(up, 20, "the console at %s/" % self.base, 0.1)

    def incident(self, account, campaign):
        """An open incident of account's campaign, stored as sluiced's
        opening writes it (incident_put); its id."""
        return self.put_incident(self.account_id(account), campaign,
                                 root_cause=None)

    def browser(self):
        o = webdriver.ChromeOptions()
        o.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-dev-shm-usage", "--window-size=1280,960",
                  "--no-first-run", "--no-default-browser-check",
                  "--disable-background-networking", "--disable-extensions",
                  "--user-data-dir=" + self.path("chromium-profile")):
            o.add_argument(a)
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # chromedriver dies with this test (as peers.py's children do)
        svc = Service(CHROMEDRIVER, log_path=self.path("chromedriver.log"),
                      popen_kw={"preexec_fn": peers._die_with_parent})
        self.driver = webdriver.Chrome(service=svc, options=o)
        self.driver.set_page_load_timeout(20)
        self.driver.set_script_timeout(10)

    # ------------------------------------------------------------ page

    def id(self, name):
        return self.driver.find_element(By.ID, name)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def fetch(self, method, path, csrf=False):
        """fetch() from the page: the answer's status (and body)."""
        return self.driver.execute_async_script("""
            var done = arguments[arguments.length - 1];
            var h = {'Content-Type': 'application/json'};
            var go = function () {
              fetch(arguments[0], {method: arguments[1], headers: h,
                                   credentials: 'same-origin',
                                   body: arguments[1] === 'GET' ? undefined : '{}'})
                .then(function (r) { return r.text().then(function (t) {
                    done([r.status, t]); }); },
                      function (e) { done([0, String(e)]); });
            };
            var url = arguments[0], method = arguments[1];
            if (!arguments[2]) { go(url, method); return; }
            fetch('/console/api/session', {credentials: 'same-origin'})
              .then(function (r) { return r.json(); })
              .then(function (s) { h['X-CSRF-Token'] = s.csrf; go(url, method); });
        """, "/console/api/" + path, method, csrf)

    def wait(self, pred, what, timeout=15):
        return peers.wait_for(pred, timeout, what, 0.05)

    def text(self, name):
        try:
            return self.id(name).text
        except WebDriverException:
            return ""

    def go(self, route):
        self.driver.get("%s/#/%s" % (self.base, route))
        self.wait(lambda: self.js("return document.body.dataset.signedIn"),
                  "the page's first answer")

    def sign_in(self, user, password, totp=None):
        self.driver.get(self.base + "/")
        self.wait(lambda: self.js("return document.body.dataset.signedIn"),
                  "the page's session check")
        if self.js("return document.body.dataset.signedIn") == "yes":
            self.sign_out()
        self.id("signin-user").clear()
        self.id("signin-user").send_keys(user)
        self.id("signin-password").clear()
        self.id("signin-password").send_keys(password)
        if totp is not None:
            self.id("signin-totp").send_keys(totp)
        self.id("signin-submit").click()

    def signed_in_as(self, user):
        self.wait(lambda: self.js("return document.body.dataset.signedIn")
                  == "yes" and self.text("whoami").startswith(user + " "),
                  "signed in as %s" % user)

    def sign_out(self):
        self.id("signout").click()
        self.wait(lambda: self.id("signin").is_displayed(),
                  "the sign-in form after sign-out")

    def shot(self, name):
        """A screenshot of the whole page (the window made as tall as the
        page for it) into the artefacts directory."""
        path = os.path.join(self.shots, name + ".png")
        tall = self.js("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, max(960, min(int(tall), 6000)))
        self.assertTrue(self.driver.save_screenshot(path), path)
        self.driver.set_window_size(1280, 960)
        return path

    def browser_log(self):
        """The browser's console entries since the last call (kept)."""
        got = self.driver.get_log("browser")
        self.log.extend(got)
        return got

    def progress(self):
        v = self.js("var p = document.getElementById('campaign-progress');"
                    "return p ? p.value : null;")
        return v

    def sent(self):
        return self.sink.stats()["messages"]

    # ------------------------------------------------------------ the test

    def test_console(self):
        # the whole console stays small: it is embedded in sluiced and
        # loaded by every browser that opens it
        here = os.path.dirname(os.path.abspath(__file__))
        assets = os.path.join(here, "..", "..", "engine", "console")
        size = sum(os.path.getsize(os.path.join(assets, f))
                   for f in os.listdir(assets))
        self.assertLess(size, 60 * 1024, "engine/console/ holds %d bytes"
                        % size)
        self.world()
        self.browser()
        self.step_sign_in()
        self.step_live_and_pause()
        self.step_incident()
        self.step_pages()
        self.step_tenancy_and_csrf()
        self.step_log()

    def step_sign_in(self):
        self.sign_in("ops", "not-the-password")
        self.wait(lambda: self.text("signin-error"), "a refusal message")
        self.assertIn("refused", self.text("signin-error").lower())
        self.assertTrue(self.id("signin-error").is_displayed())
        self.assertTrue(self.id("signin").is_displayed())
        self.assertFalse(self.id("top").is_displayed())
        self.assertEqual(self.js("return document.body.dataset.signedIn"),
                         "no")
        self.shot("signin-refused")

        # tina has TOTP: her password alone brings up the code field
        self.sign_in("tina", PASSWORDS["tina"])
        self.wait(lambda: self.id("signin-totp").is_displayed(),
                  "the TOTP field")
        self.assertIn("code", self.text("signin-error"))
        self.assertEqual(self.js("return document.body.dataset.signedIn"),
                         "no")
        self.shot("signin-totp")
        self.id("signin-totp").send_keys(totp_code(self.tina_secret))
        self.id("signin-submit").click()
        self.signed_in_as("tina")
        self.assertIn("viewer", self.text("whoami"))
        self.sign_out()

    def step_live_and_pause(self):
        self.sign_in("ops", PASSWORDS["ops"])
        self.signed_in_as("ops")
        self.go("campaigns/%s" % self.shop_cid)
        self.wait(lambda: self.progress() is not None, "the progress bar")
        self.assertEqual(self.progress(), 0)
        self.sluice("campaign", "send", self.shop_cid)
        # the bar moves while sluiced sends: two readings, each larger
        first = self.wait(lambda: self.progress() or None,
                          "the bar leaving 0", 30)
        self.wait(lambda: self.progress() > first, "the bar moving on", 30)
        second = self.progress()
        self.assertLess(second, 1, "the campaign ended before the pause")
        self.assertLessEqual(self.sent(), NRCPT)
        self.shot("campaign-sending")

        self.id("campaign-pause").click()
        t0 = time.monotonic()
        self.wait(lambda: self.js("return document.getElementById('view')"
                                  ".dataset.state") == "paused",
                  "the page showing the campaign paused", 10)
        self.assertIn("Paused", self.text("notice"))
        # within 2 s of the click the sink's count stands still
        time.sleep(max(0.0, 2.0 - (time.monotonic() - t0)))
        at_pause = self.sent()
        time.sleep(2.0)
        self.assertEqual(self.sent(), at_pause,
                         "mail kept flowing 2 s after the console's pause")
        self.assertLess(at_pause, NRCPT)
        self.assertFalse(self.id("campaign-resume").get_attribute("disabled"))
        self.paused_at = at_pause
        self.shot("campaign-paused")

    def step_incident(self):
        self.go("incidents")
        link = "a[href='#/incidents/%d']" % self.incident_id
        self.wait(lambda: self.driver.find_elements(By.CSS_SELECTOR, link),
                  "the incident in the list")
        self.driver.find_element(By.CSS_SELECTOR, link).click()
        self.wait(lambda: self.js("return document.getElementById('view')"
                                  ".dataset.state") == "open",
                  "the incident's page, open")
        self.id("incident-ack").click()
        self.wait(lambda: self.js("return document.getElementById('view')"
                                  ".dataset.state") == "acknowledged",
                  "the incident acknowledged")
        note = "looking at <b>blocks</b> now"
        self.id("incident-note").send_keys(note)
        self.id("incident-note").submit()
        self.wait(lambda: note in self.text("incident-timeline"),
                  "the note in the timeline")
        self.assertIn("acknowledged by ops", self.text("incident-timeline"))
        shown = json.loads(self.sluice("incident", "show",
                                       str(self.incident_id),
                                       "--json").stdout)
        self.assertEqual(shown["state"], "acknowledged", shown)
        self.shot("incident")

    def step_pages(self):
        for page in PAGES:
            self.go(page)
            self.wait(lambda: self.js(
                "var v = document.getElementById('view');"
                "return v.dataset.route === arguments[0] &&"
                " v.querySelector('h1') !== null", page),
                "the %s page" % page)
            # the page's first answer is in (no '…' placeholder left)
            self.wait(lambda: "…" not in self.text("view") and
                      self.text("view").count("\n") > 1,
                      "the %s page filled" % page)
            self.assertNotIn("Not allowed", self.text("view"), page)
            self.assertFalse(self.text("notice").startswith("Failed"), page)
            if page == "reports":
                self.check_report()
            if page == "sites":
                self.check_site_pause()
            self.shot(page)
            if page == "reports":
                self.check_report_print()
        # the campaigns page lists both sub-accounts' campaigns for ops
        self.go("campaigns")
        self.wait(lambda: "spring" in self.text("campaigns") and
                  BLOG_NAME in self.text("campaigns"), "both campaigns")
        self.assertEqual(self.js("return document.querySelectorAll("
                                 "'#view img').length"), 0)
        self.assertIsNone(self.js("return window.__xss"))
        self.go("campaigns/%s" % self.shop_cid)
        self.wait(lambda: self.progress() is not None, "the campaign page")
        self.shot("campaign")
        print("\nconsole screenshots: %s" % self.shots, flush=True)

    def check_report(self):
        """The reports page draws its charts, and its delivered count is
        the sink's (the campaign is paused: nothing moves)."""
        self.wait(lambda: self.js(
            "return document.getElementById('report-summary') !== null ||"
            " document.getElementById('report-missing') !== null"),
            "the report")
        self.assertIsNone(self.js(
            "var m = document.getElementById('report-missing');"
            "return m && m.textContent;"))
        self.assertGreaterEqual(self.js(
            "return document.querySelectorAll('#report svg').length"), 3)
        self.assertEqual(self.report_delivered(), str(self.paused_at))
        # one sub-account's report: blog sent nothing
        self.id("report-account").send_keys("blog")
        self.id("report-account").submit()
        self.wait(lambda: "Account blog" in self.text("report") and
                  self.report_delivered() == "0", "blog's report")
        self.id("report-account").clear()
        self.id("report-account").submit()
        self.wait(lambda: self.report_delivered() == str(self.paused_at),
                  "the whole platform's report again")

    def check_site_pause(self):
        """dest.test's Pause button pauses the site (its row, the CLI's
        `sluice paused`) and Resume lifts it."""
        btn = "#sites button[data-site='dest.test']"
        self.wait(lambda: self.driver.find_elements(By.CSS_SELECTOR, btn),
                  "dest.test's row")
        b = self.driver.find_element(By.CSS_SELECTOR, btn)
        self.assertEqual(b.text, "Pause")
        b.click()
        self.wait(lambda: b.text == "Resume", "the site shown paused")
        self.assertIn("dest.test", self.sluice("paused").stdout.decode())
        b.click()
        self.wait(lambda: b.text == "Pause", "the site shown resumed")
        self.assertNotIn("dest.test", self.sluice("paused").stdout.decode())

    def check_report_print(self):
        """The report printed: no navigation, no form, the charts kept."""
        self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                    {"media": "print"})
        self.assertFalse(self.id("top").is_displayed())
        self.assertFalse(self.id("report-from").is_displayed())
        self.assertTrue(self.driver.find_element(
            By.CSS_SELECTOR, "#report svg").is_displayed())
        self.shot("reports-print")
        self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                    {"media": ""})

    def report_delivered(self):
        return self.js("var d = document.querySelector("
                       "'#report-summary dd[data-count=delivered]');"
                       "return d ? d.textContent : null;")

    def step_tenancy_and_csrf(self):
        self.sign_in("sam", PASSWORDS["sam"])
        self.signed_in_as("sam")
        self.go("campaigns")
        self.wait(lambda: "spring" in self.text("campaigns"),
                  "shop's campaign in sam's list")
        self.assertNotIn("digest", self.text("campaigns"))
        # blog's campaign by URL: the API says 403, the page not allowed
        self.go("campaigns/%s" % self.blog_cid)
        self.wait(lambda: "Not allowed" in self.text("view"),
                  "'Not allowed' on blog's campaign")
        self.shot("not-allowed")
        status, _ = self.fetch("GET", "campaigns/%s" % self.blog_cid)
        self.assertEqual(status, 403)

        # a POST without the CSRF token: refused, the campaign stays put
        status, body = self.fetch("POST", "campaigns/%s/resume"
                                  % self.shop_cid)
        self.assertEqual(status, 403, body)
        time.sleep(1.5)
        self.assertEqual(self.sent(), self.paused_at)
        self.go("campaigns/%s" % self.shop_cid)
        self.wait(lambda: self.js("return document.getElementById('view')"
                                  ".dataset.state") == "paused",
                  "the campaign still paused")
        # the same POST with the token: resumed, mail flows again
        status, body = self.fetch("POST", "campaigns/%s/resume"
                                  % self.shop_cid, csrf=True)
        self.assertEqual(status, 200, body)
        self.wait(lambda: self.sent() > self.paused_at,
                  "mail after the resume", 15)

        # the session ends behind the page's back: its next poll (a 401)
        # brings back the sign-in form, saying why
        status, body = self.fetch("POST", "logout", csrf=True)
        self.assertEqual(status, 200, body)
        self.wait(lambda: self.id("signin").is_displayed(),
                  "the sign-in form after the session ended")
        self.assertIn("Sign in again", self.text("signin-error"))
        self.assertFalse(self.id("top").is_displayed())

    def step_log(self):
        self.browser_log()
        # the refusals the test asked for: the session check before each
        # sign-in, the refused sign-ins and the poll after the session
        # ended (401), blog's campaign and the POST without a token (403)
        expected = re.compile(
            r"/console/api/(session|login|campaigns/%s) - Failed to load "
            r"resource: the server responded with a status of 401|"
            % self.shop_cid +
            r"/console/api/campaigns/(%s|%s/resume) - Failed to load "
            r"resource: the server responded with a status of 403"
            % (self.blog_cid, self.shop_cid))
        bad = [e for e in self.log if e["level"] in ("SEVERE", "WARNING")
               and not expected.search(e["message"])]
        self.assertFalse(bad, "errors in the browser's console:\n" +
                         "\n".join(e["message"] for e in bad))


if __name__ == "__main__":
    peers.main()
