#!/usr/bin/env bash
# Client-credentials tokens/s and introspections/s (issue 14) against a fresh release signet.
# Usage: benches/oauth-load.sh sqlite|postgres   (after
#   cargo build --release --bin signet --example oauth_load)
# Starts target/release/signet on 127.0.0.1:18096 with a fresh SQLite file or a fresh
# PostgreSQL database (signet_bench_oauth on SIGNET_TEST_POSTGRES_URL's server), creates a
# client with the CLI, runs examples/oauth_load (32 workers, 10 s per phase) and prints the
# load average before and after. The load generator shares the machine's cores.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
backend="${1:?sqlite or postgres}"
work="$(mktemp -d /tmp/signet-oauth-bench.XXXXXX)"
port=18096
master="$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
. "$repo/benches/lib.sh"
db="$(fresh_database "$backend" signet_bench_oauth "$work")"
run() {
    exec env SIGNET__SERVER__BIND="127.0.0.1:$port" SIGNET__DATABASE__URL="$db" SIGNET__KEYS__MASTER_KEY="$master" \
        SIGNET__TOKENS__ISSUER="http://127.0.0.1:$port" RUST_LOG=warn "$repo/target/release/signet" "$@"
}
(cd "$work" && run migrate) >/dev/null
(cd "$work" && run serve) >"$work/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
wait_ready "http://127.0.0.1:$port" || { cat "$work/log"; exit 1; }
out="$(cd "$work" && run clients create load --role reader)"
id="$(echo "$out" | sed -n 's/^client_id: //p')"
secret="$(echo "$out" | sed -n 's/^client_secret: //p')"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$repo/target/release/examples/oauth_load" --url "http://127.0.0.1:$port" --client-id "$id" \
    --client-secret "$secret" --concurrency 32 --secs 10
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
