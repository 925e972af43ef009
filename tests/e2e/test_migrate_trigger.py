"""The login-triggered copy inside mailferryd ([migrate] enabled, strategy live).

A user whose mailbox (a few folders, flags, keywords, one 16 MiB message so the bulk
copy lasts a while) was put on old directly logs in through the gateway and keeps
working there (a flag change, then NOOPs). The source's OK hands the daemon a "login
observed" event with the credentials; a migration worker copies the mailbox to new
(COPYING), closes the user's session on old and copies the delta (CUTOVER), verifies
and flips the account (MIGRATED). A message APPENDed to old directly while the bulk copy
runs must be on new afterwards; old and new are then compared byte for byte (every
folder, message, flag, keyword, INTERNALDATE, subscription); the next login through the
gateway lands on new. A wrong password starts nothing. The password is nowhere in the
gateway's files (log, ledger, the copy's state files).

The test user is wiped on both servers before and after this module: the lab's first
generated user when LAB_USERS gives one, else bob (whom other tests only log in as).
"""

import os
import re
import sqlite3
import time

import pytest

from mfgateway import ROOT, Gateway, client_py
from test_migrate_oneshot import CORPUS_APPEND, HELPERS
from test_smtp_front import assert_exact, message, send, stored, token, wait_stored

PLAIN_DAEMON = os.path.join(ROOT, "build", "mailferryd")

NOOP_CLIENT = r"""
import imaplib, sys, time
host, user, pw = sys.argv[1:4]
m = imaplib.IMAP4(host, 143, timeout=30)
m.login(user, pw)
typ, data = m.select('INBOX')
assert typ == 'OK', (typ, data)
typ, data = m.store('1', '+FLAGS', '(\\Flagged)')
assert typ == 'OK', (typ, data)
print('working', flush=True)
n = 0
t0 = time.monotonic()
try:
    while time.monotonic() - t0 < 240:
        m.noop()
        n += 1
        time.sleep(0.1)
    print('never closed')
except Exception as e:
    print('closed after', n, 'NOOPs:', type(e).__name__)
"""


def migrate_user(lab):
    return "user0001" if lab.env.get("PASS_user0001") else "bob"


def helper(lab, host, code, user, timeout=300, **params):
    return lab.py_json("router", HELPERS + code, timeout=timeout, host=host, user=user,
                       password=lab.env[f"PASS_{user}"], **params)


def wipe(lab, user):
    for host in (lab.OLD4, lab.NEW4):
        helper(lab, host, "c = conn(P['host']); wipe(c); c.logout()", user)


def dump(lab, host, user):
    return helper(lab, host, "c = conn(P['host']); RESULT = dump(c); c.logout()", user)


def append(lab, host, user, msgs, create=(), subscribe=()):
    return helper(lab, host, CORPUS_APPEND, user, msgs=msgs, create=list(create),
                  subscribe=list(subscribe), sent_as=None)


def corpus():
    folders = ["Projects", "Projects.2024", "Re&AwE-sum&AOk-", "Empty"]
    subs = ["INBOX", "Projects.2024", "Empty"]
    flagsets = ["", "(\\Seen)", "(\\Seen \\Answered)", "(\\Flagged $Label1)",
                "(\\Seen custom_kw)", "(\\Draft)"]
    places = ["INBOX", "Projects", "Projects.2024", "Re&AwE-sum&AOk-"]
    msgs = []
    for i in range(16):
        date = f'"{i + 1:02d}-Apr-2019 {i:02d}:1{i % 10}:00 +0{i % 10}00"'
        msgs.append([places[i % len(places)], flagsets[i % len(flagsets)], date, 100 + i,
                     300 + 900 * i, f"Message-ID: <t{i}@lab.test>\r\n",
                     ["text", "8bit", "binary", "malformed"][i % 4]])
    msgs.append(["Projects", "(\\Seen)", '"05-May-2020 05:05:05 +0000"', 150, 16 << 20, "",
                 "8bit"])
    return folders, subs, msgs


def bulk_corpus():
    """corpus() plus two folders of many small messages: the bulk copy then lasts
    long enough (Dovecot's per-APPEND work) to change old behind its back."""
    folders, subs, msgs = corpus()
    for f in ("Bulk1", "Bulk2"):
        folders.append(f)
        msgs += [[f, "(\\Seen)", '"09-Sep-2022 09:09:09 +0000"', 1000 + i, 300, "", "text"]
                 for i in range(600)]
    return folders, subs, msgs


