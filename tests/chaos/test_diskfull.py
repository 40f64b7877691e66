"""test_diskfull.py - sluiced and `sluice inject` when the spool's
filesystem fills up.

The spool lives on a small tmpfs mounted by the test (48 MB).  While
sluiced delivers, a filler file takes every free byte of it (and keeps
taking whatever comes free), so the spool's writer cannot commit.

Cases:
  - the disk fills during sending: no recipient reaches the receiver
    twice, sluiced does not spin (a handful of stderr lines, not one per
    failed attempt), status.json / `sluice status --json` and the event
    log show the full spool; `sluice inject` says "spool is full" and
    exits 75 with nothing queued; once the space returns sluiced resumes
    by itself and every recipient ends with exactly one terminal event
    and reached the receiver exactly once;
  - `sluice inject` of a message bigger than the space left: LMDB's
    write comes up short (an EIO inside LMDB), still "spool is full",
    75, nothing queued;
  - SIGTERM while the spool is full: sluiced keeps trying until
    drain_timeout, then exits 75 saying how many outcomes were not
    recorded; a restart with space finishes every recipient (those
    deliveries may be repeated: at-least-once, never lost).

The sink's captures and the event log live outside the tmpfs.

usage: /usr/bin/python3 test_diskfull.py SLUICED SLUICE SINK
"""
import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "engine"))
import peers  # noqa: E402
from peers import PeerTest  # noqa: E402

MSG = "From: s@sender.test\nSubject: bulk\n\nbody\n"
TERMINAL = ("delivered", "bounced", "expired", "suppressed", "cancelled")
FS_SIZE = "48m"


