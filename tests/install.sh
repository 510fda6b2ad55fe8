#!/usr/bin/env bash
# Install test of the ftpgate packages (run by .ci/run after ./tests/run.sh):
#
#   ./tests/install.sh
#
# Builds the .deb and the .rpm (packaging/build-deb.sh, packaging/build-rpm.sh), installs the
# .deb with dpkg and checks the files, owners, modes, conffiles, the system user and the unit
# (systemd-analyze verify and security); upgrades it and checks that a changed policy is
# kept; runs the INSTALLED binary as the ftpgate user in front of a private vsftpd and passes
# downloads through it (SHA-256 compared, upload refused, audit trail written, log rotation
# and reopen on SIGHUP, drain on SIGTERM); removes, then purges the package and checks that
# only /var/log/ftpgate is left and the user is gone. Then checks the .rpm: the same files, the
# config files, modes and scriptlets, and installs and erases it with a private rpm database
# (so its scriptlets really run; FTPGATE_INSTALL_TEST_RPM=0 skips that part).
#
# It changes the machine: it needs root (it asks sudo when run as another user, after
# building the packages as that user), installs what it lacks with apt-get (dpkg-dev, rpm,
# systemd, vsftpd, curl, logrotate, adduser), installs and purges the package, and creates
# and removes the ftpgate user. It refuses to run where ftpgate is already installed.
# systemd need not be running: the unit is checked offline and the service is not started.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "install.sh: $*" >&2; }
fail() {
    echo "install.sh: FAIL: $*" >&2
    exit 1
}
ok() { echo "ok - $*"; }
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    fail "needs root (or sudo)"
fi

# --- What the test needs ----------------------------------------------------------------------

missing=()
command -v dpkg-shlibdeps >/dev/null 2>&1 || missing+=(dpkg-dev)
command -v rpmbuild >/dev/null 2>&1 || missing+=(rpm)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
[ -x /usr/sbin/vsftpd ] || missing+=(vsftpd)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v logrotate >/dev/null 2>&1 || missing+=(logrotate)
command -v adduser >/dev/null 2>&1 || missing+=(adduser)
command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive timeout 600 \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The vsftpd package may start a system vsftpd on port 21; this test runs its own.
if [ -x /etc/init.d/vsftpd ] && ! [ -d /run/systemd/system ]; then
    as_root timeout 30 /etc/init.d/vsftpd stop >/dev/null 2>&1 || true
fi

# --- The packages (built as the calling user) -------------------------------------------------

deb=$(find target/packages -maxdepth 1 -name 'ftpgate_*.deb' 2>/dev/null | sort | tail -n 1 || true)
rpm=$(find target/packages -maxdepth 1 -name 'ftpgate-*.rpm' 2>/dev/null | sort | tail -n 1 || true)
if [ "${FTPGATE_INSTALL_TEST_BUILT:-0}" != 1 ]; then
    rm -f target/packages/ftpgate_*.deb target/packages/ftpgate-*.rpm
    deb=$(packaging/build-deb.sh)
    ok "built $deb"
    rpm=$(packaging/build-rpm.sh)
    ok "built $rpm"
fi
if [ ! -f "$deb" ] || [ ! -f "$rpm" ]; then
    fail "no packages in target/packages"
fi
if [ "$(id -u)" -ne 0 ]; then
    say "the rest needs root: running it with sudo"
    exec sudo env FTPGATE_INSTALL_TEST_BUILT=1 \
        FTPGATE_INSTALL_TEST_RPM="${FTPGATE_INSTALL_TEST_RPM:-1}" bash "$0"
fi

# --- Refuse to touch a real installation ------------------------------------------------------

status=$(dpkg-query -W -f='${db:Status-Status}' ftpgate 2>/dev/null || true)
if [ -n "$status" ] && [ "$status" != not-installed ]; then
    fail "the ftpgate package is installed here ($status); this test would purge it"
fi
if getent passwd ftpgate >/dev/null || getent group ftpgate >/dev/null; then
    fail "a user or group ftpgate exists already; this test would delete it"
fi
if [ -e /usr/sbin/ftpgate ] || [ -e /etc/ftpgate ]; then
    fail "/usr/sbin/ftpgate or /etc/ftpgate exists without the package"
fi

# --- Cleanup: every process started here is stopped by its pid --------------------------------

work=$(mktemp -d /tmp/ftpgate-install.XXXXXX)
chmod 0755 "$work"
log_dir_existed=0
[ -d /var/log/ftpgate ] && log_dir_existed=1
audit=/var/log/ftpgate/install-test-$$.jsonl
pids=()
rpmdb=$work/rpmdb

