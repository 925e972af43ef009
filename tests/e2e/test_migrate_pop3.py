"""A POP3-only source: `mailferry migrate --source pop3://… | pop3s://…`.

The source is old's Dovecot spoken to by POP3 only (its IMAP stays unused by the copy:
old's log shows no IMAP login from the router while it runs). Its mailbox — 8-bit,
binary and malformed messages, lines that are "." or start with "." or "..", a bare-CR
byte, two messages with the very same bytes, a 3 MiB one — lands in new's INBOX byte for
byte, each message exactly once; the state file records every UIDL with its
destination UID, size and SHA-256. A rerun copies nothing; a message added on old is the
only one the next run copies. Over POP3S verified against the lab CA and as the master
user (AUTH PLAIN with an authorization identity) the same holds.

POP3 UIDL continuity (`--uidl-map --ledger`, and the daemon at CUTOVER): the ledger's
map pairs every destination POP3 UIDL with the source POP3 UIDL of the same bytes, as
this test sees both sides itself with poplib against old and new directly; for an IMAP
source (old read by IMAP, then listed by POP3) and a POP3 source alike. A POP3 source's
deletions (DELE + QUIT on old after a copy) are expunged on new by the next copy with
`--sync-deletes`, leaving new = old byte for byte, and leave the map.

The test user (carol, whom test_migrate_oneshot.py owns too) is wiped before and after.
"""

import json
import sqlite3
import subprocess
import time

import pytest

from mfgateway import ROOT
from test_migrate_trigger import dump, wipe

USER = "carol"
MAILFERRY = f"{ROOT}/build/mailferry"

RAW_APPEND = r'''
import imaplib
c = imaplib.IMAP4(P["host"], 143, timeout=60)
c.login(P["user"], P["password"])
bodies = [b.encode("latin-1") for b in P["bodies"]]
if P["big"]:  # built here: the parameters travel in the environment
    line = b"0123456789abcdef" * 4 + b"\r\n"
    bodies.append(b"Subject: big\r\n\r\n" + line * (3 * 1024 * 1024 // len(line)))
for body in bodies:
    typ, data = c.append("INBOX", None, None, body)
    assert typ == "OK", (typ, data)
c.logout()
'''


def bodies(start, n):
    out = []
    for i in range(start, start + n):
        head = (f"From: s{i}@lab.test\r\nTo: carol@lab.test\r\nSubject: pop {i} \xe9\r\n"
                f"Message-ID: <pop{i}@lab.test>\r\n\r\n")
        kind = i % 4
        if kind == 0:
            body = ".\r\n..\r\n.leading dot\r\n...three\r\n. \r\nend\r\n"
        elif kind == 1:
            body = "".join(chr(c) for c in range(1, 256) if c not in (10, 13)) + "\r\n"
        elif kind == 2:
            body = "bare\rcr in a line\r\ncaf\xe9 \xff\xfe\r\n"
        else:
            body = ("Content-Type: multipart/mixed; boundary=\"none\r\n\r\n--x\r\n"
                    "unterminated\r\n")
        out.append(head + body * (1 + i % 5))
    out.append(out[0])  # the same bytes twice
    return out


@pytest.fixture
def plab(lab):
    wipe(lab, USER)
    yield lab
    wipe(lab, USER)


def add(lab, msgs, big=False):
    """Appends msgs (and a 3 MiB message when big) to old's INBOX; how many."""
    lab.py_json("router", RAW_APPEND, host=lab.OLD4, user=USER,
                password=lab.env[f"PASS_{USER}"], bodies=msgs, big=big, timeout=300)
    return len(msgs) + (1 if big else 0)


