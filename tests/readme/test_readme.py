#!/usr/bin/python3
"""test_readme.py - every example in README.md runs as written.

DESCRIPTION
    README.md's fenced blocks are a newcomer's path through sluice.  This
    test runs them in order, as one shell session started in the clone's
    root, the way a reader pastes them.  It runs in private mount, network
    and PID namespaces (unshare), so the examples may write where they say
    (/etc/sluice, /var/spool/sluice, files in the clone) and reach the
    hosts they name:

      - /etc, /var, /root, /tmp and the clone are overlay mounts (their
        upper layers in /dev/shm): whatever the examples write vanishes
        with the namespace, and what an earlier reader left where the
        README writes (/etc/sluice, /var/spool/sluice, ...) is hidden;
      - the build directory under test is mounted at ./build, so the
        README's `build/...` paths are the binaries of this build (normal
        or ASan);
      - only loopback exists; dnsmasq on 127.0.0.1:53 is the resolver
        (/etc/resolv.conf) and answers for the example domains, their MX
        being 127.0.0.1; a capturing sluice-sink listens on 127.0.0.1:25.

    Nothing set up here stands in for a step the README asks of its
    reader, except publishing DNS records at the reader's DNS provider
    (the `publish-dkim` directive below).

    How a block is treated is said by an HTML comment on the line just
    before its opening fence (invisible when the README is rendered):

      (none), ```sh           run it; it must exit 0
      test: exit N            ```sh: run it; it must exit N
      test: publish-dkim D    ```sh: run it, then publish the DKIM
                              records of domain D's keys in the resolver
                              (what the reader does next, at their DNS
                              provider)
      test: file PATH         ```ini: write it to PATH, then
                              `sluiced -t -c PATH` must exit 0
      test: fragment          ```ini: a section to add to a configuration:
                              the last file written plus this block must
                              pass `sluiced -t`
      test: event FILE        ```json: an event line; it must parse, and
                              FILE (an event log the run wrote) must hold a
                              line of the same type with the same fields
      test: ctest NAME ...    run elsewhere: by those ctest entries (the
                              long runs: the demo, the benchmarks), which
                              must exist; the name `ci` stands for
                              .ci/run, which must run the block's
                              `make test`
      test: output, figure    ```text: output shown to the reader, or a
                              drawing; not run

    Any other block fails the test: an example nobody runs drifts.

usage: test_readme.py BUILD_DIR [README]   (as root)
"""
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DNSMASQ = "/usr/sbin/dnsmasq"
# the example domains of the README and the names they use
EXAMPLE_ZONES = ["example.com", "example.net", "example.org", "example",
                 "shop.example", "brand.example"]


def fail(msg):
    sys.stderr.write("test_readme: FAIL: %s\n" % msg)
    sys.exit(1)


# ------------------------------------------------------------ the README

class Block:
    def __init__(self, lang, line, text, directive):
        self.lang = lang
        self.line = line          # line of the opening fence (1-based)
        self.text = text
        self.directive = directive  # (verb, argument) or None

    def where(self):
        return "README.md:%d" % self.line


