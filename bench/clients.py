"""A small FTP client for short sessions, NOOPs and idle sessions (bench.py's figures), and
the loops that measure them."""

import multiprocessing
import os
import resource
import socket
import ssl
import threading
import time

from procs import cpu_of, machine_cpu, pss_of, wait_no_children

# Seconds a benchmark client waits for a connection or a reply (a session that waits longer
# counts as failed: vsftpd's listen backlog of 32 drops SYNs at concurrency 128).
CLIENT_TIMEOUT = 30.0


class Client:
    def __init__(self, port, tls=False, ctx=None, host="127.0.0.1"):
        self.host = host
        self.sock = socket.create_connection((host, port), timeout=CLIENT_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.ctx = ctx
        self.expect(220)
        if tls:
            self.cmd("AUTH TLS", 234)
            self.sock = ctx.wrap_socket(self.sock)
            self.cmd("PBSZ 0", 200)
            self.cmd("PROT P", 200)
        self.tls = tls

    def reply(self):
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                if len(line) >= 4 and line[:3].isdigit() and line[3:4] == b" ":
                    return int(line[:3]), line
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError("connection closed")
            self.buf += data

    def expect(self, code):
        got, line = self.reply()
        if got != code:
            raise RuntimeError(f"expected {code}, got {line!r}")

    def cmd(self, line, code):
        self.sock.sendall(line.encode() + b"\r\n")
        self.expect(code)

    def login(self):
        # vsftpd with no_anon_password logs anonymous in at USER (230); others ask (331).
        self.sock.sendall(b"USER anonymous\r\n")
        code, line = self.reply()
        if code == 331:
            self.cmd("PASS x", 230)
        elif code != 230:
            raise RuntimeError(f"USER: {line!r}")

    def retr(self, path):
        self.sock.sendall(b"EPSV\r\n")
        code, line = self.reply()
        if code != 229:
            raise RuntimeError(f"EPSV: {line!r}")
        port = int(line.split(b"|||")[1].split(b"|")[0])
        data = socket.create_connection((self.host, port), timeout=CLIENT_TIMEOUT)
        self.sock.sendall(f"RETR {path}\r\n".encode())
        if self.tls:
            # The data connection resumes the control session (vsftpd's require_ssl_reuse).
            data = self.ctx.wrap_socket(data, session=self.sock.session)
        code, line = self.reply()
        if code not in (125, 150):
            raise RuntimeError(f"RETR: {line!r}")
        n = 0
        while True:
            chunk = data.recv(65536)
            if not chunk:
                break
            n += len(chunk)
        data.close()
        self.expect(226)
        return n

    def close(self):
        try:
            self.sock.sendall(b"QUIT\r\n")
            self.reply()
        except (OSError, RuntimeError):
            pass
        self.sock.close()


def client_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def session_worker(args):
    host, port, tls, threads, per_thread = args
    ctx = client_ctx() if tls else None
    lat, errors = [], []
    lock = threading.Lock()

    def run():
        mine = []
        for _ in range(per_thread):
            t0 = time.perf_counter()
            try:
                c = Client(port, tls, ctx, host)
                c.login()
                c.cmd("TYPE I", 200)
                c.retr("/pub/small.bin")
                c.close()
                mine.append(time.perf_counter() - t0)
            except (OSError, RuntimeError, ssl.SSLError) as e:
                with lock:
                    errors.append(str(e))
        with lock:
            lat.extend(mine)

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return lat, errors, ru.ru_utime + ru.ru_stime


def short_sessions(port, tls, conc, total, server_pids, host="127.0.0.1"):
    procs = min(conc, max(2, os.cpu_count() or 2))
    threads = max(1, conc // procs)
    per_thread = max(1, total // (procs * threads))
    cpu0 = {p: cpu_of(p) for p in server_pids}
    m0 = machine_cpu()
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        results = pool.map(session_worker, [(host, port, tls, threads, per_thread)] * procs)
    wall = time.perf_counter() - t0
    wait_no_children(server_pids[-1])  # vsftpd: its session processes reaped
    machine = machine_cpu() - m0
    cpu = {p: cpu_of(p) - cpu0[p] for p in server_pids}
    lat = sorted(x for r in results for x in r[0])
    errors = [e for r in results for e in r[1]]
    gen_cpu = sum(r[2] for r in results)
    n = len(lat)
    if errors:
        print(f"  ({len(errors)} sessions failed on port {port}, e.g. {errors[0]})")
    if n == 0:
        raise RuntimeError(f"no session completed: {errors[:3]}")
    return {
        "sessions": n, "errors": len(errors), "per_s": n / wall,
        "p50_ms": lat[n // 2] * 1e3, "p99_ms": lat[min(n - 1, int(n * 0.99))] * 1e3,
        "cpu_ms": {str(p): c * 1e3 / n for p, c in cpu.items()},
        "gen_cpu_ms": gen_cpu * 1e3 / n, "gen_util": gen_cpu / wall,
        "machine_ms": machine * 1e3 / n,
    }


def noop_interleaved(direct, relays, count, rounds):
    """`count` NOOP round trips on each target, interleaved one by one: in each of `rounds`
    rounds one logged-in session per target (direct, then each relay), and the NOOPs go to
    them in turn, the order reversed at every step. On a small VM the scheduler's placement
    of client, relay and backend drifts within seconds (a direct NOOP here takes between
    about 15 and 70 us), and blocks of a few hundred NOOPs each way still caught different
    placements (their "added" swung by 40 us between runs); one NOOP apiece in turn puts every
    target under the same placement, and the rounds (new sessions, new vsftpd processes) vary
    it. A session sends fewer NOOPs than ftpgate's command burst (MAX_COMMANDS_PER_SECOND).
    `direct` is (host, port); `relays` maps a name ("ftpgate", "haproxy") to (host, port,
    pid). Also each relay's CPU per NOOP (its logins included: one per round)."""
    per = max(10, count // rounds)
    targets = [("direct", direct[0], direct[1], None)] + [
        (name, host, port, pid) for name, (host, port, pid) in relays.items()]
    lat = {name: [] for name, *_ in targets}
    cpu0 = {name: cpu_of(pid) for name, _, _, pid in targets if pid}
    for _ in range(rounds):
        sessions = [(name, Client(port, host=host)) for name, host, port, _ in targets]
        for _, c in sessions:
            c.login()
        for i in range(per):
            for name, c in (sessions if i % 2 == 0 else sessions[::-1]):
                t0 = time.perf_counter()
                c.cmd("NOOP", 200)
                lat[name].append(time.perf_counter() - t0)
        for _, c in sessions:
            c.close()
    pick = lambda xs, q: sorted(xs)[min(len(xs) - 1, int(len(xs) * q))] * 1e6
    out = {"direct": {"p50_us": pick(lat["direct"], 0.5), "p99_us": pick(lat["direct"], 0.99)}}
    for name, _, _, pid in targets[1:]:
        out[name] = {"p50_us": pick(lat[name], 0.5), "p99_us": pick(lat[name], 0.99),
                     "gate_cpu_us": (cpu_of(pid) - cpu0[name]) / len(lat[name]) * 1e6}
        out[name]["added_p50_us"] = out[name]["p50_us"] - out["direct"]["p50_us"]
    return out


def idle_sessions(port, count, gate_pid):
    pss0 = pss_of(gate_pid)
    clients = []
    for _ in range(count):
        c = Client(port)
        c.login()
        clients.append(c)
    # Every session is logged in; let the workers settle (bounded), then measure.
    time.sleep(2.0)
    pss1 = pss_of(gate_pid)
    cpu0 = cpu_of(gate_pid)
    time.sleep(3.0)
    idle_cpu = cpu_of(gate_pid) - cpu0
    for c in clients:
        c.sock.close()
    return {"sessions": count, "bytes_per_session": (pss1 - pss0) / count,
            "idle_cpu_s_in_3s": idle_cpu}
