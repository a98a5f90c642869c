#!/usr/bin/env bash
# The database cost of signet's operations (issue 15 point 6): per login, refresh
# and protected call (GET /v1/auth/me), on PostgreSQL, the round trips
# (statements, pg_stat_statements calls including BEGIN/COMMIT and the pool's
# check-out SELECT 1), transactions, rows written, bytes of WAL
# (pg_current_wal_lsn before/after), WAL flushes (pg_stat_wal.wal_sync), pages
# dirtied (written by a CHECKPOINT after the phase) and PostgreSQL CPU time
# (/proc of the backends serving signet's pool), each divided by N.
#
# A throwaway PostgreSQL 15 cluster (initdb into a temp dir, own port, stock
# settings plus pg_stat_statements) and one release signet whose background
# work is pushed out of the way (key reload hourly, status-list poll every 60 s,
# purge daily), so what is counted is the requests'. One client, sequential
# requests over one keep-alive connection (python3 http.client).
#
#   cargo build --release --bin signet
#   benches/capacity.sh                 # N=1000; SIGNET_BIN=... to use another binary
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000}
SIGNET_BIN=$(realpath "${SIGNET_BIN:-target/release/signet}")
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

work=$(mktemp -d /tmp/signet-capacity.XXXXXX)
chmod 755 "$work"
pids=()
pg_running=0
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ "$pg_running" = 1 ]; then as_pg "$PGBIN/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

PGPORT=$(free_port)
mkdir "$work/pg" && chown postgres "$work/pg" 2>/dev/null || true
as_pg "$PGBIN/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 >"$work/initdb.log" 2>&1 ||
    { cat "$work/initdb.log" >&2; exit 1; }
as_pg "$PGBIN/pg_ctl" -D "$work/pg" -l "$work/pg/server.log" -w -o "-p $PGPORT -k $work/pg \
    -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements \
    -c pg_stat_statements.track_utility=on -c track_wal_io_timing=on" start >/dev/null
pg_running=1
export PSQL="psql -h 127.0.0.1 -p $PGPORT -U postgres -qAt"
$PSQL -c 'CREATE DATABASE signet' -c 'CREATE EXTENSION pg_stat_statements'
export DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/signet"
export SIGNET__KEYS__MASTER_KEY="c2lnbmV0LWZsZWV0LW1hc3Rlci1rZXktMzItYnl0ZXM="
"$SIGNET_BIN" migrate >/dev/null

PORT=$(free_port)
(cd "$work" && SIGNET__SERVER__BIND="127.0.0.1:$PORT" SIGNET__PASSWORDS__BCRYPT_COST=4 \
    SIGNET__THROTTLE__ENABLED=false SIGNET__KEYS__RELOAD_SECS=3600 SIGNET__REVOCATION__POLL_MILLIS=60000 \
    SIGNET__MAINTENANCE__INTERVAL_SECS=86400 RUST_LOG=warn exec "$SIGNET_BIN" serve >"$work/signet.log" 2>&1) &
pids+=($!)
for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
echo "PostgreSQL $($PSQL -c 'SHOW server_version') on $PGPORT (fsync $($PSQL -c 'SHOW fsync'), synchronous_commit $($PSQL -c 'SHOW synchronous_commit'), shared_buffers $($PSQL -c 'SHOW shared_buffers')); signet $(git rev-parse --short HEAD); N=$N"

PORT=$PORT N=$N python3 - <<'PY'
import http.client, json, os, subprocess, time

N = int(os.environ["N"])
psql = os.environ["PSQL"].split()
conn = http.client.HTTPConnection("127.0.0.1", int(os.environ["PORT"]))
tick = os.sysconf("SC_CLK_TCK")

def sql(q):
    return subprocess.run(psql + ["-c", q], check=True, capture_output=True, text=True).stdout.strip()

