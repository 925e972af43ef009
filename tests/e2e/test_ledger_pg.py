"""Issue 8, first step: the gateway on a PostgreSQL ledger. A login through
the gateway is recorded there (UNSEEN -> SEEN), `mailferry accounts` reads
and writes the same database, and a state set there routes the next login
(MIGRATED -> the new server). The cluster is a throwaway one reachable only
through a Unix socket (tests/pg/with-pg.sh)."""
import os
import subprocess

import pytest

from mfgateway import ROOT, client_py, running

WITH_PG = os.path.join(ROOT, "tests", "pg", "with-pg.sh")


@pytest.fixture(scope="module")
def pg_url():
    p = subprocess.Popen([WITH_PG, "--hold"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        line = p.stdout.readline().strip()
        assert line.startswith("MF_TEST_PG="), line
        yield line.split("=", 1)[1]
    finally:
        p.stdin.close()
        p.wait(30)


def login(lab, user):
    return client_py(lab, f"""
import imaplib
m = imaplib.IMAP4({lab.env['OLD4']!r}, 143, timeout=10)
print(m.login({user!r}, {lab.env['PASS_' + user]!r})[0])
m.logout()
""").strip()


def test_gateway_routes_by_postgresql_ledger(lab, tmp_path, pg_url):
    with running(lab, str(tmp_path), ports=(143,), imap_ports=(143,),
                 ledger={"path": pg_url}) as g:
        assert login(lab, "alice") == "OK"
        g.wait_conn(lambda c: c.get("user") == "alice")
        assert g.account("alice")["state"] == "SEEN"
        g.cli("accounts", "set-state", "bob", "MIGRATED")
        assert login(lab, "bob") == "OK"
        c = g.wait_conn(lambda c: c.get("user") == "bob")
        assert c["route"] == "destination", c
        # nothing went to the SQLite file the config would otherwise name
        assert not os.path.exists(g.ledger)
