#!/usr/bin/env bash
# The metrics middleware's cost per request in instructions, which a shared,
# busy machine cannot blur the way it blurs req/s and CPU time (see
# benches/metrics-overhead.sh; this VM exposes no hardware counters to perf).
#
# Runs the release signet under valgrind's callgrind (instruction counts,
# deterministic up to the thread interleaving) with metrics on and off, each
# twice: once serving 0 requests and once REQUESTS x GET /v1/auth/me on one
# keep-alive connection, then stops it with SIGTERM (graceful stop, so callgrind
# writes its totals). Per request = (Ir with REQUESTS - Ir with 0) / REQUESTS,
# so start-up and shutdown cancel out. Background work is pushed out of the way
# (key reload hourly, status-list poll every 60 s, purge daily); one worker.
#
#   cargo build --release --bin signet
#   benches/metrics-overhead-callgrind.sh        # REQUESTS=2000
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-2000}
SIGNET=$(realpath "${SIGNET_BIN:-target/release/signet}")
work=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

run() { # metrics_enabled requests -> total Ir
    local dir="$work/$1-$2" port
    mkdir "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    (cd "$dir" && exec env SIGNET__SERVER__BIND="127.0.0.1:$port" SIGNET__METRICS__ENABLED="$1" \
        DATABASE_URL="sqlite://$dir/signet.db" SIGNET__KEYS__MASTER_KEY="c2lnbmV0LXRlc3QtbWFzdGVyLWtleS0zMi1ieXRlcyE=" \
        SIGNET__PASSWORDS__BCRYPT_COST=4 SIGNET__SERVER__WORKERS=1 SIGNET__THROTTLE__ENABLED=false \
        SIGNET__KEYS__RELOAD_SECS=3600 SIGNET__REVOCATION__POLL_MILLIS=60000 SIGNET__MAINTENANCE__INTERVAL_SECS=86400 \
        SIGNET__SERVER__SHUTDOWN_TIMEOUT_SECS=5 RUST_LOG=warn \
        valgrind --tool=callgrind --callgrind-out-file="$dir/out" "$SIGNET" serve >"$dir/log" 2>&1) &
    pid=$!
    for _ in $(seq 600); do curl -sf "127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
    PORT=$port REQUESTS=$2 python3 - <<'PY'
import http.client, json, os
conn = http.client.HTTPConnection("127.0.0.1", int(os.environ["PORT"]), timeout=60)
def call(method, path, body=None, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    res = conn.getresponse()
    return res.status, res.read()
user = {"username": "bench", "password": "violet-canyon-73-drift"}
assert call("POST", "/v1/auth/register", user)[0] == 201
status, body = call("POST", "/v1/auth/login", user)
token = json.loads(body)["access_token"]
for _ in range(int(os.environ["REQUESTS"])):
    assert call("GET", "/v1/auth/me", token=token)[0] == 200
PY
    kill -TERM "$pid"
    wait "$pid" || true
    pid=
    grep -E '^(summary|totals):' "$dir/out" | head -1 | awk '{print $2}'
}

declare -A ir
for enabled in true false; do
    for n in 0 "$REQUESTS"; do
        ir[$enabled-$n]=$(run "$enabled" "$n")
        echo "metrics.enabled=$enabled, $n requests: ${ir[$enabled-$n]} instructions"
    done
done
python3 - "${ir[true-0]}" "${ir[true-$REQUESTS]}" "${ir[false-0]}" "${ir[false-$REQUESTS]}" "$REQUESTS" <<'PY'
import sys
on0, on, off0, off, n = map(int, sys.argv[1:])
per_on, per_off = (on - on0) / n, (off - off0) / n
print(f"per GET /v1/auth/me: metrics on {per_on:,.0f} instructions, off {per_off:,.0f}; on/off {per_on / per_off:.4f} (+{(per_on - per_off):,.0f})")
PY