stop_pid() { # PID SECONDS: SIGTERM, then SIGKILL at the deadline; true if it was running
    local pid=$1 deadline=$((SECONDS + $2))
    kill -0 "$pid" 2>/dev/null || return 1
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        say "pid $pid ignored SIGTERM for $2 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    return 0
}

cleanup() {
    local rc=$?
    set +e
    for pid in "${pids[@]}"; do
        stop_pid "$pid" 10 && say "stopped pid $pid"
    done
    wait 2>/dev/null
    status=$(dpkg-query -W -f='${db:Status-Status}' ftpgate 2>/dev/null)
    if [ -n "$status" ] && [ "$status" != not-installed ]; then
        say "purging the ftpgate package left by the failed test"
        timeout 300 dpkg --purge ftpgate >/dev/null 2>&1
    fi
    if [ -d "$rpmdb" ] && rpm -q --dbpath "$rpmdb" ftpgate >/dev/null 2>&1; then
        say "erasing the ftpgate rpm left by the failed test"
        timeout 300 rpm -e --nodeps --dbpath "$rpmdb" ftpgate >/dev/null 2>&1
    fi
    if [ "$log_dir_existed" = 0 ]; then
        rm -rf /var/log/ftpgate
    else
        rm -f "$audit" "$audit"[.-]*
    fi
    rm -rf "$work"
    if [ "$rc" -eq 0 ]; then
        say "PASS"
    else
        say "FAILED (exit $rc)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Helpers ----------------------------------------------------------------------------------

# "MODE OWNER:GROUP" of a path, e.g. "640 root:ftpgate".
mode_owner() { stat -c '%a %U:%G' "$1"; }
expect_mode() { # PATH "MODE OWNER:GROUP"
    [ -e "$1" ] || fail "$1 is missing"
    local got
    got=$(mode_owner "$1")
    [ "$got" = "$2" ] || fail "$1 is $got, expected $2"
}

# True when a socket listens on 127.0.0.1:PORT (or the wildcard address), read from
# /proc/net/tcp so that no probe connection shows up in a log or the audit trail.
is_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v a="0100007F:$hex" -v w="00000000:$hex" \
        'NR > 1 && $4 == "0A" && ($2 == a || $2 == w) { found = 1 } END { exit !found }' \
        /proc/net/tcp
}

wait_listening() { # PORT PID SECONDS
    local deadline=$((SECONDS + $3))
    while [ "$SECONDS" -lt "$deadline" ]; do
        kill -0 "$2" 2>/dev/null || return 1
        is_listening "$1" && return 0
        sleep 0.1
    done
    return 1
}

# A block of LEN ports below the ephemeral range (like tests/common), none listening now.
port_block() {
    local len=$1 base p busy
    for _ in $(seq 1 50); do
        base=$((20000 + RANDOM % (12000 - len)))
        busy=0
        for p in $(seq "$base" $((base + len - 1))); do
            if is_listening "$p"; then
                busy=1
                break
            fi
        done
        [ "$busy" = 0 ] && {
            echo "$base"
            return 0
        }
    done
    fail "no free block of $len ports"
}

# The files (not directories) of the .deb, as absolute paths.
deb_files() { dpkg-deb --fsys-tarfile "$deb" | tar -t | grep -v '/$' | sed 's|^\./|/|' | sort; }

# --- 1. Install the .deb ----------------------------------------------------------------------

say "installing $deb"
if ! timeout 300 dpkg -i "$deb" >"$work/dpkg-install.log" 2>&1; then
    say "dpkg -i failed, installing the dependencies: $(tail -n 3 "$work/dpkg-install.log")"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -f -y -q >>"$work/dpkg-install.log" 2>&1 ||
        fail "apt-get install -f: $(tail -n 20 "$work/dpkg-install.log")"
fi
[ "$(dpkg-query -W -f='${db:Status-Status}' ftpgate)" = installed ] ||
    fail "the package is not installed: $(cat "$work/dpkg-install.log")"
ok "dpkg -i $(basename "$deb")"

while read -r f; do
    [ -f "$f" ] || fail "$f (from the package) is missing"
done < <(deb_files)
verify=$(dpkg --verify ftpgate 2>&1 || true)
[ -z "$verify" ] || fail "dpkg --verify ftpgate: $verify"
ok "every file of the package is installed and matches its md5sum"

expect_mode /usr/sbin/ftpgate "755 root:root"
expect_mode /etc/ftpgate "755 root:root"
expect_mode /etc/ftpgate/ftpgate.json "640 root:ftpgate"
expect_mode /etc/logrotate.d/ftpgate "644 root:root"
expect_mode /usr/lib/systemd/system/ftpgate.service "644 root:root"
expect_mode /usr/share/man/man8/ftpgate.8.gz "644 root:root"
expect_mode /usr/share/man/man5/ftpgate.json.5.gz "644 root:root"
expect_mode /usr/share/doc/ftpgate/copyright "644 root:root"
expect_mode /usr/share/doc/ftpgate/audit-schema.json "644 root:root"
expect_mode /usr/share/doc/ftpgate/changelog.Debian.gz "644 root:root"
expect_mode /var/log/ftpgate "750 ftpgate:adm"
expect_mode /var/lib/ftpgate "750 ftpgate:ftpgate"
ok "owners and modes (policy 0640 root:ftpgate, logs 0750 ftpgate:adm, state 0750 ftpgate:ftpgate)"

