#!/usr/bin/env bash
# bench/ledger/run.sh — routing decisions per second and state-flip cost on
# the two ledger backends, in the same run: a SQLite file, and a throwaway
# PostgreSQL cluster on a Unix socket (tests/pg/with-pg.sh). No network.
#   bench/ledger/run.sh   (as root; about 30 s)   knobs: BENCH_ACCOUNTS=10000
#   BENCH_SECONDS=5 BENCH_THREADS="1 2"
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ACCOUNTS=${BENCH_ACCOUNTS:-10000}
SECS=${BENCH_SECONDS:-5}
THREADS=${BENCH_THREADS:-1 2}
WORK=$(mktemp -d /tmp/mfledgerbench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
make -C "$ROOT" --no-print-directory build/libmailferry.a >/dev/null
cc -O2 -D_GNU_SOURCE -I"$ROOT/lib" -I"$ROOT/migrate" -I"$ROOT/gateway" \
    "$ROOT/bench/ledger/ledgerbench.c" "$ROOT/build/libmailferry.a" \
    $(pkg-config --libs sqlite3 libpq liburing inih libmnl libnftnl openssl \
        libnetfilter_queue libcap-ng) -pthread -o "$WORK/ledgerbench"
mkdir -p "$ROOT/bench/results"
OUT="$ROOT/bench/results/ledger-$(date +%Y%m%d-%H%M%S).txt"
{
    for t in $THREADS; do
        echo "sqlite threads=$t $("$WORK/ledgerbench" "$WORK/ledger-$t.db" "$ACCOUNTS" "$SECS" "$t")"
    done
    BENCH_BIN="$WORK/ledgerbench" BENCH_T="$THREADS" BENCH_A="$ACCOUNTS" BENCH_S="$SECS" \
        "$ROOT/tests/pg/with-pg.sh" bash -c '
        for t in $BENCH_T; do
            echo "postgresql threads=$t $("$BENCH_BIN" "$MF_TEST_PG" "$BENCH_A" "$BENCH_S" "$t")"
        done'
} | tee "$OUT"
echo "raw results: $OUT"
