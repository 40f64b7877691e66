#!/usr/bin/python3
"""audit_cli.py - the keyed audit chain and its checkpoints through the
`sluice` command (and `sluiced -t`), end to end.

A spool made without a key (its trail unkeyed), then a key made by
`sluice audit keygen` and named with audit_checkpoint in a sluiced.conf
the tools read ($SLUICE_CONFIG), and more changes, all as a named owner
(--as, $SLUICE_PASSWORD) once the first user exists.  Then:

  unkeyed     without a key `audit verify` passes and warns that anyone
              who can write the spool could rewrite the chain;
  keygen      writes 64 hex digits, mode 0600; refuses to overwrite (73)
              and leaves the key as it was;
  migration   records after the key are keyed, verify says from which
              record and checks them; a command without the key may not
              append after keyed records (78, nothing written); an unkeyed
              record forged after them (mdb_load, hashlib) is named;
  sha attack  the issue's attack with mdb_dump/mdb_load and hashlib: one
              record changed, the chain recomputed with SHA-256 and
              meta audit_head rewritten: verify still passes on an unkeyed
              copy, fails (65, naming the record) on the keyed spool;
  key holder  the same rewrite with the key (HMAC): the chain verifies,
              the checkpoint file (and a copy kept elsewhere, and an event
              log's audit lines) names the first rewritten record; a spool
              rolled back below a checkpoint is "truncated";
  key mode    a key file group or others may read is refused by every
              writing command, by verify and by sluiced -t (78), naming the
              chmod; a key inside the spool is refused by sluiced -t;
  spool check checks MACs with the key, says it did not without one;
  salvage     a salvaged keyed spool verifies, checkpoints included.

usage: audit_cli.py SLUICE SLUICED
"""
import hashlib
import hmac
import json
import os
import shutil
import stat
import struct
import subprocess
import sys

import harness

SLUICE, SLUICED = sys.argv[1], sys.argv[2]
OWNER = "root-admin"


class AuditCli(harness.Cli):
    def run(self, *args, spool=None, conf=None, who=OWNER, stdin=None):
        """sluice as the owner user (None: the bootstrap) with conf as
        $SLUICE_CONFIG (None: no configuration)."""
        return super().run(*args, spool=spool, user=who, anon=who is None,
                           stdin=stdin, env_extra={"SLUICE_CONFIG": conf}
                           if conf else None)


H = AuditCli(SLUICE, "sluice-audit-")
T, SPOOL = H.tmp, H.spool
ETC = os.path.join(T, "etc")
LOG = os.path.join(T, "log")
KEY = os.path.join(ETC, "audit.key")
CHECKPOINT = os.path.join(LOG, "audit.checkpoint")
CONF = os.path.join(ETC, "sluiced.conf")
check, run, ok, uniq = H.check, H.run, H.ok, H.uniq


def write_conf(path, spool=SPOOL, key=KEY, checkpoint=CHECKPOINT):
    lines = ["[sluiced]", "spool = " + spool, "ehlo_hostname = mta.test"]
    if key:
        lines.append("audit_key = " + key)
    if checkpoint:
        lines.append("audit_checkpoint = " + checkpoint)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


# ------------------------------------------------- the trail, raw (LMDB)

def dump(spool, db):
    """The records of database db: [[key hex, value hex], ...] and the
    dump's lines around them (for mdb_load)."""
    out = subprocess.run(["mdb_dump", "-s", db, spool], capture_output=True,
                         text=True, check=True).stdout
    lines = out.split("\n")
    start = lines.index("HEADER=END") + 1
    end = lines.index("DATA=END")
    pairs = [[lines[i][1:], lines[i + 1][1:]] for i in range(start, end, 2)]
    return pairs, lines[:start], lines[end:]


def load(spool, db, pairs):
    """Write pairs (key hex, value hex) into db: what an attacker with
    write access to the spool files does."""
    _, head, tail = dump(spool, db)
    text = "\n".join(head + [" " + x for p in pairs for x in p] + tail)
    subprocess.run(["mdb_load", "-s", db, spool], input=text, text=True,
                   check=True, stderr=subprocess.DEVNULL)


def records(spool):
    """{seq: (prev, body, link)} of the audit trail."""
    pairs, _, _ = dump(spool, "audit")
    recs = {}
    for k, v in pairs:
        b = bytes.fromhex(v)
        recs[int(k, 16)] = (b[:32], b[32:-32], b[-32:])
    return recs


