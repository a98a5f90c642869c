#!/usr/bin/env bash
# Issue 16: a login flood at twice the bcrypt capacity must not starve refreshes and
# protected reads. Against a fresh release signet (SQLite, or postgres as $1) at the
# production bcrypt cost (12), throttling off (every client is 127.0.0.1), default hashing
# pool (one thread per core, SCHED_IDLE, giving way to other requests in flight, queue of 32):
#   1. bcrypt capacity: 4 logins one after another give the time of one; capacity = cores / time.
#   2. without the flood: refresh (wrk, benches/wrk/refresh.lua) and GET /v1/auth/me (wrk), 5 s each.
#   3. the same two runs while benches/login_flood.py offers logins at twice the capacity
#      (open loop), started 3 s before so its queue is full; then what the logins got back,
#      and the machine's idle share and signet's threads during each run.
#   cargo build --release --bin signet && benches/login-flood.sh [sqlite|postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:-sqlite}"
port="${PORT:-18600}" url="http://127.0.0.1:${PORT:-18600}"
bin="${SIGNET_BIN:-target/release/signet}"
work="$(mktemp -d /tmp/signet-flood.XXXXXX)"
# HASH_THREADS: the hashing pool's size (passwords.hash_threads; default one per core).
hash_threads="${HASH_THREADS:-$(nproc)}"
. benches/lib.sh
db="$(fresh_database "$backend" signet_bench_flood "$work")"
env SIGNET__SERVER__BIND="127.0.0.1:$port" SIGNET__DATABASE__URL="$db" SIGNET__KEYS__MASTER_KEY_FILE="$work/master.key" \
    SIGNET__PASSWORDS__BCRYPT_COST=12 SIGNET__PASSWORDS__HASH_THREADS="$hash_threads" \
    SIGNET__THROTTLE__ENABLED=false RUST_LOG=warn "$bin" serve >"$work/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
wait_ready "$url" || { cat "$work/log"; exit 1; }

password="violet tractor umbrella 42"
register() { curl -sf "$url/v1/auth/register" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"$password\"}" >/dev/null; }
login() { curl -sf "$url/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"$password\"}"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
for i in $(seq 1 33); do register "wrk$i"; done
register flooder
register meuser

start=$(date +%s.%N)
for _ in 1 2 3 4; do login flooder >/dev/null; done
one=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print (b - a) / 4 }')
capacity=$(awk -v t="$one" -v c="$hash_threads" 'BEGIN { printf "%.1f", c / t }')
offered=$(awk -v c="$capacity" 'BEGIN { printf "%.1f", 2 * c }')
echo "== $backend: one login takes $(awk -v t="$one" 'BEGIN { printf "%.0f", t * 1000 }') ms alone;" \
     "bcrypt capacity ${capacity}/s with $hash_threads hashing threads on $(nproc) cores; the flood offers ${offered}/s"

# Both phases' chains and the /me token first: under the flood a login waits its turn.
for phase in quiet flood; do
    for i in $(seq 1 33); do login "wrk$i" | field refresh_token; done >"$work/tokens-$phase"
done
access="$(login meuser | field access_token)"
run_pair() { # run_pair <phase>
    local all; all=$(cpu_ticks_all)
    thread_ticks "$pid" >"$work/threads-$1-before"
    SIGNET_WRK_TOKENS="$work/tokens-$1" SIGNET_WRK_THREADS=2 \
        wrk -t2 -c32 -d5s --latency -s benches/wrk/refresh.lua "$url" >"$work/refresh-$1"
    thread_ticks "$pid" >"$work/threads-$1-after"
    idle_share "$all" "$(cpu_ticks_all)" >"$work/idle-refresh-$1"
    all=$(cpu_ticks_all)
    thread_ticks "$pid" >"$work/threads-me-$1-before"
    wrk -t2 -c32 -d5s --latency -H "Authorization: Bearer $access" "$url/v1/auth/me" >"$work/me-$1"
    thread_ticks "$pid" >"$work/threads-me-$1-after"
    idle_share "$all" "$(cpu_ticks_all)" >"$work/idle-me-$1"
}
report() { # report <label> <file>
    echo "  $1: $(grep 'Requests/sec' "$2" | tr -s ' ') | p50 $(awk '$1 == "50%" {print $2}' "$2")" \
         "p99 $(awk '$1 == "99%" {print $2}' "$2") | $(grep -c 'Non-2xx\|Socket errors' "$2" | sed 's/^0$/no errors/;s/^[1-9].*/ERRORS/')"
}

run_pair quiet
python3 benches/login_flood.py "$url" flooder "$password" "$offered" 16 >"$work/flood" &
flood=$!
sleep 3
run_pair flood
wait $flood
echo "without the flood:"
report "refresh" "$work/refresh-quiet"
report "GET /v1/auth/me" "$work/me-quiet"
echo "with the flood:"
report "refresh" "$work/refresh-flood"
report "GET /v1/auth/me" "$work/me-flood"
rq=$(awk '/Requests\/sec/ {print $2}' "$work/refresh-quiet"); rf=$(awk '/Requests\/sec/ {print $2}' "$work/refresh-flood")
mq=$(awk '/Requests\/sec/ {print $2}' "$work/me-quiet"); mf=$(awk '/Requests\/sec/ {print $2}' "$work/me-flood")
echo "machine idle during refresh, without / with the flood: $(cat "$work/idle-refresh-quiet") / $(cat "$work/idle-refresh-flood");" \
     "during /me: $(cat "$work/idle-me-quiet") / $(cat "$work/idle-me-flood")"
echo "signet threads during the refresh run, without and with the flood:"
thread_share "$work/threads-quiet-before" "$work/threads-quiet-after" 5
echo "  --"
thread_share "$work/threads-flood-before" "$work/threads-flood-after" 5
echo "signet threads during the /me run, without and with the flood:"
thread_share "$work/threads-me-quiet-before" "$work/threads-me-quiet-after" 5
echo "  --"
thread_share "$work/threads-me-flood-before" "$work/threads-me-flood-after" 5
echo "throughput under the flood / without: refresh $(awk -v a="$rf" -v b="$rq" 'BEGIN { printf "%.2f", a / b }')," \
     "/me $(awk -v a="$mf" -v b="$mq" 'BEGIN { printf "%.2f", a / b }')"
echo "the flood's logins:"
sed 's/^/  /' "$work/flood"
echo "peak RSS (VmHWM): $(awk '/VmHWM/ {printf "%.1f MB", $2 / 1024}' "/proc/$pid/status")"
