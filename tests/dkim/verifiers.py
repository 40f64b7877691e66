#!/usr/bin/python3
"""verifiers.py - check DKIM signatures with two independent verifiers.

NAME
  Verifiers: publish DKIM key records from dnsmasq, then verify each
  signature of each message with dkimpy AND with opendkim-testmsg.

DESCRIPTION
  records = {"sel._domainkey.example.test": "v=DKIM1; k=rsa; p=..."}
  with Verifiers(workdir, records) as v:
      for r in v.verify([("name", message_bytes), ...]):
          assert r.ok, r.describe()

  dkimpy: dkim.DKIM(msg).verify(idx=i, dnsfunc=v.dnsfunc) for every
  DKIM-Signature field i; v.dnsfunc asks (dnspython) a dnsmasq that this
  object starts on a spare 127.0.0.1 port and stops by PID in close().

  opendkim-testmsg (libopendkim) cannot be given a DNS server: libopendkim
  calls glibc's stub resolver (res_ninit/res_nquery, now in libc itself),
  which reads /etc/resolv.conf and always uses port 53.  So all of a
  batch's opendkim-testmsg runs happen in ONE child started as
      unshare --net --mount --propagation=private --pid --fork --kill-child
  (plus --map-root-user when not root): a network namespace whose only
  device is its own loopback, a private mount namespace in which a file
  holding "nameserver 127.0.0.1" is bind-mounted over /etc/resolv.conf,
  and a pid namespace so nothing started there outlives the child.  Inside,
  a second dnsmasq with the same records listens on 127.0.0.1:53.  That
  child is this file run as "verifiers.py --ns-run JOBFILE"; it checks it
  sees only "lo" and the new resolv.conf before running anything.  The
  host's network and resolv.conf are never touched, and nothing in the
  namespace can reach anything outside it.

  What opendkim-testmsg does (Debian 12, 2.11.0~beta2, found by experiment
  and from its source):
  - Exit 0 when dkim_eom() says DKIM_STAT_OK; otherwise exit 70 and one
    stderr line "opendkim-testmsg: dkim_chunk()|dkim_eom(): REASON", e.g.
    "Bad signature", "Key retrieval failed", "No signature", "Syntax error".
  - With several signatures it passes when ANY one verifies (dkim_eom()
    reports the first good signature).  The repo's dkim_verify_opendkim
    calls dkim_eom() too, so it has the same any-of answer and cannot give
    per-signature verdicts either.  Therefore each signature is also
    checked ALONE: opendkim-testmsg gets a copy of the message with every
    other DKIM-Signature field removed.  That is exact as long as no
    signature covers another's field (h= naming DKIM-Signature); sluice's
    signer never lists it.  Result.testmsg is the any-of answer for the
    message as given; SigVerdict.testmsg the answer for that signature.
  - ed25519-sha256 is verified (a changed ed25519 b= fails).
  - It sets DKIM_LIBFLAGS_STRICTHDRS: the header must hold exactly one Date
    and one parsable From, and at most one Sender, Reply-To, To, Cc, Bcc,
    Message-ID, In-Reply-To, References, Subject; otherwise it exits 70
    with "Syntax error" before looking at any signature.  Messages under
    test must be RFC 5322-valid in that sense.
  - It sets DKIM_LIBFLAGS_FIXCRLF: bare LF is taken as CRLF and a body
    without a final CRLF is accepted.

API
  Verifiers(workdir, records, testmsg=TESTMSG, dnsmasq=DNSMASQ)
      records: {dns_name: txt_value or [txt_value, ...]}; values are cut
      into <=255-octet strings.  Starts the host-side dnsmasq at once.
  .verify(msgs) -> [Result]   msgs: iterable of (name, bytes); one result
      per message, same order.  One namespace (one dnsmasq) per call.
  .dnsfunc(name, timeout=5) -> bytes or None   dkimpy-style TXT lookup.
  .port, .pid                 the host-side dnsmasq's port and PID.
  .close()                    stops dnsmasq; also on leaving a with block.
  key_txt(keyfile) -> str     "v=DKIM1; k=rsa|ed25519; p=..." for a key.
  key_records(domain, {selector: keyfile}) -> records for Verifiers.
  only_signature(msg, i) -> bytes   msg with only DKIM-Signature i kept.
  signature_fields(msg) -> [bytes]  the raw DKIM-Signature fields, top
      down (index i is dkimpy's idx=i).

DIAGNOSTICS
  VerifierError when a verifier cannot run at all (dnsmasq does not
  answer, unshare refused, the namespace is not as expected).  Anything
  about a message is a verdict in its Result, with the verifier's reason.
"""
import base64
import concurrent.futures
import dataclasses
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import dkim
import dns.exception
import dns.message
import dns.query
import dns.resolver

