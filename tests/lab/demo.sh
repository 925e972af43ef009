#!/usr/bin/env bash
# make demo: see tests/lab/demo.py (the whole product on the lab network).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/lab/demo.py "$@"
