"""POP3 UIDL continuity through the gateway (issue 4): after an account moved, the
gateway's POP3 path answers UIDL with the source's UIDLs of the copied messages.

Here the gateway side alone: messages are put on new directly and the account's map
(destination UIDL -> source UIDL) is written into the ledger by the test, so that each
case is exact: copied messages answer with their source UIDL (listing and `UIDL n`),
a new message keeps its own UIDL unless it is one of the source's UIDLs (then it gets a
stable "mf-" name), and every other answer (STAT, LIST, RETR of a 3 MiB message, TOP,
CAPA, errors, QUIT) reaches the client byte for byte as new sends it to a direct client,
also when the client pipelines its commands. An account with no map is relayed as before.
The copy that records maps end to end is in test_migrate_pop3_uidl.py.

The test user (carol, whom test_migrate_pop3.py owns too) is wiped before and after.
"""

import sqlite3

import pytest

from mfgateway import running
from test_migrate_trigger import wipe

USER = "carol"

APPEND = r'''
import imaplib
c = imaplib.IMAP4(P["host"], 143, timeout=60)
c.login(P["user"], P["password"])
line = b"0123456789abcdef" * 4 + b"\r\n"
bodies = [b.encode("latin-1") for b in P["bodies"]]
bodies.append(b"Subject: big\r\n\r\n.\r\n" + line * (3 * 1024 * 1024 // len(line)) + b".\r\n")
for body in bodies:
    typ, data = c.append("INBOX", None, None, body)
    assert typ == "OK", (typ, data)
c.logout()
'''

# One POP3 session: the raw bytes of the answers to P["cmds"], sent one by one
# (or all at once when P["pipelined"]); multi-line answers read to their ".".
SESSION = r'''
import socket
s = socket.create_connection((P["host"], 110), timeout=60)
f = s.makefile("rb")
assert f.readline().startswith(b"+OK")
def send(c):
    s.sendall(c.encode() + b"\r\n")
def answer(cmd):
    first = f.readline()
    out = [first]
    multi = cmd.split()[0].upper() in ("RETR", "TOP", "CAPA") or (
        cmd.split()[0].upper() in ("LIST", "UIDL") and len(cmd.split()) == 1)
    if first.startswith(b"+OK") and multi:
        while True:
            l = f.readline()
            assert l, "connection closed inside a listing"
            out.append(l)
            if l == b".\r\n":
                break
    return b"".join(out).decode("latin-1")
send("USER " + P["user"])
assert f.readline().startswith(b"+OK")
send("PASS " + P["password"])
ok = f.readline()
assert ok.startswith(b"+OK"), ok
res = []
if P["pipelined"]:
    s.sendall(b"".join(c.encode() + b"\r\n" for c in P["cmds"]))
    res = [answer(c) for c in P["cmds"]]
else:
    for c in P["cmds"]:
        send(c)
        res.append(answer(c))
RESULT = {"answers": res, "eof": P["cmds"][-1] == "QUIT" and f.read() == b""}
'''


def bodies():
    out = []
    for i in range(6):
        head = f"From: s{i}@lab.test\r\nSubject: uidl {i} \xe9\r\nMessage-ID: <u{i}@lab.test>\r\n\r\n"
        body = [".\r\n..\r\n.leading\r\n", "bin " + "".join(chr(c) for c in range(1, 256)
                                                          if c not in (10, 13)) + "\r\n",
                "caf\xe9\r\n"][i % 3]
        out.append(head + body * (1 + i))
    return out


def session(lab, host, cmds, pipelined=False, ns="client"):
    return lab.py_json(ns, SESSION, timeout=120, host=host, user=USER,
                       password=lab.env[f"PASS_{USER}"], cmds=cmds, pipelined=pipelined)


@pytest.fixture(scope="module")
def ulab(lab):
    wipe(lab, USER)
    lab.py_json("router", APPEND, host=lab.NEW4, user=USER,
                password=lab.env[f"PASS_{USER}"], bodies=bodies(), timeout=300)
    yield lab
    wipe(lab, USER)


def set_map(g, pairs):
    g.cli("accounts", "set-state", USER, "MIGRATED")
    db = sqlite3.connect(g.ledger, timeout=10)
    with db:
        db.execute("DELETE FROM pop3_uidl WHERE name = ?", (USER,))
        db.executemany("INSERT INTO pop3_uidl (name, dst, src) VALUES (?, ?, ?)",
                       [(USER, d, s) for d, s in pairs])
    db.close()


def uidls(answer):
    lines = answer.split("\r\n")
    assert lines[0].startswith("+OK") and lines[-2:] == [".", ""], answer[:200]
    return [tuple(l.split(" ", 1)) for l in lines[1:-2]]


