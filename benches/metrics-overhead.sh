#!/usr/bin/env bash
# Hot-path cost of the metrics middleware: GET /v1/auth/me throughput of the
# release signet with metrics on and with metrics.enabled = false, in one run.
#
# Starts two release signets on one temp SQLite database (18090 metrics on,
# 18091 off; one worker each, RUST_LOG=warn so the request log is off in both),
# logs in once, then runs wrk on loopback against each, interleaved, ROUNDS
# times, and prints the median req/s, the CPU time per request of each server
# (from /proc, which holds even when other work shares the machine) and the
# ratios. Kills only the processes it started.
#
#   cargo build --release --bin signet
#   benches/metrics-overhead.sh            # ROUNDS=5 DURATION=5s CONNECTIONS=32
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-32}
SIGNET=$PWD/target/release/signet
command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

start() { # port metrics_enabled
    (cd "$work" && exec env SIGNET__SERVER__BIND="127.0.0.1:$1" SIGNET__METRICS__ENABLED="$2" \
        DATABASE_URL="sqlite://$work/signet.db" SIGNET__KEYS__MASTER_KEY="c2lnbmV0LXRlc3QtbWFzdGVyLWtleS0zMi1ieXRlcyE=" \
        SIGNET__PASSWORDS__BCRYPT_COST=4 SIGNET__SERVER__WORKERS=1 RUST_LOG=warn "$SIGNET" serve >"$work/$1.log" 2>&1) &
    pids+=($!)
    for _ in $(seq 100); do curl -sf "localhost:$1/healthz" >/dev/null && return; sleep 0.1; done
    echo "signet on $1 did not start" >&2; cat "$work/$1.log" >&2; exit 1
}
start 18090 true
on_pid=${pids[-1]}
start 18091 false
off_pid=${pids[-1]}
curl -sf localhost:18091/metrics -o /dev/null && { echo "metrics still on at 18091" >&2; exit 1; }

curl -sf localhost:18090/v1/auth/register -H 'content-type: application/json' \
    -d '{"username":"bench","password":"violet-canyon-73-drift"}' >/dev/null
token=$(curl -sf localhost:18090/v1/auth/login -H 'content-type: application/json' \
    -d '{"username":"bench","password":"violet-canyon-73-drift"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # port pid -> "req/s cpu_us_per_req"
    local before after out rps reqs
    before=$(cpu_ticks "$2")
    out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H "authorization: Bearer $token" "http://127.0.0.1:$1/v1/auth/me")
    after=$(cpu_ticks "$2")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    echo "$rps $(python3 -c "print(($after - $before) * 1e6 / $(getconf CLK_TCK) / $reqs)")"
}
on=() off=()
for round in $(seq "$ROUNDS"); do
    on+=("$(run 18090 "$on_pid")")
    off+=("$(run 18091 "$off_pid")")
    echo "round $round: on ${on[-1]}  off ${off[-1]}"
done
python3 - "${on[@]}" -- "${off[@]}" <<'PY'
import statistics, sys
args = sys.argv[1:]
split = args.index("--")
on = [tuple(map(float, a.split())) for a in args[:split]]
off = [tuple(map(float, a.split())) for a in args[split + 1:]]
med = lambda rows, i: statistics.median(r[i] for r in rows)
print(f"metrics on : {med(on, 0):9.0f} req/s  {med(on, 1):6.1f} µs CPU/request")
print(f"metrics off: {med(off, 0):9.0f} req/s  {med(off, 1):6.1f} µs CPU/request")
print(f"throughput on/off: {med(on, 0) / med(off, 0):.3f}   CPU per request on/off: {med(on, 1) / med(off, 1):.3f}")
PY
