#!/usr/bin/env bash
# bench/migrate/run.sh — mailbox copy benchmark: `mailferry migrate` vs mbsync (Debian's
# isync, CopyArrivalDate yes) and `doveadm backup` over imapc (Debian's Dovecot, run on the
# destination and from the router) copying the same generated mailbox old -> new, with the
# ceilings of one connection (pipelined FETCH from old, MULTIAPPEND into new), mailferry's
# peak RSS on a mailbox 1/5 the size, and 20 accounts copied W at a time; then the daemon's
# live copy (mailferryd intercepting port 143, [migrate] strategy live): how long the cutover
# refuses the user, against the mailbox's size and the whole copy; on a lab of network
# namespaces that bench.py brings up and always tears down.
#
#   bench/migrate/run.sh            (as root, after `make`; about 100 s per rep)
#   BENCH_ONLY=daemon bench/migrate/run.sh      (the daemon live copy section alone)
#
# Knobs (env): BENCH_MSGS=5000  BENCH_AVG_KB=60 (mean message size)  BENCH_REPS=1
#   BENCH_MAX_SECONDS=900 (each copy, and each round of parallel copies, is killed past
#   this)  BENCH_BATCH=100 (messages per FETCH / APPEND command of the ceilings)
#   BENCH_USERS=20  BENCH_USER_MSGS=250 (the parallel accounts)  BENCH_WORKERS="1 2 4 8"
#   LAB_PREFIX (namespace prefix, default mfl<pid>-)  BENCH_LAB_DIR (the lab's files and
#   mail stores, default /tmp/<prefix>lab; /dev/shm/<name> keeps the disk out)
#   BENCH_ONLY=daemon (only the daemon live copy section)  BENCH_DAEMON_REPS (its reps,
#   default BENCH_REPS)  BENCH_DAEMON_TRACE=0 (no extra run with tcpdump of the daemon's
#   connections)
# Prints wall time, messages/s, MB/s, peak RSS and the ratios; raw results go to
# bench/results/migrate-<date>.txt. Safety: the lab's own namespaces and 198.18.0.0/15 only;
# every process started here is waited for with a timeout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[[ -x $ROOT/build/mailferry ]] || { echo "build/mailferry missing: run make" >&2; exit 1; }
command -v mbsync >/dev/null || echo "mbsync not installed (apt-get install isync): its row is skipped" >&2
# The lab's namespaces go on every exit: bench.py tears its lab down (context manager,
# atexit, SIGTERM), and this trap runs lab.sh down for the same prefix whatever happened
# to it (idempotent). Ctrl-C and TERM reach bench.py as SIGTERM.
export LAB_PREFIX=${LAB_PREFIX:-mfl$$-}
LAB_DIR=${BENCH_LAB_DIR:-/tmp/${LAB_PREFIX}lab}
pid=
cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        timeout 90 tail --pid="$pid" -f /dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    LAB_PREFIX=$LAB_PREFIX LAB_DIR=$LAB_DIR bash "$ROOT/tests/lab/lab.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
/usr/bin/python3 "$ROOT/bench/migrate/bench.py" "$@" &
pid=$!
rc=0
wait "$pid" || rc=$?
pid=
exit "$rc"
