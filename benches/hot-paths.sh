#!/usr/bin/env bash
# Issue 16: refresh and GET /v1/auth/me throughput, tail and server CPU per request, against a
# fresh release signet with PREFILL live sessions (each with an unused refresh token) already
# in the database.
#   cargo build --release --bin signet --example refresh_load && benches/hot-paths.sh sqlite|postgres
# Phases, one server: /healthz (wrk, the bare-route yardstick), /v1/auth/me (wrk, one user's
# access token), refresh with examples/refresh_load (CLIENTS chains), refresh with wrk
# (benches/wrk/refresh.lua, 2 threads x 32 connections, one chain per connection).
# Prints each phase's rate, latency and the signet CPU it took per request (utime + stime
# from /proc, so the load generator's CPU on the same cores is not counted); for /me and the
# wrk refresh, signet's context switches per request; for the wrk refresh, each signet
# thread's share of a core and the bytes written per refresh (SQLite: signet's file writes;
# PostgreSQL: the WAL); and the peak RSS.
# Env: PREFILL (100000), CLIENTS (32), SECS (10, refresh_load), WRK_SECS (5), PORT (18500),
# SIGNET_TEST_POSTGRES_URL (PostgreSQL server; the database signet_bench_hot is recreated),
# PERF_OUT (perf record of signet during the wrk refresh, to this file; PERF_ALL=1: every process),
# EXTRA_ENV (more VAR=value settings for the server, space separated).
set -euo pipefail
cd "$(dirname "$0")/.."
backend="${1:?sqlite or postgres}"
prefill="${PREFILL:-100000}" clients="${CLIENTS:-32}" secs="${SECS:-10}" wrk_secs="${WRK_SECS:-5}"
port="${PORT:-18500}"
bin="${SIGNET_BIN:-target/release/signet}" load="${LOAD_BIN:-target/release/examples/refresh_load}"
work="$(mktemp -d /tmp/signet-hot.XXXXXX)"
url="http://127.0.0.1:$port"
export PGSSLMODE=disable

. benches/lib.sh
db="$(fresh_database "$backend" signet_bench_hot "$work")"
server_env=(SIGNET__SERVER__BIND="127.0.0.1:$port" SIGNET__DATABASE__URL="$db"
    SIGNET__KEYS__MASTER_KEY_FILE="$work/master.key" SIGNET__PASSWORDS__BCRYPT_COST=4
    SIGNET__THROTTLE__ENABLED=false RUST_LOG=warn ${EXTRA_ENV:-})
env "${server_env[@]}" "$bin" migrate >/dev/null

# PREFILL live sessions of a filler user, each with an unused refresh token.
filler="INSERT INTO users (id, username, username_key, email, password_hash, roles, disabled, created_at, updated_at)
  VALUES ('00000000-0000-0000-0000-000000000000', 'filler', 'filler', NULL, 'x', '[\"user\"]', false,
          '2026-01-01 00:00:00', '2026-01-01 00:00:00');"
if [ "$backend" = postgres ]; then
    psql "$db" -q -v ON_ERROR_STOP=1 -c "$filler" -c "
      INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at)
        SELECT 's' || i, '00000000-0000-0000-0000-000000000000', now(), now(), '2099-01-01'
        FROM generate_series(1, $prefill) i;
      INSERT INTO refresh_tokens (jti, session_id, user_id, issued_at, expires_at)
        SELECT 'r' || i, 's' || i, '00000000-0000-0000-0000-000000000000', now(), '2099-01-01'
        FROM generate_series(1, $prefill) i;
      ANALYZE;"
else
    python3 - "$work/signet.db" "$prefill" "$filler" <<'EOF'
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute(sys.argv[3])
n = int(sys.argv[2])
conn.executemany("INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at) VALUES (?, ?, '2026-12-01 00:00:00', '2026-12-01 00:00:00', '2099-01-01 00:00:00')",
                 (("s%d" % i, "00000000-0000-0000-0000-000000000000") for i in range(n)))
conn.executemany("INSERT INTO refresh_tokens (jti, session_id, user_id, issued_at, expires_at) VALUES (?, ?, ?, '2026-12-01 00:00:00', '2099-01-01 00:00:00')",
                 (("r%d" % i, "s%d" % i, "00000000-0000-0000-0000-000000000000") for i in range(n)))
conn.commit()
# No ANALYZE: signet never runs it, and with the bundled SQLite's STAT4 its samples make
# every statement with a bound indexed value re-prepare on each run (see BENCHMARKS.md).
conn.close()
EOF
fi

