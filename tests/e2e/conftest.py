"""End-to-end fixtures: one full lab (tests/lab/lab.sh) per pytest session.

Run with the system Python: `/usr/bin/python3 -m pytest -q tests/e2e`.
LAB_PREFIX / LAB_USERS / LAB_KEEP in the environment are honoured (see tests/lab/lab.py).
"""

import os
import sys
from pathlib import Path

import pytest

LAB_HOME = Path(__file__).resolve().parents[1] / "lab"
if str(LAB_HOME) not in sys.path:
    sys.path.insert(0, str(LAB_HOME))

from lab import Lab  # noqa: E402


@pytest.fixture(scope="session")
def lab():
    """The session's lab: client, router, old, new (Dovecot + Postfix on old and new)."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    with Lab.up(users=int(os.environ.get("LAB_USERS") or 0)) as the_lab:
        yield the_lab