def put_records(spool, recs, seqs):
    """Store records seqs of recs and point audit_head at the last."""
    pairs = [["%016x" % s, (recs[s][0] + recs[s][1] + recs[s][2]).hex()]
             for s in seqs]
    load(spool, "audit", pairs)
    last = max(seqs)
    head = struct.pack(">Q", last) + recs[last][2]
    load(spool, "meta", [[b"audit_head".hex(), head.hex()]])


def rewrite(spool, seq, key=None):
    """The issue's attack: one byte of record seq's result text changed,
    then every link from there recomputed (SHA-256, or HMAC-SHA256 with
    key: an attacker holding it) and the head rewritten."""
    recs = records(spool)
    last = max(recs)
    prev = recs[seq][0]
    for s in range(seq, last + 1):
        _, body, _ = recs[s]
        if s == seq:
            body = body[:-1] + bytes([body[-1] ^ 1])
        if key:
            link = hmac.new(key, prev + body, hashlib.sha256).digest()
        else:
            link = hashlib.sha256(prev + body).digest()
        recs[s] = (prev, body, link)
        prev = link
    put_records(spool, recs, range(seq, last + 1))


def copy_spool(name):
    dst = os.path.join(T, uniq(name))
    shutil.copytree(SPOOL, dst)
    return dst


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def raw_key():
    with open(KEY) as f:
        return bytes.fromhex(f.read().strip())


# ------------------------------------------------------------ the tests

def setup_unkeyed():
    """A spool made without any configuration: an unkeyed trail."""
    ok("create master", "account", "create", "acme", who=None)
    ok("first user", "user", "add", OWNER, "--account", "acme", "--role",
       "owner", "--password-stdin", stdin="pw-%s\n" % OWNER, who=None)
    ok("sub-account", "account", "create", "shop")
    ok("user", "user", "add", "ann", "--account", "shop", "--role",
       "viewer", "--password-stdin", stdin="pw-ann\n")


def test_unkeyed():
    rc, out, err = run("audit", "verify")
    check("verify of an unkeyed trail exits 0", rc == 0, err)
    check("... warns that anyone who can write the spool could rewrite it",
          "unkeyed: anyone who can write the spool could rewrite this "
          "chain; set audit_key" in err, err)
    # the attack goes unseen on an unkeyed trail: why the key is needed
    copy = copy_spool("plain")
    rewrite(copy, 2)
    rc, out, err = run("audit", "verify", spool=copy)
    check("the SHA-256 rewrite passes an unkeyed trail", rc == 0, err)


def test_keygen():
    os.makedirs(ETC, 0o755)
    os.makedirs(LOG, 0o755)
    rc, out, err = run("audit", "keygen", KEY, who=None)
    check("keygen exits 0", rc == 0, err)
    if not os.path.exists(KEY):        # go on with the other cases
        fd = os.open(KEY, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, os.urandom(32).hex().encode() + b"\n")
        os.close(fd)
    st = os.stat(KEY)
    check("keygen writes mode 0600", stat.S_IMODE(st.st_mode) == 0o600,
          oct(st.st_mode))
    with open(KEY) as f:
        text = f.read()
    check("keygen writes 64 hex digits", len(text) == 65 and
          len(bytes.fromhex(text.strip())) == 32, repr(text[:70]))
    check("keygen names the key id and audit_key", "key id" in out and
          "audit_key = " + KEY in out, out)
    rc, out, err = run("audit", "keygen", KEY, who=None)
    check("keygen refuses to overwrite: 73", rc == 73, "exit %d" % rc)
    check("... saying so", "never overwritten" in err, err)
    with open(KEY) as f:
        check("... and the key is unchanged", f.read() == text)
    rc, out, err = run("audit", "keygen", who=None)
    check("keygen without FILE: 64", rc == 64, err)
    write_conf(CONF)


