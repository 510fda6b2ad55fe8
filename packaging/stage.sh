#!/usr/bin/env bash
# Lays out the files of the ftpgate package under DESTDIR, with their final modes, exactly as
# they are installed. build-deb.sh and build-rpm.sh both package this tree, so the .deb and
# the .rpm hold the same files. Owners are set by the packagers (everything root:root, and
# group ftpgate on the policy file once the group exists).
#
#   packaging/stage.sh DESTDIR BINARY
#
# Reads the man pages from man/, the packaged default policy from packaging/ftpgate.json and
# the example policies from packaging/examples/. Each policy must pass `BINARY --check`.
# SOURCE_DATE_EPOCH, when set, becomes the mtime of every file (reproducible packages).
set -euo pipefail
umask 022

if [ "$#" -ne 2 ]; then
    echo "usage: $0 DESTDIR BINARY" >&2
    exit 2
fi
dest=$1
binary=$(realpath -e "$2")
top=$(cd "$(dirname "$0")/.." && pwd)
pkg=$top/packaging

for f in "$top/man/ftpgate.8" "$top/man/ftpgate.json.5"; do
    if [ ! -s "$f" ]; then
        echo "stage.sh: $f is missing" >&2
        exit 1
    fi
done

# Shipped policies must be valid for this build: keys the loader refuses ("not supported
# yet") must never reach /etc or the examples.
# Examples that name certificates under /etc/ftpgate/tls/ are checked against throwaway ones
# made here (the files themselves are the operator's, not shipped).
tls_dir=$(mktemp -d)
trap 'rm -rf "$tls_dir"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=example.invalid \
    -keyout "$tls_dir/key.pem" -out "$tls_dir/cert.pem" >/dev/null 2>&1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=example.invalid -keyout "$tls_dir/ecdsa.key" -out "$tls_dir/ecdsa.pem" \
    >/dev/null 2>&1
cp "$tls_dir/cert.pem" "$tls_dir/internal-ca.pem"
for policy in "$pkg/ftpgate.json" "$pkg"/examples/*.json; do
    checked=$policy
    if grep -q '/etc/ftpgate/tls/' "$policy"; then
        checked="$tls_dir/$(basename "$policy")"
        sed "s#/etc/ftpgate/tls/#$tls_dir/#g" "$policy" >"$checked"
    fi
    status=0
    out=$("$binary" --check --config "$checked" 2>&1) || status=$?
    # 3: valid, with warnings; some examples earn them on purpose (tests/check_warnings.rs).
    if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
        echo "stage.sh: $policy does not pass ftpgate --check:" >&2
        echo "$out" >&2
        exit 1
    fi
done

rm -rf "$dest"
mkdir -p "$dest"
cd "$dest"

install -d -m 0755 usr/sbin etc/ftpgate etc/logrotate.d usr/lib/systemd/system \
    usr/share/man/man8 usr/share/man/man5 usr/share/doc/ftpgate/examples

install -m 0755 "$binary" usr/sbin/ftpgate
if command -v strip >/dev/null 2>&1; then
    strip --strip-unneeded usr/sbin/ftpgate
fi
# 0640: the policy names partners and internal servers. The packagers give it group ftpgate.
install -m 0640 "$pkg/ftpgate.json" etc/ftpgate/ftpgate.json
install -m 0644 "$pkg/logrotate/ftpgate" etc/logrotate.d/ftpgate
install -m 0644 "$pkg/systemd/ftpgate.service" usr/lib/systemd/system/ftpgate.service

gzip -9n <"$top/man/ftpgate.8" >usr/share/man/man8/ftpgate.8.gz
gzip -9n <"$top/man/ftpgate.json.5" >usr/share/man/man5/ftpgate.json.5.gz
chmod 0644 usr/share/man/man8/ftpgate.8.gz usr/share/man/man5/ftpgate.json.5.gz

install -m 0644 "$pkg/debian/copyright" usr/share/doc/ftpgate/copyright
# The audit event schema (JSON Schema), for SIEM engineers; ftpgate.json(5) documents it too.
install -m 0644 "$top/etc/audit-schema.json" usr/share/doc/ftpgate/audit-schema.json
install -m 0644 "$pkg"/examples/*.json "$pkg/examples/README" "$pkg/examples/rsyslog-siem.conf" \
    "$pkg/examples/haproxy.cfg" "$pkg/examples/siem-mapping.txt" usr/share/doc/ftpgate/examples/
# fail2ban and CrowdSec configuration, to copy into their own directories (not installed
# there: neither is a dependency).
install -d -m 0755 usr/share/doc/ftpgate/examples/fail2ban/filter.d \
    usr/share/doc/ftpgate/examples/fail2ban/jail.d usr/share/doc/ftpgate/examples/crowdsec
install -m 0644 "$pkg/fail2ban/filter.d/ftpgate.conf" \
    usr/share/doc/ftpgate/examples/fail2ban/filter.d/ftpgate.conf
install -m 0644 "$pkg/fail2ban/jail.d/ftpgate.conf" \
    usr/share/doc/ftpgate/examples/fail2ban/jail.d/ftpgate.conf
install -m 0644 "$pkg"/crowdsec/*.yaml usr/share/doc/ftpgate/examples/crowdsec/

if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    find . -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
fi
