"""suite_tree.py - the process tree of bench/suite.py: a forked child that
becomes a subreaper and runs one system's commands, so that wait4 accounts
the CPU of every process below it (Postfix's daemons, which detach,
included) and the sum of their PSS is sampled.

Written here: no packaged tool reaps a detaching daemon's whole tree and
reports its CPU and memory.
"""

import ctypes
import json
import os
import resource
import select
import signal
import time

PR_SET_CHILD_SUBREAPER = 36

# Every command the tree starts runs under GNU time, which reports the
# command's own peak RSS (wait4's ru_maxrss) to a file.  A process that ends
# before the first 50 ms sample (smtp-source sending 300 messages) is still
# measured that way.  Taking ru_maxrss of our own direct children instead
# would count the forked Python image before their exec; the processes
# below them (Postfix's daemons) are forked by small C programs, so their
# ru_maxrss, collected as the subreaper reaps them, is their own.
GNU_TIME = "/usr/bin/time"


def proc_kb(pid, name, field):
    """A kB figure of /proc/PID/NAME (0 once the process is gone):
    smaps_rollup "Pss:" is its proportional set size, status "VmHWM:" its
    peak RSS since its exec."""
    try:
        with open("/proc/%d/%s" % (pid, name)) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def autogroup(pid):
    """The scheduler autogroup of a process ("/autogroup-N"; None without
    CONFIG_SCHED_AUTOGROUP).  A new session (setsid) starts a new one, and
    the kernel shares CPU fairly between autogroups before it looks at
    nice values: a comparison whose processes sit in different sessions
    is not fair under load, whatever their nice values."""
    try:
        with open("/proc/%d/autogroup" % pid) as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return None


def descendants(root):
    """Every live process below root (a /proc walk)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


class Tree:
    """A forked child that becomes a subreaper and runs a system's
    commands: every process below it, daemons that detach included, ends
    up reaped by it, so wait4 accounts all their CPU; it samples the sum of
    their PSS (and each one's VmHWM) every 50 ms or so.  Commands come over a pipe as JSON lines."""

    def __init__(self, logdir):
        self.logdir = logdir
        c_r, c_w = os.pipe()
        r_r, r_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(c_w)
            os.close(r_r)
            try:
                self._child(os.fdopen(c_r, "r"), os.fdopen(r_w, "w"))
            except BaseException:
                import traceback
                traceback.print_exc()
            finally:
                os._exit(0)
        os.close(c_r)
        os.close(r_w)
        self.cmd = os.fdopen(c_w, "w")
        self.rep = os.fdopen(r_r, "r")

    # parent side
    def call(self, **req):
        """Send one request, return the child's JSON answer."""
        self.cmd.write(json.dumps(req) + "\n")
        self.cmd.flush()
        line = self.rep.readline()
        if not line:
            raise RuntimeError("process tree ended")
        return json.loads(line)

    def run(self, argv, wait=True, name="cmd"):
        """Run argv below the tree; wait=True: to completion (returns rc)."""
        return self.call(op="run", argv=argv, wait=wait, name=name)

    def finish(self, stop=(), timeout=120):
        """Run the stop commands, wait for every process below to end, and
        return {cpu_s, peak_pss_kb, max_rss_kb, timed_out, tree_cpu_s (the
        subreaper's own: harness), autogroups (seen among the processes
        below)}."""
        r = self.call(op="finish", stop=list(stop), timeout=timeout)
        os.waitpid(self.pid, 0)
        self.cmd.close()
        self.rep.close()
        return r

    # child side
    def _child(self, cmd, rep):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.cpu = 0.0
        self.maxrss = 0
        self.peak = 0
        self.last_sample = 0.0
        self.every = 0.05
        self.exits = {}
        self.rss_files = {}
        self.groups = set()
        while True:
            r, _, _ = select.select([cmd], [], [], 0.05)
            self._reap(False)
            self._sample()
            if not r:
                continue
            line = cmd.readline()
            if not line:
                return
            req = json.loads(line)
            if req["op"] == "run":
                pid = self._spawn(req["argv"], req["name"])
                rc = None
                if req["wait"]:
                    while pid not in self.exits:
                        self._reap(True, 0.05)
                        self._sample()
                    rc = self.exits[pid]
                rep.write(json.dumps({"pid": pid, "rc": rc}) + "\n")
                rep.flush()
            elif req["op"] == "finish":
                for argv in req["stop"]:
                    pid = self._spawn(argv, "stop")
                    while pid not in self.exits:
                        self._reap(True, 0.5)
                end = time.time() + req["timeout"]
                timed_out = False
                while self._reap(True, 0.05):
                    self._sample()
                    if time.time() > end and not timed_out:
                        timed_out = True
                        for p in descendants(os.getpid()):
                            try:
                                os.kill(p, signal.SIGKILL)
                            except OSError:
                                pass
                ru = resource.getrusage(resource.RUSAGE_SELF)
                rep.write(json.dumps({"cpu_s": round(self.cpu, 3),
                                      "peak_pss_kb": self.peak,
                                      "max_rss_kb": self.maxrss,
                                      "timed_out": timed_out,
                                      "tree_cpu_s": round(ru.ru_utime +
                                                          ru.ru_stime, 3),
                                      "autogroups": sorted(self.groups)})
                          + "\n")
                rep.flush()
                return

    def _spawn(self, argv, name):
        out = open(os.path.join(self.logdir, name + ".log"), "ab")
        rss_file = os.path.join(self.logdir, "%s.%d.maxrss" %
                                (name, len(self.rss_files)))
        pid = os.fork()
        if pid == 0:
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(out.fileno(), 2)
                os.execv(GNU_TIME, [GNU_TIME, "-q", "-f", "%M", "-o",
                                    rss_file] + list(argv))
            finally:
                os._exit(127)
        out.close()
        self.rss_files[pid] = rss_file
        return pid

    def _command_rss(self, pid):
        """The peak RSS in kB that GNU time wrote for a command we
        started (0 if it wrote none)."""
        try:
            with open(self.rss_files.pop(pid)) as f:
                lines = [l for l in f.read().split() if l.isdigit()]
            return int(lines[-1]) if lines else 0
        except OSError:
            return 0

    def _reap(self, block, limit=0.0):
        """Collect exited children (block: wait up to limit seconds for
        one); False when no child is left at all."""
        end = time.time() + limit
        while True:
            try:
                pid, status, ru = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                if not block or time.time() >= end:
                    return True
                time.sleep(0.02)
                continue
            self.cpu += ru.ru_utime + ru.ru_stime
            if pid in self.rss_files:
                self.maxrss = max(self.maxrss, self._command_rss(pid))
            else:
                self.maxrss = max(self.maxrss, ru.ru_maxrss)
            code = os.waitstatus_to_exitcode(status)
            self.exits[pid] = code
            block = False

    def _sample(self):
        t = time.time()
        if t - self.last_sample < self.every:
            return
        self.last_sample = t
        total = 0
        procs = descendants(os.getpid())
        for p in procs:
            total += proc_kb(p, "smaps_rollup", "Pss:")
            self.maxrss = max(self.maxrss, proc_kb(p, "status", "VmHWM:"))
            g = autogroup(p)
            if g:
                self.groups.add(g)
        self.peak = max(self.peak, total)
        # a few processes: every 50 ms; Postfix's hundreds: less often,
        # so that sampling costs about the same
        self.every = max(0.05, 0.002 * len(procs))
