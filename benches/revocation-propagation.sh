#!/usr/bin/env bash
# Revocation propagation (issue 13): logout at signet -> 401 at the example
# microservice, with the event stream (default) and by ttl polling alone
# (VERIFY_STATUS_EVENTS=false); release binaries, temp SQLite, ports 18490-18492.
#   cargo build --release --bin signet --example revocation_propagation
#   cargo build --release -p signet-verify --example microservice --features actix,remote
#   benches/revocation-propagation.sh            # POLL_ROUNDS=100
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; rm -rf $dir' EXIT
SIGNET__SERVER__BIND=127.0.0.1:18490 SIGNET__TOKENS__ISSUER=http://127.0.0.1:18490 \
  SIGNET__DATABASE__URL=sqlite://$dir/signet.db SIGNET__THROTTLE__ENABLED=false \
  SIGNET__KEYS__MASTER_KEY_FILE=$dir/master.key SIGNET__PASSWORDS__BCRYPT_COST=4 RUST_LOG=warn \
  target/release/signet serve >$dir/signet.log 2>&1 &
pids+=($!)
until curl -fs http://127.0.0.1:18490/healthz >/dev/null; do sleep 0.1; done
SIGNET_ISSUER=http://127.0.0.1:18490 SIGNET_ALLOW_INSECURE_HTTP=true BIND=127.0.0.1:18491 \
  target/release/examples/microservice >$dir/ms1.log 2>&1 &
pids+=($!)
SIGNET_ISSUER=http://127.0.0.1:18490 SIGNET_ALLOW_INSECURE_HTTP=true BIND=127.0.0.1:18492 VERIFY_STATUS_EVENTS=false \
  target/release/examples/microservice >$dir/ms2.log 2>&1 &
pids+=($!)
sleep 2
echo "== event stream (default), load: $(cut -d' ' -f1-3 /proc/loadavg)"
target/release/examples/revocation_propagation --signet http://127.0.0.1:18490 --service http://127.0.0.1:18491 --rounds 100
echo "== VERIFY_STATUS_EVENTS=false, load: $(cut -d' ' -f1-3 /proc/loadavg)"
target/release/examples/revocation_propagation --signet http://127.0.0.1:18490 --service http://127.0.0.1:18492 --rounds ${POLL_ROUNDS:-100}
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