def pg_cpu():
    """CPU seconds of the backends serving signet's pool (their process title
    names the database); the cluster's background processes are left out."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            if not (cmd.startswith(b"postgres: ") and b" signet " in cmd):
                continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total / tick

def snapshot():
    # Cumulative statistics reach the shared counters when a backend has been
    # idle for a while (PGSTAT_IDLE_INTERVAL, 10 s): wait them out.
    time.sleep(11)
    row = sql("""SELECT pg_current_wal_lsn(),
        (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'signet'),
        (SELECT wal_sync FROM pg_stat_wal), (SELECT wal_fpi FROM pg_stat_wal),
        (SELECT wal_records FROM pg_stat_wal)""").split("|")
    stmts = {}
    for line in sql("""SELECT s.calls, s.rows, regexp_replace(s.query, '\\s+', ' ', 'g')
        FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'signet'""").splitlines():
        calls, rows, query = line.split("|", 2)
        stmts[query] = (int(calls), int(rows))
    return {"lsn": row[0], "xacts": int(row[1]), "wal_sync": int(row[2]), "fpi": int(row[3]),
            "records": int(row[4]), "stmts": stmts}

def call(method, path, body=None, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    global conn
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        res = conn.getresponse()
    except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
        # The server closes idle keep-alive connections (5 s) during the pauses.
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", int(os.environ["PORT"]))
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        res = conn.getresponse()
    data = res.read()
    return res.status, (json.loads(data) if data else None)

def phase(name, op):
    sql("CHECKPOINT")
    before = snapshot()
    buffers_before = int(sql("SELECT buffers_checkpoint FROM pg_stat_bgwriter"))
    cpu_before, start = pg_cpu(), time.time()
    for i in range(N):
        op(i)
    elapsed, cpu = time.time() - start, pg_cpu() - cpu_before
    after = snapshot()
    sql("CHECKPOINT")
    time.sleep(1)
    pages = int(sql("SELECT buffers_checkpoint FROM pg_stat_bgwriter")) - buffers_before
    wal = int(sql(f"SELECT pg_wal_lsn_diff('{after['lsn']}', '{before['lsn']}')"))
    calls = rows_written = 0
    breakdown = []
    for q, (c, r) in after["stmts"].items():
        c0, r0 = before["stmts"].get(q, (0, 0))
        if c - c0 == 0:
            continue
        calls += c - c0
        if q.split()[0].upper() in ("INSERT", "UPDATE", "DELETE", "WITH"):
            rows_written += r - r0
        breakdown.append((c - c0, r - r0, q))
    # The snapshot's own SELECTs run in database postgres, not signet: not counted.
    print(f"\n== {name}: {N} in {elapsed:.1f} s, sequential")
    print(f"  round trips {calls / N:.2f}  transactions {(after['xacts'] - before['xacts']) / N:.2f}  "
          f"rows written {rows_written / N:.2f}  WAL {wal / N:.0f} B (records {(after['records'] - before['records']) / N:.1f}, "
          f"full-page images {(after['fpi'] - before['fpi']) / N:.2f})  WAL flushes {(after['wal_sync'] - before['wal_sync']) / N:.2f}  "
          f"pages dirtied {pages / N:.2f}  PostgreSQL CPU {cpu * 1e6 / N:.0f} µs")
    for c, r, q in sorted(breakdown, reverse=True):
        print(f"    {c / N:5.2f} calls {r / N:5.2f} rows  {q[:150]}")

users = [(f"cap{i}", f"violet-canyon-73-drift-{i}") for i in range(N)]
pairs = [None] * N

def register(i):
    s, b = call("POST", "/v1/auth/register", {"username": users[i][0], "password": users[i][1]})
    assert s == 201, (s, b)

def login(i):
    s, b = call("POST", "/v1/auth/login", {"username": users[i][0], "password": users[i][1]})
    assert s == 200, (s, b)
    pairs[i] = b

def refresh(i):
    s, b = call("POST", "/v1/auth/refresh", {"refresh_token": pairs[i]["refresh_token"]})
    assert s == 200, (s, b)
    pairs[i] = b

def me(i):
    s, b = call("GET", "/v1/auth/me", token=pairs[i]["access_token"])
    assert s == 200, (s, b)

phase("idle (background work only, per N requests' worth of nothing)", lambda i: None)
phase("register", register)
phase("login", login)
phase("refresh", refresh)
phase("refresh, second round", refresh)
phase("GET /v1/auth/me", me)
PY
