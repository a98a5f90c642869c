#!/usr/bin/env bash
# Interoperability: signet's access tokens verified by independent implementations straight
# from signet's JWKS -- Python PyJWT, Python jwcrypto, Node jose -- for every signing algorithm
# signet supports (tokens.algorithm = ES256, EdDSA, RS256).
#
# For each algorithm: start the real signet binary on a free 127.0.0.1 port (temporary SQLite
# database and master key, bcrypt cost 4), register and log in a user, fetch the JWKS, build
# the cases (make_cases.py: the real token plus forgeries), and run every verifier on them.
# The valid token must verify; a tampered payload, a signature by another key under signet's
# kid, a wrong audience or issuer, the refresh token, alg "none" and HS256-keyed-with-the-
# public-key must each be rejected, for the expected reason. Anything else fails the run.
#
# Installs what is missing (a venv in tests/interop/.venv from requirements.txt, `npm ci`),
# skipping both when the stamps match. Builds signet unless SIGNET_BIN names a binary.
# SIGNET_INTEROP_ALGS="ES256" narrows the algorithms. Only loopback traffic.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

# Everything here talks to 127.0.0.1; never route it through a proxy.
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"

ALGS="${SIGNET_INTEROP_ALGS:-ES256 EdDSA RS256}"
PASSWORD="violet-canyon-73-drift"
USERNAME="interop-alice"

die() { echo "interop: FATAL: $*" >&2; exit 1; }

# --- dependencies ---------------------------------------------------------------------------

command -v python3 >/dev/null || die "python3 is needed"
command -v curl >/dev/null || die "curl is needed"
if ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null; then
    die "Node.js >= 20 with npm is needed (found: $(node --version 2>&1 || true))"
fi

# Python packages, exactly as pinned; skipped when the venv already matches requirements.txt.
py="$here/.venv/bin/python"
stamp="$here/.venv/.installed-from-requirements.txt"
if ! cmp -s "$here/requirements.txt" "$stamp" 2>/dev/null || ! "$py" -c '' 2>/dev/null; then
    echo "interop: installing the Python verifiers into tests/interop/.venv"
    "$py" -c '' 2>/dev/null || python3 -m venv --clear "$here/.venv"
    "$py" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$stamp"
fi

# npm packages, exactly as locked; skipped when node_modules already matches the lock.
stamp="$here/node_modules/.installed-from-package-lock.json"
if ! cmp -s "$here/package-lock.json" "$stamp" 2>/dev/null; then
    echo "interop: npm ci in tests/interop"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$here/package-lock.json" "$stamp"
fi

if [ -z "${SIGNET_BIN:-}" ]; then
    cargo build --bin signet
    target_dir="${CARGO_TARGET_DIR:-target}"
    case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
    SIGNET_BIN="$target_dir/debug/signet"
fi
[ -x "$SIGNET_BIN" ] || die "no signet binary at $SIGNET_BIN"

# --- one signet per algorithm ---------------------------------------------------------------

