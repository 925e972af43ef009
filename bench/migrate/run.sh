#!/usr/bin/env bash
# bench/migrate/run.sh — mailbox copy benchmark: `mailferry migrate` vs mbsync (Debian's
# isync, CopyArrivalDate yes) and `doveadm backup` over imapc (Debian's Dovecot, run on the
# destination and from the router) copying the same generated mailbox old -> new, with the
# ceilings of one connection (pipelined FETCH from old, MULTIAPPEND into new), mailferry's
# peak RSS on a mailbox 1/5 the size, and 20 accounts copied W at a time; on a lab of
# network namespaces that bench.py brings up and always tears down.
#
#   bench/migrate/run.sh            (as root, after `make`; about 100 s per rep)
#
# Knobs (env): BENCH_MSGS=5000  BENCH_AVG_KB=60 (mean message size)  BENCH_REPS=1
#   BENCH_MAX_SECONDS=900 (each copy, and each round of parallel copies, is killed past
#   this)  BENCH_BATCH=100 (messages per FETCH / APPEND command of the ceilings)
#   BENCH_USERS=20  BENCH_USER_MSGS=250 (the parallel accounts)  BENCH_WORKERS="1 2 4 8"
#   LAB_PREFIX (namespace prefix, default mfl<pid>-)  BENCH_LAB_DIR (the lab's files and
#   mail stores, default /tmp/<prefix>lab; /dev/shm/<name> keeps the disk out)
# Prints wall time, messages/s, MB/s, peak RSS and the ratios; raw results go to
# bench/results/migrate-<date>.txt. Safety: the lab's own namespaces and 198.18.0.0/15 only;
# every process started here is waited for with a timeout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[[ -x $ROOT/build/mailferry ]] || { echo "build/mailferry missing: run make" >&2; exit 1; }
command -v mbsync >/dev/null || echo "mbsync not installed (apt-get install isync): its row is skipped" >&2
exec /usr/bin/python3 "$ROOT/bench/migrate/bench.py" "$@"
