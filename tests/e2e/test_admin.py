"""The admin interface against a running mailferryd on the lab.

One gateway ([migrate] enabled, one copy worker, IMAP on 143 and POP3 on 110 through the
front ends) for the module; the tests run in order and build on each other:

- the admin socket: a socket file of root's with mode 0600; `mailferry status` run as
  `nobody` is refused by the file's mode, and, with the mode opened on purpose, by the
  daemon itself (SO_PEERCRED), which answers root only;
- `pin alice`, then her IMAP login goes to the source and starts no copy;
- `pause`; carol's POP3 login and alice's IMAP session held open: `status --json`
  shows them per protocol and backend, the accounts per state, carol's login queued;
- `migrate bob` (no login of his held) is refused with the reason; `migrate carol`
  starts her copy at once although copying is paused; bob's IMAP login is held by the
  pause (SEEN, not copied) until `resume`; paused again during his bulk copy, he is not
  flipped (still COPYING, the copy shown as "paused") until the next `resume`; both mailboxes are then on new exactly as on
  old (every folder, message byte, flag, INTERNALDATE); `accounts show` lists the copy
  runs with their counts; list in text, JSON and CSV;
- rollback of a MIGRATED account is refused with the precise reason, of a PINNED one
  done; retry of a FAILED account (SEEN again; with a login of it held, its copy starts at
  once although copying is paused, and alice's mailbox is then on new as on old); pin of a
  MIGRATED account refused; migrate of a FAILED one points to retry;
- the pause survives a restart; the socket is removed when the daemon stops;
- `accounts import` of the admin's CSV (a hostile file writes nothing; pin=yes pins a
  new account and is refused for a MIGRATED one) and `report retire`, whose verdict flips from "not safe" to "safe" (exit status 1 -> 0) when every
  imported account is MIGRATED and no client reached the source directly.

Users alice, bob and carol are wiped on both servers before and after the module.
"""

import csv
import io
import json
import os
import stat
import tempfile
import time

import pytest

from mfgateway import CLI, Gateway, client_py
from test_migrate_trigger import append, bulk_corpus, corpus, dump, wipe

USERS = ("alice", "bob", "carol")

HOLD_IMAP = r"""
import imaplib, sys, time
m = imaplib.IMAP4(sys.argv[1], 143, timeout=30)
m.login(sys.argv[2], sys.argv[3])
m.select('INBOX')
print('ready', flush=True)
t0 = time.monotonic()
try:
    while time.monotonic() - t0 < float(sys.argv[4]):
        m.noop()
        time.sleep(0.2)
    m.logout()
except Exception as e:
    print('closed', type(e).__name__, flush=True)
"""

HOLD_POP3 = r"""
import poplib, sys, time
p = poplib.POP3(sys.argv[1], 110, timeout=30)
p.user(sys.argv[2])
p.pass_(sys.argv[3])
print('ready', p.stat(), flush=True)
t0 = time.monotonic()
try:
    while time.monotonic() - t0 < float(sys.argv[4]):
        p.noop()
        time.sleep(0.2)
    p.quit()
except Exception as e:
    print('closed', type(e).__name__, flush=True)
"""

LOGIN_ONCE = r"""
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], 143, timeout=30)
typ, data = m.login(sys.argv[2], sys.argv[3])
typ, data = m.select('INBOX')
print('ok', int(data[0]))
m.logout()
"""


