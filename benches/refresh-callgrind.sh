#!/usr/bin/env bash
# What one refresh costs signet in instructions (valgrind's callgrind counts them the
# same whatever else the shared machine is doing; the wall-clock rounds of
# benches/hot-paths.sh vary by +-20 % from one run to the next). signet runs under
# callgrind on a temp SQLite file (or PostgreSQL: BACKEND=postgres, database
# signet_bench_cg on SIGNET_TEST_POSTGRES_URL's server); one client logs in and walks
# one refresh chain, one request at a time, then SIGTERM (callgrind writes its totals).
# Per refresh = (Ir with REFRESHES - Ir with 0) / REFRESHES: start-up, the login and
# shutdown cancel out. One request at a time means a batch of one per commit, the
# most a refresh can cost; kernel time (writes, fsync) is not counted.
#   cargo build --release --bin signet
#   benches/refresh-callgrind.sh            # REFRESHES=1000, SIGNET_BIN=target/release/signet
# KEEP_OUT=file keeps the callgrind output of the run with refreshes (and file.0, the one
# without) for callgrind_annotate; use a --profile profiling build for symbols.
# EXTRA_ENV: more VAR=value settings for the server, space separated (e.g.
# SIGNET__TOKENS__ALGORITHM=EdDSA).
set -euo pipefail
cd "$(dirname "$0")/.."
refreshes=${REFRESHES:-1000} backend=${BACKEND:-sqlite}
bin=${SIGNET_BIN:-target/release/signet}
port=18795
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null
      [ -n "${KEEP_OUT:-}" ] && { cp "$work/run-$refreshes/out" "$KEEP_OUT"; cp "$work/run-0/out" "$KEEP_OUT.0"; }
      rm -rf $work' EXIT
export PGSSLMODE=disable
. benches/lib.sh

run() { # refreshes -> Ir
    local n=$1 dir="$work/run-$1"
    mkdir "$dir"
    local db
    db="$(fresh_database "$backend" signet_bench_cg "$dir")"
    local env=(SIGNET__SERVER__BIND=127.0.0.1:$port SIGNET__DATABASE__URL="$db"
        SIGNET__KEYS__MASTER_KEY_FILE="$dir/master.key" SIGNET__PASSWORDS__BCRYPT_COST=4
        SIGNET__THROTTLE__ENABLED=false RUST_LOG=warn ${EXTRA_ENV:-})
    env "${env[@]}" "$bin" migrate >/dev/null
    env "${env[@]}" valgrind --tool=callgrind --callgrind-out-file="$dir/out" "$bin" serve >"$dir/log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do curl -sf 127.0.0.1:$port/healthz >/dev/null && break; sleep 0.2; done
    PORT=$port N=$n python3 - <<'PY'
import http.client, json, os
conn = http.client.HTTPConnection("127.0.0.1", int(os.environ["PORT"]), timeout=120)
def post(path, body):
    conn.request("POST", path, body=json.dumps(body), headers={"content-type": "application/json"})
    res = conn.getresponse()
    data = res.read()
    assert res.status in (200, 201), (path, res.status, data)
    return json.loads(data)
creds = {"username": "bench", "password": "violet-canyon-73-drift"}
post("/v1/auth/register", creds)
token = post("/v1/auth/login", creds)["refresh_token"]
for _ in range(int(os.environ["N"])):
    token = post("/v1/auth/refresh", {"refresh_token": token})["refresh_token"]
PY
    kill -TERM "$pid"; wait "$pid" || true; pid=
    grep -E '^(summary|totals):' "$dir/out" | head -1 | awk '{print $2}'
}
base=$(run 0)
full=$(run "$refreshes")
echo "$backend, $bin: $base instructions with 0 refreshes, $full with $refreshes"
python3 -c "import sys; b, f, n = map(int, sys.argv[1:]); print(f'per refresh: {(f - b) / n:,.0f} instructions')" "$base" "$full" "$refreshes"
