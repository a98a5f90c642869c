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

# thread_ticks PID: one line per thread, "<name> <utime+stime ticks>", threads of one name
# summed (actix workers, blocking threads...), to diff before and after a phase and find
# which thread is the bottleneck.
thread_ticks() {
    for t in /proc/"$1"/task/*; do
        echo "$(cat "$t/comm" 2>/dev/null) $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null)"
    done | awk 'NF == 2 { s[$1] += $2 } END { for (n in s) print n, s[n] }' | sort
}

# context_switches PID: "<voluntary> <involuntary>" context switches of all of PID's threads so
# far. Diffed over a phase and divided by its requests: the thread hand-offs a request costs
# (each one a sleep and a wake-up), a count that does not depend on the machine's speed.
context_switches() {
    # A thread that ends between the glob and the read (an idle blocking thread) is skipped.
    { cat /proc/"$1"/task/*/status 2>/dev/null || true; } |
        awk '/^voluntary_ctxt/ { v += $2 } /^nonvoluntary_ctxt/ { n += $2 } END { print v + 0, n + 0 }'
}

# switches_per_request BEFORE AFTER REQUESTS: context_switches outputs diffed, per request.
switches_per_request() {
    echo "$1 $2" | awk -v n="$3" '{ printf "%.2f voluntary + %.2f involuntary", ($3 - $1) / n, ($4 - $2) / n }'
}

# cpu_ticks_all: "<idle ticks> <total ticks>" of the whole machine (/proc/stat), to diff
# before and after a phase: idle time under load means the load waits on something else
# than CPU, and that idle time is what a SCHED_IDLE thread (bcrypt) takes.
cpu_ticks_all() { awk '$1 == "cpu" { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

# idle_share BEFORE AFTER: the machine's idle share between two cpu_ticks_all outputs.
idle_share() {
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ");
        printf "%.1f%%", (y[1] - x[1]) * 100 / (y[2] - x[2]) }'
}

# thread_share BEFORE_FILE AFTER_FILE SECONDS: each thread name's share of one core
# between two thread_ticks snapshots, busiest first.
thread_share() {
    local hz; hz=$(getconf CLK_TCK)
    join -a2 -e0 -o 0,1.2,2.2 "$1" "$2" |
        awk -v hz="$hz" -v secs="$3" '{ d = $3 - $2; if (d > 0) printf "  %-22s %5.1f%% of a core\n", $1, d * 100 / hz / secs }' |
        sort -k2 -rn
}
