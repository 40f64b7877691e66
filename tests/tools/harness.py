"""harness.py - what the `sluice` CLI test scripts share.

DESCRIPTION
    A Cli is one script's run: a temp dir with the spool in it, the
    environment the commands get (every SLUICE_* variable of the caller
    left out, argon2id at its minimum cost for the tests, no sluiced.conf
    unless a test gives one: base_env()), the pass/fail
    counts, and the identity that acts when a call names none (admin[0]:
    None is the spool owner as the bootstrap, else a user through
    $SLUICE_USER and the password pw(USER)).

        H = harness.Cli(sys.argv[1], "sluice-x-")
        H.check("what a user would notice", cond, detail)
        rc, out, err = H.run("account", "create", "acme")
        out = H.ok("label", "user", "list")        # checks exit 0
        doc = H.js("user", "list")                 # --json, checked, parsed
        H.add_user("ops", "acme", "owner")         # password pw("ops")
        H.admin[0] = "ops"
        ...
        sys.exit(H.summary())                      # prints the counts

    free_port() and port_free() are tests/engine/peers.py's (a port free
    for TCP and UDP on 127.0.0.1, and that test).  Every command runs in a
    new session with stdin from /dev/null unless given, so nothing can
    prompt on a terminal.

DIAGNOSTICS
    A failed check prints "FAIL: name: detail" and the run goes on;
    summary() prints "N passed, M failed" and returns the exit status.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "engine"))
import peers  # noqa: E402
from peers import free_port  # noqa: E402,F401  (re-exported)


def port_free(port):
    """Whether port is free for TCP and UDP on 127.0.0.1 (peers.py's test;
    a peer is up once its port is taken)."""
    return peers._port_free(port)


def pw(user):
    """The password every test user gets."""
    return "pw-" + user


def base_env(drop_prefix="SLUICE_", fast_hash=True, no_config=True):
    """The caller's environment without drop_prefix variables, with
    SLUICE_PWHASH_FAST=1 unless fast_hash is False, and SLUICE_CONFIG=""
    (no sluiced.conf, not even /etc/sluice/sluiced.conf, unless a test
    names one) unless no_config is False."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(drop_prefix)}
    if fast_hash:
        env["SLUICE_PWHASH_FAST"] = "1"
    if no_config:
        env["SLUICE_CONFIG"] = ""
    return env


class Cli:
    """One test script's sluice, temp dir, spool, environment and counts."""

    def __init__(self, sluice, prefix, spool=("spool",), env=None,
                 timeout=60, keep_newlines=False):
        self.sluice = sluice
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.spool = os.path.join(self.tmp, *spool)
        self.env = base_env() if env is None else env
        self.timeout = timeout
        self.keep_newlines = keep_newlines
        self.passed = self.failed = 0
        self.counter = 0
        self.admin = [None]

    # ------------------------------------------------------------ checks

    def check(self, name, ok, detail=""):
        """Count one assertion; print it when it fails."""
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s%s" % (name, (": " + str(detail)) if detail
                                  else ""))

    def summary(self, label=""):
        """Print the counts; the exit status (1 if anything failed)."""
        print("%s%d passed, %d failed" % (label, self.passed, self.failed))
        return 1 if self.failed else 0

    def cleanup(self, keep_on_failure=False):
        """Remove the temp dir (kept and named if asked and a check
        failed)."""
        if keep_on_failure and self.failed:
            print("kept " + self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---------------------------------------------------------- commands

    def run(self, *args, user=None, key=None, password=None, totp=None,
            stdin=None, spool=None, env=None, env_extra=None, anon=False,
            bootstrap=False, timeout=None):
        """sluice --spool SPOOL ARGS: --as user (password pw(user), or
        password; False: none), an API key, no identity (anon), or
        --bootstrap; else self.admin[0] through $SLUICE_USER.  env replaces
        the base environment, env_extra adds to it.  Returns (exit status,
        stdout, stderr) as text."""
        env = dict(self.env if env is None else env)
        argv = [self.sluice, "--spool", spool or self.spool]
        if bootstrap:
            argv.append("--bootstrap")
        if user:
            argv += ["--as", user]
            if password is not False:
                env["SLUICE_PASSWORD"] = (password if password is not None
                                          else pw(user))
        elif not key and not anon and not bootstrap and self.admin[0]:
            env["SLUICE_USER"] = self.admin[0]
            env["SLUICE_PASSWORD"] = pw(self.admin[0])
        if key:
            env["SLUICE_API_KEY"] = key
        if totp is not None:
            env["SLUICE_TOTP"] = totp
        if env_extra:
            env.update(env_extra)
        if isinstance(stdin, str):
            stdin = stdin.encode("utf-8")
        p = subprocess.run(argv + list(args), input=stdin, env=env,
                           capture_output=True,
                           timeout=timeout or self.timeout,
                           start_new_session=True,
                           stdin=None if stdin is not None
                           else subprocess.DEVNULL)
        return p.returncode, self._text(p.stdout), self._text(p.stderr)

    def _text(self, data):
        s = data.decode("utf-8", "replace")
        if not self.keep_newlines:      # as text=True reads it
            s = s.replace("\r\n", "\n").replace("\r", "\n")
        return s

    def ok(self, name, *args, **kw):
        """run() and check that it exits 0; its stdout."""
        rc, out, err = self.run(*args, **kw)
        self.check(name + " exits 0", rc == 0,
                   "exit %d: %s" % (rc, err.strip()))
        return out

    def js(self, *args, **kw):
        """run() with --json, checked to exit 0 and parsed (None if it is
        not JSON)."""
        rc, out, err = self.run(*(list(args) + ["--json"]), **kw)
        self.check("%s --json exits 0" % " ".join(args), rc == 0,
                   "exit %d: %s" % (rc, err.strip()))
        try:
            return json.loads(out)
        except ValueError:
            self.check("%s --json is JSON" % " ".join(args), False,
                       out[:200])
            return None

    # ------------------------------------------------------------- setup

    def uniq(self, prefix):
        """prefix with a number not used before in this run."""
        self.counter += 1
        return "%s%d" % (prefix, self.counter)

    def write(self, name, data):
        """A file in the temp dir (text as UTF-8, no newline translation);
        its path."""
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        return path

    def add_user(self, name, account, role, label=None, **kw):
        """`user add NAME [--account A] --role R --password-stdin` with
        password pw(NAME), checked; account None: no --account."""
        acct = ["--account", account] if account else []
        return self.ok(label or "user " + name, "user", "add", name, *acct,
                       "--role", role, "--password-stdin",
                       stdin=pw(name) + "\n", **kw)

    def add_accounts(self, *names, label="create ", **kw):
        """`account create NAME` for each, checked (the first one made is
        the master); the spool is created by the first."""
        for n in names:
            self.ok(label + n, "account", "create", n, **kw)

    def add_domain(self, domain, account, label=None, **kw):
        """A verified sending domain of account (ed25519 key, verify
        --force), checked."""
        self.ok("domain " + (label or domain), "domain", "add", domain,
                "--account", account, "--algo", "ed25519", **kw)
        self.ok("verify " + (label or domain), "domain", "verify", domain,
                "--force", **kw)