def test_uidl_rewritten_rest_byte_exact(ulab, tmp_path):
    lab = ulab
    direct = session(lab, lab.NEW4, ["UIDL", "QUIT"], ns="router")["answers"][0]
    dst = uidls(direct)
    n = len(dst)
    assert n == 7
    # Messages 1-4 were "copied": their source UIDLs. Message 5 is new, message 6
    # is new but its UIDL is message 1's source UIDL; message 7 is new.
    src = {dst[0][1]: "old-uidl-1", dst[1][1]: "old-uidl-2", dst[2][1]: "old-uidl-3",
           dst[3][1]: dst[5][1]}
    cmds = ["STAT", "LIST", "UIDL", "LIST 2", "UIDL 1", "UIDL 4", "UIDL 5", "UIDL 6",
            "UIDL 99", "UIDL x", "RETR 1", "TOP 2 0", "TOP 3 2", "RETR 7", "CAPA",
            "NOOP", "bogus", "RETR 99", "QUIT"]
    want_direct = session(lab, lab.NEW4, cmds, ns="router")["answers"]
    with running(lab, str(tmp_path / "gw"), ports=(110,), pop3_ports=(110,)) as g:
        set_map(g, src.items())
        for pipelined in (False, True):
            r = session(lab, lab.OLD4, cmds, pipelined=pipelined)
            got = r["answers"]
            assert r["eof"], "the session did not end after QUIT"
            assert len(got) == len(cmds)
            for c, a, b in zip(cmds, got, want_direct):
                if c.startswith("UIDL") and a.startswith("+OK"):
                    continue
                assert a == b, f"{c}: through the gateway {a[:300]!r} != direct {b[:300]!r}"
            listing = uidls(got[2])
            rew = dict(listing)
            assert [k for k, _ in listing] == [str(i) for i in range(1, n + 1)]
            assert rew["1"] == "old-uidl-1" and rew["2"] == "old-uidl-2"
            assert rew["3"] == "old-uidl-3"
            assert rew["4"] == dst[5][1]
            assert rew["5"] == dst[4][1]
            assert rew["6"].startswith("mf-") and len(rew["6"]) == 43
            assert rew["6"] not in (v for _, v in dst)
            assert rew["7"] == dst[6][1]
            assert len(set(rew.values())) == n
            assert got[4] == "+OK 1 old-uidl-1\r\n"
            assert got[5] == f"+OK 4 {dst[5][1]}\r\n"
            assert got[6] == f"+OK 5 {dst[4][1]}\r\n"
            assert got[7] == f"+OK 6 {rew['6']}\r\n"
            assert got[8].startswith("-ERR") and got[9].startswith("-ERR")
            assert len(got[13]) > 3 * 1024 * 1024
        log = open(g.logfile, encoding="utf-8", errors="replace").read()
        assert f"pop3 user={USER}: served by the destination with 4 source UIDLs" in log


def test_no_map_is_relayed(ulab, tmp_path):
    lab = ulab
    want = session(lab, lab.NEW4, ["UIDL", "RETR 2", "QUIT"], ns="router")["answers"]
    with running(lab, str(tmp_path / "gw"), ports=(110,), pop3_ports=(110,)) as g:
        set_map(g, [])
        got = session(lab, lab.OLD4, ["UIDL", "RETR 2", "QUIT"])["answers"]
        assert got == want
        log = open(g.logfile, encoding="utf-8", errors="replace").read()
        assert "served by the destination with" not in log


TLS_SESSION = r'''
import hashlib, poplib, ssl
if P["ca"]:
    ctx = ssl.create_default_context(cafile=P["ca"])
    p = poplib.POP3_SSL(P["host"], 995, context=ctx, timeout=60)
else:
    p = poplib.POP3(P["host"], 110, timeout=60)
p.user(P["user"])
p.pass_(P["password"])
resp, lines, _ = p.uidl()
big = b"\r\n".join(p.retr(7)[1])
RESULT = {"uidl": [l.decode() for l in lines], "big": hashlib.sha256(big).hexdigest(),
          "one": p.uidl(1).decode()}
p.quit()
'''


def test_uidl_over_pop3s_and_backend_stls(ulab, tmp_path):
    """TLS on both legs: the client on 995, the gateway to new over STLS."""
    from test_tls import pki, tls_conf
    lab = ulab
    dst = uidls(session(lab, lab.NEW4, ["UIDL", "QUIT"], ns="router")["answers"][0])
    with running(lab, str(tmp_path / "gw"), ports=(110, 995), pop3_ports=(110,),
                 tls=tls_conf(lab, backend_tls="starttls",
                              backend_ca=pki(lab, "ca.crt"))) as g:
        set_map(g, [(dst[0][1], "tls-old-1")])
        r = lab.py_json("client", TLS_SESSION, timeout=120, host=lab.OLD4, user=USER,
                        password=lab.env[f"PASS_{USER}"], ca=pki(lab, "ca.crt"))
        assert r["uidl"][0] == "1 tls-old-1"
        assert r["uidl"][1:] == [f"{k} {v}" for k, v in dst[1:]]
        assert r["one"] == "+OK 1 tls-old-1"
        direct = lab.py_json("router", TLS_SESSION, timeout=120, host=lab.NEW4, user=USER,
                             password=lab.env[f"PASS_{USER}"], ca="")
        assert r["big"] == direct["big"]
