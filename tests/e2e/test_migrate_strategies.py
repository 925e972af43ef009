"""The in-daemon copy's strategies other than live ([migrate] strategy, DESIGN.md).

- immediate (IMAP and POP3): the login that starts the copy gets its answer only once
  the account is MIGRATED, and that session is then served by new (the gateway's conn
  line says route=destination, new's Dovecot logs the login from the client's address);
  old and new are equal byte for byte.
- immediate with a copy longer than immediate_wait: the login is answered by old after
  the wait, the copy goes on (live from there) and ends MIGRATED, that session closed at
  the cutover.
- after-logout: the copy does not start while the user's session is open on old (the
  account stays SEEN), starts when it ends, and ends MIGRATED, exact.
"""

import time

import pytest

from mfgateway import Gateway, client_py
from test_migrate_trigger import (append, bulk_corpus, corpus, dump, migrate_user,
                                  wait_state, wipe)


@pytest.fixture(scope="module")
def tlab(lab):
    user = migrate_user(lab)
    wipe(lab, user)
    yield lab, user
    wipe(lab, user)


def gateway(lab, tmp_path, strategy, **extra):
    m = {"enabled": "yes", "strategy": strategy,
         "state_dir": str(tmp_path / "gw" / "migrate")}
    m.update(extra)
    return Gateway(lab, str(tmp_path / "gw"), ports=(143, 110), imap_ports=(143,),
                   pop3_ports=(110,), migrate=m)


def small_corpus():
    folders, subs, msgs = corpus()
    return folders, subs, [m for m in msgs if m[4] < (1 << 20)]


# Logs in, then reads: prints the seconds the login took, the ledger state the
# test reads right after is compared by the caller; SELECT shows which mailbox.
IMAP_WAITED = r"""
import imaplib, sys, time
host, user, pw = sys.argv[1:4]
m = imaplib.IMAP4(host, 143, timeout=120)
t0 = time.monotonic()
typ, data = m.login(user, pw)
assert typ == 'OK', (typ, data)
print('login', round(time.monotonic() - t0, 2))
typ, data = m.select('INBOX')
assert typ == 'OK', (typ, data)
print('exists', int(data[0]))
typ, data = m.fetch('1:*', '(BODY.PEEK[])')
assert typ == 'OK', (typ, data)
print('fetched', sum(len(p[1]) for p in data if isinstance(p, tuple)))
m.logout()
"""

POP3_WAITED = r"""
import poplib, sys, time
host, user, pw = sys.argv[1:4]
p = poplib.POP3(host, 110, timeout=120)
p.user(user)
t0 = time.monotonic()
print(p.pass_(pw).decode().split()[0], round(time.monotonic() - t0, 2))
print('stat', p.stat()[0])
p.quit()
"""


def inbox_bytes(d):
    return [m for m in d["folders"]["INBOX"]]


@pytest.mark.parametrize("proto", ["imap", "pop3"])
def test_immediate_login_waits_and_lands_on_new(tlab, tmp_path, proto):
    lab, user = tlab
    pw = lab.env[f"PASS_{user}"]
    wipe(lab, user)
    folders, subs, msgs = small_corpus()
    append(lab, lab.OLD4, user, msgs, create=folders, subscribe=subs)
    n_inbox = len(dump(lab, lab.OLD4, user)["folders"]["INBOX"])
    g = gateway(lab, tmp_path, "immediate")
    try:
        g.install_rules()
        g.start()
        assert "strategy=immediate" in g.log()
        mark_new = lab.log_mark("DOVECOT_LOG_NEW")
        out = client_py(lab, IMAP_WAITED if proto == "imap" else POP3_WAITED,
                        lab.OLD4, user, pw, timeout=180).split("\n")
        # The answer came once the account was MIGRATED: the same session
        # then read new's INBOX.
        assert g.account(user)["state"] == "MIGRATED"
        if proto == "imap":
            assert out[0].startswith("login ") and out[1] == f"exists {n_inbox}", out
        else:
            assert out[0].startswith("+OK ") and out[1] == f"stat {n_inbox}", out
        log = g.log()
        assert f"migrate user={user} immediate: login held" in log
        assert f"migrate user={user} immediate: login waited" in log
        assert "account MIGRATED" in log
        # One session, relayed to new; new's Dovecot saw the client's address.
        conns = [c for c in g.conns() if c.get("user", "").startswith(user)]
        assert len(conns) == 1 and conns[0]["route"] == "destination", conns
        lab.wait_log("DOVECOT_LOG_NEW",
                     rf"Login: user=<{user}>.*rip={lab.env['CLIENT4']}", mark_new)
        hist = g.cli("accounts", "show", user).stdout
        assert "strategy immediate" in hist, hist
        old = dump(lab, lab.OLD4, user)
        assert dump(lab, lab.NEW4, user) == old
        assert sum(len(v) for v in old["folders"].values()) == len(msgs)
        assert g.stop() == 0
        assert g.files_holding(pw.encode()) == []
    finally:
        g.teardown()
    wipe(lab, user)


