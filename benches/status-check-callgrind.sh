#!/usr/bin/env bash
# What checking the status list costs the example microservice per protected
# request, in instructions (issue 13's throughput target, on vs off >= 0.95;
# wall-clock rounds on the shared machine vary by +-20 %, see
# benches/status-throughput.sh). A release signet on temp SQLite issues a token
# (list ttl an hour, so no refetch happens during a run); the microservice runs
# under valgrind's callgrind with VERIFY_STATUS_LISTS true and false, each once
# serving 0 and once REQUESTS x GET /user on one keep-alive connection, then
# SIGTERM (actix stops gracefully, callgrind writes its totals). Per request =
# (Ir with REQUESTS - Ir with 0) / REQUESTS.
#   cargo build --release --bin signet
#   cargo build --release -p signet-verify --example microservice --features actix,remote
#   benches/status-check-callgrind.sh        # REQUESTS=3000
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-3000}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; rm -rf $work' EXIT
SIGNET__SERVER__BIND=127.0.0.1:18790 SIGNET__TOKENS__ISSUER=http://127.0.0.1:18790 \
  SIGNET__DATABASE__URL=sqlite://$work/signet.db SIGNET__THROTTLE__ENABLED=false \
  SIGNET__KEYS__MASTER_KEY_FILE=$work/master.key SIGNET__PASSWORDS__BCRYPT_COST=4 \
  SIGNET__REVOCATION__LIST_TTL_SECS=3600 RUST_LOG=warn target/release/signet serve >$work/signet.log 2>&1 &
pids+=($!)
until curl -fs http://127.0.0.1:18790/healthz >/dev/null; do sleep 0.1; done
curl -sf localhost:18790/v1/auth/register -H 'content-type: application/json' -d '{"username":"bench","password":"violet-canyon-73-drift"}' >/dev/null
token=$(curl -sf localhost:18790/v1/auth/login -H 'content-type: application/json' -d '{"username":"bench","password":"violet-canyon-73-drift"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

run() { # status_enabled requests -> Ir
  local dir="$work/$1-$2"
  mkdir "$dir"
  SIGNET_ISSUER=http://127.0.0.1:18790 SIGNET_ALLOW_INSECURE_HTTP=true BIND=127.0.0.1:18791 VERIFY_STATUS_LISTS=$1 \
    RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$dir/out" target/release/examples/microservice >"$dir/log" 2>&1 &
  local pid=$!
  for _ in $(seq 600); do curl -sf 127.0.0.1:18791/public >/dev/null && break; sleep 0.2; done
  TOKEN=$token REQUESTS=$2 python3 - <<'PY'
import http.client, os
conn = http.client.HTTPConnection("127.0.0.1", 18791, timeout=60)
def get():
    conn.request("GET", "/user", headers={"authorization": "Bearer " + os.environ["TOKEN"]})
    res = conn.getresponse()
    res.read()
    assert res.status == 200, res.status
get()  # keys and list fetched, token verified once, in both runs
for _ in range(int(os.environ["REQUESTS"])):
    get()
PY
  kill -TERM "$pid"; wait "$pid" || true
  grep -E '^(summary|totals):' "$dir/out" | head -1 | awk '{print $2}'
}
declare -A ir
for enabled in true false; do
  for n in 0 "$REQUESTS"; do
    ir[$enabled-$n]=$(run "$enabled" "$n")
    echo "VERIFY_STATUS_LISTS=$enabled, $n requests: ${ir[$enabled-$n]} instructions"
  done
done
python3 - "${ir[true-0]}" "${ir[true-$REQUESTS]}" "${ir[false-0]}" "${ir[false-$REQUESTS]}" "$REQUESTS" <<'PY'
import sys
on0, on, off0, off, n = map(int, sys.argv[1:])
a, b = (on - on0) / n, (off - off0) / n
print(f"per GET /user: status checks on {a:,.0f} instructions, off {b:,.0f}; off/on (throughput proxy) {b / a:.4f}")
PY
