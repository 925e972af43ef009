#!/usr/bin/env bash
# make demo: tests/lab/demo.py, the whole product on the lab network.
# make demo MODE=bridge (demo.sh --bridge): tests/lab/demo-interception.sh
# --bridge, interception by a transparent bridge.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ ${1:-} == --bridge ]]; then
    exec tests/lab/demo-interception.sh --bridge
fi
exec /usr/bin/python3 tests/lab/demo.py "$@"
