"""The in-daemon copy over TLS, and with a master user ([migrate] source_tls,
destination_tls, tls_ca, source_name/destination_name, master_user,
master_password_file).

- A login through the gateway starts a copy whose legs are TLS: STARTTLS to old on 143
  (certificate checked against the lab CA and old's address), implicit TLS to new on
  993 (checked against the name new.lab.test). Both Dovecots log the copy's logins from
  the router as TLS; old and new are then equal byte for byte.
- A destination whose certificate does not carry destination_name: FAILED with the
  verification error, nothing on new, the user still on old.
- With a master user, an account a previous run left COPYING is copied at start without
  any login (SASL PLAIN authzid=user, authcid=master), to MIGRATED, exact; the master
  password is nowhere in the gateway's files. A master password file others can read
  keeps the daemon from starting.
"""

import os
import subprocess
import time

import pytest

from mfgateway import Gateway, client_py, daemon_path
from test_migrate_trigger import (LOGIN_SELECT, append, corpus, dump, migrate_user,
                                  wait_state, wipe)


@pytest.fixture(scope="module")
def tlab(lab):
    user = migrate_user(lab)
    wipe(lab, user)
    yield lab, user
    wipe(lab, user)


def tls_migrate(lab, tmp_path, **extra):
    m = {"enabled": "yes", "state_dir": str(tmp_path / "gw" / "migrate"),
         "source_tls": "starttls", "source_port": "143",
         "destination_tls": "implicit", "destination_port": "993",
         "tls_ca": lab.env["CA_CERT"], "destination_name": "new.lab.test",
         "timeout_ms": "20000"}
    m.update(extra)
    return m


def master_file(tmp_path, lab, mode=0o600):
    path = tmp_path / "master.pw"
    path.write_text(lab.env["MASTER_PASS"] + "\n")
    os.chmod(path, mode)
    return str(path)


def router_logins(lab, key, mark, user):
    """Dovecot's Login lines for user from the router's server-side address (the
    copy's connections; clients come from the client network)."""
    return [line for line in lab.log_since(key, mark).splitlines()
            if "Login: user=<%s>" % user in line and "rip=%s," % lab.env["ROUTER_SERVER4"] in line]


def by_service(lines):
    """(IMAP logins, POP3 logins) among Dovecot's Login lines."""
    return (sum("imap-login:" in line for line in lines),
            sum("pop3-login:" in line for line in lines))


def populate(lab, user, n=None):
    folders, subs, msgs = corpus()
    msgs = [m for m in msgs if m[4] < (1 << 20)]  # the 16 MiB one is the trigger test's
    append(lab, lab.OLD4, user, msgs if n is None else msgs[:n], create=folders,
           subscribe=subs)


def test_copy_over_tls_verified(tlab, tmp_path):
    lab, user = tlab
    pw = lab.env[f"PASS_{user}"]
    wipe(lab, user)
    populate(lab, user)
    g = Gateway(lab, str(tmp_path / "gw"), ports=(143,), imap_ports=(143,),
                migrate=tls_migrate(lab, tmp_path))
    try:
        g.install_rules()
        g.start()
        assert "source=imap source_tls=starttls destination_tls=implicit master=none" in g.log()
        n_inbox = len(dump(lab, lab.OLD4, user)["folders"]["INBOX"])
        # From here to MIGRATED only the copy logs in from the router (the
        # test's own helpers do too, but not meanwhile).
        mark_old = lab.log_mark("DOVECOT_LOG_OLD")
        mark_new = lab.log_mark("DOVECOT_LOG_NEW")
        assert client_py(lab, LOGIN_SELECT, lab.OLD4, user, pw).split() == ["ok", str(n_inbox)]
        wait_state(g, user, "MIGRATED", timeout=120)
        # The bulk pass and the delta: two IMAP logins on each server; the
        # gateway serves POP3 (its default ports), so the delta reads each
        # side's UIDLs for the map with one POP3 login; all over TLS.
        assert "uidl_map=yes" in g.log()
        for key, mark in (("DOVECOT_LOG_OLD", mark_old), ("DOVECOT_LOG_NEW", mark_new)):
            lines = router_logins(lab, key, mark, user)
            assert by_service(lines) == (2, 1), lab.log_since(key, mark)[-2000:]
            assert all(", TLS," in line for line in lines), lines
        old = dump(lab, lab.OLD4, user)
        new = dump(lab, lab.NEW4, user)
        assert new == old
        assert sum(len(v) for v in new["folders"].values()) == 16
        assert g.stop() == 0
        assert g.files_holding(pw.encode()) == []
    finally:
        g.teardown()
    wipe(lab, user)