conffiles=$(dpkg-query -W -f='${Conffiles}' ftpgate | awk 'NF { print $1 }' | sort)
[ "$conffiles" = "$(printf '%s\n' /etc/ftpgate/ftpgate.json /etc/logrotate.d/ftpgate)" ] ||
    fail "conffiles are: $conffiles"
ok "conffiles: /etc/ftpgate/ftpgate.json /etc/logrotate.d/ftpgate"

IFS=: read -r _ _ uid gid _ home shell < <(getent passwd ftpgate) || fail "no user ftpgate"
[ "$(getent group ftpgate | cut -d: -f3)" = "$gid" ] || fail "ftpgate's group is not ftpgate"
[ "$uid" -lt 1000 ] || fail "ftpgate is not a system user (uid $uid)"
if [ "$home" != /nonexistent ] || [ -e /nonexistent ]; then
    fail "ftpgate's home is $home"
fi
case "$shell" in
    /usr/sbin/nologin | /sbin/nologin | /bin/false | /usr/bin/false) ;;
    *) fail "ftpgate has the login shell $shell" ;;
esac
ok "system user ftpgate (uid $uid, group ftpgate, home /nonexistent, shell $shell)"

for p in /usr/share/man/man8/ftpgate.8.gz /usr/share/man/man5/ftpgate.json.5.gz \
    /usr/share/doc/ftpgate/changelog.Debian.gz; do
    gzip -t "$p" || fail "$p is not a valid gzip file"
done
if command -v man >/dev/null 2>&1; then
    [ "$(man -w 8 ftpgate)" = /usr/share/man/man8/ftpgate.8.gz ] || fail "man -w 8 ftpgate"
    [ "$(man -w 5 ftpgate.json)" = /usr/share/man/man5/ftpgate.json.5.gz ] ||
        fail "man -w 5 ftpgate.json"
fi
ok "man pages ftpgate(8) and ftpgate.json(5)"

timeout 30 /usr/sbin/ftpgate --check --config /etc/ftpgate/ftpgate.json >"$work/check.out" 2>&1 ||
    fail "ftpgate --check on the installed policy: $(cat "$work/check.out")"
# Loopback only until the operator edits it (the anonymous read-only users must not be open
# to the network on installation).
grep -q '127.0.0.1:2121' "$work/check.out" || fail "the default policy does not listen on 127.0.0.1:2121"
! grep -Eq '0\.0\.0\.0|\[::\]' /etc/ftpgate/ftpgate.json ||
    fail "the default policy listens on a wildcard address: $(grep -E '0\.0\.0\.0|\[::\]' /etc/ftpgate/ftpgate.json)"
timeout 30 setpriv --reuid=ftpgate --regid=ftpgate --init-groups \
    /usr/sbin/ftpgate --check --config /etc/ftpgate/ftpgate.json >/dev/null 2>&1 ||
    fail "the ftpgate user cannot read and check /etc/ftpgate/ftpgate.json"
ok "ftpgate --check --config /etc/ftpgate/ftpgate.json passes (as root and as ftpgate)"
# The owner and mode checks: the installed policy is refused once every user can write it.
chmod o+w /etc/ftpgate/ftpgate.json
if timeout 30 /usr/sbin/ftpgate --check --config /etc/ftpgate/ftpgate.json >"$work/check.out" 2>&1; then
    chmod o-w /etc/ftpgate/ftpgate.json
    fail "ftpgate --check accepted /etc/ftpgate/ftpgate.json with mode o+w"
fi
chmod o-w /etc/ftpgate/ftpgate.json
grep -q '/etc/ftpgate/ftpgate.json: every user can write it (mode 0642); run chmod o-w' \
    "$work/check.out" || fail "unexpected refusal: $(cat "$work/check.out")"
