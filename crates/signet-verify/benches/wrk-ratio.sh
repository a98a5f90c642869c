#!/usr/bin/env bash
# Protected/bare throughput ratio of the example microservice, cache on and off.
#
# Starts the release signet (temp SQLite, port 18080) and two release
# microservices beside it (18081 cache on, 18082 cache off; one worker each),
# logs in once, then runs wrk on loopback against GET /public and GET /user,
# interleaved, ROUNDS times per server, and prints the medians and ratios,
# both of req/s and of the microservice's CPU time per request (read from
# /proc, so it holds even when other work shares the machine). Both routes
# get the same Authorization header, so requests are the same size and only
# the verification differs. Kills only the processes it started.
#
#   cargo build --release --bin signet
#   cargo build --release -p signet-verify --features actix,remote --example microservice
#   crates/signet-verify/benches/wrk-ratio.sh            # ROUNDS=3 DURATION=10s CONNECTIONS=32
set -euo pipefail
cd "$(dirname "$0")/../../.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
SIGNET=target/release/signet
SERVICE=target/release/examples/microservice
command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

root=$PWD
(cd "$work" && exec env SIGNET__SERVER__BIND=127.0.0.1:18080 SIGNET__TOKENS__ISSUER=http://127.0.0.1:18080 \
    DATABASE_URL="sqlite://$work/signet.db" SIGNET__PASSWORDS__BCRYPT_COST=4 \
    SIGNET__SERVER__WORKERS=1 RUST_LOG=warn "$root/$SIGNET" serve >"$work/signet.log" 2>&1) &
pids+=($!)
for _ in $(seq 50); do curl -sf localhost:18080/healthz >/dev/null && break; sleep 0.1; done

curl -sf localhost:18080/v1/auth/register -H 'content-type: application/json' \
    -d '{"username":"bench","password":"violet-canyon-73-drift"}' >/dev/null
token=$(curl -sf localhost:18080/v1/auth/login -H 'content-type: application/json' \
    -d '{"username":"bench","password":"violet-canyon-73-drift"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

for spec in 18081:10000 18082:0; do
    port=${spec%%:*} cache=${spec##*:}
    SIGNET_ISSUER=http://127.0.0.1:18080 BIND=127.0.0.1:$port WORKERS=1 VERIFY_CACHE_SIZE=$cache \
        RUST_LOG=warn "$SERVICE" >"$work/ms-$port.log" 2>&1 &
    pids+=($!)
done
for port in 18081 18082; do
    for _ in $(seq 50); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "localhost:$port/user" -H "authorization: Bearer $token" || true)
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    [ "$code" = 200 ] || { echo "microservice on $port answers $code" >&2; exit 1; }
done

declare -A service_pid
service_pid[18081]=${pids[1]}
service_pid[18082]=${pids[2]}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, clock ticks

# One wrk run: "req/s  server-CPU-µs-per-request". The CPU cost per request
# does not depend on what else the machine runs; req/s does.
measure() { # port path
    local pid=${service_pid[$1]} before after out
    before=$(ticks "$pid")
    out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -H "Authorization: Bearer $token" "http://127.0.0.1:$1$2")
    after=$(ticks "$pid")
    awk -v t="$((after - before))" -v hz="$(getconf CLK_TCK)" '
        / requests in / {n = $1}
        /Requests\/sec/ {r = $2}
        END {printf "%s %.2f\n", r, t * 1e6 / hz / n}' <<<"$out"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "wrk -t1 -c$CONNECTIONS -d$DURATION, $ROUNDS interleaved rounds; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| cache | /public req/s | /user req/s | req/s ratio (median of rounds) | /public CPU µs/req | /user CPU µs/req | CPU ratio /public ÷ /user |"
echo "|---|---|---|---|---|---|---|"
for spec in 18081:on 18082:off; do
    port=${spec%%:*} label=${spec##*:}
    rb=() rp=() ratios=() cb=() cp=()
    for _ in $(seq "$ROUNDS"); do
        read -r b bc < <(measure "$port" /public)
        read -r p pc < <(measure "$port" /user)
        rb+=("$b") rp+=("$p") cb+=("$bc") cp+=("$pc")
        ratios+=("$(awk -v p="$p" -v b="$b" 'BEGIN {printf "%.3f", p / b}')")
    done
    mb=$(printf '%s\n' "${rb[@]}" | median)
    mp=$(printf '%s\n' "${rp[@]}" | median)
    mr=$(printf '%s\n' "${ratios[@]}" | median)
    mcb=$(printf '%s\n' "${cb[@]}" | median)
    mcp=$(printf '%s\n' "${cp[@]}" | median)
    cr=$(awk -v b="$mcb" -v p="$mcp" 'BEGIN {printf "%.3f", b / p}')
    echo "| $label | $mb | $mp | **$mr** (${ratios[*]}) | $mcb | $mcp | **$cr** |"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