env "${server_env[@]}" "$bin" serve >"$work/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
wait_ready "$url" || { cat "$work/log"; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# All PostgreSQL server processes' CPU (the pool's backends live through the run).
pg_ticks() {
    if [ "$backend" = postgres ]; then
        for p in $(pgrep -x postgres); do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null; done | awk '{s += $1} END {print s + 0}'
    else echo 0; fi
}
hz=$(getconf CLK_TCK)
# What a refresh writes: on SQLite the bytes signet hands the file system (WAL frames and
# checkpoints: /proc write_bytes), on PostgreSQL the WAL the database generates.
if [ "$backend" = postgres ]; then
    write_what="PostgreSQL WAL"
    bytes_written() { psql "$db" -Atc "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"; }
else
    write_what="signet's file writes"
    bytes_written() { awk '/^write_bytes/ {print $2}' "/proc/$pid/io"; }
fi
pg_before=0
# per_request <ticks before> <requests>: signet CPU ms per request since <ticks before> (and,
# on PostgreSQL, the database's since the last call).
per_request() {
    local pg_now; pg_now=$(pg_ticks)
    awk -v a="$1" -v b="$(cpu_ticks)" -v n="$2" -v hz="$hz" 'BEGIN { printf "%.3f", (b - a) * 1000 / hz / n }'
    [ "$backend" = postgres ] && awk -v a="$pg_before" -v b="$pg_now" -v n="$2" -v hz="$hz" \
        'BEGIN { printf " ms (PostgreSQL %.3f)", (b - a) * 1000 / hz / n }'
    pg_before=$pg_now
}
wrk_requests() { sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$1"; }
wrk_line() {
    local out="$1"
    echo "  $(grep 'Requests/sec' "$out" | tr -s ' ') | p50 $(awk '$1 == "50%" {print $2}' "$out")" \
         "p99 $(awk '$1 == "99%" {print $2}' "$out") | $(grep -c 'Non-2xx\|Socket errors' "$out" | sed 's/^0$/no errors/;s/^[1-9].*/ERRORS/')"
    grep 'Non-2xx\|Socket errors' "$out" | sed 's/^/  /' || true
}

login() { # login <name>: registers and logs in a user, prints the login answer
    curl -sf "$url/v1/auth/register" -H 'content-type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"violet tractor umbrella 42\"}" >/dev/null
    curl -sf "$url/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"violet tractor umbrella 42\"}"
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

echo "== $backend, $prefill sessions prefilled, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
before=$(cpu_ticks); pg_before=$(pg_ticks)
wrk -t2 -c32 -d"${wrk_secs}s" --latency "$url/healthz" >"$work/healthz"
echo "healthz (wrk -t2 -c32 -d${wrk_secs}s): cpu/req $(per_request "$before" "$(wrk_requests "$work/healthz")") ms"
wrk_line "$work/healthz"

access="$(login meuser | field access_token)"
before=$(cpu_ticks); pg_before=$(pg_ticks); switches=$(context_switches "$pid")
wrk -t2 -c32 -d"${wrk_secs}s" --latency -H "Authorization: Bearer $access" "$url/v1/auth/me" >"$work/me"
echo "GET /v1/auth/me (wrk -t2 -c32 -d${wrk_secs}s): cpu/req $(per_request "$before" "$(wrk_requests "$work/me")") ms"
wrk_line "$work/me"
echo "  signet context switches per request: $(switches_per_request "$switches" "$(context_switches "$pid")" "$(wrk_requests "$work/me")")"

before=$(cpu_ticks); pg_before=$(pg_ticks)
/usr/bin/time -f "%U %S" -o "$work/gen-cpu" "$load" --url "$url" --clients "$clients" --secs "$secs" >"$work/gen"
done_refreshes=$(sed -n 's/.*: \([0-9]*\) refreshes (.*/\1/p' "$work/gen")
echo "refresh (examples/refresh_load --clients $clients --secs $secs; cpu includes its $clients logins):" \
     "cpu/req $(per_request "$before" "${done_refreshes:-1}") ms"
sed 's/^/  /' "$work/gen"
echo "  the generator's own CPU per refresh: $(awk -v n="${done_refreshes:-1}" '{ printf "%.3f ms", ($1 + $2) * 1000 / n }' "$work/gen-cpu")"

# 2 threads x 32 connections = 32 chains, plus the one wrk takes to check the script.
for i in $(seq 1 33); do login "wrk$i" | field refresh_token; done >"$work/tokens"
before=$(cpu_ticks); pg_before=$(pg_ticks); thread_ticks "$pid" >"$work/threads-before"
switches=$(context_switches "$pid"); written=$(bytes_written)
# PERF_OUT=file: perf records signet during this phase (perf report -i file --no-children).
perf_pid=
if [ -n "${PERF_OUT:-}" ]; then
    # PERF_ALL=1: the whole machine (the database's processes too: perf report --comm postgres).
    target=(-p "$pid"); [ -n "${PERF_ALL:-}" ] && target=(-a)
    # PERF_ARGS: the call-graph options (default -g; "--call-graph dwarf" for a build without frame pointers).
    perf record -q ${PERF_ARGS:--g} -F 999 "${target[@]}" -o "$PERF_OUT" -- sleep "$wrk_secs" 2>/dev/null & perf_pid=$!
fi
SIGNET_WRK_TOKENS="$work/tokens" SIGNET_WRK_THREADS=2 \
    wrk -t2 -c32 -d"${wrk_secs}s" --latency -s benches/wrk/refresh.lua "$url" >"$work/wrk-refresh"
[ -z "$perf_pid" ] || wait "$perf_pid"
echo "refresh (wrk -t2 -c32 -d${wrk_secs}s -s benches/wrk/refresh.lua): cpu/req $(per_request "$before" "$(wrk_requests "$work/wrk-refresh")") ms"
wrk_line "$work/wrk-refresh"
echo "  signet context switches per request: $(switches_per_request "$switches" "$(context_switches "$pid")" "$(wrk_requests "$work/wrk-refresh")")"
echo "  $(awk -v a="$written" -v b="$(bytes_written)" -v n="$(wrk_requests "$work/wrk-refresh")" -v what="$write_what" \
    'BEGIN { printf "%s per refresh: %.0f bytes", what, (b - a) / n }')"
thread_ticks "$pid" >"$work/threads-after"
echo "  signet threads during it (a thread near 100% is the bottleneck):"
thread_share "$work/threads-before" "$work/threads-after" "$wrk_secs"
echo "peak RSS (VmHWM): $(awk '/VmHWM/ {printf "%.1f MB", $2 / 1024}' "/proc/$pid/status")"
warnings="$(grep 'WARN\|ERROR' "$work/log" | grep -v master | head -5 || true)"
if [ -n "$warnings" ]; then echo "server log:"; echo "$warnings"; fi
