#!/usr/bin/env bash
# Runs every test of ftpgate: unit tests and the end-to-end suite against real FTP servers
# (vsftpd, pyftpdlib, pure-ftpd) and clients (curl, lftp, Python ftplib, rclone, wget, inetutils
# ftp, Apache Commons Net, Node basic-ftp) on the loopback interface.
# Installs what is missing on a Debian/Ubuntu machine first. Extra arguments go to `cargo test`,
# e.g. `./tests/run.sh --test readonly_policy` or `./tests/run.sh -- --nocapture`.
# FTPGATE_TEST_DIRECT=1 points the clients at the backends directly (checks the fixtures).
# FTPGATE_TEST_DIGEST=none runs the tests with `audit.digest: "none"` (spliced relays); the
# whole suite does a second pass of the transfer suites that way, then bench/run.sh --smoke.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
[ -x /usr/sbin/vsftpd ] || missing+=(vsftpd)
command -v lftp >/dev/null 2>&1 || missing+=(lftp)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# rsyslogd is run by one test in the foreground on private sockets.
[ -x /usr/sbin/rsyslogd ] || missing+=(rsyslog)
[ -x /usr/bin/python3 ] || missing+=(python3)
# Time windows with an IANA zone ("tz") read the system's tzdata; the tests use Europe/Berlin.
[ -e /usr/share/zoneinfo/Europe/Berlin ] || missing+=(tzdata)
# tests/prefix_mmdb.rs builds a MaxMind DB with mmdb-writer from PyPI, in a venv under target/.
/usr/bin/python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
# haproxy sits in front of ftpgate in tests/proxy_protocol.rs (PROXY protocol v1 and v2), run
# by the test in the foreground with a private configuration; its system service is not started.
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
# tests/metrics.rs checks `ftpgate metrics` with Prometheus's promtool and parses it with
# the prometheus_client Python package (the Prometheus service itself is not started).
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1 || missing+=(python3-prometheus-client)
if ! /usr/bin/python3 -c 'import pyftpdlib' >/dev/null 2>&1; then
    missing+=(python3-pyftpdlib)
fi
# The clients partners run (tests/clients.rs): rclone, wget, GNU inetutils ftp, and Apache
# Commons Net driven by a small Java program (javac and java 17 from the JDK).
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
command -v wget >/dev/null 2>&1 || missing+=(wget)
[ -x /usr/bin/inetutils-ftp ] || missing+=(inetutils-ftp)
[ -f /usr/share/java/commons-net.jar ] || missing+=(libcommons-net-java)
if ! command -v javac >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
    missing+=(default-jdk-headless)
