#!/usr/bin/env bash
# ftpgate's benchmark: bulk RETR/STOR (plain with the digest off and on, FTPS both sides),
# 8 parallel transfers, short sessions per second at concurrency 1/16/128 (plain and FTPS),
# NOOP round trips and the memory of idle sessions, each directly against the backend and
# through ftpgate in the same run, alternating, with medians and ratios; beside the plaintext
# rows, HAProxy as a TCP relay with splice(2) in front of the same vsftpd: the reference, what
# a proxy that only relays bytes costs on the machine (bench/reference.py). See bench/bench.py.
#
#   bench/run.sh            the full run: 1 GiB files, 3 repetitions, 1024 sessions per
#                           measurement, 10,000 idle sessions (about 5-10 minutes on 2 cores)
#   bench/run.sh --smoke    a short version (16 MiB, one repetition; well under a minute):
#                           what CI runs; it asserts nothing about time, only that every
#                           measurement completes
#   bench/run.sh --json out.json --reps 5 --size-mib 256 --only bulk,noop   (any bench.py option)
#   bench/run.sh --only sessions --key ec   the FTPS figures with an ECDSA P-256 key instead
#                           of RSA 2048 (the RSA signature is most of a short FTPS session)
#   bench/run.sh --only sessions --key dual   vsftpd keeps RSA 2048, ftpgate serves an ECDSA
#                           certificate first and the RSA one second (tls.certificates)
#
# Needs root (vsftpd runs as root, the idle figure raises RLIMIT_NOFILE), vsftpd, curl,
# openssl, python3 and haproxy; installs what is missing (Debian/Ubuntu) without starting the
# packages' system services. Loopback only; files on
# tmpfs (/dev/shm). Every process it starts is stopped by pid when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -x /usr/sbin/vsftpd ] || missing+=(vsftpd)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ -x /usr/bin/python3 ] || missing+=(python3)
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench/run.sh: installing ${missing[*]}" >&2
    # No system vsftpd on port 21, no system haproxy: the bench runs private instances.
    policy_rc=/usr/sbin/policy-rc.d
    created=0
    if [ ! -e "$policy_rc" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy_rc"
        chmod 0755 "$policy_rc"
        created=1
        trap 'rm -f "$policy_rc"' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
    if [ "$created" = 1 ]; then
        rm -f "$policy_rc"
        trap - EXIT
    fi
fi
if ! getent passwd ftp >/dev/null; then
    echo "bench/run.sh: user 'ftp' is missing (vsftpd's ftp_username)" >&2
    exit 1
fi
cargo build --release -q
exec /usr/bin/python3 bench/bench.py --binary target/release/ftpgate "$@"