DNSMASQ = "/usr/sbin/dnsmasq"
TESTMSG = "/usr/sbin/opendkim-testmsg"
UNSHARE = "/usr/bin/unshare"
SYSPATH = "/usr/sbin:/usr/bin:/sbin:/bin"
READY_SECONDS = 5        # dnsmasq must answer within this
RUN_SECONDS = 30         # one opendkim-testmsg run
NAME_RE = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)+$")


class VerifierError(Exception):
    """A verifier could not run at all; not a verdict about a message."""


@dataclasses.dataclass
class SigVerdict:
    """Both verifiers' verdicts on one DKIM-Signature field."""
    index: int           # 0 = topmost field; dkimpy's idx
    algorithm: str       # a= tag as written
    domain: str          # d=
    selector: str        # s=
    dkimpy: bool
    dkimpy_error: str    # why dkimpy said no ("" when it said yes)
    testmsg: bool        # opendkim-testmsg on the message with only this one
    testmsg_error: str

    @property
    def ok(self):
        return self.dkimpy and self.testmsg


@dataclasses.dataclass
class Result:
    """Verdicts on one message; ok only if every signature passed both."""
    name: str
    nsigs: int           # number of DKIM-Signature fields
    sigs: list           # [SigVerdict], top down
    testmsg: bool        # opendkim-testmsg on the message as given (any-of)
    testmsg_error: str
    ok: bool

    def describe(self):
        """One line per verdict, for failure messages."""
        out = ["%s: %d signature(s), opendkim-testmsg as given: %s%s"
               % (self.name, self.nsigs, "pass" if self.testmsg else "FAIL",
                  "" if self.testmsg else " (%s)" % self.testmsg_error)]
        for s in self.sigs:
            out.append("  [%d] %s s=%s d=%s dkimpy %s, opendkim-testmsg %s"
                       % (s.index, s.algorithm, s.selector, s.domain,
                          "pass" if s.dkimpy else "FAIL (%s)" % s.dkimpy_error,
                          "pass" if s.testmsg else
                          "FAIL (%s)" % s.testmsg_error))
        return "\n".join(out)


# ---------------------------------------------------------------- messages

def _header_fields(msg):
    """Split msg into its raw header fields (continuation lines and line
    ends included) and the rest, which starts at the blank line (b"" when
    there is none)."""
    fields = []
    pos = 0
    while pos < len(msg):
        end = msg.find(b"\n", pos)
        end = len(msg) if end < 0 else end + 1
        line = msg[pos:end]
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
        pos = end
    return fields, msg[pos:]


def _is_signature(field):
    """True if a raw field is a DKIM-Signature field."""
    return field.split(b":", 1)[0].strip().lower() == b"dkim-signature"


def signature_fields(msg):
    """The raw DKIM-Signature fields of msg, top down."""
    return [f for f in _header_fields(msg)[0] if _is_signature(f)]


def only_signature(msg, index):
    """msg with every DKIM-Signature field but the index-th removed."""
    fields, rest = _header_fields(msg)
    kept, seen = [], 0
    for f in fields:
        if _is_signature(f):
            seen += 1
            if seen - 1 != index:
                continue
        kept.append(f)
    if index >= seen:
        raise IndexError("message has %d signature(s)" % seen)
    return b"".join(kept) + rest


