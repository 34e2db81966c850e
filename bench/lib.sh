# shellcheck shell=bash
# bench/lib.sh: shell functions shared by bench/pipeline and bench/run. Sourced after dev/lib.sh (say, warn, die);
# the scripts set T0 (for step), PG_PORT and CDC2DORIS_PG_PASSWORD (for psql_q), BENCH_DIR (for metric).

step() { printf '\n==> [%3ss] %s\n' "$((SECONDS - T0))" "$*"; }

psql_q() {
    PGPASSWORD=$CDC2DORIS_PG_PASSWORD psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U cdc2doris "$@"
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# calc EXPR [DECIMALS]: floating-point arithmetic.
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }

# pid_on_port PORT: the process listening on 127.0.0.1:PORT (empty when unknown, e.g. without the rights to see it).
pid_on_port() {
    ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true
}

# cpu_ticks PID [children]: user + system CPU of a process, in clock ticks; with `children`, plus that of its
# children that exited (PostgreSQL's backends are the postmaster's children).
cpu_ticks() {
    local stat f
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || {
        echo 0
        return
    }
    # Fields after the command name, which may hold spaces: state is f[0], utime f[11], stime f[12].
    read -ra f <<<"${stat##*) }"
    if [ "${2:-}" = children ]; then
        echo $((f[11] + f[12] + f[13] + f[14]))
    else
        echo $((f[11] + f[12]))
    fi
}

# postgres_ticks: CPU of the PostgreSQL cluster (postmaster, live backends, and the backends that exited).
postgres_ticks() {
    local pm=$1 total c
    [ -n "$pm" ] || {
        echo 0
        return
    }
    total=$(cpu_ticks "$pm" children)
    for c in $(ps -o pid= --ppid "$pm" 2>/dev/null); do
        total=$((total + $(cpu_ticks "$c")))
    done
    echo "$total"
}

# metric NAME [FILTER]: the sum of a Prometheus series over its label sets in metrics.txt (0 when absent); FILTER is
# an awk regex lines must not match.
metric() {
    awk -v n="$1" -v skip="${2:-^$}" \
        'index($1, n) == 1 && (substr($1, length(n) + 1, 1) == "{" || length($1) == length(n)) && $0 !~ skip \
         { s += $NF } END { printf "%.0f", s + 0 }' "$BENCH_DIR/metrics.txt"
}

# fail_with_log MESSAGE LOG: says what failed and shows the log's tail; exits 1.
fail_with_log() {
    warn "error: $1"
    warn "  log: $2"
    [ -r "$2" ] && tail -n 30 "$2" | sed 's/^/    /' >&2
    exit 1
}


# json_num KEY JSON: the first number under "KEY" in a JSON text.
json_num() { grep -o "\"$1\": *[0-9.]*" <<<"$2" | head -n1 | sed 's/.*: *//'; }

# verify_doris CDC2DORIS CONFIG LOG: `cdc2doris verify` of the config's Doris table (over its MySQL query port,
# `doris.query_port`) against the merge query, every key of `SELECT id FROM jobs` and every Doris row (a row of a job
# no longer in PostgreSQL is extra). Prints its report (first line: `verify: N keys in R ranges: N match, M missing, S
# stale, E extra, D different`, then examples), its log in LOG; returns its status (1 on any difference).
verify_doris() {
    "$1" verify --config "$2" --keys-query "SELECT id FROM jobs" --recheck-after 0s 2>"$3"
}

# debug_build BIN: true when BIN is an unoptimised (debug-profile) Rust build. Such a build instantiates the
# standard library's `precondition_check` functions (its UB checks follow debug assertions), a release build none;
# both keep symbols (the workspace's release profile has debug = 1). Without `nm`, or for a stripped binary, the
# path decides (a `debug` directory of a Cargo target dir).
debug_build() {
    if command -v nm >/dev/null 2>&1 && [ -n "$(nm "$1" 2>/dev/null | head -n1)" ]; then
        [ "$(nm "$1" 2>/dev/null | grep -c precondition_check || true)" -gt 0 ]
        return
    fi
    [[ "$(readlink -f "$1")" == */debug/* ]]
}