expect_mode /etc/ftpgate/ftpgate.json "640 root:ftpgate"
ok "ftpgate --check refuses the installed policy once every user can write it"
examples=(/usr/share/doc/ftpgate/examples/*.json)
[ "${#examples[@]}" -ge 5 ] || fail "fewer than 5 example policies"
# Examples naming /etc/ftpgate/tls/ files are checked against throwaway certificates, with
# modes that --check accepts whatever the umask (no group or other write, the key 0600).
mkdir -p "$work/tls"
chmod 0755 "$work/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=example.invalid \
    -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" >/dev/null 2>&1 ||
    fail "openssl req"
# ftps-termination.json lists an ECDSA certificate before the RSA one (tls.certificates).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=example.invalid -keyout "$work/tls/ecdsa.key" -out "$work/tls/ecdsa.pem" \
    >/dev/null 2>&1 || fail "openssl req (ECDSA)"
cp "$work/tls/cert.pem" "$work/tls/internal-ca.pem"
chmod 0600 "$work/tls/key.pem" "$work/tls/ecdsa.key"
chmod 0644 "$work/tls/cert.pem" "$work/tls/ecdsa.pem" "$work/tls/internal-ca.pem"
for ex in "${examples[@]}"; do
    checked=$ex
    if grep -q '/etc/ftpgate/tls/' "$ex"; then
        checked="$work/tls/$(basename "$ex")"
        sed "s#/etc/ftpgate/tls/#$work/tls/#g" "$ex" >"$checked"
        chmod 0644 "$checked"
    fi
    # 3: valid, with warnings; some examples earn them on purpose (tests/check_warnings.rs).
    status=0
    timeout 30 /usr/sbin/ftpgate --check --config "$checked" >"$work/check.out" 2>&1 || status=$?
    [ "$status" -eq 0 ] || [ "$status" -eq 3 ] ||
        fail "example $ex: $(cat "$work/check.out")"
done
ok "${#examples[@]} example policies pass ftpgate --check"

unit=/usr/lib/systemd/system/ftpgate.service
# Readiness: Type=notify, only the main process (the supervisor) may notify; a reload checks
# the file before it signals (tests/systemd.rs runs these commands on a broken policy).
grep -qx 'Type=notify' "$unit" || fail "the unit is not Type=notify"
grep -qx 'NotifyAccess=main' "$unit" || fail "the unit lacks NotifyAccess=main"
reloads=$(grep '^ExecReload=' "$unit")
head -n 1 <<<"$reloads" | grep -q "^ExecReload=/bin/sh -c '/usr/sbin/ftpgate --check --config /etc/ftpgate/ftpgate.json;" ||
    fail "ExecReload does not check the policy first: $reloads"
[ "$(tail -n 1 <<<"$reloads")" = 'ExecReload=/bin/kill -HUP $MAINPID' ] ||
    fail "ExecReload does not end with SIGHUP: $reloads"
ok "unit: Type=notify, NotifyAccess=main, ExecReload checks the policy before SIGHUP"
if timeout 60 systemd-analyze verify "$unit" >"$work/verify.out" 2>&1 && [ ! -s "$work/verify.out" ]; then
    ok "systemd-analyze verify $unit: clean"
else
    fail "systemd-analyze verify $unit: $(cat "$work/verify.out")"
fi
if timeout 60 systemd-analyze security --offline=true "$unit" >"$work/security.out" 2>&1; then
    exposure=$(sed -n 's/.*Overall exposure level for ftpgate.service: \([0-9.]*\).*/\1/p' \
        "$work/security.out")
    [ -n "$exposure" ] || fail "systemd-analyze security: $(tail -n 3 "$work/security.out")"
    awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' ||
        fail "the unit's exposure rose to $exposure (packaged: 1.5): $(grep '✗' "$work/security.out")"
    ok "systemd-analyze security --offline=true: overall exposure $exposure"
else
    say "systemd-analyze security --offline=true is not available here: $(tail -n 1 "$work/security.out")"
fi
wants=/etc/systemd/system/multi-user.target.wants/ftpgate.service
if command -v deb-systemd-helper >/dev/null 2>&1; then
    [ -L "$wants" ] || fail "the unit was not enabled ($wants missing)"
    ok "ftpgate.service enabled (multi-user.target.wants)"
fi
if [ -d /run/systemd/system ]; then
    say "systemd runs here: the package has started ftpgate.service; this test leaves it alone"
else
    say "no running systemd: the unit was enabled but not started (as intended)"
fi

# An upgrade (the same package repacked with a higher revision) keeps a changed policy, the
# user and the modes.
printf '\n' >>/etc/ftpgate/ftpgate.json
policy_sha=$(sha256sum </etc/ftpgate/ftpgate.json)
dpkg-deb -R "$deb" "$work/upgrade"
sed -i 's/^Version: \(.*\)$/Version: \1+upgradetest1/' "$work/upgrade/DEBIAN/control"
dpkg-deb --root-owner-group -b "$work/upgrade" "$work/upgrade.deb" >/dev/null
rm -rf "$work/upgrade"
timeout 300 dpkg -i "$work/upgrade.deb" >"$work/dpkg-upgrade.log" 2>&1 ||
    fail "dpkg -i (upgrade): $(cat "$work/dpkg-upgrade.log")"
[ "$(dpkg-query -W -f='${Version}' ftpgate)" = "$(dpkg-deb -f "$deb" Version)+upgradetest1" ] ||
    fail "the upgrade was not installed"
[ "$(sha256sum </etc/ftpgate/ftpgate.json)" = "$policy_sha" ] || fail "the upgrade replaced the changed policy"
expect_mode /etc/ftpgate/ftpgate.json "640 root:ftpgate"
expect_mode /var/log/ftpgate "750 ftpgate:adm"
[ "$(id -u ftpgate)" = "$uid" ] || fail "the upgrade changed ftpgate's uid"
ok "upgrade: the changed policy is kept (conffile), user and modes unchanged"

# --- 2. The installed binary, as the ftpgate user, in front of a private vsftpd ---------------

vs_root=$work/ftproot
mkdir -p "$vs_root/pub" "$work/empty"
chmod 0755 "$vs_root" "$work/empty"
chown ftp:ftp "$vs_root/pub"
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$vs_root/data.bin"
chmod 0644 "$vs_root/data.bin"
want_sha=$(sha256sum <"$vs_root/data.bin" | cut -d' ' -f1)
size=$(stat -c %s "$vs_root/data.bin")
printf 'not allowed\n' >"$work/upload.txt"

vs_pid=
for _ in 1 2 3; do
    vs_port=$(port_block 1)
    vs_pasv=$(port_block 20)
    cat >"$work/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$vs_port
background=NO
seccomp_sandbox=NO
anonymous_enable=YES
local_enable=NO
no_anon_password=YES
anon_root=$vs_root
write_enable=YES
anon_upload_enable=YES
anon_mkdir_write_enable=YES
anon_umask=022
pasv_enable=YES
pasv_min_port=$vs_pasv
pasv_max_port=$((vs_pasv + 19))
port_enable=YES
connect_from_port_20=NO
xferlog_enable=YES
xferlog_std_format=NO
syslog_enable=NO
log_ftp_protocol=YES
vsftpd_log_file=$work/vsftpd.log
secure_chroot_dir=$work/empty
EOF
    /usr/sbin/vsftpd "$work/vsftpd.conf" </dev/null >"$work/vsftpd.out" 2>&1 &
    vs_pid=$!
    pids+=("$vs_pid")
    wait_listening "$vs_port" "$vs_pid" 10 && break
    stop_pid "$vs_pid" 5 || true
    vs_pid=
done
[ -n "$vs_pid" ] || fail "vsftpd did not start: $(cat "$work/vsftpd.out")"
ok "private vsftpd on 127.0.0.1:$vs_port (pid $vs_pid)"

gw_pid=
for _ in 1 2 3; do
    gw_port=$(port_block 1)
    gw_pasv=$(port_block 20)
    cat >"$work/policy.json" <<EOF
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$gw_port" } ],
  "passive": { "ports": "$gw_pasv-$((gw_pasv + 19))" },
  "backends": { "vsftpd": { "servers": ["127.0.0.1:$vs_port"] } },
  "roles": {
    "read-only": { "allow": ["RETR", "LIST", "NLST", "SIZE", "MDTM", "CWD", "CDUP", "PWD"] }
  },
  "users": { "anonymous": { "role": "read-only", "backend": "vsftpd" } },
  "defaults": { "timeouts": { "login": 30, "idle": 60, "session": 300 } },
  "audit": { "file": "$audit" }
}
EOF
    chmod 0644 "$work/policy.json"
    # As the service runs it: user ftpgate, no capabilities at all, no new privileges.
    setpriv --reuid=ftpgate --regid=ftpgate --init-groups --no-new-privs \
        --inh-caps=-all --bounding-set=-all \
        /usr/sbin/ftpgate --config "$work/policy.json" </dev/null >"$work/ftpgate.log" 2>&1 &
    gw_pid=$!
    pids+=("$gw_pid")
    wait_listening "$gw_port" "$gw_pid" 15 && break
    stop_pid "$gw_pid" 10 || true
    gw_pid=