def wait_folder_copied(g, user, tmp_path, msgs, timeout=120):
    """A folder whose every message the bulk copy has checkpointed (its state
    file) while the account is still COPYING; the first one seen."""
    want = {}
    for m in msgs:
        want[m[0]] = want.get(m[0], 0) + 1
    path = tmp_path / "gw" / "migrate" / f"{user}.state"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = g.account(user)["state"]
        assert st in ("UNSEEN", "SEEN", "COPYING"), f"bulk copy over before a check: {st}"
        if st == "COPYING" and path.exists():
            try:
                db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
                rows = db.execute("SELECT folder, count(*) FROM msg GROUP BY folder").fetchall()
                db.close()
            except sqlite3.Error:
                rows = []
            for name, n in rows:
                name = name.decode() if isinstance(name, bytes) else name
                if want.get(name) == n:
                    return name
        time.sleep(0.02)
    raise AssertionError("no folder copied within %ss" % timeout)


def new_gateway(lab, tmp_path, smtp=False, rate=None):
    """smtp: port 25 intercepted too and served by the SMTP front end. rate:
    [migrate] max_messages_per_second (a bulk copy long enough to act during)."""
    # A small memory bound (the corpus has a 16 MiB message: streamed through)
    # and batches that do not divide the folders.
    m = {"enabled": "yes", "workers": "1", "state_dir": str(tmp_path / "gw" / "migrate"),
         "max_inflight_bytes": "65536", "batch": "7"}
    if rate:
        m["max_messages_per_second"] = str(rate)
    return Gateway(lab, str(tmp_path / "gw"), ports=(143, 25) if smtp else (143,),
                   imap_ports=(143,), smtp_ports=(25,) if smtp else (), migrate=m)


