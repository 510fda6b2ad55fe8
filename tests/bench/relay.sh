#!/usr/bin/env bash
# Superseded by bench/run.sh (direct and through ftpgate alternating, medians, CPU of the
# whole path, the digest on and off, FTPS); kept for comparisons with earlier figures.
# Benchmark: bulk download and upload throughput through ftpgate against direct access to the
# same vsftpd, on loopback. Not a test (nothing asserts a speed); it prints MiB/s for each
# path, best of RUNS. Usage: tests/bench/relay.sh [SIZE_MIB] [RUNS]
# Needs what tests/run.sh installs (vsftpd, curl) and root (vsftpd runs as root).
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-1024}
runs=${2:-3}
cargo build --release -q
work=$(mktemp -d /tmp/ftpgate-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "port $1 did not open" >&2; exit 1
}

mkdir -p "$work/root/pub" "$work/empty"
chown ftp "$work/root/pub"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/root/pub/big.bin"
vport=$(free_port); gport=$(free_port)
cat > "$work/vsftpd.conf" <<CONF
listen=YES
listen_address=127.0.0.1
listen_port=$vport
background=NO
seccomp_sandbox=NO
anonymous_enable=YES
local_enable=NO
no_anon_password=YES
anon_root=$work/root
write_enable=YES
anon_upload_enable=YES
anon_other_write_enable=YES
pasv_min_port=43000
pasv_max_port=43099
secure_chroot_dir=$work/empty
CONF
/usr/sbin/vsftpd "$work/vsftpd.conf" & pids+=($!)
cat > "$work/ftpgate.json" <<JSON
{ "workers": 1, "user": "root", "listeners": [ { "address": "127.0.0.1:$gport" } ],
  "passive": { "ports": "43100-43199" },
  "backends": { "v": { "servers": ["127.0.0.1:$vport"] } },
  "roles": { "rw": { "allow": ["RETR", "STOR", "LIST", "CWD", "PWD", "SIZE"] } },
  "users": { "anonymous": { "role": "rw", "backend": "v" } },
  "audit": { "file": "$work/audit.jsonl" } }
JSON
RUST_LOG=warn ./target/release/ftpgate --config "$work/ftpgate.json" & pids+=($!)
wait_port "$vport"; wait_port "$gport"

best() { # label url-port direction
    local label=$1 port=$2 dir=$3 best=0
    for _ in $(seq 1 "$runs"); do
        rm -f "$work/root/pub/up.bin"
        local t0 t1
        t0=$(date +%s.%N)
        if [ "$dir" = down ]; then
            curl -sS -o /dev/null "ftp://anonymous:x@127.0.0.1:$port/pub/big.bin"
        else
            curl -sS -T "$work/root/pub/big.bin" "ftp://anonymous:x@127.0.0.1:$port/pub/up.bin"
        fi
        t1=$(date +%s.%N)
        local rate
        rate=$(echo "$size_mib / ($t1 - $t0)" | bc -l)
        best=$(echo "if ($rate > $best) $rate else $best" | bc -l)
    done
    printf '%-28s %8.0f MiB/s\n' "$label" "$best"
}
echo "ftpgate relay benchmark: ${size_mib} MiB, best of $runs, curl over loopback, vsftpd backend"
best "download direct" "$vport" down
best "download through ftpgate" "$gport" down
best "upload direct" "$vport" up
best "upload through ftpgate" "$gport" up
