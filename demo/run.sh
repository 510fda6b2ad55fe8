#!/usr/bin/env bash
# ftpgate's main job in one command, on a fresh Debian or Ubuntu machine:
#
#   ./demo/run.sh
#
# Installs what is missing (vsftpd, curl) with apt-get, without starting the system's vsftpd;
# starts a private vsftpd on a free loopback port with a small sample tree; builds ftpgate
# (cargo build --release) and starts it in front of that vsftpd with a demo policy (a
# read-only partner, an upload-only partner); prints the curl lines to try; shows the audit
# trail as it is written; stops both on Ctrl-C. Needs root for apt-get and for vsftpd (it
# uses sudo when not run as root). Nothing listens beyond 127.0.0.1, and nothing is left
# behind but the packages it installed.
#
# Environment: FTPGATE_BIN=path uses that ftpgate binary instead of building one;
# DEMO_PORT=N makes ftpgate listen on 127.0.0.1:N (default 2121, or a free port if it is
# taken); DEMO_DIR=path puts the demo's files there (default: a new temporary directory,
# removed at the end).
#
# The backend accepts every password (a private PAM service with pam_permit, present only
# while the demo runs; vsftpd maps every login to its `ftp` user): the demo is about what
# ftpgate lets through, not about passwords. Do not copy that part into production.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

say() { printf 'demo: %s\n' "$*" >&2; }

