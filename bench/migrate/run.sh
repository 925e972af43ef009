#!/usr/bin/env bash
# bench/migrate/run.sh — mailbox copy benchmark: `mailferry migrate` vs mbsync (Debian's
# isync, CopyArrivalDate yes) and `doveadm backup -R` over imapc (Debian's Dovecot, run on
# the destination) copying the same generated mailbox old -> new on a lab of network
# namespaces that bench.py brings up and always tears down.
#
#   bench/migrate/run.sh            (as root, after `make`; a few minutes)
#
# Knobs (env): BENCH_MSGS=5000  BENCH_AVG_KB=60 (mean message size)  BENCH_REPS=1
#   BENCH_MAX_SECONDS=900 (each copy is killed past this)
# Prints wall time, messages/s, MB/s, peak RSS and the ratios; raw results go to
# bench/results/migrate-<date>.txt. Safety: the lab's own namespaces and 198.18.0.0/15 only;
# every process started here is waited for with a timeout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[[ -x $ROOT/build/mailferry ]] || { echo "build/mailferry missing: run make" >&2; exit 1; }
command -v mbsync >/dev/null || echo "mbsync not installed (apt-get install isync): its row is skipped" >&2
exec /usr/bin/python3 "$ROOT/bench/migrate/bench.py" "$@"
