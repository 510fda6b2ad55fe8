#!/usr/bin/env python3
"""ftpgate's benchmark: every measurement directly against the backend and through ftpgate in
the same run, alternating, several repetitions; prints medians and ratios.

Run it through bench/run.sh (which builds the release binary and checks the packages). On
loopback, files on tmpfs (/dev/shm), a real vsftpd (plain and TLS) as the backend of the bulk
and short-session figures, and a small event-driven backend (idle_backend.py)
that holds thousands of idle sessions cheaply for the memory figure.

What is measured (direct and through ftpgate; "whole path" is the CPU of client + ftpgate +
backend, since on loopback the kernel charges receive processing to whichever process runs):
  bulk      RETR/STOR of one file, plain (digest none: spliced; digest none with a rate limit
            far above loopback speed: the read/write path; digest sha256: spliced with tee) and
            FTPS (PROT P, TLS toward the backend too): MB/s, CPU s/GiB of ftpgate and of the
            whole path; first, the SHA-256 floor of the machine (one core hashing memory)
  parallel  8 RETRs at once: aggregate MB/s
  sessions  short sessions (login, EPSV, RETR of 1 KiB, QUIT) per second at concurrency
            1/16/128, plain and FTPS (data connections resume the control session), p50/p99,
            ftpgate CPU per session, and the load generator's own CPU
  noop      NOOP round trip p50/p99 on logged-in sessions, direct and through ftpgate (and
            HAProxy) interleaved one NOOP apiece in 20 rounds of new sessions ("added": the
            difference of p50 to direct), and each relay's CPU per NOOP
  idle      N logged-in idle sessions: ftpgate's memory per session (PSS) and its CPU while idle

The reference relay (reference.py): HAProxy in TCP mode with splice(2) in front of the same
vsftpd, measured in the same rotation beside the spliced plaintext bulk rows, the parallel
row, the plaintext short sessions and the NOOP, printed on a line of its own with the same
columns. It relays bytes and does nothing else, so it is what any proxy that terminates TCP
costs on this machine: the bound for ftpgate's ratios, which the issue's fixed targets do not
know. Without haproxy installed those lines are left out.

Every process this script starts is stopped by its pid when it ends (also on error).
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import clients
from clients import idle_sessions, noop_interleaved, short_sessions
from floors import sha256_floor
from procs import (Procs, background_load, cpu_of, cpu_times, free_port, machine_cpu, run_timed,
                   shares, wait_no_children, wait_port)
from reference import REFERENCE_HOST, start_haproxy

GIB = 1024 ** 3
MIB = 1024 ** 2

# ---------------------------------------------------------------------------------------------
# the servers


def vsftpd_conf(work, name, port, pasv, tls, cert, key):
    lines = [
        "listen=YES", "listen_ipv6=NO", "listen_address=127.0.0.1", f"listen_port={port}",
        "background=NO", "seccomp_sandbox=NO", "anonymous_enable=YES", "local_enable=NO",
        "no_anon_password=YES", f"anon_root={work}/root", "write_enable=YES",
        "anon_upload_enable=YES", "anon_other_write_enable=YES",
        f"pasv_min_port={pasv}", f"pasv_max_port={pasv + 199}", f"secure_chroot_dir={work}/empty",
        "max_clients=0", "max_per_ip=0", "delay_failed_login=0", "delay_successful_login=0",
    ]
    if tls:
        lines += [
            "ssl_enable=YES", "allow_anon_ssl=YES", "force_anon_logins_ssl=YES",
            "force_anon_data_ssl=YES", "require_ssl_reuse=YES", f"rsa_cert_file={cert}",
            f"rsa_private_key_file={key}", "ssl_ciphers=HIGH",
        ]
    path = f"{work}/{name}.conf"
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def gate_conf(work, name, port, passive, backend_port, digest, tls, cert, key, front=None):
    """front: ftpgate's own (certificate, key) pairs toward clients, in the order of
    preference (tls.certificates); by default the backend's pair."""
    backend = {"servers": [f"127.0.0.1:{backend_port}"], "health_check": False,
               "feature_probe": False}
    listener = {"address": f"127.0.0.1:{port}"}
    policy = {
        "workers": "auto", "user": "root",
        "listeners": [listener],
        "passive": {"ports": f"{passive}-{passive + 999}"},
        "backends": {"b": backend},
        "roles": {"rw": {"allow": ["RETR", "STOR", "LIST", "CWD", "PWD", "SIZE", "DELE"]}},
        "users": {"anonymous": {"role": "rw", "backend": "b"}},
        # One load generator address: no per-address caps or bans in the way.
        "defaults": {"limits": {"sessions_total": 30000, "sessions_per_ip": 30000,
                                "failed_logins_per_ip": 1000000},
                     "timeouts": {"idle": 3600, "session": 7200}},
        "audit": {"file": f"{work}/{name}-audit.jsonl", "digest": digest,
                  "on_failure": "continue"},
    }
    if tls:
        listener["tls"] = "explicit"
        policy["tls"] = ({"certificates": [{"certificate": c, "private_key": k}
                                           for c, k in front]}
                         if front else {"certificate": cert, "private_key": key})
        backend["tls"] = "explicit"
        backend["pinned_certificate"] = cert
    path = f"{work}/{name}.json"
    with open(path, "w") as f:
        json.dump(policy, f, indent=1)
    return path