work="$(mktemp -d "${TMPDIR:-/tmp}/signet-interop.XXXXXX")"
signet_pid=""
cleanup() {
    if [ -n "$signet_pid" ] && kill -0 "$signet_pid" 2>/dev/null; then
        kill "$signet_pid" 2>/dev/null || true
        wait "$signet_pid" 2>/dev/null || true
    fi
    if [ -n "${SIGNET_INTEROP_KEEP:-}" ]; then
        echo "interop: kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_signet ALG DIR: sets $signet_pid and $base; retries when the port was taken meanwhile.
start_signet() {
    local alg="$1" dir="$2" port master attempt
    for attempt in 1 2 3; do
        port="$(free_port)"
        base="http://127.0.0.1:$port"
        master="$("$py" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
        rm -f "$dir/signet.db"*
        (
            cd "$dir"
            exec env -i PATH="$PATH" HOME="${HOME:-/tmp}" RUST_LOG=warn \
                SIGNET__SERVER__BIND="127.0.0.1:$port" \
                SIGNET__DATABASE__URL="sqlite://$dir/signet.db" \
                SIGNET__TOKENS__ALGORITHM="$alg" \
                SIGNET__TOKENS__ISSUER="$base" \
                SIGNET__PASSWORDS__BCRYPT_COST=4 \
                SIGNET__KEYS__MASTER_KEY="$master" \
                SIGNET__THROTTLE__PER_IP_BURST=1000 \
                "$SIGNET_BIN" serve
        ) >"$dir/signet.log" 2>&1 &
        signet_pid=$!
        for _ in $(seq 1 300); do
            if curl -sf --max-time 2 "$base/healthz" >/dev/null 2>&1; then
                return 0
            fi
            kill -0 "$signet_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$signet_pid" 2>/dev/null || true
        wait "$signet_pid" 2>/dev/null || true
        signet_pid=""
        if ! grep -qi "address.*in use" "$dir/signet.log"; then break; fi
    done
    echo "---- signet log ($alg) ----" >&2
    tail -n 40 "$dir/signet.log" >&2 || true
    die "signet ($alg) did not answer /healthz"
}

stop_signet() {
    kill "$signet_pid" 2>/dev/null || true
    wait "$signet_pid" 2>/dev/null || true
    signet_pid=""
}

# post_json URL BODY OUT EXPECTED_STATUS
post_json() {
    local status
    status="$(curl -sS --max-time 20 -o "$3" -w '%{http_code}' \
        -H 'content-type: application/json' -d "$2" "$1")" || die "POST $1 failed"
    [ "$status" = "$4" ] || die "POST $1 answered $status, expected $4: $(head -c 500 "$3")"
}

failures=()
mkdir -p "$work/results"
for alg in $ALGS; do
    echo "== $alg =="
    dir="$work/$alg"
    mkdir -p "$dir"
    start_signet "$alg" "$dir"

    creds="{\"username\":\"$USERNAME\",\"password\":\"$PASSWORD\"}"
    post_json "$base/v1/auth/register" "$creds" "$dir/user.json" 201
    post_json "$base/v1/auth/login" "$creds" "$dir/pair.json" 200
    "$py" - "$dir" <<'EOF'
import json, sys
d = sys.argv[1]
pair = json.load(open(f"{d}/pair.json"))
assert pair.get("token_type") == "Bearer", pair
open(f"{d}/access.jwt", "w").write(pair["access_token"])
open(f"{d}/refresh.jwt", "w").write(pair["refresh_token"])
EOF
    status="$(curl -sS --max-time 10 -o "$dir/jwks.json" -w '%{http_code}' "$base/.well-known/jwks.json")" \
        || die "GET $base/.well-known/jwks.json failed"
    [ "$status" = 200 ] || die "GET /.well-known/jwks.json answered $status"

    "$py" "$here/make_cases.py" --alg "$alg" --issuer "$base" \
        --jwks-url "$base/.well-known/jwks.json" --jwks "$dir/jwks.json" \
        --access-token "$dir/access.jwt" --refresh-token "$dir/refresh.jwt" \
        --out "$dir/cases.json" || die "$alg: signet's token or JWKS is not what the verifiers rely on"

    "$py" "$here/verify_py.py" pyjwt "$dir/cases.json" "$work/results/$alg-1-pyjwt.json" \
        || failures+=("$alg / PyJWT")
    "$py" "$here/verify_py.py" jwcrypto "$dir/cases.json" "$work/results/$alg-2-jwcrypto.json" \
        || failures+=("$alg / jwcrypto")
    node "$here/verify_node.mjs" "$dir/cases.json" "$work/results/$alg-3-jose.json" \
        || failures+=("$alg / jose")

    # Revocation through the token status list, read by the same libraries plus zlib: the bit of
    # the fresh token is 0; after logout it is 1 within a few seconds.
    "$py" "$here/status_py.py" "$dir/access.jwt" "$base" valid || failures+=("$alg / status list (PyJWT) before logout")
    node "$here/status_node.mjs" "$dir/access.jwt" "$base" valid || failures+=("$alg / status list (jose) before logout")
    post_json "$base/v1/auth/logout" "{\"refresh_token\":\"$(cat "$dir/refresh.jwt")\"}" "$dir/logout.out" 204
    "$py" "$here/status_py.py" "$dir/access.jwt" "$base" revoked 3 || failures+=("$alg / status list (PyJWT) after logout")
    node "$here/status_node.mjs" "$dir/access.jwt" "$base" revoked 3 || failures+=("$alg / status list (jose) after logout")

    stop_signet
done

# --- summary --------------------------------------------------------------------------------

echo
"$py" - "$work/results" $ALGS <<'EOF'
import json, os, sys
results_dir, algs = sys.argv[1], sys.argv[2:]
short = {
    "valid": "valid", "tampered_payload": "tampered", "foreign_key_same_kid": "foreign-key",
    "wrong_audience": "wrong-aud", "wrong_issuer": "wrong-iss",
    "refresh_as_access": "refresh-tok", "alg_none": "alg-none",
    "hs256_with_public_key": "hs256-pubkey",
}
cols = list(short)
expected_impls = ["pyjwt", "jwcrypto", "jose"]
rows = []
for alg in algs:
    for i, lib in enumerate(expected_impls, 1):
        path = os.path.join(results_dir, f"{alg}-{i}-{lib}.json")
        if not os.path.exists(path):
            rows.append([alg, lib + " (no results)"] + ["MISSING"] * len(cols))
            continue
        doc = json.load(open(path))
        by_case = {r["case"]: r for r in doc["results"]}
        cells = []
        for c in cols:
            r = by_case.get(c)
            cells.append("MISSING" if r is None else ("ok" if r["ok"] else "FAIL"))
        rows.append([alg, doc["impl"]] + cells)
header = ["alg", "implementation"] + [short[c] for c in cols]
widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
line = lambda row: "  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip()
print(line(header))
print(line(["-" * w for w in widths]))
for row in rows:
    print(line(row))
print("\nvalid: must verify; every other column: must be rejected, for the expected reason")
EOF

if [ "${#failures[@]}" -gt 0 ]; then
    echo >&2
    echo "interop: FAIL: unexpected outcomes in: ${failures[*]} (see the FAIL lines above)" >&2
    exit 1
fi
echo "interop: every verifier accepted signet's tokens, rejected every forgery and read the revocation from the status list ($ALGS)"