def test_immediate_wait_bounded_then_live(tlab, tmp_path):
    lab, user = tlab
    pw = lab.env[f"PASS_{user}"]
    wipe(lab, user)
    folders, subs, msgs = bulk_corpus()
    append(lab, lab.OLD4, user, msgs, create=folders, subscribe=subs)
    n_inbox = len(dump(lab, lab.OLD4, user)["folders"]["INBOX"])
    # The rate limit makes the copy outlast the wait whatever the machine's
    # speed (1,200 messages at 300/s: 4 s at least).
    g = gateway(lab, tmp_path, "immediate", immediate_wait="1",
                max_messages_per_second="300")
    proc = None
    try:
        g.install_rules()
        g.start()
        proc = lab.popen("client", ["/usr/bin/python3", "-c", r"""
import imaplib, sys, time
host, user, pw = sys.argv[1:4]
m = imaplib.IMAP4(host, 143, timeout=60)
t0 = time.monotonic()
m.login(user, pw)
print('login', round(time.monotonic() - t0, 2), flush=True)
typ, data = m.select('INBOX')
print('exists', int(data[0]), flush=True)
try:
    for _ in range(2400):
        m.noop()
        time.sleep(0.1)
    print('never closed')
except Exception as e:
    print('closed', type(e).__name__)
""", lab.OLD4, user, pw], stdout=-1, stderr=-1, text=True)
        line = proc.stdout.readline().split()
        assert line[0] == "login" and float(line[1]) >= 0.9, line
        # Answered by old after the wait, while the copy still runs.
        assert proc.stdout.readline().split() == ["exists", str(n_inbox)]
        assert g.account(user)["state"] in ("COPYING", "CUTOVER"), g.account(user)
        assert "account COPYING" in g.log()
        wait_state(g, user, "MIGRATED", timeout=240)
        out, err = proc.communicate(timeout=60)
        proc = None
        assert out.startswith("closed"), (out, err)
        conn = g.wait_conn(lambda c: c.get("user", "").startswith(user))
        assert conn["route"] == "source" and conn["end"] == "cutover", conn
        old = dump(lab, lab.OLD4, user)
        assert dump(lab, lab.NEW4, user) == old
        assert g.stop() == 0
    finally:
        if proc is not None:
            proc.kill()
            proc.communicate()
        g.teardown()
    wipe(lab, user)


def test_after_logout_copies_when_last_session_ends(tlab, tmp_path):
    lab, user = tlab
    pw = lab.env[f"PASS_{user}"]
    wipe(lab, user)
    folders, subs, msgs = small_corpus()
    append(lab, lab.OLD4, user, msgs, create=folders, subscribe=subs)
    g = gateway(lab, tmp_path, "after-logout")
    procs = []
    try:
        g.install_rules()
        g.start()
        assert "strategy=after-logout" in g.log()
        # Two sessions (IMAP and POP3 would do; two IMAP ones here), each
        # waiting for a line on stdin before logging out.
        session = r"""
import imaplib, sys
host, user, pw = sys.argv[1:4]
m = imaplib.IMAP4(host, 143, timeout=60)
m.login(user, pw)
m.select('INBOX')
print('in', flush=True)
sys.stdin.readline()
m.store('1', '+FLAGS', '($ByeFlag)')
m.logout()
print('out', flush=True)
"""
        for _ in range(2):
            p = lab.popen("client", ["/usr/bin/python3", "-c", session, lab.OLD4, user, pw],
                          stdin=-1, stdout=-1, stderr=-1, text=True)
            procs.append(p)
            assert p.stdout.readline().strip() == "in"
        g.wait_log(rf"migrate user={user} after-logout: waits for its 1 session", timeout=10)
        time.sleep(1.5)
        assert g.account(user)["state"] == "SEEN", g.account(user)
        # The first session ends: one is left, still no copy.
        procs[0].stdin.write("\n")
        procs[0].stdin.flush()
        assert procs[0].stdout.readline().strip() == "out"
        procs[0].communicate(timeout=10)
        time.sleep(1.5)
        assert g.account(user)["state"] == "SEEN", g.account(user)
        assert "last session ended" not in g.log()
        # The last one ends (a flag set just before it goes): now the copy.
        procs[1].stdin.write("\n")
        procs[1].stdin.flush()
        assert procs[1].stdout.readline().strip() == "out"
        procs[1].communicate(timeout=10)
        g.wait_log(rf"migrate user={user} after-logout: last session ended", timeout=10)
        a = wait_state(g, user, "MIGRATED", timeout=120)
        assert "strategy after-logout" in g.cli("accounts", "show", user).stdout, a
        conns = [c for c in g.conns() if c.get("user", "").startswith(user)]
        assert len(conns) == 2 and all(c["route"] == "source" and c["end"] != "cutover"
                                       for c in conns), conns
        old = dump(lab, lab.OLD4, user)
        new = dump(lab, lab.NEW4, user)
        assert new == old
        assert "$ByeFlag" in new["folders"]["INBOX"][0][2]
        assert g.stop() == 0
        assert g.files_holding(pw.encode()) == []
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
        g.teardown()
    wipe(lab, user)
