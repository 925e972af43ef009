"""`mailferry accounts list|show|set-state` against a temporary ledger.

No lab needed: the CLI only reads the config and the SQLite ledger.
Run: /usr/bin/python3 -m pytest -q tests/e2e/test_accounts_cli.py
"""

import json
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / "build" / "mailferry"


@pytest.fixture
def conf(tmp_path):
    if not CLI.exists():
        pytest.skip("build/mailferry not built (run make)")

    def write(**ledger):
        keys = {"path": str(tmp_path / "ledger.db"), **ledger}
        text = "[ledger]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())
        path = tmp_path / "mailferry.conf"
        path.write_text(text)
        return path

    return write


def run(conf_path, *args):
    return subprocess.run([str(CLI), "-c", str(conf_path), "accounts", *args],
                          capture_output=True, text=True, timeout=30)


def ok(conf_path, *args):
    r = run(conf_path, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line]


def test_empty_ledger_is_created_private(conf, tmp_path):
    c = conf()
    out = ok(c, "list")
    assert out.split() == ["NAME", "STATE", "ROUTE", "LOGINS", "LAST", "SEEN",
                           "LAST", "CLIENT"]
    assert ok(c, "list", "--json") == ""
    mode = stat.S_IMODE(os.stat(tmp_path / "ledger.db").st_mode)
    assert mode == 0o600
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 8  # LEDGER_SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_set_state_list_show(conf):
    c = conf(default_domain="Example.ORG")
    assert ok(c, "set-state", "Ann", "pinned", "--reason", "board member") == \
        "ann@example.org: UNSEEN -> PINNED\n"
    assert ok(c, "set-state", "bob@Other.NET", "MIGRATED") == \
        "bob@other.net: UNSEEN -> MIGRATED\n"
    assert ok(c, "set-state", "ann@example.org", "CUTOVER", "--reason=delta") == \
        "ann@example.org: PINNED -> CUTOVER\n"

    rows = jsonl(ok(c, "list", "--json"))
    assert [r["name"] for r in rows] == ["ann@example.org", "bob@other.net"]
    assert rows[0]["state"] == "CUTOVER" and rows[0]["route"] == "unavailable"
    assert rows[1]["state"] == "MIGRATED" and rows[1]["route"] == "destination"
    assert rows[1]["reason"] == "admin override"
    assert rows[0]["logins"] == 0 and rows[0]["first_seen"] == 0
    assert rows[0]["state_changed"] > 1_600_000_000

    text = ok(c, "list").splitlines()
    assert len(text) == 3
    # Aligned: every column starts at the same offset on every line.
    starts = [line.index(word) for line, word in
              zip(text, ["STATE", "CUTOVER", "MIGRATED"])]
    assert len(set(starts)) == 1
    assert text[2].split()[:4] == ["bob@other.net", "MIGRATED", "destination", "0"]

    filtered = jsonl(ok(c, "list", "--state", "migrated", "--json"))
    assert [r["name"] for r in filtered] == ["bob@other.net"]
    assert jsonl(ok(c, "list", "--json", "--state=SEEN")) == []

    shown = jsonl(ok(c, "show", "ANN", "--json"))
    assert len(shown) == 1
    acc = shown[0]
    assert acc["name"] == "ann@example.org" and acc["state"] == "CUTOVER"
    assert [(h["from"], h["to"], h["reason"]) for h in acc["history"]] == [
        ("UNSEEN", "PINNED", "board member"), ("PINNED", "CUTOVER", "delta")]

    out = ok(c, "show", "ann")
    assert "state:          CUTOVER" in out
    assert "route:          unavailable" in out
    assert "UNSEEN   -> PINNED    board member" in out


def test_domain_equivalence_off(conf):
    c = conf(default_domain="example.org", domain_equivalence="no")
    ok(c, "set-state", "ann", "SEEN")
    ok(c, "set-state", "ann@example.org", "MIGRATED")
    rows = {r["name"]: r["state"] for r in jsonl(ok(c, "list", "--json"))}
    assert rows == {"ann": "SEEN", "ann@example.org": "MIGRATED"}


def test_reason_is_escaped_in_json(conf):
    c = conf()
    ok(c, "set-state", "ann", "FAILED", "--reason", 'quote " back \\ tab \t end')
    acc = jsonl(ok(c, "show", "ann", "--json"))[0]
    assert acc["reason"] == 'quote " back \\ tab \t end'


def test_errors(conf, tmp_path):
    c = conf()
    r = run(c, "set-state", "ann", "BOGUS")
    assert r.returncode == 2 and "unknown state 'BOGUS'" in r.stderr
    r = run(c, "list", "--state", "nope")
    assert r.returncode == 2 and "unknown state" in r.stderr
    r = run(c, "list", "--verbose")
    assert r.returncode == 2 and "unknown option '--verbose'" in r.stderr
    r = run(c, "list", "--state")
    assert r.returncode == 2 and "needs a value" in r.stderr
    r = run(c, "show", "ann", "--reason", "x")
    assert r.returncode == 2
    r = run(c, "show")
    assert r.returncode == 2
    r = run(c, "set-state", "ann")
    assert r.returncode == 2
    r = run(c, "set-state", "a b", "SEEN")
    assert r.returncode == 2 and "bad user name" in r.stderr
    r = run(c, "set-state", "a@b@c", "SEEN")
    assert r.returncode == 2
    r = run(c, "show", "nobody")
    assert r.returncode == 1 and "no account 'nobody'" in r.stderr

    (tmp_path / "junk.db").write_bytes(b"this is not sqlite\n" * 300)
    r = run(conf(path=tmp_path / "junk.db"), "list")
    assert r.returncode == 1 and "not a database" in r.stderr
    r = run(conf(path=tmp_path / "missing" / "ledger.db"), "list")
    assert r.returncode == 1 and "No such file or directory" in r.stderr
    r = subprocess.run([str(CLI), "-c", str(tmp_path / "none.conf"), "accounts",
                        "list"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
