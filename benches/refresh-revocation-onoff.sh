#!/usr/bin/env bash
# Issue 13: refreshes/s with revocation (status lists) on vs off, alternating rounds against one
# release binary on a fresh SQLite file each, throttling off, 32 clients x 8 s (examples/refresh_load).
#   cargo build --release --bin signet --example refresh_load && benches/refresh-revocation-onoff.sh
set -u
cd "$(dirname "$0")/.."
BIN="${SIGNET_BIN:-target/release/signet}"
LOAD="${LOAD_BIN:-target/release/examples/refresh_load}"
for round in 1 2 3; do
  for mode in true false; do
    dir=$(mktemp -d)
    if [ "$mode" = true ]; then off=0; else off=1; fi
    port=$((18400 + round * 2 + off))
    SIGNET__DATABASE__URL="sqlite://$dir/s.db" SIGNET__SERVER__BIND="127.0.0.1:$port" SIGNET__THROTTLE__ENABLED=false \
    SIGNET__REVOCATION__ENABLED=$mode SIGNET__PASSWORDS__BCRYPT_COST=4 SIGNET__KEYS__MASTER_KEY_FILE="$dir/master.key" \
      "$BIN" serve >"$dir/log" 2>&1 &
    pid=$!
    for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
    echo "round $round revocation=$mode: $("$LOAD" --url "http://127.0.0.1:$port" --clients 32 --secs 8 2>&1 | tr '\n' ' ')"
    kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$dir"
  done
done
