#!/usr/bin/env bash
# Protected-route throughput at the example microservice (GET /user), status
# checking on (default) vs VERIFY_STATUS_LISTS=false, wrk -t1 -c32 -d5s rounds
# alternated; release binaries as for benches/revocation-propagation.sh.
#   benches/status-throughput.sh                 # ROUNDS=5
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; rm -rf $dir' EXIT
SIGNET__SERVER__BIND=127.0.0.1:18590 SIGNET__TOKENS__ISSUER=http://127.0.0.1:18590 \
  SIGNET__DATABASE__URL=sqlite://$dir/signet.db SIGNET__THROTTLE__ENABLED=false \
  SIGNET__KEYS__MASTER_KEY_FILE=$dir/master.key SIGNET__PASSWORDS__BCRYPT_COST=4 RUST_LOG=warn \
  target/release/signet serve >$dir/signet.log 2>&1 &
pids+=($!)
until curl -fs http://127.0.0.1:18590/healthz >/dev/null; do sleep 0.1; done
for cfg in "18591 true" "18592 false"; do
  set -- $cfg
  SIGNET_ISSUER=http://127.0.0.1:18590 SIGNET_ALLOW_INSECURE_HTTP=true BIND=127.0.0.1:$1 VERIFY_STATUS_LISTS=$2 \
    RUST_LOG=warn target/release/examples/microservice >$dir/ms$1.log 2>&1 &
  pids+=($!)
done
sleep 2
curl -sf localhost:18590/v1/auth/register -H 'content-type: application/json' -d '{"username":"bench","password":"violet-canyon-73-drift"}' >/dev/null
token=$(curl -sf localhost:18590/v1/auth/login -H 'content-type: application/json' -d '{"username":"bench","password":"violet-canyon-73-drift"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
for p in 18591 18592; do curl -sf -o /dev/null -w "$p %{http_code}\n" -H "authorization: Bearer $token" localhost:$p/user; done
on=() off=()
for r in $(seq $ROUNDS); do
  on+=($(wrk -t1 -c32 -d5s -H "authorization: Bearer $token" http://127.0.0.1:18591/user | awk '/Requests\/sec/ {print $2}'))
  off+=($(wrk -t1 -c32 -d5s -H "authorization: Bearer $token" http://127.0.0.1:18592/user | awk '/Requests\/sec/ {print $2}'))
  echo "round $r: status on ${on[-1]} req/s, off ${off[-1]} req/s (load $(cut -d' ' -f1 /proc/loadavg))"
done
python3 -c "
import statistics,sys
on=[float(x) for x in '${on[*]}'.split()]; off=[float(x) for x in '${off[*]}'.split()]
print(f'median on {statistics.median(on):.0f} req/s, off {statistics.median(off):.0f} req/s, on/off {statistics.median(on)/statistics.median(off):.3f}')
"
