#!/usr/bin/env bash
# tests/pg/with-pg.sh CMD [ARGS...] — runs CMD with MF_TEST_PG set to a
# throwaway PostgreSQL cluster (Debian's postgresql): its own data directory,
# reachable only through a Unix socket in that directory (no TCP listener,
# no network traffic), created, started, and removed again whatever CMD does.
# tests/pg/with-pg.sh --hold — prints "MF_TEST_PG=<url>" and keeps the
# cluster until its standard input closes (for the e2e tests); meanwhile the
# lines "stop" and "start" on its standard input stop the server (clients are
# disconnected, the socket goes away) and start it again, each answered by a
# line "stopped" / "started" (the e2e tests of an unreachable ledger).
set -euo pipefail

BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $BIN/initdb ]] || { echo "with-pg: no PostgreSQL server installed (make deps)" >&2; exit 1; }
DIR=$(mktemp -d /tmp/mfpg.XXXXXX)
PORT=$((15432 + $$ % 1000))
chown postgres:postgres "$DIR"
run_pg() { runuser -u postgres -- "$@"; }

cleanup() {
    run_pg "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

run_pg "$BIN/initdb" -D "$DIR/data" -A trust -U postgres --no-sync >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; exit 1; }
start_pg() {
    run_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 30 \
        -o "-c listen_addresses='' -k $DIR -p $PORT -c fsync=off" start >/dev/null \
        || { cat "$DIR/server.log" >&2; return 1; }
}
start_pg || exit 1
run_pg "$BIN/createdb" -h "$DIR" -p "$PORT" mftest
export MF_TEST_PG="postgresql:///mftest?host=$DIR&port=$PORT&user=postgres"
if [[ ${1:-} == --hold ]]; then
    echo "MF_TEST_PG=$MF_TEST_PG"
    while read -r cmd; do
        case $cmd in
            stop) run_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null && echo stopped ;;
            start) start_pg && echo started ;;
            *) echo "unknown command" ;;
        esac
    done
    exit 0
fi
"$@"
