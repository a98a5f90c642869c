#!/usr/bin/env bash
# Serve rate of one status list of 1,048,576 indices (the default list size)
# with 1 % of them (10,486, uniformly random) invalid, from a release signet on
# temp SQLite: wrk -t1 -c32 -d5s GET /v1/status-lists/1, plain (200 with the
# signed list) and with If-None-Match of its ETag (304). The invalid entries are
# written straight into status_entries (sqlite3) and the list's version bumped,
# as 10,486 logouts would.
#   cargo build --release --bin signet
#   benches/status-list-serve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; rm -rf $dir' EXIT
start() {
  SIGNET__SERVER__BIND=127.0.0.1:18690 SIGNET__TOKENS__ISSUER=http://127.0.0.1:18690 \
    SIGNET__DATABASE__URL=sqlite://$dir/signet.db SIGNET__THROTTLE__ENABLED=false \
    SIGNET__KEYS__MASTER_KEY_FILE=$dir/master.key SIGNET__PASSWORDS__BCRYPT_COST=4 RUST_LOG=warn \
    target/release/signet serve >>$dir/signet.log 2>&1 &
  pids+=($!)
  until curl -fs http://127.0.0.1:18690/healthz >/dev/null; do sleep 0.1; done
}
start
curl -sf localhost:18690/v1/auth/register -H 'content-type: application/json' -d '{"username":"bench","password":"violet-canyon-73-drift"}' >/dev/null
curl -sf localhost:18690/v1/auth/login -H 'content-type: application/json' -d '{"username":"bench","password":"violet-canyon-73-drift"}' >/dev/null
python3 - "$dir/signet.db" <<'PY'
import random, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
size = db.execute("SELECT size FROM status_lists WHERE id = 1").fetchone()[0]
random.seed(1)
picked = random.sample(range(1, size), size // 100)
db.executemany("INSERT OR REPLACE INTO status_entries (list_id, idx, invalid, expires_at) VALUES (1, ?, 1, '2100-01-01 00:00:00')",
               [(i,) for i in picked])
db.execute("UPDATE status_lists SET version = version + 1 WHERE id = 1")
db.commit()
print(f"list 1: {size} indices, {len(picked)} invalid")
PY
sleep 1
curl -s -D $dir/h -o $dir/body localhost:18690/v1/status-lists/1
etag=$(awk 'tolower($1) == "etag:" {print $2}' $dir/h | tr -d '\r')
echo "status $(head -1 $dir/h | tr -d '\r'), body $(wc -c <$dir/body) bytes, ETag $etag"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
wrk -t1 -c32 -d5s http://127.0.0.1:18690/v1/status-lists/1 | grep -E "Requests/sec|Transfer/sec|Latency|Non-2xx"
echo "with If-None-Match: $(curl -s -o /dev/null -w '%{http_code}' -H "if-none-match: $etag" localhost:18690/v1/status-lists/1)"
wrk -t1 -c32 -d5s -H "if-none-match: $etag" http://127.0.0.1:18690/v1/status-lists/1 | grep -E "Requests/sec|Transfer/sec|Latency|Non-2xx"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
