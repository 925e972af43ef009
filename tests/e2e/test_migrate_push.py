"""The admin's push before retiring the old server: `mailferry migrate --from-csv FILE
--master` and `mailferry migrate --user U --master` (cli/cmd_push.c) hand accounts to the
running mailferryd, which copies them as its master user through the whole pipeline
(bulk, CUTOVER, delta, verification, MIGRATED) with no user logging in; the command
follows each to its end and exits 0 only when every account is MIGRATED.

- Two accounts from a CSV file (one the ledger never heard of, one imported), a third
  pinned: JSON-lines progress, the two MIGRATED and equal old to new byte for byte
  (content, flags, keywords, dates, folders, subscriptions), the pinned one reported
  failed with its state and left alone, exit status 1 because of it; no login from a
  client anywhere, every copy login on old made by the master user.
- A second push of the migrated ones: nothing to do, exit 0.
- `migrate USER` with no held login and no --master says how to push; a daemon with no
  master user refuses the push with the reason.
"""

import json

import pytest

from mfgateway import CLI, Gateway
from test_migrate_tls_master import master_file, populate, tls_migrate
from test_migrate_trigger import dump, wipe

USERS = ("bob", "carol")
PINNED = "alice"


@pytest.fixture(scope="module")
def plab(lab):
    for u in USERS + (PINNED,):
        wipe(lab, u)
    yield lab
    for u in USERS + (PINNED,):
        wipe(lab, u)


def master_logins(lab, mark, user):
    """Dovecot's Login lines on old for user, from the router (the copy)."""
    return [line for line in lab.log_since("DOVECOT_LOG_OLD", mark).splitlines()
            if "Login: user=<%s>" % user in line
            and "rip=%s," % lab.env["ROUTER_SERVER4"] in line]


def client_logins(lab, mark):
    return [line for line in lab.log_since("DOVECOT_LOG_OLD", mark).splitlines()
            if "Login:" in line and "rip=%s," % lab.env["ROUTER_SERVER4"] not in line]


def push(g, *args, timeout=240):
    return g.lab.run(g.router, [CLI, "-c", g.conf, "migrate", *args], capture_output=True,
                     text=True, timeout=timeout)


def events(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_push_from_csv_as_master(plab, tmp_path):
    lab = plab
    for u in USERS:
        populate(lab, u)
    populate(lab, PINNED, n=2)
    g = Gateway(lab, str(tmp_path / "gw"), ports=(143,), imap_ports=(143,),
                migrate=tls_migrate(lab, tmp_path, master_user=lab.env["MASTER_USER"],
                                    master_password_file=master_file(tmp_path, lab)))
    try:
        g.install_rules()
        g.start()
        # carol is known (imported), bob is not; alice is pinned.
        imp = tmp_path / "known.csv"
        imp.write_text("user\ncarol\nalice\n")
        g.cli("accounts", "import", str(imp))
        g.cli("pin", PINNED)
        csv = tmp_path / "push.csv"
        csv.write_text("notes,user\nfirst,bob\n\"second, quoted\",carol\nthird,alice\n")
        old_before = {u: dump(lab, lab.OLD4, u) for u in USERS + (PINNED,)}
        mark = lab.log_mark("DOVECOT_LOG_OLD")
        r = push(g, "--from-csv", str(csv), "--master")
        assert r.returncode == 1, r.stdout + r.stderr
        ev = events(r.stdout)
        done = ev[-1]
        assert done["event"] == "done", ev
        assert (done["accounts"], done["migrated"], done["failed"]) == (3, 2, 1), done
        assert sorted(e["user"] for e in ev if e["event"] == "migrated") == sorted(USERS)
        failed = [e for e in ev if e["event"] == "failed"]
        assert [e["user"] for e in failed] == [PINNED] and "PINNED" in failed[0]["reason"], ev
        queued = [e for e in ev if e["event"] == "queued"]
        assert sorted(e["user"] for e in queued) == sorted(USERS), ev
        assert all(e["master"] for e in queued), ev
        for u in USERS:
            a = g.account(u)
            assert a["state"] == "MIGRATED", a
            new = dump(lab, lab.NEW4, u)
            assert new == old_before[u], u
            assert dump(lab, lab.OLD4, u) == old_before[u], u
            assert sum(len(v) for v in new["folders"].values()) == 16
            # Copied by the master user (TLS to old), no client involved.
            assert master_logins(lab, mark, u), u
            hist = g.cli("accounts", "show", u).stdout
            assert "pushed by the admin as master user" in hist, hist
        assert client_logins(lab, mark) == []
        assert g.account(PINNED)["state"] == "PINNED"
        assert master_logins(lab, mark, PINNED) == []
        assert dump(lab, lab.NEW4, PINNED)["folders"] == {"INBOX": []}
        # Pushed again: nothing to do, every account already there.
        again = tmp_path / "again.csv"
        again.write_text("user\nbob\ncarol\n")
        r = push(g, "--from-csv", str(again), "--master")
        assert r.returncode == 0, r.stdout + r.stderr
        assert events(r.stdout)[-1]["migrated"] == 2
        # On a terminal (script(1) gives it one): lines, not JSON.
        cmd = " ".join([CLI, "-c", g.conf, "migrate", "--from-csv", str(again), "--master"])
        r = g.lab.run(g.router, ["script", "-qefc", cmd, "/dev/null"], capture_output=True,
                      text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "bob MIGRATED: already MIGRATED" in r.stdout, r.stdout
        assert "2/2 migrated, 0 failed in" in r.stdout and "{" not in r.stdout, r.stdout
        assert g.stop() == 0
        assert g.files_holding(lab.env["MASTER_PASS"].encode()) == []
    finally:
        g.teardown()


def test_push_needs_master_user(plab, tmp_path):
    lab = plab
    u = USERS[0]
    wipe(lab, u)
    populate(lab, u, n=2)
    g = Gateway(lab, str(tmp_path / "gw"), ports=(143,), imap_ports=(143,),
                migrate=tls_migrate(lab, tmp_path))
    try:
        g.start()
        r = g.cli("migrate", u, check=False)
        assert r.returncode == 1 and "--master" in r.stderr, r.stderr
        r = push(g, "--user", u, "--master", timeout=60)
        assert r.returncode == 1, r.stdout + r.stderr
        ev = events(r.stdout)
        assert ev[-1] == {**ev[-1], "event": "done", "failed": 1, "migrated": 0}, ev
        assert "no master user is configured" in ev[0]["reason"], ev
        r = push(g, "--user", u, timeout=60)
        assert r.returncode == 2 and "--source" in r.stderr, r.stderr
        assert g.account(u)["state"] == "UNSEEN"
        assert dump(lab, lab.NEW4, u)["folders"] == {"INBOX": []}
        assert g.stop() == 0
    finally:
        g.teardown()
    wipe(lab, u)
