"""test_damage.py - a damaged spool, end to end: the tools and sluiced.

DESCRIPTION
    One spool is built for the whole file the way a user builds one: an
    account with a verified sending domain, a list imported from CSV, a
    campaign sent to it, 1,200 injected messages (spool-fill), a paused
    domain, and a run of sluiced against sluice-sink (30% of recipients
    deferred, 10% bounced, the rest delivered) until every delivery has had
    its first attempt.  So it holds queued and ended deliveries, stored
    messages, events, counters, admin records and a campaign.

    Then copies of it are damaged as disks and copies damage files: data.mdb
    empty or missing beside the other spool files, cut short, pages of
    zeros, pages of random bytes (fixed seeds), a damaged meta page, the
    ready index's root page zeroed, and the file cut under a running
    sluiced.  For each, every program must end with a clear message and
    its documented exit code, never by a signal or a sanitizer report:
    sluice spool info/check/salvage (65 for damage), sluice inject (65,
    the file left as it was), sluiced (65, within a generous deadline: it
    never loops).  Salvage must give a spool that checks sound, in which
    every recipient queued in the original is still queued, ended as
    expired because its message was lost, or named lost in the report.

    usage: /usr/bin/python3 test_damage.py SLUICED SLUICE SINK SPOOL-FILL
"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "engine"))
import peers  # noqa: E402

PAGE = 4096
DEADLINE = 120           # seconds any program may take here (generous)
SANITIZER = re.compile(r"Sanitizer|runtime error:")

BASE = {}                # the spool built once: {"dir": ..., "queued": {...}}


def mdb_records(spool, db):
    """{key bytes: value bytes} of one database, read with mdb_dump."""
    out = subprocess.run(["mdb_dump", "-s", db, spool], check=True,
                         stdout=subprocess.PIPE, timeout=DEADLINE).stdout
    lines = out.decode().splitlines()
    start = lines.index("HEADER=END") + 1
    recs = {}
    body = [l.strip() for l in lines[start:] if l.startswith(" ")]
    for k, v in zip(body[0::2], body[1::2]):
        recs[bytes.fromhex(k)] = bytes.fromhex(v)
    return recs


def delivery_states(spool):
    """{delivery id: state byte} (0 queued, 1 delivered, 3 bounced, 4
    expired), from the raw records."""
    return {int.from_bytes(k, "big"): v[1]
            for k, v in mdb_records(spool, "deliveries").items()}


def db_root(spool, name):
    """The root page number of a named database, from LMDB's main
    database (MDB_db: ..., md_root the last 8 bytes, host order)."""
    out = subprocess.run(["mdb_dump", spool], check=True,
                         stdout=subprocess.PIPE, timeout=DEADLINE).stdout
    body = [l.strip() for l in out.decode().splitlines() if l.startswith(" ")]
    for k, v in zip(body[0::2], body[1::2]):
        if bytes.fromhex(k) == name.encode():
            return int.from_bytes(bytes.fromhex(v)[40:48], "little")
    raise AssertionError("no database " + name)


def main_root(path):
    """The main database's root page, from the newer meta page (page
    header 16 bytes; in MDB_meta the main database's md_root at 112, the
    txnid at 128)."""
    with open(path, "rb") as f:
        metas = [f.read(PAGE), f.read(PAGE)]
    best = max(metas, key=lambda p: int.from_bytes(p[144:152], "little"))
    return int.from_bytes(best[128:136], "little")


def write_pages(path, seed, count, fill):
    """Overwrite count pages (never the two meta pages) chosen with seed;
    fill(rnd) gives each page's bytes."""
    rnd = random.Random(seed)
    pages = os.path.getsize(path) // PAGE
    with open(path, "r+b") as f:
        for _ in range(count):
            f.seek(rnd.randrange(2, pages) * PAGE)
            f.write(fill(rnd))


def random_page(rnd):
    return bytes(rnd.getrandbits(8) for _ in range(PAGE))


def zero_page(rnd):
    return b"\0" * PAGE