def _tags(field):
    """Tag=value pairs of a signature field, whitespace removed."""
    tags = {}
    for part in field.split(b":", 1)[1].split(b";"):
        if b"=" in part:
            k, v = part.split(b"=", 1)
            tags[k.strip().decode("ascii", "replace")] = \
                re.sub(rb"\s+", b"", v).decode("ascii", "replace")
    return tags


# ---------------------------------------------------------------- keys, DNS

def key_txt(keyfile):
    """The DKIM key record value for a PEM private (or public) key file."""
    r = subprocess.run(["openssl", "pkey", "-in", keyfile, "-pubout",
                        "-outform", "DER"], capture_output=True)
    if r.returncode != 0:
        raise ValueError("%s: %s" % (keyfile, r.stderr.decode().strip()))
    der = r.stdout
    ed_spki = bytes.fromhex("302a300506032b6570032100")   # id-Ed25519
    if der.startswith(ed_spki) and len(der) == len(ed_spki) + 32:
        return "v=DKIM1; k=ed25519; p=" + \
            base64.b64encode(der[len(ed_spki):]).decode()
    if bytes.fromhex("06092a864886f70d010101") in der[:32]:  # rsaEncryption
        return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    raise ValueError("%s: neither an RSA nor an Ed25519 key" % keyfile)


def key_records(domain, selectors):
    """{"SEL._domainkey.DOMAIN": TXT} for {SEL: keyfile}."""
    return {"%s._domainkey.%s" % (sel, domain): key_txt(path)
            for sel, path in selectors.items()}


def _dnsmasq_conf(records):
    """dnsmasq configuration publishing records; every other name under
    the records' top-level domains is answered NXDOMAIN, never forwarded."""
    lines, tlds = [], set()
    for name, values in records.items():
        name = name.rstrip(".").lower()
        if not NAME_RE.match(name):
            raise ValueError("bad DNS name %r" % name)
        tlds.add(name.rsplit(".", 1)[1])
        for value in [values] if isinstance(values, str) else values:
            raw = value.encode("ascii")
            if re.search(rb'["\\\x00-\x1f\x7f]', raw):
                raise ValueError("%s: TXT value has a quote, backslash or "
                                 "control character" % name)
            parts = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
            lines.append("txt-record=%s,%s" % (name, ",".join(
                '"%s"' % p.decode() for p in parts)))
    lines += ["local=/%s/" % t for t in sorted(tlds)]
    return "\n".join(lines) + "\n"


def _dnsmasq_argv(dnsmasq, port, conf):
    """dnsmasq in the foreground on 127.0.0.1:port with only conf's data."""
    return [dnsmasq, "--no-daemon", "--port=%d" % port,
            "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
            "--no-hosts", "--conf-file=" + conf, "--user=root",
            "--pid-file=", "--log-facility=-"]


def _dns_answers(port, proc):
    """Wait until something answers DNS on 127.0.0.1:port; False when proc
    exits or READY_SECONDS pass first."""
    q = dns.message.make_query("ready.sluice-verifiers.invalid", "TXT")
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            dns.query.udp(q, "127.0.0.1", port=port, timeout=0.2)
            return True
        except (dns.exception.Timeout, OSError):
            time.sleep(0.05)
    return False


def _stop(proc):
    """Stop a child we started, by its PID."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _free_port():
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Collect(logging.Handler):
    """Keeps dkimpy's error lines for the verdict's reason."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


# ---------------------------------------------------------------- verifiers