fi
# fail2ban-regex runs the shipped filter (tests/fail2ban.rs); PyYAML parses the CrowdSec
# parser and scenario (tests/fail2ban.rs too).
command -v fail2ban-regex >/dev/null 2>&1 || missing+=(fail2ban)
/usr/bin/python3 -c 'import yaml' >/dev/null 2>&1 || missing+=(python3-yaml)
# Node's basic-ftp (tests/clients.rs) comes from npm, into target/test-clients/.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "run.sh: installing ${missing[*]}" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # Install without starting the packages' system services (a system vsftpd on port 21,
    # a system rsyslogd on /dev/log, a system haproxy): the tests run private instances.
    policy_rc=/usr/sbin/policy-rc.d
    created_policy_rc=0
    if [ ! -e "$policy_rc" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy_rc" >/dev/null
        as_root chmod 0755 "$policy_rc"
        created_policy_rc=1
        trap 'as_root rm -f "$policy_rc"' EXIT
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    if [ "$created_policy_rc" = 1 ]; then
        as_root rm -f "$policy_rc"
        trap - EXIT
    fi
fi

# pure-ftpd and proftpd conflict with vsftpd as Debian packages (each provides ftp-server), so
# they are not installed: each package is unpacked into target/ (tests/common/pure_ftpd.rs and
# proftpd.rs run them from there), and the libraries they link against are installed.
mmdb_venv=target/mmdb-venv
if ! "$mmdb_venv/bin/python" -c 'import mmdb_writer, netaddr' >/dev/null 2>&1; then
    echo "run.sh: installing mmdb-writer into $mmdb_venv" >&2
    /usr/bin/python3 -m venv "$mmdb_venv"
    "$mmdb_venv/bin/pip" install -q 'mmdb-writer==0.2.7'
fi

# unpack PACKAGE DIR BINARY: apt-get download PACKAGE and unpack it into DIR (unless BINARY
# is already there or installed system-wide), after installing the library packages of its
# Depends that are missing.
unpack() {
    local package=$1 dir=$2 binary=$3
    if [ -x "$dir/$binary" ] || [ -x "/$binary" ]; then
        return 0
    fi
    echo "run.sh: unpacking $package into $dir" >&2
    local tmp
    tmp=$(mktemp -d)
    download() {
        (cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download "$package")
    }
    if ! download; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        download
    fi
    local deb
    deb=$(ls "$tmp"/"$package"_*.deb)
    local libs=() deps pkg
    # The library packages of its Depends (the first of each alternative, versions dropped).
    deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' |
        sed -e 's/(.*)//' -e 's/|.*//' -e 's/ //g' | grep '^lib' || true)
    for pkg in $deps; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            libs+=("$pkg")
        fi
    done
    if [ "${#libs[@]}" -gt 0 ]; then
        echo "run.sh: installing ${libs[*]} for $package" >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${libs[@]}"
    fi
    mkdir -p "$dir"
    dpkg -x "$deb" "$dir"
    rm -rf "$tmp"
}
unpack pure-ftpd target/test-servers/pure-ftpd usr/sbin/pure-ftpd
# proftpd (tests/common/proftpd.rs) with its mod_digest, which answers HASH (tests/hash.rs).
unpack proftpd-core target/test-servers/proftpd usr/sbin/proftpd

# basic-ftp, pinned to its major version, for tests/clients.rs.
basic_ftp=target/test-clients/node_modules/basic-ftp
if [ ! -f "$basic_ftp/package.json" ]; then
    echo "run.sh: installing basic-ftp into target/test-clients" >&2
    mkdir -p target/test-clients
    npm install --prefix target/test-clients --no-audit --no-fund --silent basic-ftp@5
fi

# The vsftpd package may start a system vsftpd on port 21. The tests never use it (each test
# runs private servers on free loopback ports), so stop it where a service manager runs it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet vsftpd 2>/dev/null; then
    as_root systemctl stop vsftpd || true
elif [ -x /etc/init.d/vsftpd ] && command -v service >/dev/null 2>&1; then
    as_root service vsftpd stop >/dev/null 2>&1 || true
fi

# vsftpd's default secure_chroot_dir (each test instance also gets a private one).
if [ ! -d /var/run/vsftpd/empty ]; then
    as_root mkdir -p /var/run/vsftpd/empty
    as_root chmod 0755 /var/run/vsftpd/empty
fi

# vsftpd must run as root and needs its `ftp` user (created by the Debian package).
if ! getent passwd ftp >/dev/null; then
    echo "run.sh: user 'ftp' is missing (vsftpd's ftp_username)" >&2
    exit 1
fi

# Every target, unless the arguments (before a `--`) select targets themselves.
all_targets=(--all-targets)
for arg in "$@"; do
    case "$arg" in
        --) break ;;
        --lib | --bins | --bin | --bin=* | --tests | --test | --test=* | --examples | --example | \
            --example=* | --benches | --bench | --bench=* | --doc | --all-targets)
            all_targets=()
            break
            ;;
    esac
done
status=0
cargo test --no-fail-fast "${all_targets[@]}" "$@" || status=$?
# The whole suite (no arguments): the transfer suites once more with the digest off
# (`audit.digest: "none"`), so that plaintext relays take the spliced path, and the
# benchmark's smoke version (it checks that every measurement completes, never a speed).
if [ $# -eq 0 ]; then
    FTPGATE_TEST_DIGEST=none cargo test --no-fail-fast --test transfer_modes \
        --test data_channel --test limits --test commands --test splice || status=$?
    bench/run.sh --smoke || status=$?
fi
exit "$status"