done
[ -n "$gw_pid" ] || fail "the installed ftpgate did not start: $(cat "$work/ftpgate.log")"
[ "$(ps -o user= -p "$gw_pid" | tr -d ' ')" = ftpgate ] || fail "ftpgate does not run as ftpgate"
workers=$(ps -o pid=,user= --ppid "$gw_pid" | awk '$2 == "ftpgate" { n++ } END { print n + 0 }')
[ "$workers" = 2 ] || fail "expected 2 workers of user ftpgate, found $workers"
ok "installed ftpgate runs as user ftpgate on 127.0.0.1:$gw_port: supervisor $gw_pid, 2 workers"

url=ftp://anonymous:x@127.0.0.1:$gw_port
download() { # FILE [CURL OPTIONS]: downloads data.bin through ftpgate, checks its SHA-256
    local out=$1
    shift
    rm -f "$out"
    curl -sS --max-time 30 "$@" -o "$out" "$url/data.bin" 2>"$work/curl.err" ||
        fail "download through ftpgate: $(cat "$work/curl.err")"
    [ "$(sha256sum <"$out" | cut -d' ' -f1)" = "$want_sha" ] ||
        fail "the download through ftpgate differs from the file (SHA-256)"
}
download "$work/passive.bin"
ok "passive download through the installed ftpgate: $size bytes, SHA-256 $want_sha"
download "$work/active.bin" -P 127.0.0.1
ok "active (EPRT) download through the installed ftpgate: same SHA-256"
if curl -sS --max-time 30 -T "$work/upload.txt" "$url/pub/upload.txt" 2>"$work/curl.err"; then
    fail "an upload got through the read-only role"