def migrate(lab, tmp_path, source, *extra, stdin=None):
    argv = [MAILFERRY, "migrate", "--source", source, "--destination",
            f"imap://{lab.NEW4}:143", "--user", USER, "--state", str(tmp_path / "state.db"),
            *extra]
    p = lab.run("router", argv, input=stdin or lab.env[f"PASS_{USER}"] + "\n",
                capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return p


def contents(d):
    return sorted((m[0], m[1]) for m in d["folders"]["INBOX"])


def router_logins(lab, key, mark, service):
    return [line for line in lab.log_since(key, mark).splitlines()
            if f"{service}-login: Info: Login: user=<{USER}>" in line
            and f"rip={lab.env['ROUTER_SERVER4']}," in line]


def test_pop3_source_exact_and_incremental(plab, tmp_path):
    lab = plab
    n = add(lab, bodies(0, 12), big=True)
    mark = lab.log_mark("DOVECOT_LOG_OLD")
    p = migrate(lab, tmp_path, f"pop3://{lab.OLD4}:110", "--password-stdin")
    assert router_logins(lab, "DOVECOT_LOG_OLD", mark, "pop3")
    assert router_logins(lab, "DOVECOT_LOG_OLD", mark, "imap") == []
    old, new = dump(lab, lab.OLD4, USER), dump(lab, lab.NEW4, USER)
    assert len(old["folders"]["INBOX"]) == n
    assert contents(new) == contents(old)
    assert list(new["folders"]) == ["INBOX"]
    db = sqlite3.connect(tmp_path / "state.db")
    rows = db.execute("SELECT uidl, dst_uid, size, pending FROM uidl").fetchall()
    db.close()
    assert len(rows) == n and all(r[1] > 0 and r[3] == 0 for r in rows), rows
    assert len({r[0] for r in rows}) == n and len({r[1] for r in rows}) == n

    # Nothing new: nothing copied.
    migrate(lab, tmp_path, f"pop3://{lab.OLD4}:110", "--password-stdin")
    assert contents(dump(lab, lab.NEW4, USER)) == contents(old)
    # One new message on old: only it is copied.
    add(lab, bodies(100, 1)[:1])
    p = migrate(lab, tmp_path, f"pop3://{lab.OLD4}:110", "--password-stdin")
    old2, new2 = dump(lab, lab.OLD4, USER), dump(lab, lab.NEW4, USER)
    assert len(new2["folders"]["INBOX"]) == n + 1
    assert contents(new2) == contents(old2)
    assert '"copied":1,' in p.stdout, p.stdout[-800:]
    # A lost state file: everything is found on new by content, nothing
    # appended twice.
    (tmp_path / "state.db").unlink()
    p = migrate(lab, tmp_path, f"pop3://{lab.OLD4}:110", "--password-stdin")
    assert '"copied":0,' in p.stdout and f'"reconciled":{n + 1},' in p.stdout, p.stdout[-800:]
    assert contents(dump(lab, lab.NEW4, USER)) == contents(old2)


def test_pop3_kill9_resumes_exact(plab, tmp_path):
    lab = plab
    n = sum(add(lab, bodies(300 + 20 * k, 10), big=True) for k in range(3))
    argv = [MAILFERRY, "migrate", "--source", f"pop3://{lab.OLD4}:110", "--destination",
            f"imap://{lab.NEW4}:143", "--user", USER, "--state", str(tmp_path / "state.db"),
            "--password-stdin"]
    proc = lab.popen("router", argv, stdin=-1, stdout=-1, stderr=-1, text=True)
    try:
        proc.stdin.write(lab.env[f"PASS_{USER}"] + "\n")
        proc.stdin.close()
        deadline = time.monotonic() + 60
        rows = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                db = sqlite3.connect(f"file:{tmp_path / 'state.db'}?mode=ro", uri=True,
                                     timeout=1)
                rows = db.execute("SELECT count(*) FROM uidl").fetchone()[0]
                db.close()
            except sqlite3.Error:
                rows = 0
            if rows >= n // 3:
                break
            time.sleep(0.005)
        proc.kill()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert 0 < rows < n, rows  # killed in the middle
    migrate(lab, tmp_path, f"pop3://{lab.OLD4}:110", "--password-stdin")
    old, new = dump(lab, lab.OLD4, USER), dump(lab, lab.NEW4, USER)
    assert len(new["folders"]["INBOX"]) == n
    assert contents(new) == contents(old)


def test_pop3s_master_user(plab, tmp_path):
    lab = plab
    msgs = bodies(200, 6)
    add(lab, msgs)
    p = migrate(lab, tmp_path, f"pop3s://{lab.OLD4}", "--ca", lab.env["CA_CERT"],
                "--master-user", lab.env["MASTER_USER"], "--master-password-stdin",
                stdin=lab.env["MASTER_PASS"] + "\n")
    assert lab.env["MASTER_PASS"] not in p.stdout + p.stderr
    old, new = dump(lab, lab.OLD4, USER), dump(lab, lab.NEW4, USER)
    assert contents(new) == contents(old) and len(old["folders"]["INBOX"]) == len(msgs)


POP3_SESSION = r"""
import poplib, sys
host, user, pw = sys.argv[1:4]
p = poplib.POP3(host, 110, timeout=30)
p.user(user)
print(p.pass_(pw).decode().split()[0], p.stat()[0])
p.quit()
"""


def test_daemon_pop3_source(plab, tmp_path):
    """[migrate] source_protocol = pop3: a POP3 login through the gateway starts a
    copy that reads old by POP3 only; MIGRATED, new's INBOX = old's byte for byte, and
    the next POP3 login lands on new and sees as many messages."""
    from mfgateway import Gateway, client_py
    from test_migrate_trigger import wait_state

    lab = plab
    n = add(lab, bodies(400, 8), big=True)
    pw = lab.env[f"PASS_{USER}"]
    g = Gateway(lab, str(tmp_path / "gw"), ports=(110,), pop3_ports=(110,),
                migrate={"enabled": "yes", "source_protocol": "pop3", "source_port": "110",
                         "state_dir": str(tmp_path / "gw" / "migrate")})
    try:
        g.install_rules()
        g.start()
        assert "source=pop3" in g.log()
        mark = lab.log_mark("DOVECOT_LOG_OLD")
        assert client_py(lab, POP3_SESSION, lab.OLD4, USER, pw).split() == ["+OK", str(n)]
        wait_state(g, USER, "MIGRATED", timeout=120)
        assert len(router_logins(lab, "DOVECOT_LOG_OLD", mark, "pop3")) == 2  # bulk, delta
        assert router_logins(lab, "DOVECOT_LOG_OLD", mark, "imap") == []
        old, new = dump(lab, lab.OLD4, USER), dump(lab, lab.NEW4, USER)
        assert len(new["folders"]["INBOX"]) == n and contents(new) == contents(old)
        # The gateway serves POP3: the ledger holds the UIDL map for its front end.
        pairs = ledger_map(g.ledger)
        assert len(pairs) == n
        check_map(lab, pairs)
        assert f"uidl_map={n}" in g.log()
        # The admin reads the same map (sorted by destination UIDL, byte order).
        shown = json.loads(g.cli("accounts", "uidl", USER, "--json").stdout)
        assert shown["state"] == "MIGRATED"
        assert [(p["destination"], p["source"]) for p in shown["pairs"]] == sorted(pairs)
        text = g.cli("accounts", "uidl", USER).stdout.splitlines()
        assert text[0] == f"{USER} (MIGRATED): {n} UIDL pairs (destination -> source)", text
        assert text[1:] == [f"  {d} -> {s}" for d, s in sorted(pairs)]
        assert client_py(lab, POP3_SESSION, lab.OLD4, USER, pw).split() == ["+OK", str(n)]
        conns = [c for c in g.conns() if c.get("user") == USER]
        assert [c["route"] for c in conns] == ["source", "destination"], conns
        assert g.stop() == 0
        assert g.files_holding(pw.encode()) == []
    finally:
        g.teardown()


# Each side as a POP3 client sees it: [uidl, sha256 of the message] in order.
POP3_TRUTH = r"""
import hashlib, poplib
RESULT = {}
for side in ("old", "new"):
    p = poplib.POP3(P[side], 110, timeout=60)
    p.user(P["user"])
    p.pass_(P["password"])
    out = []
    for line in p.uidl()[1]:
        n, u = line.decode().split(" ", 1)
        _, lines, _ = p.retr(int(n))
        out.append([u, hashlib.sha256(b"\r\n".join(lines) + b"\r\n").hexdigest()])
    p.quit()
    RESULT[side] = out
"""

POP3_DELE = r"""
import poplib
p = poplib.POP3(P["host"], 110, timeout=60)
p.user(P["user"])
p.pass_(P["password"])
for n in P["numbers"]:
    p.dele(n)
p.quit()
"""


def done(p):
    """The final JSON line of a migrate run."""
    last = json.loads(p.stdout.strip().splitlines()[-1])
    assert last["event"] == "done", last
    return last


def ledger_for(tmp_path):
    """A ledger with carol in it (the map is kept per account)."""
    conf = tmp_path / "mailferry.conf"
    ledger = tmp_path / "ledger.db"
    conf.write_text(f"[ledger]\npath = {ledger}\n")
    r = subprocess.run([MAILFERRY, "-c", str(conf), "accounts", "set-state", USER, "SEEN"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return ledger


def ledger_map(ledger):
    db = sqlite3.connect(ledger)
    rows = db.execute("SELECT dst, src FROM pop3_uidl WHERE name = ?", (USER,)).fetchall()
    db.close()
    return rows


def shift_new_uids(lab, k=3):
    """k messages put on new and deleted: new's UIDs (and so Dovecot's UIDLs there) no
    longer start where old's do, so a map that is the identity would be wrong."""
    pw = lab.env[f"PASS_{USER}"]
    lab.py_json("router", RAW_APPEND, host=lab.NEW4, user=USER, password=pw,
                bodies=[f"Subject: filler {i}\r\n\r\nx\r\n" for i in range(k)], big=False)
    lab.py_json("router", POP3_DELE, host=lab.NEW4, user=USER, password=pw,
                numbers=list(range(1, k + 1)))


def check_map(lab, pairs, unpaired=0):
    """Every message on new (but unpaired ones that were never on old) is paired, with
    the old UIDL of the same bytes."""
    t = lab.py_json("router", POP3_TRUTH, old=lab.OLD4, new=lab.NEW4, user=USER,
                    password=lab.env[f"PASS_{USER}"], timeout=120)
    old, new = dict(t["old"]), dict(t["new"])
    assert len(old) == len(t["old"]) and len(new) == len(t["new"])  # UIDLs unique
    assert len(pairs) == len(new) - unpaired
    assert {d for d, _ in pairs} <= set(new)
    for d in set(new) - {d for d, _ in pairs}:
        assert new[d] not in old.values()
    assert len({s for _, s in pairs}) == len(pairs)
    for d, s in pairs:
        assert s in old and new[d] == old[s], (d, s)
    return old, new


def test_imap_source_uidl_map(plab, tmp_path):
    lab = plab
    shift_new_uids(lab)
    n = add(lab, bodies(600, 10))
    ledger = ledger_for(tmp_path)
    p = migrate(lab, tmp_path, f"imap://{lab.OLD4}:143", "--password-stdin", "--uidl-map",
                "--ledger", str(ledger))
    d = done(p)
    assert (d["uidl_pairs"], d["uidl_copied"], d["uidl_note"]) == (n, n, ""), d
    pairs = ledger_map(ledger)
    assert len(pairs) == n
    check_map(lab, pairs)
    # new's UIDLs are not old's: the map is what makes them one.
    assert all(d != s for d, s in pairs)
    # One more on old: the next copy's map has it too, and replaces the last.
    add(lab, bodies(700, 1)[:1])
    p = migrate(lab, tmp_path, f"imap://{lab.OLD4}:143", "--password-stdin", "--uidl-map",
                "--ledger", str(ledger))
    assert done(p)["uidl_pairs"] == n + 1
    check_map(lab, ledger_map(ledger))
    # No ledger: counted only. A destination without POP3: an empty map, said.
    p = migrate(lab, tmp_path, f"imap://{lab.OLD4}:143", "--password-stdin", "--uidl-map")
    assert done(p)["uidl_pairs"] == n + 1
    p = migrate(lab, tmp_path, f"imap://{lab.OLD4}:143", "--password-stdin", "--uidl-map",
                "--destination-pop3", f"pop3://{lab.NEW4}:1", "--ledger", str(ledger))
    d = done(p)
    assert d["uidl_pairs"] == 0 and d["uidl_copied"] == n + 1, d
    assert d["uidl_note"].startswith("no POP3 service: destination POP3: "), d
    assert ledger_map(ledger) == []


def test_pop3_source_deletions_and_uidl_map(plab, tmp_path):
    lab = plab
    shift_new_uids(lab)
    n = add(lab, bodies(800, 8))
    ledger = ledger_for(tmp_path)
    src = f"pop3://{lab.OLD4}:110"
    p = migrate(lab, tmp_path, src, "--password-stdin", "--uidl-map", "--ledger", str(ledger),
                "--sync-deletes")
    d = done(p)
    assert (d["expunged"], d["uidl_pairs"]) == (0, n), d
    check_map(lab, ledger_map(ledger))
    # The user deletes on old (POP3 DELE + QUIT): message 2, and the last one, whose
    # bytes are message 1's too (so content alone cannot say which copy goes).
    lab.py_json("router", POP3_DELE, host=lab.OLD4, user=USER,
                password=lab.env[f"PASS_{USER}"], numbers=[2, n])
    # Without --sync-deletes nothing goes from new.
    migrate(lab, tmp_path, src, "--password-stdin")
    assert len(dump(lab, lab.NEW4, USER)["folders"]["INBOX"]) == n
    p = migrate(lab, tmp_path, src, "--password-stdin", "--uidl-map", "--ledger", str(ledger),
                "--sync-deletes")
    d = done(p)
    assert (d["expunged"], d["uidl_pairs"], d["copied"]) == (2, n - 2, 0), d
    old, new = dump(lab, lab.OLD4, USER), dump(lab, lab.NEW4, USER)
    assert len(old["folders"]["INBOX"]) == n - 2
    assert contents(new) == contents(old)
    pairs = ledger_map(ledger)
    assert len(pairs) == n - 2
    check_map(lab, pairs)
    db = sqlite3.connect(tmp_path / "state.db")
    assert db.execute("SELECT count(*) FROM uidl").fetchone()[0] == n - 2
    db.close()
    # Nothing more gone: nothing more expunged.
    p = migrate(lab, tmp_path, src, "--password-stdin", "--sync-deletes")
    d = done(p)
    assert (d["expunged"], d["copied"]) == (0, 0), d


def test_pop3_source_uidl_map_by_content(plab, tmp_path):
    """new holds a message of its own: its listing no longer lines up with the copy, so
    every message there is read (RETR) and tied by its bytes; the extra one gets no
    pair; and the \\Seen marks the POP3 reads set on new are taken back."""
    lab = plab
    pw = lab.env[f"PASS_{USER}"]
    lab.py_json("router", RAW_APPEND, host=lab.NEW4, user=USER, password=pw,
                bodies=["Subject: only on new\r\n\r\nmine\r\n"], big=False)
    n = add(lab, bodies(900, 5))
    ledger = ledger_for(tmp_path)
    p = migrate(lab, tmp_path, f"pop3://{lab.OLD4}:110", "--password-stdin", "--uidl-map",
                "--ledger", str(ledger))
    d = done(p)
    assert (d["uidl_pairs"], d["uidl_copied"]) == (n, n), d
    assert d["uidl_note"] == "", d
    # (before check_map, whose own POP3 reads mark everything \Seen)
    new = dump(lab, lab.NEW4, USER)["folders"]["INBOX"]
    assert len(new) == n + 1
    assert all("\\Seen" not in m[2] for m in new), [m[2] for m in new]
    pairs = ledger_map(ledger)
    assert len(pairs) == n
    check_map(lab, pairs, unpaired=1)