class Damage(peers.PeerTest):

    # ------------------------------------------------------------ helpers

    def run_tool(self, prog, *args, spool=None):
        """Run a program to its end; it must not die of a signal nor print
        a sanitizer report.  Returns (rc, stdout, stderr)."""
        argv = [self.bin[prog]] + (["--spool", spool] if spool else []) + \
            list(args)
        r = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=DEADLINE)
        out, err = r.stdout.decode(), r.stderr.decode()
        self.assertGreaterEqual(r.returncode, 0, "%s died of signal %d:\n%s"
                                % (" ".join(argv), -r.returncode, err[-3000:]))
        self.assertIsNone(SANITIZER.search(err), "%s: sanitizer report:\n%s"
                          % (" ".join(argv), err[-3000:]))
        return r.returncode, out, err

    def sluice_rc(self, spool, *args):
        return self.run_tool("sluice", *args, spool=spool)

    def config(self, spool, **keys):
        """A sluiced config for a copy: deferred mail is an hour away, so a
        run has nothing due and sends nothing."""
        keys.setdefault("retry", "1h")
        keys.setdefault("max_age", "5d")
        # each copy has an event log of its own: a copy the damage took
        # back to its transaction before the last (LMDB's older meta page)
        # has fewer events than the log another copy's sluiced wrote, and
        # sluiced rightly refuses a log ahead of its spool
        keys.setdefault("event_log", spool + ".events.jsonl")
        return self.write_config(spool=spool, name=os.path.basename(spool) +
                                 ".conf", **keys)

    def sluiced_to_end(self, conf, *extra):
        """sluiced --exit-when-empty to its end within the deadline."""
        p = self._proc([self.bin["sluiced"], "-c", conf, "--exit-when-empty"]
                       + list(extra), "sluiced-" + os.path.basename(conf))
        rc = p.wait(DEADLINE)
        log = p.output()
        self.assertGreaterEqual(rc, 0, "sluiced died of signal %d:\n%s"
                                % (-rc, log[-3000:]))
        self.assertIsNone(SANITIZER.search(log), "sluiced: sanitizer "
                          "report:\n" + log[-3000:])
        return rc, log

    def copy(self, name):
        """A copy of the base spool (every file) in this test's dir."""
        dst = self.path(name)
        shutil.copytree(BASE["dir"], dst)
        os.unlink(os.path.join(dst, "status.json"))  # the base run's
        return dst

    # ------------------------------------------------------------ the base

    def setUp(self):
        super().setUp()
        if not BASE:
            self.build_base()

    def build_base(self):
        d = tempfile.mkdtemp(prefix="sluice-chaos-base-")
        spool = os.path.join(d, "spool")
        run = lambda *a: self.sluice(*a, spool=spool)  # noqa: E731
        run("account", "create", "acme")
        run("domain", "add", "acme.example", "--account", "acme",
            "--algo", "ed25519")
        run("domain", "verify", "acme.example", "--force")
        run("list", "create", "news", "--account", "acme")
        csv = os.path.join(d, "news.csv")
        with open(csv, "w") as f:
            f.write("email,first\n")
            for i in range(300):
                f.write("reader%d@c%d.test,R%d\n" % (i, i % 5, i))
        run("list", "import", "news", csv, "--account", "acme")
        html = os.path.join(d, "t.html")
        with open(html, "w") as f:
            f.write("<p>Hi {{first|friend}}</p>"
                    "<a href=\"{{unsubscribe_url}}\">unsubscribe</a>\n")
        cid = json.loads(run("campaign", "create", "spring", "--account",
                             "acme", "--list", "news", "--from",
                             "Acme <news@acme.example>", "--subject", "Hi",
                             "--html", html, "--json").stdout)["id"]
        run("campaign", "send", str(cid))
        r = subprocess.run([self.bin["spool-fill"], "--spool", spool, "-n",
                            "1200", "--domains", "10", "--size", "1500",
                            "--suffix", "test"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=DEADLINE)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        run("pause", "domain", "nowhere.test", "--reason", "test")
        # a first attempt for every delivery, then stop
        domains = {"d%d.test" % i: [(10, "127.0.0.1")] for i in range(10)}
        domains.update({"c%d.test" % i: [(10, "127.0.0.1")]
                        for i in range(5)})
        dns = self.start_dns(domains)
        port = peers.free_port()
        self.start_sink(port, listen="127.0.0.1", capture=False,
                        args=["--tempfail-pct", "30", "--permfail-pct", "10",
                              "--seed", "7"])
        conf = self.write_config(dns=dns, smtp_port=port, spool=spool,
                                 name="base.conf", retry="1h", max_age="5d")
        p = self.start_sluiced(conf, exit_when_empty=False, name="base")

        def attempted():
            info = self.spool_info(spool)
            return info["events"] >= info["deliveries"] >= 1500
        peers.wait_for(attempted, DEADLINE, "a first attempt of every "
                       "delivery", interval=0.2)
        self.assertEqual(p.stop(30), 0, p.output()[-3000:])
        states = delivery_states(spool)
        queued = {i for i, s in states.items() if s == 0}
        info = self.spool_info(spool)
        self.assertEqual(len(queued), info["counts"]["queued"])
        self.assertGreater(len(queued), 100, info)
        self.assertGreater(info["messages"], 100, info)
        BASE.update(dir=spool, queued=queued, info=info, tmp=d)

    # ------------------------------------------------------- assertions

    def assert_refused(self, spool, words):
        """info and inject refuse with 65 and a message holding words;
        data.mdb is left as it was."""
        data = os.path.join(spool, "data.mdb")
        before = os.path.getsize(data) if os.path.exists(data) else None
        rc, _, err = self.sluice_rc(spool, "spool", "info")
        self.assertEqual(rc, 65, err)
        for w in words:
            self.assertIn(w, err)
        msg = self.path("m.eml")
        with open(msg, "w") as f:
            f.write("From: a@b.test\r\nSubject: x\r\n\r\nx\r\n")
        rc, _, err = self.sluice_rc(spool, "inject", "--from", "a@b.test",
                                    "--to", "c@d0.test", msg)
        self.assertEqual(rc, 65, err)
        self.assertIn("data.mdb", err)   # the spool's refusal, not the message's
        after = os.path.getsize(data) if os.path.exists(data) else None
        self.assertEqual(before, after, "inject changed data.mdb")

    def salvage_keeps_queued(self, src, report, dst):
        """Every delivery queued in the base is queued or expired in dst,
        or lies in a stretch the report calls lost."""
        lost_ids, ranges = set(), []
        for p in report["problems"]:
            m = re.match(r"queued delivery (\d+) could not be read", p["what"])
            if p["db"] == "ready" and m:
                lost_ids.add(int(m.group(1)))
            if p["db"] != "deliveries":
                continue
            a = re.match(r"id (\d+)$", p["key"])
            a = int(a.group(1)) if a else 0
            if "not copied" in p["what"]:
                lost_ids.add(a)
            up = re.search(r"up to (id (\d+)|the end)", p["what"])
            if up:
                ranges.append((a, int(up.group(2)) if up.group(2)
                               else 1 << 64))
        dst_states = delivery_states(dst)
        for i in sorted(BASE["queued"]):
            if dst_states.get(i) in (0, 4):
                continue
            self.assertTrue(i in lost_ids or any(a < i < z for a, z in ranges),
                            "delivery %d was queued in %s; in the salvaged "
                            "spool it is %r and the report does not name it "
                            "lost: %s" % (i, src, dst_states.get(i),
                                          json.dumps(report)[:3000]))
        self.assertFalse({i for i, s in dst_states.items() if s == 0}
                         - BASE["queued"], "salvage queued what was not")

    def salvage_and_verify(self, spool):
        """Salvage spool into a new one that checks sound and keeps every
        queued recipient (or reports it); returns (rc, report)."""
        dst = spool + ".salvaged"
        rc, out, err = self.sluice_rc(spool, "--json", "spool", "salvage",
                                      dst)
        self.assertIn(rc, (0, 65), err)
        if not out:
            # LMDB's main database (the names of the others) was lost:
            # nothing can be read, and salvage says so
            self.assertEqual(rc, 65)
            self.assertIn("nothing to salvage", err)
            self.assertFalse(os.path.exists(dst))
            return rc, None
        report = json.loads(out)
        self.assertEqual(rc == 0, report["complete"], report)
        crc, cout, cerr = self.sluice_rc(dst, "spool", "check")
        self.assertEqual(crc, 0, "salvaged spool is not sound:\n" + cout +
                         cerr)
        self.salvage_keeps_queued(spool, report, dst)
        return rc, report

    def damaged_run(self, spool):
        """info, check, salvage and sluiced on a damaged copy; the check's
        exit code and the salvage report (None: nothing could be read)."""
        rc, _, err = self.sluice_rc(spool, "spool", "info")
        self.assertIn(rc, (0, 65), err)
        if rc == 65:
            self.assertIn("damaged", err)
        crc, out, err = self.sluice_rc(spool, "spool", "check")
        self.assertIn(crc, (0, 65), err)
        qrc, _, _ = self.sluice_rc(spool, "spool", "check", "--quick")
        self.assertIn(qrc, (0, 65))
        _, report = self.salvage_and_verify(spool)
        conf = self.config(spool)
        if qrc == 65:
            rc, log = self.sluiced_to_end(conf)
            self.assertEqual(rc, 65, log[-3000:])
            self.assertIn("spool check", log)
        else:
            # the damage hit pages nothing uses: sluiced runs; nothing is
            # due for an hour, so stop it once it is up
            p = self._proc([self.bin["sluiced"], "-c", conf],
                           "sluiced-" + os.path.basename(spool))
            peers.wait_for(lambda: os.path.exists(os.path.join(
                spool, "status.json")) or not p.alive(), DEADLINE,
                "sluiced up")
            self.assertEqual(p.stop(30), 0, p.output()[-3000:])
        return crc, report

    # ------------------------------------------------------------ tests

    def test_sound(self):
        spool = self.copy("sound")
        rc, out, err = self.sluice_rc(spool, "spool", "check")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("sound", out)
        rc, report = self.salvage_and_verify(spool)
        self.assertEqual(rc, 0, report)
        info = self.spool_info(spool + ".salvaged")
        self.assertEqual(info["counts"], BASE["info"]["counts"])
        self.assertEqual(info["deliveries"], BASE["info"]["deliveries"])

    def test_empty_data_file(self):
        spool = self.copy("empty")
        os.truncate(os.path.join(spool, "data.mdb"), 0)
        self.assert_refused(spool, ["data.mdb is empty", "spool init"])
        rc, out, _ = self.sluice_rc(spool, "spool", "check")
        self.assertEqual(rc, 65, out)
        rc, log = self.sluiced_to_end(self.config(spool))
        self.assertEqual(rc, 65, log)
        self.assertIn("--create", log)
        self.assertEqual(os.path.getsize(os.path.join(spool, "data.mdb")), 0)
        # asked for: a new, empty spool
        rc, log = self.sluiced_to_end(self.config(spool), "--create")
        self.assertEqual(rc, 0, log)
        self.assertEqual(self.spool_info(spool)["deliveries"], 0)
        spool = self.copy("init")
        os.truncate(os.path.join(spool, "data.mdb"), 0)
        rc, out, err = self.sluice_rc(spool, "spool", "init")
        self.assertEqual(rc, 0, err)
        self.inject("a@b.test", ["c@d0.test"],
                    "From: a@b.test\r\nSubject: x\r\n\r\nx\r\n",
                    spool=spool)
        self.assertEqual(self.spool_info(spool)["counts"]["queued"], 1)

    def test_missing_data_file(self):
        spool = self.copy("missing")
        os.unlink(os.path.join(spool, "data.mdb"))
        self.assert_refused(spool, ["data.mdb is missing"])
        self.assertFalse(os.path.exists(os.path.join(spool, "data.mdb")))
        rc, log = self.sluiced_to_end(self.config(spool))
        self.assertEqual(rc, 65, log)
        self.assertFalse(os.path.exists(os.path.join(spool, "data.mdb")))

    def test_cut_short(self):
        """Cut at 60% (the main database may be gone, then nothing can be
        read) and just past the main database's root (the rest of what is
        left is salvaged)."""
        spool = self.copy("cut")
        data = os.path.join(spool, "data.mdb")
        os.truncate(data, os.path.getsize(data) * 6 // 10 // PAGE * PAGE)
        rc, _, err = self.sluice_rc(spool, "spool", "info")
        self.assertEqual(rc, 65, err)
        self.assertIn("truncated", err)
        self.assertEqual(self.damaged_run(spool)[0], 65)
        spool = self.copy("cut2")
        data = os.path.join(spool, "data.mdb")
        pages = os.path.getsize(data) // PAGE
        keep = main_root(data) + 1
        if keep < pages:
            os.truncate(data, keep * PAGE)
            crc, report = self.damaged_run(spool)
            self.assertEqual(crc, 65)
            self.assertIsNotNone(report, "the main database is there: "
                                 "salvage must copy what is left")

    def test_zeroed_pages(self):
        for seed in (1, 2, 3):
            with self.subTest(seed=seed):
                spool = self.copy("zero%d" % seed)
                write_pages(os.path.join(spool, "data.mdb"), seed, 4,
                            zero_page)
                self.damaged_run(spool)

    def test_random_pages(self):
        for seed in (1, 2, 3, 4):
            with self.subTest(seed=seed):
                spool = self.copy("rand%d" % seed)
                write_pages(os.path.join(spool, "data.mdb"), seed, 3,
                            random_page)
                self.damaged_run(spool)

    def test_main_root_page(self):
        """The page holding the databases' names zeroed: LMDB cannot open
        any of them.  Each is named with LMDB's own cause (one failed open
        once hid the others' behind MDB_BAD_TXN), and salvage calls every
        queued delivery lost rather than silently dropping them."""
        spool = self.copy("mainroot")
        data = os.path.join(spool, "data.mdb")
        with open(data, "r+b") as f:
            f.seek(main_root(data) * PAGE)
            f.write(zero_page(None))
        rc, out, _ = self.sluice_rc(spool, "--json", "spool", "check")
        self.assertEqual(rc, 65, out)
        self.assertNotIn("MDB_BAD_TXN", out)
        crc, report = self.damaged_run(spool)
        self.assertEqual(crc, 65)
        if report is not None:
            self.assertNotIn("MDB_BAD_TXN", json.dumps(report))
            self.assertFalse(report["complete"])

    def test_meta_page(self):
        spool = self.copy("meta")
        with open(os.path.join(spool, "data.mdb"), "r+b") as f:
            f.write(random_page(random.Random(5)))
        rc, _, err = self.sluice_rc(spool, "spool", "info")
        self.assertEqual(rc, 65, err)
        rc, out, _ = self.sluice_rc(spool, "spool", "check")
        self.assertEqual(rc, 65, out)
        self.assertIn("meta page 0 is damaged", out)
        dst = spool + ".salvaged"
        rc, out, err = self.sluice_rc(spool, "spool", "salvage", dst)
        self.assertIn(rc, (0, 65), err)
        rc, out, err = self.sluice_rc(dst, "spool", "check")
        self.assertEqual(rc, 0, out + err)
        self.assertGreater(self.spool_info(dst)["deliveries"], 0)

    def test_ready_index_unreadable(self):
        """Every claim fails: sluiced stops with 65 instead of looping."""
        spool = self.copy("ready")
        root = db_root(spool, "ready")
        with open(os.path.join(spool, "data.mdb"), "r+b") as f:
            f.seek(root * PAGE)
            f.write(b"\0" * PAGE)
        conf = self.config(spool)
        rc, log = self.sluiced_to_end(conf, "--skip-spool-check")
        self.assertEqual(rc, 65, log[-3000:])
        self.assertIn("spool damaged: claiming failed", log)
        self.assertLess(log.count("claiming failed"), 5, "a line per "
                        "failure:\n" + log[-3000:])
        rc, log = self.sluiced_to_end(conf)
        self.assertEqual(rc, 65, log[-3000:])
        self.assertIn("is damaged", log)
        rc, report = self.salvage_and_verify(spool)
        self.assertEqual(rc, 65)
        # the index is rebuilt from the deliveries: nothing queued is lost
        info = self.spool_info(spool + ".salvaged")
        self.assertEqual(info["ready"], BASE["info"]["ready"])
        self.assertEqual(info["counts"], BASE["info"]["counts"])

    def test_cut_under_sluiced(self):
        """The file cut while sluiced runs: one clear line and exit 65,
        not a death by SIGBUS."""
        spool = self.copy("live")
        p = self._proc([self.bin["sluiced"], "-c", self.config(spool)],
                       "sluiced-live")
        peers.wait_for(lambda: os.path.exists(os.path.join(
            spool, "status.json")) or not p.alive(), DEADLINE, "sluiced up")
        self.assertTrue(p.alive(), p.output())
        os.truncate(os.path.join(spool, "data.mdb"), 2 * PAGE)
        rc = p.wait(DEADLINE)
        log = p.output()
        self.assertEqual(rc, 65, log[-3000:])
        self.assertIn("bus error", log)
        self.assertIn("spool check", log)
        self.assertIsNone(SANITIZER.search(log), log[-3000:])


def main():
    args = sys.argv[1:]
    if len(args) < 4:
        sys.stderr.write("usage: %s SLUICED SLUICE SINK SPOOL-FILL "
                         "[unittest args]\n" % sys.argv[0])
        sys.exit(64)
    b = peers.binaries()
    b["sluiced"], b["sluice"], b["sink"], b["spool-fill"] = (
        os.path.abspath(a) for a in args[:4])
    try:
        unittest.main(argv=[sys.argv[0], "-v"] + args[4:])
    finally:
        if BASE.get("tmp"):
            shutil.rmtree(BASE["tmp"], ignore_errors=True)


if __name__ == "__main__":
    main()