fi
[ ! -e "$vs_root/pub/upload.txt" ] || fail "the refused upload reached the backend"
ok "upload refused by the read-only role ($(tr -d '\n' <"$work/curl.err"))"

expect_mode "$audit" "640 ftpgate:ftpgate"
grep '"event":"transfer"' "$audit" | grep '"result":"ok"' | grep -q "\"bytes\":$size" ||
    fail "no successful transfer of $size bytes in the audit file: $(tail -n 5 "$audit")"
ok "audit trail written by the ftpgate user to $audit"

# Log rotation with the packaged rules (for this test's file only: any other audit trail in
# /var/log/ftpgate is not this test's to rotate), then SIGUSR2 to reopen, as the postrotate
# script does through systemd (without reloading the policy).
sed "s|^/var/log/ftpgate/\*\.jsonl {|$audit {|" /etc/logrotate.d/ftpgate >"$work/logrotate.conf"
grep -q "^$audit {" "$work/logrotate.conf" || fail "unexpected /etc/logrotate.d/ftpgate"
timeout 60 logrotate -f -s "$work/logrotate.state" "$work/logrotate.conf" 2>"$work/logrotate.err" ||
    fail "logrotate: $(cat "$work/logrotate.err")"
rotated=$(find /var/log/ftpgate -maxdepth 1 -name "$(basename "$audit")-*" | head -n 1)
[ -n "$rotated" ] || fail "logrotate did not rotate $audit"
expect_mode "$audit" "640 ftpgate:adm"
[ ! -s "$audit" ] || fail "the new audit file is not empty"
grep -q 'systemctl kill --kill-who=main --signal=SIGUSR2 ftpgate.service' /etc/logrotate.d/ftpgate ||
    fail "the packaged postrotate does not send SIGUSR2: $(cat /etc/logrotate.d/ftpgate)"
