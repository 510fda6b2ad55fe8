#!/usr/bin/env bash
# Superseded for the digest by bench/run.sh (audit.digest "none" against "sha256" in the same
# run); this script still measures filecopy mode.
# Benchmark: what the audit modes cost per GiB relayed. Bulk downloads and uploads through
# ftpgate with the audit off (no per-byte audit work: a build of the commit before the
# SHA-256 digest, or FTPGATE_BASELINE=/path/to/ftpgate), in "monitor" mode (SHA-256 of every
# transfer) and in "filecopy" mode (also a copy of every file, fsynced before the final
# reply). Not a test (nothing asserts a speed): for each mode and direction it prints the best
# throughput of RUNS runs and the CPU time ftpgate spent (all its threads) per GiB.
# Usage: tests/bench/audit.sh [SIZE_MIB] [RUNS]; MODES="monitor filecopy" runs only those.
# Needs what tests/run.sh installs (vsftpd, curl) and root (vsftpd runs as root).
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-1024}
runs=${2:-3}
cargo build --release -q
work=$(mktemp -d /tmp/ftpgate-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

baseline=${FTPGATE_BASELINE:-}
if [ -z "$baseline" ] && [[ " ${MODES:-off} " == *" off "* ]]; then
    # The relay before the audit did any work per byte: the parent of the commit that added
    # the SHA-256 of transferred data.
    base_commit=$(git log --format=%H --grep '^Audit: SHA-256 of the bytes that crossed' | tail -1)
    mkdir -p "$work/base"
    git archive "${base_commit}^" | tar -x -C "$work/base"
    echo "building the audit-off baseline (${base_commit:0:7}^) ..." >&2
    CARGO_TARGET_DIR="$work/base-target" cargo build --release -q --offline \
        --manifest-path "$work/base/Cargo.toml"
    baseline="$work/base-target/release/ftpgate"
fi

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "port $1 did not open" >&2; exit 1
}
# utime + stime of a process and all its threads, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ticks_per_s=$(getconf CLK_TCK)

mkdir -p "$work/root/pub" "$work/empty" "$work/copies"
chown ftp "$work/root/pub"
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$work/root/pub/big.bin"
vport=$(free_port)
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
wait_port "$vport"

run_mode() { # label binary audit-json
    local label=$1 binary=$2 audit=$3 gport
    gport=$(free_port)
    cat > "$work/ftpgate.json" <<JSON
{ "workers": 1, "user": "root", "listeners": [ { "address": "127.0.0.1:$gport" } ],
  "passive": { "ports": "43100-43199" },
  "backends": { "v": { "servers": ["127.0.0.1:$vport"] } },
  "roles": { "rw": { "allow": ["RETR", "STOR", "LIST", "CWD", "PWD", "SIZE"] } },
  "users": { "anonymous": { "role": "rw", "backend": "v" } },
  "audit": $audit }
JSON
    RUST_LOG=warn "$binary" --config "$work/ftpgate.json" & local gpid=$!
    pids+=($gpid)
    wait_port "$gport"
    local dir
    for dir in down up; do
        local best=0 cpu_best=0
        for _ in $(seq 1 "$runs"); do
            rm -f "$work/root/pub/up.bin"
            rm -rf "${work:?}/copies/"*
            sync
            local t0 t1 c0 c1
            c0=$(cpu_ticks "$gpid")
            t0=$(date +%s.%N)
            if [ "$dir" = down ]; then
                curl -sS -o /dev/null "ftp://anonymous:x@127.0.0.1:$gport/pub/big.bin"
            else
                curl -sS -T "$work/root/pub/big.bin" "ftp://anonymous:x@127.0.0.1:$gport/pub/up.bin"
            fi
            t1=$(date +%s.%N)
            c1=$(cpu_ticks "$gpid")
            local rate cpu
            rate=$(echo "$size_mib / ($t1 - $t0)" | bc -l)
            # CPU seconds per GiB.
            cpu=$(echo "($c1 - $c0) / $ticks_per_s * 1024 / $size_mib" | bc -l)
            if [ "$(echo "$rate > $best" | bc -l)" = 1 ]; then best=$rate; cpu_best=$cpu; fi
        done
        printf '%-10s %-9s %8.0f MiB/s %6.2f s/GiB   %6.2f s/GiB ftpgate CPU\n' \
            "$label" "$dir" "$best" "$(echo "1024 / $best" | bc -l)" "$cpu_best"
    done
    kill "$gpid"; wait "$gpid" 2>/dev/null || true
}

echo "ftpgate audit benchmark: ${size_mib} MiB, best of $runs, curl over loopback, vsftpd backend"
echo "mode       direction  throughput  wall time         CPU time of ftpgate (all threads)"
modes=${MODES:-off monitor filecopy}
for mode in $modes; do
    case $mode in
    off) run_mode off "$baseline" "{ \"file\": \"$work/audit.jsonl\" }" ;;
    monitor) run_mode monitor ./target/release/ftpgate \
        "{ \"file\": \"$work/audit.jsonl\", \"mode\": \"monitor\" }" ;;
    filecopy) run_mode filecopy ./target/release/ftpgate \
        "{ \"file\": \"$work/audit.jsonl\", \"mode\": \"filecopy\", \"filecopy\": { \"directory\": \"$work/copies\" } }" ;;
    *) echo "unknown mode $mode" >&2; exit 1 ;;
    esac
done