def wait_state(g, user, want, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        a = g.account(user)
        if a["state"] == want:
            return a
        assert a["state"] != "FAILED", a
        time.sleep(0.2)
    raise AssertionError(f"{user} not {want} within {timeout}s: {g.account(user)}\n"
                         + g.log()[-3000:])


@pytest.fixture(scope="module")
def tlab(lab):
    user = migrate_user(lab)
    wipe(lab, user)
    yield lab, user
    wipe(lab, user)


def test_wrong_password_starts_nothing(tlab, tmp_path):
    lab, user = tlab
    append(lab, lab.OLD4, user, [m for m in corpus()[2] if m[0] == "INBOX"][:2])
    g = new_gateway(lab, tmp_path)
    try:
        g.install_rules()
        g.start()
        out = client_py(lab, """
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], 143, timeout=10)
try:
    m.login(sys.argv[2], 'not-the-password')
    print('logged in')
except imaplib.IMAP4.error as e:
    print('refused', e)
""", lab.OLD4, user)
        assert out.startswith("refused"), out
        g.wait_conn(lambda c: c.get("user") == user)
        time.sleep(1.0)  # a wrongly queued copy would be COPYING by now
        assert g.account(user)["state"] == "UNSEEN"
        assert "login observed" not in g.log()
        assert "migrate user=" not in g.log()
        assert dump(lab, lab.NEW4, user)["folders"] == {"INBOX": []}
        assert g.stop() == 0
    finally:
        g.teardown()
    wipe(lab, user)


def test_login_triggers_live_migration(tlab, tmp_path):
    lab, user = tlab
    pw = lab.env[f"PASS_{user}"]
    folders, subs, msgs = bulk_corpus()
    append(lab, lab.OLD4, user, msgs, create=folders, subscribe=subs)
    g = new_gateway(lab, tmp_path, smtp=True, rate=250)
    proc = None
    try:
        g.install_rules()
        g.start()
        assert "batch=7 max_inflight_bytes=65536" in g.log()
        assert g.account(user)["state"] == "UNSEEN"
        t_login = time.monotonic()
        proc = lab.popen("client", ["/usr/bin/python3", "-c", NOOP_CLIENT, lab.OLD4, user, pw],
                         stdout=-1, stderr=-1, text=True)
        g.wait_log(rf"migrate user={user}\S* login observed: copy queued", timeout=30)
        # And mail for the user over SMTP through the gateway (to old: the account
        # is being copied), delivered by old's Postfix into INBOX.
        t = token()
        mail = message(t, body=b"Delivered during the bulk copy.\r\n.dot line\r\n")
        assert send(lab, [f"{user}@lab.test"], mail)[1] == {}
        assert len(wait_stored(lab, "old", user, t)) == 1
        g.wait_log(r"smtp txn client=\S+ route=source rcpts=1 refused=0")
        assert g.account(user)["state"] == "COPYING"
        # New mail while the bulk copy runs, straight to old (not through the gateway).
        # New mail and a flag change on old (straight, not through the gateway) in a
        # folder the bulk copy has already checkpointed while it still copies the
        # rest: only the delta after CUTOVER can bring them over.
        target = wait_folder_copied(g, user, tmp_path, msgs)
        late = [target, "(\\Seen $Late)", '"07-Jul-2021 07:07:07 +0000"', 777, 5000,
                "Message-ID: <late@lab.test>\r\n", "text"]
        append(lab, lab.OLD4, user, [late])
        helper(lab, lab.OLD4, "c = conn(P['host']); c.select(q(P['f']));"
               "c.store('1', '+FLAGS', '($Changed)'); c.logout()", user, f=target)
        # And the user deletes a message the bulk copy has copied already: the
        # delta expunges it from new (the comparison below needs it gone).
        n_target = len(dump(lab, lab.OLD4, user)["folders"][target])
        assert n_target >= 3
        helper(lab, lab.OLD4, "c = conn(P['host']); c.select(q(P['f']));"
               "c.store('2', '+FLAGS.SILENT', '(\\Deleted)'); c.expunge(); c.logout()",
               user, f=target)
        state_after_late = g.account(user)["state"]
        print("late message and flag change in", target, "while", state_after_late)
        assert state_after_late == "COPYING", state_after_late

        a = wait_state(g, user, "MIGRATED", timeout=240)
        # The late message, and the SMTP one unless INBOX's bulk pass came after it.
        # Verification at the cutover hashed only what the delta copied: the bulk
        # pass read its own copies back while the user still worked on old.
        delta = re.search(r"\((\d+) messages in the delta, 1 expunged as on the source, "
                          r"(\d+) verified, (\d+) by SHA-256\); refused for (\d+\.\d{3}) s "
                          r"at the cutover$", a.get("reason", ""))
        assert delta and delta.group(1) in ("1", "2"), a
        assert delta.group(3) == delta.group(1), a
        # The window is measured, not guessed: more than nothing, less than the
        # whole copy (bulk pass included) took.
        assert 0 < float(delta.group(4)) < time.monotonic() - t_login, a
        bulk = [e["reason"] for e in a["history"] if e["reason"].startswith("bulk copy done")]
        assert len(bulk) == 1, a["history"]
        copied = re.match(r"bulk copy done \((\d+) messages, (\d+) read back", bulk[0])
        assert copied and copied.group(1) == copied.group(2) and int(copied.group(1)) > 1000, bulk
        out, err = proc.communicate(timeout=60)
        proc = None
        assert out.startswith("working") and "closed after" in out, (out, err)
        # The session on old was closed by the cutover, not by anything else.
        closed = g.wait_conn(lambda c: c.get("user", "").startswith(user) and
                             c.get("route") == "source" and c.get("end") == "cutover")
        assert closed["end"] == "cutover"
        log = g.log()
        assert "state=COPYING" in log and "state=CUTOVER" in log

        old = dump(lab, lab.OLD4, user)
        new = dump(lab, lab.NEW4, user)
        assert int(delta.group(2)) == sum(len(v) for v in old["folders"].values())
        assert sorted(new["folders"]) == sorted(old["folders"])
        for name, m in old["folders"].items():
            assert new["folders"][name] == m, f"folder {name} differs"
        assert new["subscribed"] == old["subscribed"]
        assert len(old["folders"]["Projects"]) == 5 and old["folders"]["Empty"] == []
        # The late message, the flag changed on old and the flag set through the
        # gateway are on new.
        moved = new["folders"][target]
        assert len(moved) == n_target - 1, (n_target, len(moved))
        assert "$Late" in moved[-1][2] and "$Changed" in moved[0][2], moved[:1] + moved[-1:]
        assert "\\Flagged" in new["folders"]["INBOX"][0][2]
        # The SMTP message is on new once, as old's Postfix stored it, byte for byte.
        got = stored(lab, "new", user, t)
        assert len(got) == 1
        assert_exact(got[0], mail)

        # The next login lands on new.
        mark = lab.log_mark("DOVECOT_LOG_NEW")
        out = client_py(lab, """
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], 143, timeout=10)
typ, data = m.login(sys.argv[2], sys.argv[3])
assert typ == 'OK', (typ, data)
typ, data = m.select('INBOX')
print('ok', int(data[0]))
m.logout()
""", lab.OLD4, user, pw)
        assert out.split() == ["ok", str(len(new["folders"]["INBOX"]))], out
        g.wait_conn(lambda c: c.get("user", "").startswith(user) and
                    c.get("route") == "destination")
        lab.wait_log("DOVECOT_LOG_NEW", rf"Login: user=<{user}>", mark)

        assert g.stop() == 0
        # Log, ledger (and WAL), the copy's state files: no password anywhere.
        assert g.files_holding(pw.encode()) == []
        assert list((tmp_path / "gw" / "migrate").iterdir())
    finally:
        if proc is not None:
            proc.kill()
            proc.communicate()
        g.teardown()


POP3_LOGIN = r"""
import poplib, sys
host, user, pw = sys.argv[1:4]
p = poplib.POP3(host, 110, timeout=15)
p.user(user)
try:
    p.pass_('not-the-password')
    print('wrong password accepted')
except poplib.error_proto as e:
    print('refused', e)
p.quit()
p = poplib.POP3(host, 110, timeout=15)
p.user(user)
print(p.pass_(pw).decode(), p.stat()[0])
p.quit()
"""

SUBMISSION_LOGIN = r"""
import base64, smtplib, sys
host, user, pw = sys.argv[1:4]
for attempt in ('not-the-password', pw):
    s = smtplib.SMTP(host, 587, local_hostname='laptop.example.net', timeout=30)
    s.ehlo()
    ir = base64.b64encode(('\0' + user + '\0' + attempt).encode()).decode()
    print(s.docmd('AUTH', 'PLAIN ' + ir)[0])
    s.quit()
"""


@pytest.fixture
def plain587(lab):
    from test_smtp_front import postfix_587
    postfix_587(lab, tls_only=False)
    yield
    postfix_587(lab, tls_only=True)


@pytest.mark.parametrize("proto", ["pop3", "submission"])
def test_pop3_and_submission_logins_trigger_copy(tlab, tmp_path, proto, request):
    lab, user = tlab
    pw = lab.env[f"PASS_{user}"]
    if proto == "submission":
        request.getfixturevalue("plain587")
    wipe(lab, user)
    folders, subs, msgs = corpus()
    append(lab, lab.OLD4, user, msgs[:6], create=folders, subscribe=subs)
    g = Gateway(lab, str(tmp_path / "gw"), ports=(110, 587), pop3_ports=(110,),
                submission_ports=(587,),
                migrate={"enabled": "yes", "state_dir": str(tmp_path / "gw" / "migrate")})
    try:
        g.install_rules()
        g.start()
        out = client_py(lab, POP3_LOGIN if proto == "pop3" else SUBMISSION_LOGIN,
                        lab.OLD4, user, pw).split("\n")
        if proto == "pop3":
            assert out[0].startswith("refused") and out[1].startswith("+OK"), out
        else:
            assert out[:2] == ["535", "235"], out
        a = wait_state(g, user, "MIGRATED", timeout=120)
        # One copy, from the right password's login only.
        assert g.log().count("login observed: copy queued") == 1, a
        old = dump(lab, lab.OLD4, user)
        new = dump(lab, lab.NEW4, user)
        assert old["folders"] == new["folders"] and old["subscribed"] == new["subscribed"]
        assert sum(len(m) for m in new["folders"].values()) == 6
        assert g.stop() == 0
        assert g.files_holding(pw.encode()) == []
    finally:
        g.teardown()
    wipe(lab, user)


LOGIN_SELECT = r"""
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], 143, timeout=10)
typ, data = m.login(sys.argv[2], sys.argv[3])
assert typ == 'OK', (typ, data)
typ, data = m.select('INBOX')
print('ok', int(data[0]))
m.logout()
"""


def test_copy_failure_leaves_user_on_source_and_restart_resets(tlab, tmp_path):
    """Nothing listens on the copy's destination port: FAILED with the reason, the
    user keeps being served by old, and no second copy starts by itself. An account
    a previous run left in COPYING goes back to SEEN at start. Once retry_after has
    passed (and the destination works), the next login copies again."""
    lab, user = tlab
    pw = lab.env[f"PASS_{user}"]
    wipe(lab, user)
    append(lab, lab.OLD4, user, [m for m in corpus()[2] if m[0] == "INBOX"][:2])
    g = Gateway(lab, str(tmp_path / "gw"), ports=(143,), imap_ports=(143,),
                migrate={"enabled": "yes", "state_dir": str(tmp_path / "gw" / "migrate"),
                         "destination_port": "9", "timeout_ms": "3000"})
    try:
        g.cli("accounts", "set-state", "stuck@lab.test", "COPYING")
        g.install_rules()
        g.start()
        a = g.account("stuck@lab.test")
        assert a["state"] == "SEEN" and "restart" in a.get("reason", ""), a

        assert client_py(lab, LOGIN_SELECT, lab.OLD4, user, pw).split() == ["ok", "2"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            a = g.account(user)
            if a["state"] == "FAILED":
                break
            time.sleep(0.2)
        assert a["state"] == "FAILED" and a.get("reason", "").startswith("bulk copy: "), a
        # Still on old, and FAILED starts no copy by itself.
        assert client_py(lab, LOGIN_SELECT, lab.OLD4, user, pw).split() == ["ok", "2"]
        conns = [c for c in g.conns() if c.get("user") == user]
        assert len(conns) == 2 and all(c["route"] == "source" for c in conns), conns
        assert g.log().count("login observed: copy queued") == 1
        assert g.account(user)["state"] == "FAILED"
        assert dump(lab, lab.NEW4, user)["folders"] == {"INBOX": []}
        assert g.stop() == 0
        assert g.files_holding(pw.encode()) == []

        # The destination fixed and retry_after passed: the next login copies again.
        with open(g.conf) as f:
            text = f.read()
        with open(g.conf, "w") as f:
            f.write(text.replace("destination_port = 9", "destination_port = 143")
                    .replace("[migrate]\n", "[migrate]\nretry_after = 1\n"))
        g.start()
        time.sleep(1.2)
        assert client_py(lab, LOGIN_SELECT, lab.OLD4, user, pw).split() == ["ok", "2"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            a = g.account(user)
            if a["state"] == "MIGRATED":
                break
            time.sleep(0.2)
        assert a["state"] == "MIGRATED", a
        # one more copy queued (the log holds both runs)
        assert g.log().count("login observed: copy queued") == 2
        assert dump(lab, lab.NEW4, user) == dump(lab, lab.OLD4, user)
        assert g.stop() == 0
    finally:
        g.teardown()
    wipe(lab, user)


@pytest.mark.skipif(not os.path.exists(PLAIN_DAEMON), reason="needs build/mailferryd")
def test_password_gone_from_memory_after_copy(tlab, tmp_path):
    """The plain build (the sanitizer build maps too much to scan): once the account
    is MIGRATED, no readable mapping of the daemon (what a core file would hold)
    still contains the password the copy used."""
    lab, user = tlab
    pw = lab.env[f"PASS_{user}"]
    wipe(lab, user)
    append(lab, lab.OLD4, user, [m for m in corpus()[2] if m[0] == "INBOX"][:3])
    g = Gateway(lab, str(tmp_path / "gw"), ports=(143,), imap_ports=(143,), daemon=PLAIN_DAEMON,
                migrate={"enabled": "yes", "state_dir": str(tmp_path / "gw" / "migrate")})
    try:
        g.install_rules()
        g.start()
        assert client_py(lab, LOGIN_SELECT, lab.OLD4, user, pw).split() == ["ok", "3"]
        wait_state(g, user, "MIGRATED", timeout=60)
        # The scan sees the daemon's heap: the ledger path is there.
        assert g.memory_holding(g.ledger.encode()) != []
        assert g.memory_holding(pw.encode()) == []
        assert g.stop() == 0
    finally:
        g.teardown()
    wipe(lab, user)
