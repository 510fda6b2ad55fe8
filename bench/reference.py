"""The reference relay: HAProxy in TCP mode with splice(2), in front of the same vsftpd.

It relays bytes and nothing else (no FTP parsing, no policy, no audit, no TLS termination): the
least any user-space proxy that terminates TCP costs on this machine, measured in the same run
as direct access and ftpgate. Where ftpgate misses a target and HAProxy misses it too, the
machine sets the bound, not ftpgate's code.

HAProxy listens on REFERENCE_HOST (another loopback address) at the control port and at every
port of vsftpd's passive range, and connects to vsftpd on 127.0.0.1 at the port the client
asked for (a server without a port). Clients use EPSV, which names only a port, so their data
connections go to REFERENCE_HOST and through HAProxy too; vsftpd sees control and data come
from 127.0.0.1, as its pasv_promiscuous=NO check wants.
"""

import os
import shutil

# The reference relay's loopback address (127.0.0.0/8 is all loopback on Linux).
REFERENCE_HOST = "127.0.0.2"


def haproxy_path():
    return shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy")
                                       else None)


def haproxy_conf(work, port, backend_port, pasv_lo, pasv_hi):
    """A TCP relay of the control port and of the passive range, spliced both ways, with as
    many threads as ftpgate has workers (one per CPU)."""
    threads = os.cpu_count() or 2
    text = f"""global
    nbthread {threads}
    maxconn 4096

defaults
    mode tcp
    timeout connect 10s
    timeout client 1h
    timeout server 1h
    # splice(2) both ways, as ftpgate's plaintext relay without inspection.
    option splice-request
    option splice-response

listen control
    bind {REFERENCE_HOST}:{port}
    server vsftpd 127.0.0.1:{backend_port}

listen data
    bind {REFERENCE_HOST}:{pasv_lo}-{pasv_hi}
    # No port: the one the client connected to, i.e. vsftpd's passive port.
    server vsftpd 127.0.0.1
"""
    path = f"{work}/haproxy.cfg"
    with open(path, "w") as f:
        f.write(text)
    return path


def start_haproxy(procs, work, port, backend_port, pasv_lo, pasv_hi, wait_port):
    """Starts HAProxy in the foreground (-db); returns its pid, or None without haproxy."""
    binary = haproxy_path()
    if binary is None:
        return None
    conf = haproxy_conf(work, port, backend_port, pasv_lo, pasv_hi)
    p = procs.start([binary, "-db", "-f", conf], stdout=open(f"{work}/haproxy.log", "w"),
                    stderr=open(f"{work}/haproxy.stderr", "w"))
    wait_port(port, p, log=f"{work}/haproxy.stderr", host=REFERENCE_HOST)
    return p.pid