def test_migration():
    before = len(json.loads(run("audit", "list", "--json")[1]))
    ok("keyed change", "account", "create", "blog", conf=CONF)
    ok("keyed change 2", "user", "add", "bob", "--account", "blog", "--role",
       "manager", "--password-stdin", stdin="pw-bob\n", conf=CONF)
    rc, out, err = run("audit", "verify", conf=CONF)
    check("verify of the migrated trail exits 0", rc == 0, err)
    check("... says keyed from the first record written with the key",
          "keyed from record %d" % (before + 1) in out, out)
    check("... and that the ones before are unkeyed",
          "written before audit_key was set" in out, out)
    check("... no unkeyed warning with a key", "unkeyed:" not in err, err)
    v = json.loads(run("audit", "verify", "--json", conf=CONF)[1])
    check("verify --json: keyed_from, no record unchecked",
          v["intact"] and v.get("keyed_from") == before + 1 and
          v.get("unchecked") == 0 and len(v.get("key_id", "")) == 16, str(v))
    lines = read_lines(CHECKPOINT)
    check("each keyed change appended a checkpoint line",
          len(lines) >= 2 and all(len(l.split()) == 3 for l in lines),
          str(lines))
    recs = records(SPOOL)
    last = max(recs)
    seq, head, _ = (lines or ["0 00 0"])[-1].split()
    check("the last checkpoint is the head", int(seq) == last and
          bytes.fromhex(head) == recs[last][2], str(lines[-1:]))

    # without the key: no record may follow keyed ones
    n = len(json.loads(run("account", "list", "--json")[1]))
    rc, out, err = run("account", "create", uniq("nokey"))
    check("a change without the key after keyed records: 78", rc == 78,
          "exit %d %s" % (rc, err))
    check("... saying the trail is keyed", "audit trail is keyed" in err,
          err)
    check("... and nothing was written",
          len(json.loads(run("account", "list", "--json")[1])) == n)
    rc, out, err = run("audit", "verify")
    check("verify without the key of a keyed trail: 78", rc == 78, err)
    check("... saying the MACs cannot be checked", "cannot be checked "
          "without audit_key" in err, err)

    # a forged unkeyed record after the keyed ones
    copy = copy_spool("forged")
    recs = records(copy)
    last = max(recs)
    body = bytearray(recs[1][1])         # record 1: unkeyed (format 1)
    body[1:9] = struct.pack("<Q", last + 1)
    prev = recs[last][2]
    recs[last + 1] = (prev, bytes(body),
                      hashlib.sha256(prev + bytes(body)).digest())
    put_records(copy, recs, [last + 1])
    rc, out, err = run("audit", "verify", spool=copy, conf=CONF)
    check("an unkeyed record after keyed ones: 65", rc == 65, err)
    check("... named", ("record %d: unkeyed" % (last + 1)) in err and
          "unkeyed record after keyed ones: rewritten?" in err, err)


def test_sha_attack():
    recs = records(SPOOL)
    target = max(recs) - 1               # a keyed record, not the last
    copy = copy_spool("sha")
    rewrite(copy, target)
    rc, out, err = run("audit", "verify", spool=copy, conf=CONF)
    check("the SHA-256 rewrite of a keyed trail: 65", rc == 65,
          "exit %d %s" % (rc, err))
    check("... names the record", ("record %d: altered" % target) in err and
          "MAC" in err, err)
    rc, out, err = run("spool", "check", spool=copy, conf=CONF)
    check("spool check with the key finds it: 65", rc == 65, err)
    check("... naming the record", ("seq %d: its bytes do not match its MAC"
                                    % target) in out, out)
    rc, out, err = run("spool", "check", spool=copy)
    check("spool check without the key: structure only", rc == 0 and
          "MACs not" in out, out + err)
    rc, out, err = run("spool", "check", conf=CONF)
    check("spool check of the real spool with the key", rc == 0 and
          "MACs not" not in out, out + err)


def test_key_holder():
    recs = records(SPOOL)
    target = max(recs) - 1
    keep = os.path.join(T, "offhost.checkpoint")
    with open(keep, "w") as f:
        f.write("".join(l + "\n" for l in read_lines(CHECKPOINT)))
    copy = copy_spool("holder")
    rewrite(copy, target, key=raw_key())
    nocp = write_conf(os.path.join(ETC, "nocp.conf"), checkpoint=None)
    rc, out, err = run("audit", "verify", spool=copy, conf=nocp)
    check("a rewrite with the key passes the chain alone", rc == 0, err)
    check("... and verify says there is no checkpoint",
          "no checkpoint file" in out, out)
    msg = "checkpoint %d: head differs: the chain was rewritten after it" \
        % target
    rc, out, err = run("audit", "verify", spool=copy, conf=CONF)
    check("the checkpoint file catches it: 65", rc == 65, err)
    check("... naming the checkpoint", msg in err and "rewritten" in err,
          err)
    rc, out, err = run("audit", "verify", "--checkpoint", keep, spool=copy,
                       conf=nocp)
    check("a copy kept elsewhere catches it", rc == 65 and msg in err, err)
    # an event log's audit lines are checkpoints too
    events = os.path.join(T, "events.jsonl")
    with open(events, "w") as f:
        f.write('{"type":"delivered","seq":1,"rcpt":"a@b.test"}\n')
        for line in read_lines(keep):
            s, h, t = line.split()
            f.write(json.dumps({"type": "audit", "audit_seq": int(s),
                                "head": h, "time_ms": int(t) * 1000}) + "\n")
    rc, out, err = run("audit", "verify", "--checkpoint", events, spool=copy,
                       conf=nocp)
    check("an event log's audit lines catch it", rc == 65 and msg in err,
          err)
    rc, out, err = run("audit", "verify", "--checkpoint", events, conf=nocp)
    check("... and match the real spool", rc == 0 and "checkpoints match"
          in out and "not a checkpoint" not in err, out + err)
    rc, out, err = run("audit", "verify", "--checkpoint",
                       os.path.join(T, "none"), conf=CONF)
    check("--checkpoint of a missing file: 66", rc == 66, err)
    # rolled back: the spool as it was before its last change (a backup
    # restored over it), the checkpoint of that change is past its end
    old = copy_spool("old")
    ok("one more change", "account", "create", uniq("late"), conf=CONF)
    last = max(records(SPOOL))
    rc, out, err = run("audit", "verify", spool=old, conf=CONF)
    check("a spool rolled back below a checkpoint: 65 truncated",
          rc == 65 and "truncated" in err and
          ("checkpoint %d: the chain ends at record %d" % (last, last - 1))
          in err, err)