# ---------------------------------------------------------------------------------------------
# bulk transfers


def curl_args(port, tls, path, upload=None, out="/dev/null", host="127.0.0.1"):
    args = ["curl", "-sS", "--max-time", "600"]
    if tls:
        args += ["--ssl-reqd", "-k"]
    url = f"ftp://anonymous:x@{host}:{port}{path}"
    if upload:
        args += ["-T", upload, url]
    else:
        args += ["-o", out, url]
    return args


def bulk(port, tls, direction, size, work, vs_pid, gate_pid, tag, host="127.0.0.1"):
    if direction == "RETR":
        args = curl_args(port, tls, "/pub/big.bin", host=host)
    else:
        args = curl_args(port, tls, f"/pub/up-{tag}.bin", upload=f"{work}/root/pub/big.bin",
                         host=host)
    vs0 = cpu_of(vs_pid)
    g0 = cpu_of(gate_pid) if gate_pid else 0.0
    m0 = machine_cpu()
    wall, client_cpu = run_timed(args)
    wait_no_children(vs_pid)
    m1 = machine_cpu()
    vs_cpu = cpu_of(vs_pid) - vs0
    g_cpu = (cpu_of(gate_pid) - g0) if gate_pid else 0.0
    if direction == "STOR":
        os.unlink(f"{work}/root/pub/up-{tag}.bin")
    gib = size / GIB
    return {"mb_s": size / 1e6 / wall, "gate_cpu_s_gib": g_cpu / gib,
            "path_cpu_s_gib": (client_cpu + vs_cpu + g_cpu) / gib,
            "machine_cpu_s_gib": (m1 - m0) / gib}


def parallel(port, tls, n, size, vs_pid, gate_pid, host="127.0.0.1"):
    vs0, g0 = cpu_of(vs_pid), (cpu_of(gate_pid) if gate_pid else 0.0)
    m0 = machine_cpu()
    t0 = time.perf_counter()
    ps = [subprocess.Popen(curl_args(port, tls, "/pub/par.bin", host=host), stderr=subprocess.PIPE)
          for _ in range(n)]
    client_cpu = 0.0
    for p in ps:
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        client_cpu += usage.ru_utime + usage.ru_stime
        if p.returncode != 0:
            raise RuntimeError(f"parallel curl failed: {p.stderr.read()!r}")
        p.stderr.close()
    wall = time.perf_counter() - t0
    wait_no_children(vs_pid)
    m1 = machine_cpu()
    g_cpu = (cpu_of(gate_pid) - g0) if gate_pid else 0.0
    gib = n * size / GIB
    return {"mb_s": n * size / 1e6 / wall, "gate_cpu_s_gib": g_cpu / gib,
            "path_cpu_s_gib": (client_cpu + cpu_of(vs_pid) - vs0 + g_cpu) / gib,
            "machine_cpu_s_gib": (m1 - m0) / gib}