class Filler:
    """Keeps a filesystem full: writes a file until ENOSPC, then tops it
    up whenever space comes free, until stopped."""

    def __init__(self, path):
        self.path = path
        self.stopping = threading.Event()
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.fill()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def fill(self):
        """Write 1 MiB, then 4 KiB chunks until the filesystem refuses."""
        for size in (1 << 20, 4096):
            chunk = b"\0" * size
            while True:
                try:
                    os.write(self.fd, chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break

    def _run(self):
        while not self.stopping.wait(0.05):
            self.fill()

    def close(self):
        """Stop topping up (the file stays)."""
        self.stopping.set()
        self.th.join(10)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def free(self):
        """Stop topping up and give all the space back."""
        self.close()
        os.unlink(self.path)


class DiskFull(PeerTest):

    def setUp(self):
        super().setUp()
        self.fs = self.path("fs")
        os.makedirs(self.fs)
        self.mounted = False
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700"
                        % FS_SIZE, "tmpfs", self.fs], check=True)
        self.mounted = True
        self.addCleanup(self.unmount)
        self.filler = None
        self.spool = os.path.join(self.fs, "spool")

    def unmount(self):
        if self.filler:
            self.filler.close()
        for p in reversed(self.procs):
            try:
                p.stop(5)
            except Exception:
                pass
        if self.mounted:
            r = subprocess.run(["umount", self.fs])
            if r.returncode:
                subprocess.run(["umount", "-l", self.fs])
            self.mounted = False

    def tearDown(self):
        self.unmount()   # before the temp dir goes (also on failure)
        super().tearDown()

    # ------------------------------------------------------------ helpers

    def setup_run(self, ndom, per_dom, slow_ms):
        """DNS for ndom domains, a sink that answers each recipient after
        slow_ms, and per_dom recipients queued per domain.  Returns
        (dns, port, sink, ids, rcpts)."""
        port = peers.free_port()
        doms = ["full%d.test" % i for i in range(ndom)]
        dns = self.start_dns({d: [(10, "127.0.5.%d" % (i + 1))]
                              for i, d in enumerate(doms)})
        sink = self.start_sink(port, args=["--slow-ms", str(slow_ms)])
        ids, rcpts = [], []
        for d in doms:
            r = ["slow%04d@%s" % (k, d) for k in range(per_dom)]
            ids += self.inject("s@sender.test", r, MSG, spool=self.spool)
            rcpts += r
        return dns, port, sink, ids, rcpts

    def config(self, dns, port, name="sluiced.conf", **keys):
        """One recipient per SMTP transaction, two sessions per domain;
        deliveries resume once 8 MiB of the 48 MiB filesystem are free."""
        keys.setdefault("spool_min_free", "8")
        return self.write_config(
            dns=dns, smtp_port=port, spool=self.spool, name=name,
            max_inflight="200",
            domains={"default": {"max_rcpts_per_message": 1,
                                 "max_connections": 2}}, **keys)

    def spool_lines(self, path=None):
        return [e for e in self.event_log(path) if e.get("type") == "spool"]

    def received(self, sink):
        """{rcpt: times the sink accepted it}"""
        got = {}
        for _, rc, _ in sink.captures():
            for r in rc:
                got[r] = got.get(r, 0) + 1
        return got

    def stderr_lines(self, p):
        return [l for l in p.output().splitlines() if l.strip()]

    def fill_when_delivered(self, n, sink):
        """Wait for n delivered events, then fill the filesystem; wait
        until sluiced reports the full spool in its event log (failing
        with what the receiver got meanwhile)."""
        self.wait_events(lambda ev: sum(e["type"] == "delivered"
                                        for e in ev) >= n,
                         30, "%d deliveries before the disk fills" % n)
        self.filler = Filler(os.path.join(self.fs, "filler"))
        try:
            self.wait_events(lambda ev: any(e.get("type") == "spool" and
                                            e.get("state") == "full"
                                            for e in ev), 20, "")
        except peers.PeerError:
            got = self.received(sink)
            twice = sorted((-k, r) for r, k in got.items() if k > 1)
            self.fail('no {"type":"spool","state":"full"} line in the event '
                      "log 20 s after the disk filled; the receiver got %d "
                      "recipients more than once (%s)"
                      % (len(twice), ", ".join("%s %d times" % (r, -k)
                                               for k, r in twice[:3])))

    # ------------------------------------------------------------ cases

    def test_full_then_space_returns(self):
        """The disk fills during sending: no duplicates, no spinning,
        state visible, inject refused with 75; space returns: resumes,
        every recipient exactly once."""
        dns, port, sink, ids, rcpts = self.setup_run(4, 150, 100)
        conf = self.config(dns, port)
        p = self.start_sluiced(conf)
        self.fill_when_delivered(40, sink)
        lines_at_full = len(self.stderr_lines(p))

        # status.json (in the full spool directory) and `sluice status`
        def status_full():
            r = self.sluice("status", "--json", spool=self.spool,
                            check=False)
            if r.returncode:
                return None
            st = json.loads(r.stdout).get("sluiced", {}).get("spool_state")
            return st if st and st.get("state") == "full" else None
        st = peers.wait_for(status_full, 15, "sluice status --json showing "
                            "the full spool", interval=0.2)
        self.assertIn("spool is full", st["error"])
        with open(os.path.join(self.spool, "status.json")) as f:
            self.assertEqual(json.load(f)["spool_state"]["state"], "full")
        out = self.sluice("status", spool=self.spool).stdout.decode()
        self.assertIn("spool full: spool is full", out)

        # a new message (bigger than any space LMDB may still have free
        # inside its file) is refused whole, with the documented code
        info0 = self.spool_info(spool=self.spool)
        late = self.path("late.eml")
        with open(late, "w") as f:
            f.write(MSG + ("x" * 70 + "\n") * 30000)
        r = self.sluice("inject", "--from", "s@sender.test", "--to",
                        "late@full0.test", late, spool=self.spool,
                        check=False)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 75, err)
        self.assertIn("spool is full", err)
        self.assertIn(self.spool, err)
        # sluiced itself may still commit an outcome now and then (LMDB
        # finds room in its own free pages), so the count can only fall
        info1 = self.spool_info(spool=self.spool)
        self.assertLessEqual(info1["counts"]["queued"],
                             info0["counts"]["queued"])

        # while full: sessions finish what they had, nothing is sent twice
        # and nothing new starts; wait until the receiver is quiet
        def settled():
            a = sink.stats()["recipients"]
            time.sleep(1.0)
            return sink.stats()["recipients"] == a
        peers.wait_for(settled, 20, "the receiver to get nothing new while "
                       "the spool is full", interval=0.1)
        got = self.received(sink)
        twice = {r: n for r, n in got.items() if n > 1}
        self.assertFalse(twice, "delivered more than once while the spool "
                         "was full: %r" % sorted(twice.items())[:10])
        self.assertLess(len(got), len(rcpts), "the disk filled too late")
        self.assertTrue(p.alive(), p.output()[-2000:])
        # one stderr line per change of state (LMDB may find room for a
        # small commit in its own free pages: the spool may come back for
        # a moment), never one per failed attempt
        during = self.stderr_lines(p)[lines_at_full:]
        changes = len(self.spool_lines()) - 1
        self.assertLessEqual(len(during), changes + 2, "sluiced logged "
                             "while the spool was full:\n"
                             + "\n".join(during[:20]))
        self.assertLessEqual(changes, 4, self.spool_lines())

        # space returns: sluiced resumes by itself and finishes
        self.filler.free()
        self.wait_events(lambda ev: any(e.get("type") == "spool" and
                                        e.get("state") == "writable"
                                        for e in ev),
                         30, 'a {"type":"spool","state":"writable"} line')
        rc = p.wait(60)
        self.assertEqual(rc, 0, p.output()[-3000:])
        self.assert_terminal_once(ids, spool=self.spool)
        got = self.received(sink)
        self.assertNotIn("late@full0.test", got)
        self.assertEqual(set(got), set(rcpts))
        twice = {r: n for r, n in got.items() if n > 1}
        self.assertFalse(twice, "delivered more than once: %r"
                         % sorted(twice.items())[:10])
        states = [e["state"] for e in self.spool_lines()]
        self.assertEqual(states[0], "full", states)
        self.assertEqual(states[-1], "writable", states)
        # one stderr line per change of state, not per attempt
        self.assertLessEqual(len(self.stderr_lines(p)), 2 * len(states) + 4,
                             p.output()[-3000:])

    def test_inject_short_write(self):
        """Less space left than a message needs: LMDB's write at commit
        comes up short (EIO inside LMDB); inject still says "spool is
        full", exits 75 and queues nothing; with space it goes in."""
        big = self.path("big.eml")
        with open(big, "w") as f:
            f.write(MSG + ("x" * 70 + "\n") * 30000)    # about 2 MB
        self.inject("s@sender.test", ["first@full0.test"], MSG,
                    spool=self.spool)
        st = os.statvfs(self.fs)
        keep = 1 << 20                                 # leave about 1 MB
        with open(os.path.join(self.fs, "filler"), "wb") as f:
            f.write(b"\0" * (st.f_bavail * st.f_frsize - keep))
        r = self.sluice("inject", "--from", "s@sender.test", "--to",
                        "big@full0.test", big, spool=self.spool, check=False)
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 75, err)
        self.assertIn("spool is full", err)
        self.assertEqual(self.spool_info(spool=self.spool)["counts"]["queued"],
                         1)
        os.unlink(os.path.join(self.fs, "filler"))
        with open(big) as f:
            body = f.read()
        self.inject("s@sender.test", ["big@full0.test"], body,
                    spool=self.spool)
        self.assertEqual(self.spool_info(spool=self.spool)["counts"]["queued"],
                         2)

    def test_sigterm_while_full(self):
        """SIGTERM while outcomes wait for space: retried until
        drain_timeout, then exit 75 with a clear message; a restart with
        space finishes every recipient exactly once in the spool."""
        # 250 ms a recipient over four sessions: the last of the 200 is
        # due 12 s after the first, time for the filler on a loaded box
        dns, port, sink, ids, rcpts = self.setup_run(2, 100, 250)
        conf = self.config(dns, port, drain_timeout="2s")
        p = self.start_sluiced(conf, exit_when_empty=False)
        self.fill_when_delivered(20, sink)
        p.signal(signal.SIGTERM)
        rc = p.wait(30)
        out = p.output()
        self.assertEqual(rc, 75, out[-3000:])
        self.assertIn("not recorded", out)
        held = self.received(sink)

        self.filler.free()
        conf2 = self.config(dns, port, name="second.conf",
                            event_log=self.path("events2.jsonl"))
        self.run_sluiced(conf2, timeout=60, name="sluiced2")
        self.assert_terminal_once(ids, spool=self.spool, log=False)
        got = self.received(sink)
        self.assertEqual(set(got), set(rcpts))
        # only deliveries made before the stop can repeat, once each
        for r, n in got.items():
            self.assertLessEqual(n, 2 if r in held else 1, (r, n))


if __name__ == "__main__":
    peers.main()