class Admin:
    """The gateway plus its admin commands."""

    def __init__(self, lab, g):
        self.lab, self.g = lab, g

    def run(self, *args, check=True):
        r = self.g.cli(*args, check=False)
        if check:
            assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
        return r

    def json(self, *args):
        return json.loads(self.run(*args, "--json").stdout)

    def status(self):
        return self.json("status")

    def state(self, user):
        return self.g.account(user)["state"]

    def wait_state(self, user, want, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.state(user)
            if st == want:
                return self.g.account(user)
            assert st != "FAILED", self.g.account(user)
            time.sleep(0.2)
        raise AssertionError(f"{user} not {want}: {self.g.account(user)}\n" + self.g.log()[-3000:])

    def hold(self, code, user, seconds=60):
        p = self.lab.popen("client", ["/usr/bin/python3", "-c", code, self.lab.OLD4, user,
                                      self.lab.env[f"PASS_{user}"], str(seconds)],
                           stdout=-1, stderr=-1, text=True)
        line = p.stdout.readline()
        assert line.startswith("ready"), (line, p.stderr.read() if p.poll() is not None else "")
        return p


def same_mailbox(lab, user):
    old, new = dump(lab, lab.OLD4, user), dump(lab, lab.NEW4, user)
    assert sorted(new["folders"]) == sorted(old["folders"])
    for name, msgs in old["folders"].items():
        assert new["folders"][name] == msgs, f"{user}: folder {name} differs"
    return old


@pytest.fixture(scope="module")
def adm(lab, tmp_path_factory):
    for u in USERS:
        wipe(lab, u)
    # bob's copy lasts seconds (1,200 small messages): status sees it running.
    folders, subs, msgs = bulk_corpus()
    append(lab, lab.OLD4, "bob", msgs, create=folders, subscribe=subs)
    folders, subs, msgs = corpus()
    append(lab, lab.OLD4, "carol", [m for m in msgs if m[0] == "INBOX"][:3])
    work = tmp_path_factory.mktemp("admin")
    g = Gateway(lab, str(work / "gw"), ports=(143, 110), imap_ports=(143,), pop3_ports=(110,),
                migrate={"enabled": "yes", "workers": "1",
                         "state_dir": str(work / "gw" / "migrate")})
    try:
        g.install_rules()
        g.start()
        yield Admin(lab, g)
        assert g.stop() == 0
    finally:
        g.teardown()
        for u in USERS:
            wipe(lab, u)


def test_socket_root_only(adm):
    path = adm.g.admin_socket
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    # The CLI as nobody, with a config it can read and a directory it may enter.
    public = tempfile.mkdtemp(prefix="mfadm-pub-")
    try:
        os.chmod(public, 0o755)
        conf = os.path.join(public, "mailferry.conf")
        with open(adm.g.conf) as src, open(conf, "w") as dst:
            dst.write(src.read())
        os.chmod(conf, 0o644)
        os.chmod(os.path.dirname(path), 0o755)
        nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        r = adm.lab.run("router", [*nobody, str(CLI), "-c", conf, "status"],
                        capture_output=True, text=True)
        assert r.returncode == 1, r
        assert "Permission denied" in r.stderr and "root's only" in r.stderr, r.stderr
        # Even with the file opened to everyone the daemon answers root only.
        os.chmod(path, 0o666)
        out = adm.lab.run("router", [*nobody, "/usr/bin/python3", "-c", r"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
try:
    s.sendall(b'{"cmd":"status"}\n')
except BrokenPipeError:
    pass  # the daemon's refusal may come before our request
print(s.makefile().readline().strip())
""", path], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        reply = json.loads(out.stdout)
        assert reply["ok"] is False and "root only" in reply["error"], reply
        adm.g.wait_log(r"admin refused a client uid=65534")
        # Root still gets its answer; malformed requests get a reason, not a hang.
        out = adm.lab.py_in("router", r"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"cmd":"status","user":"x"}\nnot json\n{"cmd":"status"}\n')
f = s.makefile()
for _ in range(3):
    print(f.readline().strip())
s.sendall(b'x' * 5000 + b'\n')
print(f.readline().strip())
try:
    print(repr(f.readline()))
except ConnectionResetError:
    print("''")
""", args=[path])
        lines = out.splitlines()
        assert json.loads(lines[0]) == {"ok": False, "error": "bad request: status takes no key \"user\""}
        assert "not JSON" in json.loads(lines[1])["error"]
        assert json.loads(lines[2])["ok"] is True
        assert "too long" in json.loads(lines[3])["error"]
        assert lines[4] == "''"  # then the daemon closed it
        # At most 8 clients at once: the 9th is told so and closed; the 8 still answer.
        out = adm.lab.py_in("router", r"""
import socket, sys
held = []
for _ in range(8):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    held.append(s)
extra = socket.socket(socket.AF_UNIX)
extra.connect(sys.argv[1])
print(extra.makefile().readline().strip())
held[7].sendall(b'{"cmd":"status"}\n')
print(held[7].makefile().readline().strip()[:11])
""", args=[path])
        lines = out.splitlines()
        assert json.loads(lines[0]) == {"ok": False,
                                        "error": "too many admin clients, try again"}, lines
        assert lines[1] == '{"ok":true,', lines
    finally:
        os.chmod(path, 0o600)
        os.chmod(os.path.dirname(path), 0o700)
        for name in os.listdir(public):
            os.unlink(os.path.join(public, name))
        os.rmdir(public)


def test_pin_routes_to_source_and_status(adm):
    lab = adm.lab
    r = adm.run("pin", "alice")
    assert r.stdout.strip() == "alice: UNSEEN -> PINNED", r.stdout
    assert adm.json("pause") == {"ok": True, "paused": True, "migrate_enabled": True,
                                 "queued_logins": 0}
    mark = lab.log_mark("DOVECOT_LOG_OLD")
    imap = adm.hold(HOLD_IMAP, "alice")
    pop = adm.hold(HOLD_POP3, "carol")
    try:
        lab.wait_log("DOVECOT_LOG_OLD", r"Login: user=<alice>", mark)
        adm.g.wait_log(r"migrate user=carol\S* login observed: copy queued", timeout=20)
        s = adm.status()
        assert s["ok"] and s["health"] == "ok", s
        assert s["sessions"]["open"]["imap"]["source"] >= 1, s["sessions"]
        assert s["sessions"]["open"]["pop3"]["source"] >= 1, s["sessions"]
        assert s["sessions"]["open"]["imap"]["destination"] == 0
        assert s["sessions"]["total"]["imap"] >= 1 and s["sessions"]["total"]["pop3"] >= 1
        assert s["accounts"]["PINNED"] == 1 and s["accounts"]["SEEN"] == 1, s["accounts"]
        assert s["migrate"] == {"enabled": True, "paused": True, "queued_logins": 1, "workers": 1}
        assert s["uptime_s"] >= 0 and s["pid"] > 0 and s["copies"] == []
        text = adm.run("status").stdout
        assert "health:     ok" in text and "PAUSED" in text and "PINNED    1" in text, text
        # alice is PINNED: relayed to the source, no copy queued for her.
        assert adm.state("alice") == "PINNED"
        assert "migrate user=alice" not in adm.g.log()
        # Paused: carol's login waits, her copy does not start.
        time.sleep(1.5)
        assert adm.state("carol") == "SEEN"
    finally:
        imap.kill()
        pop.kill()
        imap.communicate()
        pop.communicate()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        opened = adm.status()["sessions"]["open"]
        if opened["imap"]["source"] == 0 and opened["pop3"]["source"] == 0:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"sessions still open: {opened}")


def test_migrate_user_and_pause_resume(adm):
    lab = adm.lab
    r = adm.run("migrate", "bob", check=False)
    assert r.returncode == 1
    assert "holds no credentials for bob" in r.stderr and "next login" in r.stderr, r.stderr
    r = adm.run("migrate", "alice", check=False)
    assert r.returncode == 1 and "alice is PINNED" in r.stderr, r.stderr
    # carol's login has waited in the pause; migrate starts it now, paused or not.
    out = adm.run("migrate", "carol").stdout
    assert "carol: copy starting now (1 waiting login(s) released)" in out, out
    adm.wait_state("carol", "MIGRATED", timeout=120)
    assert len(same_mailbox(lab, "carol")["folders"]["INBOX"]) == 3
    # bob logs in while paused: SEEN, held, not copied.
    out = client_py(lab, LOGIN_ONCE, lab.OLD4, "bob", lab.env["PASS_bob"])
    assert out.startswith("ok"), out
    adm.g.wait_log(r"migrate user=bob\S* login observed: copy queued", timeout=20)
    time.sleep(1.5)
    assert adm.state("bob") == "SEEN"
    assert adm.status()["migrate"]["queued_logins"] == 1
    r = adm.json("resume")
    assert r["paused"] is False
    # The running copy with its progress, as status shows it.
    seen = None
    deadline = time.monotonic() + 60
    while seen is None and time.monotonic() < deadline:
        s = adm.status()
        running = [c for c in s["copies"] if c["account"] == "bob"]
        if running and running[0]["messages"] > 0:
            seen = running[0]
        elif adm.state("bob") == "MIGRATED":
            break
        time.sleep(0.05)
    assert seen is not None, "bob's copy never seen running in status"
    assert seen["phase"].startswith("bulk") and 0 < seen["messages"] <= seen["planned"], seen
    assert seen["folders"] >= 1 and seen["bytes"] > 0, seen
    assert "copies running:" in adm.run("status").stdout
    # Paused again during the bulk copy: it ends, but bob is not flipped (no CUTOVER)
    # until resume.
    adm.run("pause")
    held = None
    deadline = time.monotonic() + 120
    while held is None and time.monotonic() < deadline:
        running = [c for c in adm.status()["copies"] if c["account"] == "bob"]
        if running and running[0]["phase"] == "paused":
            held = running[0]
        else:
            assert adm.state("bob") == "COPYING", adm.g.account("bob")
            time.sleep(0.1)
    assert held is not None and held["messages"] == held["planned"], held
    adm.g.wait_log(r"migrate user=bob\S*: bulk copy done, cutover waits for resume")
    time.sleep(1.0)
    assert adm.state("bob") == "COPYING"
    adm.run("resume")
    a = adm.wait_state("bob", "MIGRATED", timeout=180)
    old = same_mailbox(lab, "bob")
    n = sum(len(m) for m in old["folders"].values())
    runs = a["copy_runs"]
    assert len(runs) == 1 and runs[0]["result"] == "migrated", runs
    assert runs[0]["messages"] == n and runs[0]["bytes"] > 16 << 20, (runs, n)
    assert runs[0]["started"] <= runs[0]["ended"] and runs[0]["error"] == ""
    text = adm.run("accounts", "show", "bob").stdout
    assert "copy runs:" in text and "migrated" in text and f"{n} messages" in text, text
    s = adm.status()
    assert s["accounts"]["MIGRATED"] == 2 and s["migrate"]["paused"] is False
    assert s["recent_errors"] == [] and s["copies"] == []
    assert s["rates"]["copy_messages_per_s"] >= 0 and s["rates"]["window_s"] >= 1, s["rates"]
    # Lists: text, JSON lines, CSV, by state.
    rows = [json.loads(x) for x in adm.run("accounts", "list", "--json").stdout.splitlines()]
    assert {r["name"]: r["state"] for r in rows} == {"alice": "PINNED", "bob": "MIGRATED",
                                                      "carol": "MIGRATED"}
    table = list(csv.DictReader(io.StringIO(adm.run("accounts", "list", "--csv").stdout)))
    assert [(r["name"], r["state"], r["route"]) for r in table] == [
        ("alice", "PINNED", "source"), ("bob", "MIGRATED", "destination"),
        ("carol", "MIGRATED", "destination")]
    assert int(table[1]["logins"]) == 1 and table[1]["last_client"].startswith(lab.CLIENT4)
    only = adm.run("accounts", "list", "--state", "MIGRATED").stdout.split("\n")
    assert only[0].startswith("NAME") and [x.split()[0] for x in only[1:] if x] == ["bob", "carol"]


def test_refusals_rollback_retry(adm):
    r = adm.run("rollback", "bob", check=False)
    assert r.returncode == 1
    assert "bob is MIGRATED" in r.stderr and "credentials" in r.stderr and \
        "Nothing changed" in r.stderr, r.stderr
    assert adm.state("bob") == "MIGRATED"
    r = adm.run("pin", "bob", check=False)
    assert r.returncode == 1 and "use rollback" in r.stderr, r.stderr
    r = adm.run("retry", "alice", check=False)
    assert r.returncode == 1 and "only a FAILED account is retried" in r.stderr, r.stderr
    assert adm.run("rollback", "alice").stdout.strip() == "alice: PINNED -> ROLLBACK"
    # A FAILED account: retry makes it SEEN (copied again at its next login).
    adm.run("accounts", "set-state", "alice", "FAILED", "--reason", "test: copy failed")
    r = adm.json("retry", "alice")
    assert r["from"] == "FAILED" and r["to"] == "SEEN" and r["copy_started"] is False, r
    assert [e["to"] for e in adm.g.account("alice")["history"]][-3:] == ["ROLLBACK", "FAILED",
                                                                         "SEEN"]
    # retry with a login of alice held (paused): her copy starts at once.
    lab = adm.lab
    adm.run("pause")
    out = client_py(lab, LOGIN_ONCE, lab.OLD4, "alice", lab.env["PASS_alice"])
    assert out.startswith("ok"), out
    adm.g.wait_log(r"migrate user=alice\S* login observed: copy queued", timeout=20)
    adm.run("accounts", "set-state", "alice", "FAILED", "--reason", "test: copy failed")
    r = adm.run("migrate", "alice", check=False)
    assert r.returncode == 1 and "mailferry retry alice" in r.stderr, r.stderr
    r = adm.json("retry", "alice")
    assert r["from"] == "FAILED" and r["copy_started"] is True, r
    adm.wait_state("alice", "MIGRATED", timeout=120)
    same_mailbox(lab, "alice")
    assert adm.status()["migrate"]["paused"] is True
    adm.run("resume")


def test_pause_survives_restart_and_socket_removed(adm):
    adm.run("pause")
    path = adm.g.admin_socket
    assert adm.g.stop() == 0
    assert not os.path.exists(path)
    r = adm.run("status", check=False)
    assert r.returncode == 1 and "is mailferryd running?" in r.stderr, r.stderr
    adm.g.start()
    adm.g.wait_log(r"migrate paused=yes", since=adm.g._log_offset)
    assert adm.status()["migrate"]["paused"] is True
    adm.run("resume")
    assert adm.status()["migrate"]["paused"] is False


def test_import_and_retire_report(adm, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"user,pin,notes\r\ndave,yes,ok\r\n\"eve,no\r\nfrank,maybe,x\r\n")
    r = adm.run("accounts", "import", str(bad), check=False)
    assert r.returncode == 1 and "nothing imported" in r.stderr, r.stderr
    bad.write_bytes(b"user,pin\ndave,yes\nfrank,maybe\nBad Name,no\n,no\n")
    r = adm.run("accounts", "import", str(bad), check=False)
    assert r.returncode == 1, r
    assert "line 3: pin is 'maybe'" in r.stderr and "line 4: bad user name" in r.stderr and \
        "line 5: no user" in r.stderr, r.stderr
    names = [json.loads(x)["name"]
             for x in adm.run("accounts", "list", "--json").stdout.splitlines()]
    assert names == ["alice", "bob", "carol"]

    good = tmp_path / "accounts.csv"
    good.write_bytes("\ufeffUser,Notes,Department,Pin\r\n"
                     "alice,\"Sales, 2nd floor\",S,\r\nbob,,IT,no\r\ncarol,,IT,yes\r\n"
                     "dave,\"on leave, \"\"back in May\"\"\",HR,\r\nerin,,Board,YES\r\n".encode())
    r = adm.run("accounts", "import", str(good))
    assert r.stdout.strip() == "imported 5 accounts (2 new), 1 pinned, 1 not pinned (see above)", \
        r.stdout
    assert "carol not pinned: it is MIGRATED" in r.stderr, r.stderr
    assert "column 'Department' ignored" in r.stderr
    dave = adm.g.account("dave")
    assert dave["state"] == "UNSEEN" and dave["imported"] > 0
    assert dave["notes"] == 'on leave, "back in May"'

    r = adm.run("report", "retire", check=False)
    assert r.returncode == 1, r
    text = r.stdout
    assert "Never seen (no login through the gateway): 1" in text and "dave" in text, text
    assert "PINNED (kept on the source by the admin): 1" in text and "erin" in text, text
    assert text.rstrip().splitlines()[-1].startswith("Verdict: NOT SAFE"), text
    rep = json.loads(adm.run("report", "retire", "--json", check=False).stdout)
    assert rep["safe"] is False and rep["total"] == 5 and rep["migrated"] == 3
    assert [(a["name"], a["kind"]) for a in rep["accounts"]] == [("dave", "never_seen"),
                                                                  ("erin", "pinned")]
    assert rep["accounts"][0]["last_seen"] == 0 and rep["accounts"][0]["imported"] > 0
    assert rep["direct_flows"] == []
    rows = list(csv.reader(io.StringIO(adm.run("report", "retire", "--csv", check=False).stdout)))
    assert rows[0] == ["section", "name", "state", "last_seen", "last_client", "count", "detail"]
    assert rows[-1][:2] == ["verdict", "not_safe"] and rows[-1][6].startswith("NOT SAFE")
    assert ["never_seen", "dave"] == rows[1][:2] and rows[2][:2] == ["pinned", "erin"]

    # Every imported account MIGRATED, no direct flow: safe (exit status 0).
    for u in ("dave", "erin"):
        adm.run("accounts", "set-state", u, "MIGRATED", "--reason", "test: moved")
    r = adm.run("report", "retire")
    assert r.stdout.rstrip().splitlines()[-1] == (
        "Verdict: SAFE to retire the source: all 5 accounts are MIGRATED and no client "
        "reached the source directly in the last 7 days"), r.stdout
    rep = json.loads(adm.run("report", "retire", "--json").stdout)
    assert rep["safe"] is True and rep["accounts"] == []