# ---------------------------------------------------------------------------------------------


def median_of(runs, key):
    return statistics.median(r[key] for r in runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition (CI)")
    ap.add_argument("--binary", default="target/release/ftpgate")
    ap.add_argument("--size-mib", type=int)
    ap.add_argument("--reps", type=int)
    ap.add_argument("--sessions", type=int, help="short sessions per measurement")
    ap.add_argument("--idle", type=int, help="idle sessions")
    ap.add_argument("--only", default="bulk,parallel,sessions,noop,idle")
    ap.add_argument("--json", help="write the results here as well")
    ap.add_argument("--key", choices=("rsa", "ec", "dual"), default="rsa",
                    help="the servers' key: RSA 2048 (the default) or ECDSA P-256; a TLS "
                         "handshake's signature is most of an FTPS session's CPU with RSA; "
                         "dual: vsftpd RSA 2048, ftpgate an ECDSA P-256 certificate first "
                         "and the RSA one second (tls.certificates)")
    a = ap.parse_args()
    if a.smoke:
        clients.CLIENT_TIMEOUT = 5.0  # bounded: the smoke run stays well under a minute
    size = (a.size_mib or (16 if a.smoke else 1024)) * MIB
    reps = a.reps or (1 if a.smoke else 3)
    nsessions = a.sessions or (48 if a.smoke else 1024)
    nidle = a.idle or (500 if a.smoke else 10000)
    only = set(a.only.split(","))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(hard, 4 * nidle + 1024)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    procs = Procs()
    work = tempfile.mkdtemp(prefix="ftpgate-bench.", dir="/dev/shm")
    results = {"machine": machine(), "size_mib": size // MIB, "reps": reps}
    try:
        run(a, procs, work, size, reps, nsessions, nidle, only, results)
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
        if a.json:  # what was measured, also when a later measurement failed
            with open(a.json, "w") as f:
                json.dump(results, f, indent=1)


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs, {model}, Linux {os.uname().release}"


def run(a, procs, work, size, reps, nsessions, nidle, only, results):
    os.makedirs(f"{work}/root/pub")
    os.makedirs(f"{work}/empty")
    shutil.chown(f"{work}/root/pub", "ftp")
    with open(f"{work}/root/pub/big.bin", "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MIB)
            f.write(os.urandom(n))
            left -= n
    with open(f"{work}/root/pub/par.bin", "wb") as f:
        f.write(os.urandom(max(MIB, size // 4)))
    with open(f"{work}/root/pub/small.bin", "wb") as f:
        f.write(os.urandom(1024))
    rsa = ["-newkey", "rsa:2048"]
    ecdsa = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]

    def certificate(stem, newkey):
        cert, key = f"{work}/{stem}.pem", f"{work}/{stem}.key"
        subprocess.run(["openssl", "req", "-x509", *newkey, "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key,
                        "-out", cert], check=True, capture_output=True)
        return cert, key

    cert, key = certificate("cert", ecdsa if a.key == "ec" else rsa)
    front = [certificate("ecdsa", ecdsa), (cert, key)] if a.key == "dual" else None
    print(f"ftpgate benchmark: {results['machine']}")
    print("TLS key: " + {"rsa": "RSA 2048", "ec": "ECDSA P-256",
                         "dual": "vsftpd RSA 2048; ftpgate ECDSA P-256 first, RSA 2048 "
                                 "second"}[a.key] + " (--key)")
    results["tls_key"] = a.key
    print(f"work on tmpfs {work}; file {size // MIB} MiB; {reps} repetition(s), alternating "
          "direct/ftpgate; medians")
    # The machine-CPU figures count every process: other work on the machine inflates
    # them, and a hypervisor that gives the CPUs to other guests (steal) slows both sides.
    busy, steal = background_load(1.0 if a.smoke else 3.0)
    results["background"] = {"busy": busy, "steal": steal}
    print(f"machine before the run: {busy * 100:.1f} % busy, {steal * 100:.1f} % stolen by "
          "the hypervisor" + ("" if busy < 0.02 and steal < 0.02 else
                              "  WARNING: not idle, the 'added' CPU figures include other work"))
    sys.stdout.flush()
    run_start = cpu_times()

    servers = {}
    # Passive ranges below the kernel's ephemeral ports (free_port's listeners are there).
    pasv = 26000
    for name, tls in (("vs", False), ("vstls", True)):
        port = free_port()
        conf = vsftpd_conf(work, name, port, pasv, tls, cert, key)
        pasv += 200
        p = procs.start(["/usr/sbin/vsftpd", conf])
        wait_port(port, p)
        servers[name] = (port, p.pid)
    # The reference relay in front of the plain vsftpd (its passive range: 26000-26199).
    ref_port = free_port()
    ref_pid = start_haproxy(procs, work, ref_port, servers["vs"][0], 26000, 26199, wait_port)
    if ref_pid is None:
        print("(haproxy is not installed: no reference relay rows)")
    gates = {}
    passive = 26400
    for name, backend, digest, tls in (("none", "vs", "none", False),
                                       ("sha256", "vs", "sha256", False),
                                       ("tls", "vstls", "none", True),
                                       ("tls-sha256", "vstls", "sha256", True),
                                       ("rw", "vs", "none", False)):
        port = free_port()
        conf = gate_conf(work, name, port, passive, servers[backend][0], digest, tls, cert, key,
                         front)
        if name == "rw":
            # A rate limit far above what loopback moves keeps the read/write path (spliced
            # relays have no rate limit): the two paths side by side.
            with open(conf) as f:
                pol = json.load(f)
            pol["defaults"]["limits"]["rate"] = "100GiB/s"
            with open(conf, "w") as f:
                json.dump(pol, f)
        passive += 1000
        p = procs.start([a.binary, "--config", conf], env=dict(os.environ, RUST_LOG="warn"),
                        stderr=open(f"{work}/{name}.stderr", "w"))
        wait_port(port, p, log=f"{work}/{name}.stderr")
        gates[name] = (port, p.pid)

    def pair(label, direct, through, keys, fmt, reference=None):
        """Alternates the measurements (direct, ftpgate and, where given and HAProxy is
        there, the reference relay); prints medians and ratios, the reference on a line of
        its own with the same columns."""
        runs = {"direct": (direct, []), "ftpgate": (through, [])}
        if reference is not None and ref_pid is not None:
            runs["haproxy"] = (reference, [])
        names = list(runs)
        for i in range(reps):
            order = names[i % len(names):] + names[:i % len(names)]
            if i % 2:
                order.reverse()
            for name in order:
                fn, into = runs[name]
                into.append(fn(i))
        row = {name: {k: median_of(into, k) for k in keys} for name, (_, into) in runs.items()}
        results[label] = row
        print(fmt(label, row))
        if "haproxy" in row:
            print(fmt("  reference: HAProxy TCP relay",
                      {"direct": row["direct"], "ftpgate": row["haproxy"]}))
        sys.stdout.flush()
        return row

    def bulk_header(title):
        # "path": client + relay + backend by /proc/PID; "machine": every CPU's busy time
        # (also the receive work in interrupt context and ksoftirqd); "added" by the machine.
        print(f"\n{title:40} {'direct':>9} {'ftpgate':>9} {'ratio':>6}  {'gate s/GiB':>10}"
              f" {'path s/GiB d/g':>15} {'machine s/GiB d/g':>17} {'added':>6}")

    def fmt_bulk(label, row):
        d, g = row["direct"], row["ftpgate"]
        return (f"{label:40} {d['mb_s']:9.0f} {g['mb_s']:9.0f} {g['mb_s'] / d['mb_s']:6.2f}"
                f"  {g['gate_cpu_s_gib']:10.2f} {d['path_cpu_s_gib']:7.2f}/"
                f"{g['path_cpu_s_gib']:<7.2f} {d['machine_cpu_s_gib']:8.2f}/"
                f"{g['machine_cpu_s_gib']:<8.2f} "
                f"{g['machine_cpu_s_gib'] - d['machine_cpu_s_gib']:6.2f}")

    keys = ("mb_s", "gate_cpu_s_gib", "path_cpu_s_gib", "machine_cpu_s_gib")
    if "bulk" in only:
        floor = sha256_floor()
        results["sha256_floor_s_gib"] = floor
        print(f"\nSHA-256 floor on this machine (one core, OpenSSL): {floor:.2f} s/GiB; "
              f"digest on, the target is added <= floor + 0.30 = {floor + 0.3:.2f}")
        bulk_header(f"bulk {size // MIB} MiB")
        for gate, backend, tls, digest in (("none", "vs", False, "none"),
                                           ("rw", "vs", False, "none, read/write"),
                                           ("sha256", "vs", False, "sha256"),
                                           ("tls", "vstls", True, "none"),
                                           ("tls-sha256", "vstls", True, "sha256")):
            vport, vpid = servers[backend]
            gport, gpid = gates[gate]
            for direction in ("RETR", "STOR"):
                # The reference beside the spliced rows only: it is the same relay for all.
                ref = None if tls or gate != "none" else (
                    lambda i, direction=direction: bulk(ref_port, False, direction, size, work,
                                                        vpid, ref_pid, f"h{i}", REFERENCE_HOST))
                pair(f"{direction} {'FTPS' if tls else 'plain'} digest {digest}",
                     lambda i: bulk(vport, tls, direction, size, work, vpid, None, f"d{i}"),
                     lambda i: bulk(gport, tls, direction, size, work, vpid, gpid, f"g{i}"),
                     keys, fmt_bulk, ref)

    if "parallel" in only:
        par = max(MIB, size // 4)
        bulk_header(f"8 parallel RETR of {par // MIB} MiB")
        for gate in ("none", "sha256"):
            vport, vpid = servers["vs"]
            gport, gpid = gates[gate]
            ref = None if gate != "none" else (
                lambda i: parallel(ref_port, False, 8, par, vpid, ref_pid, REFERENCE_HOST))
            pair(f"parallel plain digest {gate}",
                 lambda i: parallel(vport, False, 8, par, vpid, None),
                 lambda i: parallel(gport, False, 8, par, vpid, gpid),
                 keys, fmt_bulk, ref)

    if "sessions" in only:
        print(f"\n{'short sessions (' + str(nsessions) + ' each)':34} {'direct/s':>9} {'gate/s':>9}"
              f" {'ratio':>6}  {'p50 ms d/g':>13} {'p99 ms d/g':>13} {'gate ms/s':>9}"
              f" {'added ms/s':>10} {'gen ms/s':>8} {'gen cores':>9}")
        for tls in (False, True):
            vport, vpid = servers["vstls" if tls else "vs"]
            gport, gpid = gates["tls" if tls else "none"]
            for conc in (1, 16, 128):
                def direct(i, vport=vport, tls=tls, conc=conc, vpid=vpid):
                    r = short_sessions(vport, tls, conc, nsessions, [vpid])
                    r["gate_ms"] = 0.0
                    return r

                def through(i, gport=gport, tls=tls, conc=conc, vpid=vpid, gpid=gpid):
                    r = short_sessions(gport, tls, conc, nsessions, [gpid, vpid])
                    r["gate_ms"] = r["cpu_ms"][str(gpid)]
                    return r

                def reference(i, conc=conc, vpid=vpid):
                    r = short_sessions(ref_port, False, conc, nsessions, [ref_pid, vpid],
                                       REFERENCE_HOST)
                    r["gate_ms"] = r["cpu_ms"][str(ref_pid)]
                    return r

                pair(f"sessions {'FTPS' if tls else 'plain'} c={conc}", direct, through,
                     ("per_s", "p50_ms", "p99_ms", "gate_ms", "machine_ms", "gen_cpu_ms",
                      "gen_util", "errors"),
                     lambda label, row: (
                         f"{label:34} {row['direct']['per_s']:9.0f} {row['ftpgate']['per_s']:9.0f} "
                         f"{row['ftpgate']['per_s'] / row['direct']['per_s']:6.2f}  "
                         f"{row['direct']['p50_ms']:6.2f}/{row['ftpgate']['p50_ms']:<6.2f} "
                         f"{row['direct']['p99_ms']:6.2f}/{row['ftpgate']['p99_ms']:<6.2f} "
                         f"{row['ftpgate']['gate_ms']:9.3f} "
                         f"{row['ftpgate']['machine_ms'] - row['direct']['machine_ms']:10.3f} "
                         f"{row['ftpgate']['gen_cpu_ms']:8.2f} "
                         f"{row['ftpgate']['gen_util']:9.2f}"
                         + (f"  errors {row['direct']['errors']:.0f}/{row['ftpgate']['errors']:.0f}"
                            if row['direct']['errors'] or row['ftpgate']['errors'] else "")),
                     None if tls else reference)

    if "noop" in only:
        count = 300 if a.smoke else 5000
        rounds = 2 if a.smoke else 20
        vport, _ = servers["vs"]
        gport, gpid = gates["none"]
        print(f"\n{'NOOP round trip (' + str(count) + f', {rounds} rounds)':34} {'p50 us d/g':>15}"
              f" {'p99 us d/g':>15} {'added p50':>9} {'gate CPU us':>11}")
        relays = {"ftpgate": ("127.0.0.1", gport, gpid)}
        if ref_pid is not None:
            relays["haproxy"] = (REFERENCE_HOST, ref_port, ref_pid)
        row = noop_interleaved(("127.0.0.1", vport), relays, count, rounds)
        results["noop"] = row
        d = row["direct"]
        for name, label in (("ftpgate", "noop"), ("haproxy", "  reference: HAProxy TCP relay")):
            if name in row:
                g = row[name]
                print(f"{label:34} {d['p50_us']:7.1f}/{g['p50_us']:<7.1f} {d['p99_us']:7.1f}/"
                      f"{g['p99_us']:<7.1f} {g['added_p50_us']:9.1f} {g['gate_cpu_us']:11.1f}")
        sys.stdout.flush()

    if "idle" in only:
        bport = free_port()
        b = procs.start([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "idle_backend.py"), str(bport)])
        wait_port(bport, b)
        port = free_port()
        conf = gate_conf(work, "idle", port, 30400, bport, "sha256", False, cert, key)
        with open(conf) as f:
            pol = json.load(f)
        # Two workers: each holds two descriptors per session (client and backend), and a
        # container may not raise RLIMIT_NOFILE above 20,000 (ftpgate raises its soft limit
        # to the hard one); SO_REUSEPORT spreads the sessions over both.
        pol["workers"] = 2
        pol["passive"] = {"ports": "30400-30599"}
        with open(conf, "w") as f:
            json.dump(pol, f)
        g = procs.start([a.binary, "--config", conf], env=dict(os.environ, RUST_LOG="warn"),
                        stderr=open(f"{work}/idle.stderr", "w"))
        wait_port(port, g, log=f"{work}/idle.stderr")
        try:
            r = idle_sessions(port, nidle, g.pid)
        except RuntimeError:
            print(open(f"{work}/idle.stderr").read()[-3000:])
            raise
        results["idle"] = r
        print(f"\nidle logged-in sessions: {r['sessions']}, ftpgate "
              f"{r['bytes_per_session'] / 1024:.2f} KiB per session (PSS), CPU while idle "
              f"{r['idle_cpu_s_in_3s']:.2f} s in 3 s")

    busy, steal = shares(run_start, cpu_times())
    results["run_cpu"] = {"busy": busy, "steal": steal}
    print(f"\nover the run: the machine {busy * 100:.1f} % busy, {steal * 100:.1f} % stolen by "
          "the hypervisor" + ("  (steal above 2 %: other guests took CPU time; the figures "
                              "vary more than usual)" if steal >= 0.02 else ""))


if __name__ == "__main__":
    main()