kill -USR2 "$gw_pid"
deadline=$((SECONDS + 15))
until [ "$(grep -c 'audit trail reopened' "$work/ftpgate.log")" -ge 2 ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the workers did not reopen the audit file on SIGUSR2"
    sleep 0.1
done
download "$work/after-usr2.bin"
deadline=$((SECONDS + 15))
until grep -q '"event":"transfer"' "$audit" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "no transfer event in the new audit file after SIGUSR2"
    sleep 0.1
done
kill -0 "$gw_pid" || fail "ftpgate died on SIGUSR2"
! grep -q 'reload' "$work/ftpgate.log" || fail "SIGUSR2 reloaded the policy: $(grep reload "$work/ftpgate.log")"
ok "logrotate rotated the audit file to $(basename "$rotated"); SIGUSR2 reopened $audit (no reload)"

stop_pid "$gw_pid" 45 || fail "ftpgate was not running at the end"
gw_status=0
wait "$gw_pid" || gw_status=$?
[ "$gw_status" = 0 ] || fail "ftpgate exited with $gw_status on SIGTERM: $(tail -n 5 "$work/ftpgate.log")"
[ -z "$(ps -o pid= --ppid "$gw_pid" 2>/dev/null)" ] || fail "workers outlived the supervisor"
ok "SIGTERM: ftpgate drained and exited 0"
stop_pid "$vs_pid" 10 || true
wait "$vs_pid" 2>/dev/null || true

# --- 3. Remove, then purge --------------------------------------------------------------------

timeout 300 dpkg -r ftpgate >"$work/remove.log" 2>&1 || fail "dpkg -r: $(cat "$work/remove.log")"
[ "$(dpkg-query -W -f='${db:Status-Status}' ftpgate)" = config-files ] || fail "dpkg -r did not remove"
[ ! -e /usr/sbin/ftpgate ] || fail "dpkg -r left /usr/sbin/ftpgate"
[ "$(sha256sum </etc/ftpgate/ftpgate.json)" = "$policy_sha" ] || fail "dpkg -r lost the policy"
getent passwd ftpgate >/dev/null || fail "dpkg -r removed the user (only purge may)"
ok "dpkg -r: binary gone; policy, user and directories kept until purge"

timeout 300 dpkg --purge ftpgate >"$work/purge.log" 2>&1 || fail "dpkg --purge: $(cat "$work/purge.log")"
grep -q '/var/log/ftpgate is kept' "$work/purge.log" ||
    fail "purge printed no note about the kept audit trail: $(cat "$work/purge.log")"
status=$(dpkg-query -W -f='${db:Status-Status}' ftpgate 2>/dev/null || true)
[ -z "$status" ] || [ "$status" = not-installed ] || fail "after purge the package is $status"
while read -r f; do
    [ ! -e "$f" ] || fail "$f is left after purge"
done < <(deb_files)
for d in /etc/ftpgate /var/lib/ftpgate /usr/share/doc/ftpgate "$wants"; do
    if [ -e "$d" ] || [ -L "$d" ]; then fail "$d is left after purge"; fi
done
! getent passwd ftpgate >/dev/null || fail "user ftpgate is left after purge"
! getent group ftpgate >/dev/null || fail "group ftpgate is left after purge"
expect_mode /var/log/ftpgate "750 root:adm"
orphans=$(find /etc /var /usr /tmp -xdev \( -uid "$uid" -o -gid "$gid" \) -print 2>/dev/null | head -n 5)
[ -z "$orphans" ] || fail "files still owned by the removed uid/gid $uid/$gid: $orphans"
ok "dpkg --purge: only /var/log/ftpgate is left (root:adm, note printed), user and group gone"

# Installing again after a purge: the audit file the purge handed to root is set aside (the
# service could not append to it), the rest of the kept trail stays as it is.
timeout 300 dpkg -i "$deb" >"$work/dpkg-reinstall.log" 2>&1 ||
    fail "dpkg -i after purge: $(cat "$work/dpkg-reinstall.log")"
[ ! -e "$audit" ] || fail "postinst left the root-owned $audit in the way"
set -- "$audit".before-reinstall-*
if [ ! -f "$1" ] || [ "$(mode_owner "$1")" != "640 root:adm" ]; then
    fail "postinst did not keep $audit as $audit.before-reinstall-*"
fi
grep -q before-reinstall "$work/dpkg-reinstall.log" || fail "postinst printed no note"
[ -n "$(find /var/log/ftpgate -maxdepth 1 -name "$(basename "$audit")-*" -user root)" ] ||
    fail "the rotated audit file did not stay with root"
expect_mode /var/log/ftpgate "750 ftpgate:adm"
timeout 300 dpkg --purge ftpgate >/dev/null 2>&1 || fail "dpkg --purge (second)"
! getent passwd ftpgate >/dev/null || fail "user ftpgate is left after the second purge"
ok "reinstall after purge: the old audit file set aside as $(basename "$1"), purge again"

# --- 4. The .rpm ------------------------------------------------------------------------------

rpm_files=$(rpm -qlp "$rpm" 2>/dev/null | sort)
rpm_regular=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm" 2>/dev/null |
    awk '$1 !~ /^d/ { print $2 }' | sort)
deb_only=(/usr/share/doc/ftpgate/changelog.Debian.gz /usr/share/lintian/overrides/ftpgate)
rpm_only=(/usr/lib/systemd/system-preset/90-ftpgate.preset)
deb_regular=$(deb_files | grep -vxF -f <(printf '%s\n' "${deb_only[@]}"))
grep -qxF "${rpm_only[0]}" <<<"$rpm_regular" || fail "the .rpm has no systemd preset"
rpm_regular=$(grep -vxF -f <(printf '%s\n' "${rpm_only[@]}") <<<"$rpm_regular")
[ "$rpm_regular" = "$deb_regular" ] ||
    fail "the .rpm and the .deb hold different files: $(diff <(echo "$deb_regular") <(echo "$rpm_regular"))"
for d in /etc/ftpgate /usr/share/doc/ftpgate /usr/share/doc/ftpgate/examples; do
    grep -qx "$d" <<<"$rpm_files" || fail "the .rpm does not own $d"
done
ok "rpm -qlp: the same $(wc -l <<<"$rpm_regular") files as the .deb (which adds only ${deb_only[*]}; the .rpm only ${rpm_only[*]})"

[ "$(rpm -qcp "$rpm" 2>/dev/null | sort)" = "$conffiles" ] || fail "rpm config files: $(rpm -qcp "$rpm")"
attrs=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$rpm" 2>/dev/null)
grep -qx -- '-rw-r----- root:ftpgate /etc/ftpgate/ftpgate.json' <<<"$attrs" || fail "rpm: policy $attrs"
grep -qx -- '-rwxr-xr-x root:root /usr/sbin/ftpgate' <<<"$attrs" || fail "rpm: binary $attrs"
ok "rpm: config files are the conffiles; policy 0640 root:ftpgate, binary 0755 root:root"