def parse_readme(path):
    """The fenced blocks of the README with their directives."""
    blocks = []
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    directive_re = re.compile(r"^<!--\s*test:\s*([a-z-]+)\s*(.*?)\s*-->\s*$")
    while i < len(lines):
        m = re.match(r"^(```+)\s*([A-Za-z0-9_-]*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2)
        directive = None
        if i > 0:
            d = directive_re.match(lines[i - 1])
            if d:
                directive = (d.group(1), d.group(2))
        start = i + 1
        j = start
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        if j == len(lines):
            fail("README.md:%d: fence never closed" % (i + 1))
        blocks.append(Block(lang, i + 1, "\n".join(lines[start:j]) + "\n",
                            directive))
        i = j + 1
    return blocks


def plan(blocks, ctest_names):
    """Check every block has a known treatment; return the script steps."""
    steps = []
    for b in blocks:
        verb, arg = b.directive or (None, "")
        if verb == "ctest":
            for name in arg.split():
                if name == "ci":
                    ci = open(os.path.join(REPO, ".ci", "run")).read()
                    if "make test" not in b.text or "make test" not in ci:
                        fail("%s: .ci/run does not run the block's "
                             "`make test`" % b.where())
                elif name not in ctest_names:
                    fail("%s: names ctest entry %r, which does not exist"
                         % (b.where(), name))
            continue
        if verb in ("output", "figure"):
            if b.lang != "text":
                fail("%s: `%s` goes on ```text blocks" % (b.where(), verb))
            continue
        if b.lang == "sh" and verb in (None, "exit", "publish-dkim"):
            steps.append(("sh", b, verb, arg))
        elif b.lang == "ini" and verb in ("file", "fragment"):
            if verb == "file" and not arg.startswith("/"):
                fail("%s: `file` needs an absolute path" % b.where())
            steps.append(("ini", b, verb, arg))
        elif b.lang == "json" and verb == "event":
            steps.append(("event", b, verb, arg))
        else:
            fail("%s: a ```%s block the test does not run (directive %r); "
                 "see tests/readme/test_readme.py" % (b.where(), b.lang,
                                                      verb))
    return steps


def shell_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def build_script(steps, sluiced, hooks):
    """One shell session: each block between markers the log can be cut
    at, so a failure names its block."""
    out = ["set -e", "cd %s" % shell_quote(REPO)]
    last_conf = None
    n = 0
    for kind, b, verb, arg in steps:
        n += 1
        mark = "@@readme %d %s@@" % (n, b.where())
        out.append("echo %s >&2" % shell_quote(mark))
        if kind == "sh":
            if verb == "exit":
                want = int(arg)
                out.append("set +e")
                out.append("(\n%s)" % b.text)
                out.append("rc=$?")
                out.append("set -e")
                out.append('[ "$rc" -eq %d ] || { echo "%s: exit $rc, the '
                           'README says %d" >&2; exit 1; }'
                           % (want, b.where(), want))
            else:
                out.append(b.text)
            if verb == "publish-dkim":
                out.append("%s publish-dkim %s" % (hooks, shell_quote(arg)))
        elif kind == "ini":
            if verb == "file":
                last_conf = arg
                out.append("mkdir -p %s" % shell_quote(os.path.dirname(arg)))
                out.append("cat > %s <<'README_INI_EOF'\n%sREADME_INI_EOF"
                           % (shell_quote(arg), b.text))
                out.append("%s -t -c %s" % (shell_quote(sluiced),
                                            shell_quote(arg)))
            else:
                if not last_conf:
                    fail("%s: a fragment before any config file" % b.where())
                out.append("cp %s /tmp/readme-fragment.conf"
                           % shell_quote(last_conf))
                out.append("cat >> /tmp/readme-fragment.conf <<'README_INI_EOF'"
                           "\n%sREADME_INI_EOF" % b.text)
                out.append("%s -t -c /tmp/readme-fragment.conf"
                           % shell_quote(sluiced))
        out.append("echo %s >&2" % shell_quote(mark.replace("@@readme",
                                                            "@@done")))
    return "\n".join(out) + "\n"


def check_events(steps):
    """The ```json event examples against the event logs the run wrote."""
    for kind, b, verb, arg in steps:
        if kind != "event":
            continue
        try:
            ex = json.loads(b.text)
        except ValueError as e:
            fail("%s: the example event is not JSON: %s" % (b.where(), e))
        try:
            lines = open(arg).read().splitlines()
        except OSError as e:
            fail("%s: no event log %s after the run: %s" % (b.where(), arg, e))
        real = [json.loads(l) for l in lines if l.strip()]
        same = [e for e in real if e.get("type") == ex.get("type")]
        if not same:
            fail("%s: no %r event in %s (types there: %s)"
                 % (b.where(), ex.get("type"), arg,
                    sorted({e.get("type") for e in real})))
        if not any(set(e) == set(ex) for e in same):
            fail("%s: the example's fields %s differ from the log's %s"
                 % (b.where(), sorted(ex), sorted(same[0])))


# ------------------------------------------------------- inside the namespace

def sh(argv, **kw):
    subprocess.run(argv, check=True, **kw)


def overlay(target, T, name):
    up = os.path.join(T, "ov", name, "up")
    work = os.path.join(T, "ov", name, "work")
    os.makedirs(up)
    os.makedirs(work)
    sh(["mount", "-t", "overlay", "overlay", "-o",
        "lowerdir=%s,upperdir=%s,workdir=%s" % (target, up, work), target])


def dns_config(T, extra):
    conf = os.path.join(T, "dnsmasq.conf")
    with open(conf, "w") as f:
        f.write("no-resolv\nno-hosts\nlisten-address=127.0.0.1\n"
                "bind-interfaces\nport=53\n")
        for z in EXAMPLE_ZONES:
            f.write("local=/%s/\n" % z)
        for z in EXAMPLE_ZONES:
            f.write("mx-host=%s,mx.%s,10\n" % (z, z))
            f.write("host-record=mx.%s,127.0.0.1\n" % z)
            f.write("host-record=%s,127.0.0.1\n" % z)
        f.write("host-record=mta.example.com,127.0.0.1\n")
        f.write(extra)
    return conf


class Dns:
    def __init__(self, T):
        self.T = T
        self.extra = ""
        self.proc = None

    def start(self):
        conf = dns_config(self.T, self.extra)
        self.proc = subprocess.Popen([DNSMASQ, "-k", "-C", conf,
                                      "--log-facility=-"],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.T,
                                                              "dnsmasq.log"),
                                                 "a"))
        deadline = time.time() + 20
        while time.time() < deadline:
            # dnsmasq answers TCP on 53 too
            try:
                socket.create_connection(("127.0.0.1", 53), 1).close()
                return
            except OSError:
                pass
            if self.proc.poll() is not None:
                fail("dnsmasq exited: %s" %
                     open(os.path.join(self.T, "dnsmasq.log")).read()[-2000:])
            time.sleep(0.05)
        fail("dnsmasq did not come up")

    def restart(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.start()


def dkim_records(sluice, domain):
    """The TXT records of DKIM keys of domain in the spool ($SLUICE_SPOOL
    of the script), made from the key files with openssl."""
    r = subprocess.run([sluice, "--json", "dkim", "list"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        fail("publish-dkim %s: sluice dkim list: %s" %
             (domain, r.stderr.decode()))
    out = []
    for k in json.loads(r.stdout):
        if k["domain"] != domain:
            continue
        der = subprocess.run(["openssl", "pkey", "-in", k["key"], "-pubout",
                              "-outform", "DER"], stdout=subprocess.PIPE,
                             check=True).stdout
        if k["algorithm"] == "ed25519":
            p, kt = base64.b64encode(der[-32:]).decode(), "ed25519"
        else:
            p, kt = base64.b64encode(der).decode(), "rsa"
        out.append(("%s._domainkey.%s" % (k["selector"], domain),
                    "v=DKIM1; k=%s; p=%s" % (kt, p)))
    if not out:
        fail("publish-dkim %s: the spool has no key for it" % domain)
    return out


def inner(build, readme, steps_json):
    steps = plan(parse_readme(readme), set(json.loads(steps_json)))
    # the harness's own files, and the overlays' upper layers, on a tmpfs
    # apart from every directory overlaid (an upper layer inside its own
    # lower one is refused)
    T = host_T = tempfile.mkdtemp(prefix="readme-ns-", dir="/dev/shm")
    sh(["ip", "link", "set", "lo", "up"])
    sh(["mount", "--make-rprivate", "/"])
    overlaid = ["/etc", "/var", "/root", "/tmp"]
    if not any(REPO == d or REPO.startswith(d + "/") for d in overlaid):
        overlaid.append(REPO)     # a clone under /tmp is in its overlay
    for i, target in enumerate(overlaid):
        overlay(target, T, "ov%d" % i)
    # what an earlier reader of the README may have left where it writes
    for stale in ("/tmp/sluice-quickstart", "/etc/sluice", "/var/spool/sluice",
                  "/var/spool/sluice-salvaged", "/var/log/sluice",
                  "/var/backups/sluice"):
        shutil.rmtree(stale, ignore_errors=True)
    # ./build is this build (normal or ASan), whatever the clone has there
    os.makedirs(os.path.join(REPO, "build"), exist_ok=True)
    sh(["mount", "--bind", build, os.path.join(REPO, "build")])
    with open(os.path.join(T, "resolv.conf"), "w") as f:
        f.write("nameserver 127.0.0.1\n")
    sh(["mount", "--bind", os.path.join(T, "resolv.conf"),
        "/etc/resolv.conf"])

    dns = Dns(T)
    dns.start()
    sink_bin = os.path.join(build, "bench", "sink", "sluice-sink")
    os.makedirs(os.path.join(T, "captured"))
    sink = subprocess.Popen([sink_bin, "--listen", "127.0.0.1:25",
                             "--hostname", "mx.example.net",
                             "--capture", os.path.join(T, "captured")],
                            stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(T, "sink.log"), "a"))

    # hooks the script calls back into (publish-dkim)
    hooks = os.path.join(T, "hook")
    with open(hooks, "w") as f:
        f.write("#!/bin/sh\nexec /usr/bin/python3 %s --hook %s %s \"$@\"\n"
                % (shell_quote(os.path.abspath(__file__)), shell_quote(T),
                   shell_quote(build)))
    os.chmod(hooks, 0o755)
    with open(os.path.join(T, "dns.pid"), "w") as f:
        f.write(str(dns.proc.pid))

    sluiced = os.path.join(build, "engine", "sluiced")
    script = build_script(steps, sluiced, hooks)
    with open(os.path.join(T, "readme.sh"), "w") as f:
        f.write(script)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                   "/sbin:/bin",
           "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb",
           "README_TEST_DIR": T}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    # output to a file, not a pipe: a daemon an example left running must
    # not keep the harness waiting for the end of its output
    log = os.path.join(T, "readme.log")
    with open(log, "wb") as f:
        try:
            rc = subprocess.run(["bash", os.path.join(T, "readme.sh")],
                                env=env, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL,
                                timeout=540).returncode
        except subprocess.TimeoutExpired:
            rc = "a timeout"
    out = open(log, "rb").read().decode(errors="replace")
    sink.terminate()
    if rc != 0:
        marks = re.findall(r"@@readme \d+ (README\.md:\d+)@@", out)
        where = marks[-1] if marks else "before the first block"
        sys.stderr.write(out[-6000:])
        fail("the block at %s failed (exit %s); the whole script is %s, "
             "its output %s" % (where, rc, os.path.join(host_T, "readme.sh"),
                                log))
    check_events(steps)
    print(out)
    print("test_readme: %d blocks ran as written" % len(steps))
    for d in reversed(overlaid):
        subprocess.run(["umount", "-l", d])
    shutil.rmtree(host_T, ignore_errors=True)


def hook(T, build, verb, *args):
    """Called back by the script: publish-dkim DOMAIN adds the records of
    DOMAIN's keys to the resolver's and restarts dnsmasq with them."""
    if verb != "publish-dkim":
        fail("unknown hook %s" % verb)
    extra_file = os.path.join(T, "dns.extra")
    dns = Dns(T)
    if os.path.exists(extra_file):
        dns.extra = open(extra_file).read()
    for name, value in dkim_records(os.path.join(build, "tools", "sluice"),
                                    args[0]):
        parts = ",".join('"%s"' % value[i:i + 255]
                         for i in range(0, len(value), 255))
        dns.extra += "txt-record=%s,%s\n" % (name, parts)
    with open(extra_file, "w") as f:
        f.write(dns.extra)
    pid = int(open(os.path.join(T, "dns.pid")).read())
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.05)
    dns.start()
    with open(os.path.join(T, "dns.pid"), "w") as f:
        f.write(str(dns.proc.pid))