def test_key_mode():
    os.chmod(KEY, 0o644)
    try:
        for args in (("account", "create", uniq("mode")),
                     ("audit", "verify")):
            rc, out, err = run(*args, conf=CONF)
            check("%s with a key others may read: 78" % args[0], rc == 78,
                  "exit %d" % rc)
            check("... naming the chmod", "chmod 600 " + KEY in err, err)
        p = subprocess.run([SLUICED, "-t", "-c", CONF], capture_output=True,
                           text=True, timeout=60)
        check("sluiced -t refuses it too: 78", p.returncode == 78 and
              "chmod 600 " + KEY in p.stderr, p.stderr)
    finally:
        os.chmod(KEY, 0o600)
    p = subprocess.run([SLUICED, "-t", "-c", CONF], capture_output=True,
                       text=True, timeout=60)
    check("sluiced -t accepts the key at 0600", p.returncode == 0, p.stderr)
    # a key inside the spool, and sluiced without the key of a keyed trail
    inside = os.path.join(SPOOL, "audit.key")
    shutil.copy(KEY, inside)
    os.chmod(inside, 0o600)
    p = subprocess.run([SLUICED, "-t", "-c", write_conf(
        os.path.join(ETC, "inside.conf"), key=inside)], capture_output=True,
        text=True, timeout=60)
    os.unlink(inside)
    check("sluiced -t refuses a key inside the spool", p.returncode == 78 and
          "inside the spool" in p.stderr, p.stderr)
    p = subprocess.run([SLUICED, "-t", "-c", write_conf(
        os.path.join(ETC, "rel.conf"), key="etc/audit.key")],
        capture_output=True, text=True, timeout=60)
    check("sluiced -t wants an absolute audit_key", p.returncode == 78 and
          "audit_key: needs an absolute file name" in p.stderr, p.stderr)
    p = subprocess.run([SLUICED, "-t", "-c", write_conf(
        os.path.join(ETC, "nokey.conf"), key=None)], capture_output=True,
        text=True, timeout=60)
    check("sluiced -t refuses a keyed spool without audit_key",
          p.returncode == 78 and "audit trail is keyed" in p.stderr,
          p.stderr)


def test_salvage():
    dst = os.path.join(T, "salvaged")
    rc, out, err = run("spool", "salvage", SPOOL, dst, conf=CONF)
    check("salvage of a keyed spool exits 0", rc == 0, out + err)
    rc, out, err = run("audit", "verify", "--checkpoint", CHECKPOINT,
                       spool=dst, conf=CONF)
    check("the salvaged trail verifies with its checkpoints", rc == 0 and
          "checkpoints match" in out, out + err)
    ok("the salvaged spool takes keyed records", "account", "create",
       uniq("after"), spool=dst, conf=CONF)
    rc, out, err = run("audit", "verify", spool=dst, conf=CONF)
    check("... and still verifies", rc == 0, err)


def main():
    try:
        setup_unkeyed()
        test_unkeyed()
        test_keygen()
        test_migration()
        test_sha_attack()
        test_key_holder()
        test_key_mode()
        test_salvage()
    finally:
        H.cleanup()
    return H.summary()


if __name__ == "__main__":
    sys.exit(main())
