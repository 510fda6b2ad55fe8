"""The benchmark's processes: starting and stopping them by pid, their CPU and memory from
/proc, free loopback ports."""

import os
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


class Procs:
    """Every process the benchmark starts, stopped by pid at the end."""

    def __init__(self):
        self.procs = []

    def start(self, args, **kw):
        p = subprocess.Popen(args, **kw)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        deadline = time.time() + 5
        for p in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=15.0, log=None, host="127.0.0.1"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            why = open(log).read() if log else ""
            raise RuntimeError(f"process {proc.args[0]} exited with {proc.returncode}: {why}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"port {port} did not open")


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (state first), or None once the
    process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()


def children():
    """pid -> list of child pids, from /proc."""
    tree = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (fields := stat_fields(name)) is not None:
            tree.setdefault(int(fields[1]), []).append(int(name))
    return tree


def tree_pids(pid):
    tree = children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, []))
    return out


def cpu_of(pid, with_reaped=True):
    """CPU seconds of pid and its live descendants (and what they reaped)."""
    total = 0
    for p in tree_pids(pid):
        fields = stat_fields(p)
        if fields is None:
            continue
        # utime stime cutime cstime are fields 14-17 (1-based); here 11-14 (0-based after state)
        total += int(fields[11]) + int(fields[12])
        if with_reaped:
            total += int(fields[13]) + int(fields[14])
    return total / CLK_TCK


def pss_of(pid):
    """PSS bytes of pid and its descendants."""
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def wait_no_children(pid, timeout=10.0):
    """vsftpd's session processes are gone (reaped: their CPU is in the parent's cutime)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(tree_pids(pid)) == 1:
            return
        time.sleep(0.01)


def run_timed(args):
    """Runs a client; returns (wall seconds, its CPU seconds)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({p.returncode}): {err}")
    return wall, usage.ru_utime + usage.ru_stime


def machine_cpu():
    """CPU seconds the whole machine has spent busy since boot (every CPU: user, nice,
    system, irq and softirq; not idle, iowait or steal), from /proc/stat. On loopback part of
    the kernel's receive work runs in interrupt context or in ksoftirqd and is charged to no
    process the bench knows (a relayed 1 GiB RETR here: about 0.3 s), so only the machine's
    total sees all of a path's cost; it is exact when nothing else runs on the machine."""
    return cpu_times()[0]


def cpu_times():
    """(busy, steal, all) CPU seconds of every CPU since boot, from /proc/stat: busy as in
    machine_cpu(); steal is time the hypervisor ran other guests while this one had work."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    busy = user + nice + system + irq + softirq
    return busy / CLK_TCK, steal / CLK_TCK, (busy + idle + iowait + steal) / CLK_TCK


def shares(before, after):
    """The busy and steal shares of all CPU time between two cpu_times() readings."""
    total = after[2] - before[2]
    if total <= 0:
        return 0.0, 0.0
    return (after[0] - before[0]) / total, (after[1] - before[1]) / total


def background_load(seconds):
    """The machine's busy and steal shares over `seconds` while the bench runs nothing:
    what other work would add to every machine-CPU ('added') figure (a measurement window,
    not a wait for anything)."""
    before = cpu_times()
    time.sleep(seconds)
    return shares(before, cpu_times())