def ctest_names(build):
    """The ctest entries of this build and the ones tests/ declares for
    any build (bench_suite and demo run in the normal build only)."""
    r = subprocess.run(["ctest", "-N"], cwd=build, stdout=subprocess.PIPE)
    names = set(re.findall(r"Test\s+#\d+:\s+(\S+)", r.stdout.decode()))
    for top, _, files in os.walk(os.path.join(REPO, "tests")):
        if "CMakeLists.txt" in files:
            text = open(os.path.join(top, "CMakeLists.txt")).read()
            names |= set(re.findall(r"add_test\(NAME\s+([A-Za-z0-9_]+)\b",
                                    text))
    return sorted(names)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--hook":
        hook(*sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--inner":
        inner(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    if len(sys.argv) < 2:
        sys.stderr.write("usage: test_readme.py BUILD_DIR [README]\n")
        sys.exit(64)
    build = os.path.abspath(sys.argv[1])
    readme = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else
                             os.path.join(REPO, "README.md"))
    if os.geteuid() != 0:
        fail("needs root (mount, network and PID namespaces)")
    names = ctest_names(build)
    # fail early, outside the namespace, on a block nobody runs
    plan(parse_readme(readme), set(names))
    r = subprocess.run(["unshare", "--mount", "--net", "--pid", "--fork",
                        "--mount-proc", "/usr/bin/python3",
                        os.path.abspath(__file__), "--inner", build, readme,
                        json.dumps(names)])
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
