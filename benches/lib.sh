# Shared by the benchmark scripts: source it (`. benches/lib.sh`) from the project root.

# fresh_database sqlite|postgres NAME WORK_DIR: prints the URL of an empty database, a
# file in WORK_DIR or PostgreSQL database NAME (dropped and recreated) on
# SIGNET_TEST_POSTGRES_URL's server.
fresh_database() {
    local pg="${SIGNET_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
    if [ "$1" = postgres ]; then
        PGSSLMODE=disable psql "$pg" -q -c "DROP DATABASE IF EXISTS $2 WITH (FORCE)" -c "CREATE DATABASE $2" >&2
        echo "${pg%/*}/$2"
    else
        echo "sqlite://$3/signet.db"
    fi
}

# wait_ready BASE_URL: until /readyz answers (30 s at most); fails otherwise.
wait_ready() {
    for _ in $(seq 1 300); do curl -sf "$1/readyz" >/dev/null && return 0; sleep 0.1; done
    echo "signet at $1 did not become ready" >&2
    return 1
}