scripts=$(rpm -qp --scripts "$rpm" 2>/dev/null)
for want in 'preinstall scriptlet' 'groupadd --system ftpgate' 'useradd --system --gid ftpgate' \
    '--shell /usr/sbin/nologin' 'chown ftpgate:adm /var/log/ftpgate' 'userdel ftpgate' \
    '/var/log/ftpgate is kept'; do
    grep -qF -- "$want" <<<"$scripts" || fail "rpm -qp --scripts lacks: $want"
done
# Installed disabled (Fedora/RHEL practice): the preset says so, %post neither enables nor
# starts the service.
post=$(sed -n '/^postinstall scriptlet/,/^[a-z]* scriptlet/p' <<<"$scripts")
grep -qF 'systemctl --no-reload preset ftpgate.service' <<<"$post" || fail "rpm %post does not apply the preset"
! grep -Eq 'systemctl [^|;]*(enable|start|restart)' <<<"$post" || fail "rpm %post enables or starts: $post"
ok "rpm -qp --scripts: creates the user and group, the log directory; erase keeps the logs; installed disabled (preset)"

if [ "${FTPGATE_INSTALL_TEST_RPM:-1}" = 1 ]; then
    # Install and erase it for real, with a private rpm database: the scriptlets run.
    force=()
    rpm --help 2>/dev/null | grep -q -- --force-debian && force=(--force-debian)
    mkdir -p "$rpmdb"
    # An audit file as a purge or erase leaves it, owned by root: %post must set it aside.
    install -m 0640 -o root -g adm /dev/null "$audit"
    timeout 300 rpm -i --nodeps "${force[@]}" --dbpath "$rpmdb" "$rpm" >"$work/rpm.log" 2>&1 ||
        fail "rpm -i: $(cat "$work/rpm.log")"
    getent passwd ftpgate | grep -q ':/nonexistent:/usr/sbin/nologin$' ||
        fail "rpm %pre: user $(getent passwd ftpgate)"
    expect_mode /etc/ftpgate/ftpgate.json "640 root:ftpgate"
    expect_mode /var/log/ftpgate "750 ftpgate:adm"
    expect_mode /var/lib/ftpgate "750 ftpgate:ftpgate"
    # The audit file the purge handed to root is set aside, so the service can start a new one.
    [ ! -e "$audit" ] || fail "rpm %post left the root-owned $audit in the way"
    set -- "$audit".before-reinstall-*
    [ -f "$1" ] || fail "rpm %post did not keep $audit as $audit.before-reinstall-*"
    grep -q "before-reinstall" "$work/rpm.log" || fail "rpm %post printed no note"
    timeout 30 setpriv --reuid=ftpgate --regid=ftpgate --init-groups \
        /usr/sbin/ftpgate --check --config /etc/ftpgate/ftpgate.json >/dev/null 2>&1 ||
        fail "rpm: ftpgate --check on the installed policy"
    if [ -e "$wants" ] || [ -L "$wants" ]; then fail "rpm %post enabled the unit ($wants)"; fi
    grep -qx 'disable ftpgate.service' /usr/lib/systemd/system-preset/90-ftpgate.preset ||
        fail "rpm -i: the preset does not disable the unit"
    if command -v systemctl >/dev/null 2>&1; then
        state=$(systemctl is-enabled ftpgate.service 2>/dev/null || true)
        [ "$state" = disabled ] || fail "rpm: the unit is $state after installation, not disabled"
    fi
    ok "rpm -i (private database): user, modes, unit disabled (preset), --check as ftpgate, old audit file set aside"
    timeout 300 rpm -e --nodeps --dbpath "$rpmdb" ftpgate >"$work/rpm.log" 2>&1 ||
        fail "rpm -e: $(cat "$work/rpm.log")"
    grep -q '/var/log/ftpgate is kept' "$work/rpm.log" || fail "rpm -e printed no note"
    for d in /usr/sbin/ftpgate /etc/ftpgate /var/lib/ftpgate /usr/share/doc/ftpgate "$wants"; do
        if [ -e "$d" ] || [ -L "$d" ]; then fail "$d is left after rpm -e"; fi
    done
    ! getent passwd ftpgate >/dev/null || fail "user ftpgate is left after rpm -e"
    ! getent group ftpgate >/dev/null || fail "group ftpgate is left after rpm -e"
    expect_mode /var/log/ftpgate "750 root:adm"
    ok "rpm -e: only /var/log/ftpgate is left (root:adm, note printed), user and group gone"
fi
