#!/usr/bin/env bash
# signet's OAuth 2.0 endpoints driven by two independent, real client libraries: Python
# Authlib (requests integration) and Node openid-client, pinned (requirements.txt,
# package-lock.json). Starts the signet binary ($SIGNET_BIN; built in debug when unset) on a
# free 127.0.0.1 port with a temporary SQLite database, creates a client with the CLI
# (`signet clients create`), registers and logs in a user, then runs each library through
# discovery, client credentials (basic and post), introspection, token exchange (Authlib),
# refresh as the public client `signet`, and revocation.
#
# Installs what is missing (a venv in tests/oauth/.venv, `npm ci`), skipping both when the
# stamps match. Only loopback traffic.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
PASSWORD="violet-canyon-73-drift"

die() { echo "oauth-tests: FATAL: $*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is needed"
command -v curl >/dev/null || die "curl is needed"
if ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null; then
    die "Node.js >= 20 with npm is needed (found: $(node --version 2>&1 || true))"
fi

py="$here/.venv/bin/python"
stamp="$here/.venv/.installed-from-requirements.txt"
if ! cmp -s "$here/requirements.txt" "$stamp" 2>/dev/null || ! "$py" -c '' 2>/dev/null; then
    echo "oauth-tests: installing Authlib into tests/oauth/.venv"
    "$py" -c '' 2>/dev/null || python3 -m venv --clear "$here/.venv"
    "$py" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$stamp"
fi
stamp="$here/node_modules/.installed-from-package-lock.json"
if ! cmp -s "$here/package-lock.json" "$stamp" 2>/dev/null; then
    echo "oauth-tests: npm ci in tests/oauth"
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

work="$(mktemp -d "${TMPDIR:-/tmp}/signet-oauth.XXXXXX")"
signet_pid=""
cleanup() {
    if [ -n "$signet_pid" ] && kill -0 "$signet_pid" 2>/dev/null; then
        kill "$signet_pid" 2>/dev/null || true
        wait "$signet_pid" 2>/dev/null || true
    fi
    if [ -n "${SIGNET_OAUTH_KEEP:-}" ]; then echo "oauth-tests: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

master="$("$py" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
# The server and the CLI share the database and the master key (the CLI hashes the secret).
# Called in a subshell; exec, so the subshell's pid ($! of the server) is signet's and the
# cleanup's kill reaches it (without exec it killed the subshell and left signet running).
signet_env() {
    exec env -i PATH="$PATH" HOME="${HOME:-/tmp}" RUST_LOG=warn \
        SIGNET__SERVER__BIND="127.0.0.1:$port" \
        SIGNET__DATABASE__URL="sqlite://$work/signet.db" \
        SIGNET__TOKENS__ISSUER="$base" \
        SIGNET__PASSWORDS__BCRYPT_COST=4 \
        SIGNET__KEYS__MASTER_KEY="$master" \
        SIGNET__THROTTLE__PER_IP_BURST=1000 \
        "$SIGNET_BIN" "$@"
}

for attempt in 1 2 3; do
    port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    base="http://127.0.0.1:$port"
    rm -f "$work/signet.db"*
    (cd "$work" && signet_env serve) >"$work/signet.log" 2>&1 &
    signet_pid=$!
    up=""
    for _ in $(seq 1 300); do
        if curl -sf --max-time 2 "$base/healthz" >/dev/null 2>&1; then up=1; break; fi
        kill -0 "$signet_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$up" ] && break
    kill "$signet_pid" 2>/dev/null || true
    wait "$signet_pid" 2>/dev/null || true
    signet_pid=""
    grep -qi "address.*in use" "$work/signet.log" || break
done
[ -n "$signet_pid" ] || { tail -n 40 "$work/signet.log" >&2; die "signet did not answer /healthz"; }

# The client, created with the CLI: it prints client_id and client_secret once.
(cd "$work" && signet_env clients create reports --role reports.read --role reports.write --audience orders) \
    >"$work/client.txt" || die "signet clients create failed"
client_id="$(sed -n 's/^client_id: //p' "$work/client.txt")"
client_secret="$(sed -n 's/^client_secret: //p' "$work/client.txt")"
[ -n "$client_id" ] && [ -n "$client_secret" ] || die "signet clients create printed no credentials"
(cd "$work" && signet_env clients list) | grep -q "$client_id" || die "signet clients list does not list the client"

# A user with two logins: one refresh token per library.
post_json() {
    curl -sS --max-time 20 -f -H 'content-type: application/json' -d "$2" "$1" \
        || die "POST $1 failed"
}
creds="{\"username\":\"oauth-alice\",\"password\":\"$PASSWORD\"}"
post_json "$base/v1/auth/register" "$creds" >/dev/null
refresh_of() { "$py" -c 'import json, sys; print(json.load(sys.stdin)["refresh_token"])'; }
refresh_py="$(post_json "$base/v1/auth/login" "$creds" | refresh_of)"
refresh_node="$(post_json "$base/v1/auth/login" "$creds" | refresh_of)"

failures=()
"$py" "$here/client_py.py" "$base" "$client_id" "$client_secret" "$refresh_py" || failures+=("Authlib")
node "$here/client_node.js" "$base" "$client_id" "$client_secret" "$refresh_node" || failures+=("openid-client")

if [ "${#failures[@]}" -gt 0 ]; then
    echo "---- signet log ----" >&2
    tail -n 40 "$work/signet.log" >&2 || true
    die "failed: ${failures[*]}"
fi
echo "oauth-tests: Authlib and openid-client passed discovery, client credentials, introspection, refresh and revocation"