# --- What is missing ---------------------------------------------------------------------------
missing=()
[ -x /usr/sbin/vsftpd ] || missing+=(vsftpd)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # Without starting the package's own vsftpd on port 21 (policy-rc.d: no service starts
    # during this installation), as tests/run.sh does.
    policy_rc=/usr/sbin/policy-rc.d
    if [ ! -e "$policy_rc" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy_rc" >/dev/null
        as_root chmod 0755 "$policy_rc"
        trap 'as_root rm -f "$policy_rc"' EXIT
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
        as_root rm -f "$policy_rc"
        trap - EXIT
    else
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
fi
getent passwd ftp >/dev/null || {
    say "user 'ftp' is missing (the vsftpd package creates it)"
    exit 1
}

# --- ftpgate -----------------------------------------------------------------------------------
if [ -n "${FTPGATE_BIN:-}" ]; then
    ftpgate=$(realpath -e "$FTPGATE_BIN")
else
    if ! command -v cargo >/dev/null 2>&1; then
        say "cargo is missing: install Rust 1.85 or newer (https://rustup.rs), or set FTPGATE_BIN"
        exit 1
    fi
    say "building ftpgate (cargo build --release)"
    cargo build --release --quiet
    ftpgate=$top/target/release/ftpgate
fi

# --- Ports -------------------------------------------------------------------------------------
listening() { # PORT: true if something listens on 127.0.0.1:PORT or on every address
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
free_block() { # LEN: the first port of LEN consecutive free ports, from a random start
    local len=$1 start p ok
    for _ in $(seq 1 50); do
        start=$((20000 + RANDOM % 30000))
        ok=1
        for p in $(seq "$start" $((start + len - 1))); do
            if listening "$p"; then ok=0 && break; fi
        done
        if [ "$ok" = 1 ]; then echo "$start" && return 0; fi
    done
    return 1
}
gate_port=${DEMO_PORT:-2121}
if listening "$gate_port"; then
    [ -z "${DEMO_PORT:-}" ] || { say "127.0.0.1:$gate_port is taken"; exit 1; }
    gate_port=$(free_block 1)
fi
vs_port=$(free_block 1)
vs_pasv=$(free_block 10)
gate_pasv=$(free_block 20)

# --- Files -------------------------------------------------------------------------------------
if [ -n "${DEMO_DIR:-}" ]; then
    work=$(realpath -m "$DEMO_DIR")
    mkdir -p "$work"
    keep=1
else
    work=$(mktemp -d /tmp/ftpgate-demo.XXXXXX)
    keep=0
fi
# Readable by vsftpd's ftp user; the policy must not be writable by group or others.
chmod 0755 "$work"
tree=$work/tree
mkdir -p "$tree/reports" "$tree/incoming" "$work/empty"
chmod 0755 "$tree" "$tree/reports" "$work/empty"
printf 'date,partner,orders\n2026-11-20,acme,17\n2026-11-21,acme,23\n' >"$tree/reports/daily.csv"
printf 'ftpgate demo: only what the policy allows reaches this server.\n' >"$tree/README.txt"
as_root chown ftp: "$tree/incoming"
printf 'invoice 4711\n' >"$work/invoice.txt"

pam=/etc/pam.d/ftpgate-demo-$$
audit=$work/audit.jsonl
pids=()
cleanup() {
    trap - EXIT INT TERM
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || as_root kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 100); do
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
        wait "$pid" 2>/dev/null || true
    done
    as_root rm -f "$pam"
    if [ "$keep" = 0 ]; then
        as_root rm -rf "$work"
    fi
    say "stopped"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# --- The private vsftpd ------------------------------------------------------------------------
printf 'auth required pam_permit.so\naccount required pam_permit.so\nsession required pam_permit.so\n' |
    as_root tee "$pam" >/dev/null
cat >"$work/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$vs_port
background=NO
seccomp_sandbox=NO
anonymous_enable=NO
local_enable=YES
guest_enable=YES
guest_username=ftp
virtual_use_local_privs=YES
pam_service_name=$(basename "$pam")
local_root=$tree
chroot_local_user=YES
write_enable=YES
local_umask=022
pasv_enable=YES
pasv_min_port=$vs_pasv
pasv_max_port=$((vs_pasv + 9))
secure_chroot_dir=$work/empty
xferlog_enable=YES
xferlog_std_format=NO
log_ftp_protocol=YES
vsftpd_log_file=$work/vsftpd.log
syslog_enable=NO
EOF
# Started directly (or by sudo, which passes signals on), so that its pid is the one stopped.
runner=()
[ "$(id -u)" -eq 0 ] || runner=(sudo)
"${runner[@]}" /usr/sbin/vsftpd "$work/vsftpd.conf" </dev/null >"$work/vsftpd.out" 2>&1 &
pids+=("$!")

wait_port() { # PORT PID: until PORT listens, while PID runs, for at most 15 s
    local deadline=$((SECONDS + 15))
    until listening "$1"; do
        [ -d "/proc/$2" ] || return 1
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}
wait_port "$vs_port" "${pids[0]}" || {
    say "vsftpd did not start: $(cat "$work/vsftpd.out")"
    exit 1
}

# --- ftpgate in front of it --------------------------------------------------------------------
cat >"$work/ftpgate.json" <<EOF
{
  "workers": 1,
  "user": "nobody",
  "listeners": [ { "address": "127.0.0.1:$gate_port" } ],
  "passive": { "ports": "$gate_pasv-$((gate_pasv + 19))", "advertise": "127.0.0.1" },
  "backends": { "demo": { "servers": ["127.0.0.1:$vs_port"] } },
  "roles": {
    "read-only": { "allow": ["RETR", "LIST", "NLST", "SIZE", "MDTM", "CWD", "CDUP", "PWD"] },
    "upload-only": { "allow": ["STOR", "CWD", "CDUP", "PWD"] }
  },
  "users": {
    "partner-reader": { "role": "read-only", "backend": "demo", "allow_from": ["127.0.0.0/8"] },
    "partner-uploader": { "role": "upload-only", "backend": "demo", "allow_from": ["127.0.0.0/8"] }
  },
  "defaults": { "timeouts": { "login": 30, "idle": 120, "session": 600 } },
  "audit": { "file": "$audit" }
}
EOF
chmod 0644 "$work/ftpgate.json"
if [ "$(id -u)" -eq 0 ]; then
    # Started as root, ftpgate binds its listener, then gives root up for the policy's
    # "user" (nobody here; the packages create an ftpgate account): the audit file is that
    # account's.
    touch "$audit"
    chown nobody: "$audit"
fi
"$ftpgate" --check --config "$work/ftpgate.json" >/dev/null
"$ftpgate" --config "$work/ftpgate.json" --log-format text </dev/null >"$work/ftpgate.log" 2>&1 &
pids+=("$!")
wait_port "$gate_port" "${pids[1]}" || {
    say "ftpgate did not start: $(cat "$work/ftpgate.log")"
    exit 1
}
touch "$audit"

url=ftp://127.0.0.1:$gate_port
cat <<EOF

ftpgate listens on 127.0.0.1:$gate_port in front of vsftpd on 127.0.0.1:$vs_port.
Sample tree: $tree (policy: $work/ftpgate.json, audit trail: $audit)

Try, from another terminal:

  curl $url/reports/ -u partner-reader:demo                         # listing: allowed
  curl $url/reports/daily.csv -u partner-reader:demo                # download: allowed
  curl -T $work/invoice.txt $url/incoming/ -u partner-reader:demo   # upload: refused (550), read-only
  curl -T $work/invoice.txt $url/incoming/ -u partner-uploader:demo # upload: allowed
  curl $url/reports/daily.csv -u partner-uploader:demo              # download: refused (550), upload-only
  curl $url/ -u mallory:secret                                      # unknown user: refused (530) after 3 s

A refused command never reaches vsftpd (see $work/vsftpd.log), and an unknown user
never causes a connection to it. The audit trail, as it is written (Ctrl-C stops it all):

EOF
echo "demo: ready" >&2
tail -n 0 -F "$audit" &
pids+=("$!")
wait "${pids[2]}"