class Verifiers:
    """dkimpy and opendkim-testmsg over the same published key records."""

    def __init__(self, workdir, records, testmsg=TESTMSG, dnsmasq=DNSMASQ):
        self.workdir = os.path.abspath(workdir)
        self.testmsg = testmsg
        self.dnsmasq = dnsmasq
        self.port = None
        self._proc = None
        self._batches = 0
        os.makedirs(self.workdir, exist_ok=True)
        self._conf = os.path.join(self.workdir, "verifiers-dnsmasq.conf")
        with open(self._conf, "w") as f:
            f.write(_dnsmasq_conf(records))
        self._resolv = os.path.join(self.workdir, "verifiers-resolv.conf")
        with open(self._resolv, "w") as f:
            f.write("nameserver 127.0.0.1\noptions attempts:2 timeout:2\n")
        self._log = logging.Logger("sluice.verifiers", logging.INFO)
        self._errors = _Collect()
        self._log.addHandler(self._errors)
        try:
            self._start_dnsmasq()
        except BaseException:
            self.close()
            raise

    def _start_dnsmasq(self):
        """Start the host-side dnsmasq on a spare port; retried when the
        port was taken in between."""
        log = os.path.join(self.workdir, "verifiers-dnsmasq.log")
        for _ in range(3):
            port = _free_port()
            with open(log, "wb") as err:
                self._proc = subprocess.Popen(
                    _dnsmasq_argv(self.dnsmasq, port, self._conf),
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=err)
            if _dns_answers(port, self._proc):
                self.port = port
                self._resolver = dns.resolver.Resolver(configure=False)
                self._resolver.nameservers = ["127.0.0.1"]
                self._resolver.port = port
                return
            _stop(self._proc)
            self._proc = None
        with open(log, errors="replace") as f:
            raise VerifierError("dnsmasq did not answer: " + f.read()[-2000:])

    @property
    def pid(self):
        """PID of the host-side dnsmasq, None once closed."""
        return self._proc.pid if self._proc is not None else None

    def close(self):
        """Stop dnsmasq by its PID.  Safe to call twice."""
        _stop(self._proc)
        self._proc = None
        self._log.removeHandler(self._errors)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def dnsfunc(self, name, timeout=5):
        """dkimpy's dnsfunc: the first TXT record of name joined, or None
        when the name or record does not exist."""
        if isinstance(name, bytes):
            name = name.decode()
        try:
            ans = self._resolver.resolve(name.rstrip("."), "TXT",
                                         lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(ans[0].strings)

    def _dkimpy(self, msg, n):
        """dkimpy's (ok, reason) for signatures 0..n-1 of msg."""
        try:
            d = dkim.DKIM(msg, logger=self._log)
        except Exception as e:      # dkimpy refuses to parse the message
            return [(False, "%s: %s" % (type(e).__name__, e))] * n
        out = []
        for i in range(n):
            self._errors.lines.clear()
            try:
                ok, why = bool(d.verify(idx=i, dnsfunc=self.dnsfunc)), ""
            except Exception as e:
                ok, why = False, "%s: %s" % (type(e).__name__, e)
            if not ok and not why:
                why = "; ".join(self._errors.lines) or "signature mismatch"
            out.append((ok, " ".join(why.split())[:300]))
        return out

    def _start_namespace(self, jobdir, files):
        """Start the namespace child that runs opendkim-testmsg on files."""
        job = {"resolv": self._resolv, "conf": self._conf,
               "dnsmasq": self.dnsmasq, "testmsg": self.testmsg,
               "tmpdir": jobdir, "files": files,
               "workers": max(1, min(4, os.cpu_count() or 1))}
        jobfile = os.path.join(jobdir, "job.json")
        with open(jobfile, "w") as f:
            json.dump(job, f)
        argv = [UNSHARE, "--net", "--mount", "--propagation=private",
                "--pid", "--fork", "--kill-child"]
        if os.geteuid() != 0:
            argv.append("--map-root-user")
        argv += [sys.executable, os.path.abspath(__file__), "--ns-run",
                 jobfile]
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def verify(self, msgs):
        """Verify each (name, bytes); a list of Result in the same order."""
        msgs = list(msgs)
        if not msgs:
            return []
        self._batches += 1
        jobdir = os.path.join(self.workdir, "verify-%03d" % self._batches)
        os.makedirs(jobdir, exist_ok=True)
        files, plan = [], []

        def put(data, fname):
            path = os.path.join(jobdir, fname)
            with open(path, "wb") as f:
                f.write(data)
            files.append(path)
            return len(files) - 1

        for k, (name, msg) in enumerate(msgs):
            sigs = signature_fields(msg)
            whole = put(msg, "m%04d.eml" % k)
            if len(sigs) == 1:
                alone = [whole]
            else:                       # each signature on its own
                alone = [put(only_signature(msg, i), "m%04d.s%d.eml" % (k, i))
                         for i in range(len(sigs))]
            plan.append((name, msg, sigs, whole, alone))

        proc = self._start_namespace(jobdir, files)
        try:    # dkimpy meanwhile, in this process
            py = [self._dkimpy(msg, len(sigs)) for _, msg, sigs, _, _ in plan]
            out, err = proc.communicate(timeout=60 + 2 * len(files))
        finally:
            _stop(proc)
        if proc.returncode != 0:
            why = err.decode(errors="replace").strip()[-2000:]
            raise VerifierError("opendkim-testmsg namespace (exit %d): %s"
                                % (proc.returncode, why))
        runs = json.loads(out)
        results = []
        for (name, msg, sigs, w, alone), verdicts in zip(plan, py):
            sv = []
            for i, field in enumerate(sigs):
                t = _tags(field)
                rc, why = runs[alone[i]]
                sv.append(SigVerdict(i, t.get("a", "?"), t.get("d", "?"),
                                     t.get("s", "?"), verdicts[i][0],
                                     verdicts[i][1], rc == 0,
                                     "" if rc == 0 else why))
            rc, why = runs[w]
            results.append(Result(name, len(sigs), sv, rc == 0,
                                  "" if rc == 0 else why,
                                  bool(sv) and rc == 0 and
                                  all(s.ok for s in sv)))
        return results


# ---------------------------------------------------------------- namespace

def _ns_fail(why):
    """Report a set-up failure inside the namespace and exit."""
    sys.stderr.write("verifiers --ns-run: %s\n" % why)
    sys.exit(2)


def _ns_run(jobfile):
    """Inside unshare: loopback up, resolv.conf replaced, dnsmasq on :53,
    then every file through opendkim-testmsg; [[exit, reason], ...] as JSON
    on stdout."""
    with open(jobfile) as f:
        job = json.load(f)
    ip = shutil.which("ip", path=SYSPATH)
    mount = shutil.which("mount", path=SYSPATH)
    if ip is None or mount is None:
        _ns_fail("needs ip (iproute2) and mount")
    quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL}
    if subprocess.run([ip, "link", "set", "lo", "up"], **quiet).returncode:
        _ns_fail("cannot bring up lo")
    devices = [n for _, n in socket.if_nameindex()]
    if devices != ["lo"]:
        _ns_fail("not a fresh network namespace: %s" % devices)
    if subprocess.run([mount, "--bind", job["resolv"], "/etc/resolv.conf"],
                      **quiet).returncode:
        _ns_fail("cannot bind-mount over /etc/resolv.conf")
    with open(job["resolv"]) as a, open("/etc/resolv.conf") as b:
        if a.read() != b.read():
            _ns_fail("/etc/resolv.conf not replaced")
    log = os.path.join(job["tmpdir"], "dnsmasq.log")
    with open(log, "wb") as err:
        dm = subprocess.Popen(_dnsmasq_argv(job["dnsmasq"], 53, job["conf"]),
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=err)
    try:
        if not _dns_answers(53, dm):
            with open(log, errors="replace") as f:
                _ns_fail("dnsmasq on :53 did not answer: " + f.read()[-2000:])
        env = {"PATH": SYSPATH, "LC_ALL": "C"}

        def one(path):
            with open(path, "rb") as f:
                try:
                    r = subprocess.run([job["testmsg"], "-t", job["tmpdir"]],
                                       stdin=f, capture_output=True, env=env,
                                       timeout=RUN_SECONDS)
                except subprocess.TimeoutExpired:
                    return [-1, "timed out after %ds" % RUN_SECONDS]
            why = r.stderr.decode(errors="replace").strip()
            return [r.returncode, why.replace("opendkim-testmsg: ", "")]

        with concurrent.futures.ThreadPoolExecutor(job["workers"]) as ex:
            runs = list(ex.map(one, job["files"]))
        json.dump(runs, sys.stdout)
    finally:
        _stop(dm)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--ns-run":
        _ns_run(sys.argv[2])
    else:
        sys.stderr.write("usage: verifiers.py --ns-run JOBFILE (internal; "
                         "import this file to use it)\n")
        sys.exit(64)