def test_wrong_certificate_name_fails_copy(tlab, tmp_path):
    lab, user = tlab
    pw = lab.env[f"PASS_{user}"]
    wipe(lab, user)
    populate(lab, user, n=2)
    g = Gateway(lab, str(tmp_path / "gw"), ports=(143,), imap_ports=(143,),
                migrate=tls_migrate(lab, tmp_path, destination_name="imposter.lab.test"))
    try:
        g.install_rules()
        g.start()
        assert client_py(lab, LOGIN_SELECT, lab.OLD4, user, pw).split() == ["ok", "1"]
        deadline = time.monotonic() + 60
        while g.account(user)["state"] != "FAILED" and time.monotonic() < deadline:
            time.sleep(0.2)
        a = g.account(user)
        assert a["state"] == "FAILED", a
        assert "certificate verify failed" in a["reason"], a
        assert dump(lab, lab.NEW4, user)["folders"] == {"INBOX": []}
        # Still served by old.
        assert client_py(lab, LOGIN_SELECT, lab.OLD4, user, pw).split() == ["ok", "1"]
        assert all(c["route"] == "source" for c in g.conns() if c.get("user") == user)
        assert g.stop() == 0
    finally:
        g.teardown()
    wipe(lab, user)


def test_master_user_resumes_at_start_without_login(tlab, tmp_path):
    lab, user = tlab
    wipe(lab, user)
    populate(lab, user)
    g = Gateway(lab, str(tmp_path / "gw"), ports=(143,), imap_ports=(143,),
                migrate=tls_migrate(lab, tmp_path, master_user=lab.env["MASTER_USER"],
                                    master_password_file=master_file(tmp_path, lab)))
    try:
        # A copy a previous run left behind (as a crash would).
        g.cli("accounts", "set-state", user, "COPYING")
        g.install_rules()
        mark_old = lab.log_mark("DOVECOT_LOG_OLD")
        g.start()
        g.wait_log(rf"migrate user={user} copy resumed with master user", timeout=10)
        a = wait_state(g, user, "MIGRATED", timeout=120)
        # No client logged in: the only logins on old came from the router, as
        # the master user on the user's behalf, over TLS.
        lines = router_logins(lab, "DOVECOT_LOG_OLD", mark_old, user)
        assert by_service(lines) == (2, 1) and all(", TLS," in line for line in lines), lines
        assert g.conns() == []
        hist = g.cli("accounts", "show", user).stdout
        assert "resumed without a login as master user" in hist, hist
        old = dump(lab, lab.OLD4, user)
        assert dump(lab, lab.NEW4, user) == old
        assert sum(len(v) for v in old["folders"].values()) == 16
        assert g.stop() == 0
        assert g.files_holding(lab.env["MASTER_PASS"].encode()) == [], a
    finally:
        g.teardown()
    wipe(lab, user)


def test_master_password_file_readable_by_others_refused(tlab, tmp_path):
    lab, _ = tlab
    g = Gateway(lab, str(tmp_path / "gw"), ports=(143,), imap_ports=(143,),
                migrate=tls_migrate(lab, tmp_path, master_user=lab.env["MASTER_USER"],
                                    master_password_file=master_file(tmp_path, lab, 0o640)))
    try:
        g.install_rules()
        r = lab.run("router", [daemon_path(), "-c", g.conf], stdin=subprocess.DEVNULL,
                    capture_output=True, text=True, timeout=30)
        assert r.returncode != 0
        assert "readable by others" in r.stdout + r.stderr, r.stdout + r.stderr
        assert lab.env["MASTER_PASS"] not in r.stdout + r.stderr
    finally:
        g.teardown()
