"""Issue 3: the POP3 pre-auth front end on plaintext port 110.

Real Dovecot and Postfix on `old` and `new`, poplib, raw sockets and curl on
`client`, mailferryd with pop3_ports = 110 on `router`; accounts routed by
the ledger."""
import base64
import re
import uuid

import pytest

from mfgateway import client_py, running


@pytest.fixture(scope="module")
def gw(lab, tmp_path_factory):
    with running(lab, str(tmp_path_factory.mktemp("pop3gw")), ports=(110,),
                pop3_ports=(110,)) as g:
        yield g



# A raw client: P = {host, ...}; line() prints and returns one reply line.
RAW = r"""
import socket, sys
s = socket.create_connection((P["host"], 110), timeout=15)
f = s.makefile('rb')
out = []
def line():
    l = f.readline()
    out.append(l.decode(errors='replace'))
    return l
greeting = line()
assert greeting.startswith(b'+OK'), greeting
"""


def raw(lab, body, **params):
    return lab.py_json("client", RAW + body + "\nRESULT = out\n", host=lab.OLD4, **params)


def test_user_pass_unseen_goes_to_source_and_becomes_seen(lab, gw):
    mark = lab.log_mark("DOVECOT_LOG_OLD")
    r = lab.py_json("client", r"""
import poplib
p = poplib.POP3(P["host"], 110, timeout=15)
welcome = p.getwelcome().decode()
caps = p.capa()
p.user("alice")
resp = p.pass_(P["pw"]).decode()
count, size = p.stat()
p.quit()
RESULT = [welcome, sorted(caps), resp, count]
""", host=lab.OLD4, pw=lab.PASS_alice)
    welcome, caps, resp, count = r
    # the source's own greeting, mirrored (banner.h)
    assert welcome == "+OK Dovecot ready (old.lab.test).", welcome
    assert "USER" in caps and "SASL" in caps and "STLS" not in caps
    assert resp.startswith("+OK"), resp
    assert count >= 0
    m = lab.wait_log("DOVECOT_LOG_OLD", r"pop3-login: Info: Login: user=<alice>.*", mark)
    assert "rip=198.18.1.2" in m
    assert gw.account("alice")["state"] == "SEEN"
    c = gw.wait_conn(lambda c: c.get("user") == "alice" and c.get("route") == "source")
    assert c["end"] == "eof"


def test_auth_plain_with_initial_response(lab, gw):
    ir = base64.b64encode(b"\0bob\0" + lab.PASS_bob.encode()).decode()
    mark = lab.log_mark("DOVECOT_LOG_OLD")
    out = raw(lab, r"""
s.sendall(b'AUTH\r\n')
assert line().startswith(b'+OK')
while line() != b'.\r\n': pass
s.sendall(b'AUTH PLAIN ' + P["ir"].encode() + b'\r\nSTAT\r\n')
l = line(); assert l.startswith(b'+OK'), l
l = line(); assert l.startswith(b'+OK '), l
s.sendall(b'QUIT\r\n'); line()
""", ir=ir)
    assert "PLAIN\r\n" in out
    lab.wait_log("DOVECOT_LOG_OLD", r"pop3-login: Info: Login: user=<bob>.*rip=198\.18\.1\.2", mark)
    assert gw.account("bob")["state"] == "SEEN"


def test_auth_plain_challenge_and_cancel(lab, gw):
    ir = base64.b64encode(b"\0bob\0" + lab.PASS_bob.encode()).decode()
    out = raw(lab, r"""
s.sendall(b'AUTH PLAIN\r\n'); l = line(); assert l == b'+ \r\n', l
s.sendall(b'*\r\n'); l = line(); assert l.startswith(b'-ERR'), l
s.sendall(b'AUTH PLAIN\r\n'); l = line(); assert l == b'+ \r\n', l
s.sendall(b'!!notbase64\r\n'); l = line(); assert l.startswith(b'-ERR'), l
s.sendall(b'APOP bob 0123456789abcdef0123456789abcdef\r\n'); assert line().startswith(b'-ERR')
s.sendall(b'STLS\r\n'); assert line().startswith(b'-ERR')
s.sendall(b'PASS x\r\n'); assert line().startswith(b'-ERR')
s.sendall(b'AUTH PLAIN\r\n'); l = line(); assert l == b'+ \r\n', l
s.sendall(P["ir"].encode() + b'\r\n'); l = line(); assert l.startswith(b'+OK'), l
s.sendall(b'QUIT\r\n'); l = line(); assert l.startswith(b'+OK'), l
""", ir=ir)
    assert len(out) == 11


def test_migrated_goes_to_destination_cutover_in_use(lab, gw):
    gw.cli("accounts", "set-state", "bob", "MIGRATED")
    gw.cli("accounts", "set-state", "carol", "CUTOVER")
    mark = lab.log_mark("DOVECOT_LOG_NEW")
    r = lab.py_json("client", r"""
import poplib
p = poplib.POP3(P["host"], 110, timeout=15)
p.user("bob"); ok = p.pass_(P["bob"]).decode(); p.stat(); p.quit()
p = poplib.POP3(P["host"], 110, timeout=15)
p.user("carol")
try:
    p.pass_(P["carol"]); err = "logged in"
except poplib.error_proto as e:
    err = str(e)
p.quit()
RESULT = [ok, err]
""", host=lab.OLD4, bob=lab.PASS_bob, carol=lab.PASS_carol)
    assert r[0].startswith("+OK")
    assert "-ERR [IN-USE] account is being migrated, try again shortly" in r[1]
    lab.wait_log("DOVECOT_LOG_NEW", r"pop3-login: Info: Login: user=<bob>", mark)
    c = gw.wait_conn(lambda c: c.get("user") == "bob" and c.get("route") == "destination")
    assert c["up"].startswith("198.18.1.2:")
    assert gw.account("carol")["state"] == "CUTOVER"


def test_wrong_password_passes_source_text(lab, gw):
    gw.cli("accounts", "set-state", "carol", "UNSEEN")
    out = raw(lab, r"""
s.sendall(b'USER carol\r\n'); assert line().startswith(b'+OK')
s.sendall(b'PASS wrong-password-123\r\n'); l = line(); assert l.startswith(b'-ERR'), l
s.sendall(b'QUIT\r\n'); line()
""")
    assert out[2] == "-ERR [AUTH] Authentication failed.\r\n"
    assert gw.account("carol")["state"] == "UNSEEN"


def test_retr_byte_exact_and_curl(lab, gw):
    tag = uuid.uuid4().hex
    msg = (f"From: sender@example.org\r\nTo: alice@lab.test\r\n"
           f"Subject: pop3 front {tag}\r\nMessage-ID: <{tag}@client.lab.test>\r\n\r\n"
           ".dot first\r\n..two dots\r\nplain line\r\n" + "y" * 700 + "\r\n").encode()
    mark = lab.log_mark("POSTFIX_LOG_OLD")
    lab.py_json("client", r"""
import base64, smtplib
s = smtplib.SMTP(P["host"], 25, local_hostname="client.lab.test", timeout=30)
s.sendmail("sender@example.org", ["alice@lab.test"], base64.b64decode(P["msg"]))
s.quit()
""", host=lab.OLD4, msg=base64.b64encode(msg).decode())
    lab.wait_log("POSTFIX_LOG_OLD", r"to=<alice@lab\.test>, relay=.*status=sent", mark, 20)
    r = lab.py_json("client", r"""
import base64, poplib
p = poplib.POP3(P["host"], 110, timeout=15)
p.user("alice"); p.pass_(P["pw"])
count, _ = p.stat()
resp, listing, _ = p.list()
found = []
for i in range(count, 0, -1):
    resp, lines, _ = p.retr(i)
    body = b"\r\n".join(lines) + b"\r\n"
    if P["tag"].encode() in body:
        found.append(base64.b64encode(body).decode())
        break
p.quit()
RESULT = [count, len(listing), found]
""", host=lab.OLD4, pw=lab.PASS_alice, tag=tag)
    count, nlist, found = r
    assert count >= 1 and nlist == count
    assert len(found) == 1
    assert base64.b64decode(found[0]).endswith(msg)
    cr = lab.run("client", ["curl", "-sS", "--max-time", "20", "--user",
                            "alice:" + lab.PASS_alice, f"pop3://{lab.OLD4}/"],
                 capture_output=True, text=True)
    assert cr.returncode == 0, cr.stderr
    lines = [l for l in cr.stdout.splitlines() if l.strip()]
    assert len(lines) >= 1 and all(re.fullmatch(r"\d+ \d+", l.strip()) for l in lines), cr.stdout


def test_auth_login_challenges_and_initial_response(lab, gw):
    u = base64.b64encode(b"alice").decode()
    pw = base64.b64encode(lab.PASS_alice.encode()).decode()
    out = raw(lab, r"""
s.sendall(b'CAPA\r\n')
assert line().startswith(b'+OK')
while line() != b'.\r\n': pass
s.sendall(b'AUTH\r\n')
assert line().startswith(b'+OK')
while line() != b'.\r\n': pass
s.sendall(b'AUTH LOGIN\r\n'); l = line(); assert l == b'+ VXNlcm5hbWU6\r\n', l
s.sendall(P["u"].encode() + b'\r\n'); l = line(); assert l == b'+ UGFzc3dvcmQ6\r\n', l
s.sendall(P["pw"].encode() + b'\r\n'); l = line(); assert l.startswith(b'+OK'), l
s.sendall(b'STAT\r\n'); l = line(); assert l.startswith(b'+OK '), l
n = int(l.split()[1]); assert n >= 1, l
s.sendall(b'RETR 1\r\n'); l = line(); assert l.startswith(b'+OK'), l
while line() != b'.\r\n': pass
s.sendall(b'QUIT\r\n'); l = line(); assert l.startswith(b'+OK'), l
s = socket.create_connection((P["host"], 110), timeout=15); f = s.makefile('rb')
assert line().startswith(b'+OK')
s.sendall(b'AUTH LOGIN ' + P["u"].encode() + b'\r\n'); l = line()
assert l == b'+ UGFzc3dvcmQ6\r\n', l
s.sendall(P["pw"].encode() + b'\r\nSTAT\r\n'); l = line(); assert l.startswith(b'+OK'), l
l = line(); assert l.startswith(b'+OK '), l
s.sendall(b'RETR 1\r\n'); l = line(); assert l.startswith(b'+OK'), l
while line() != b'.\r\n': pass
s.sendall(b'QUIT\r\n'); line()
""", u=u, pw=pw)
    assert "SASL PLAIN LOGIN\r\n" in out
    assert "LOGIN\r\n" in out


def test_auth_login_cancel_bad_base64_wrong_password(lab, gw):
    u = base64.b64encode(b"carol").decode()
    wrong = base64.b64encode(b"wrong-login-pass-456").decode()
    out = raw(lab, r"""
s.sendall(b'AUTH LOGIN\r\n'); l = line(); assert l == b'+ VXNlcm5hbWU6\r\n', l
s.sendall(b'*\r\n'); l = line(); assert l.startswith(b'-ERR'), l
s.sendall(b'AUTH LOGIN ' + P["u"].encode() + b'\r\n'); l = line(); assert l.startswith(b'+ '), l
s.sendall(b'*\r\n'); l = line(); assert l.startswith(b'-ERR'), l
s.sendall(b'AUTH LOGIN\r\n'); l = line(); assert l.startswith(b'+ '), l
s.sendall(b'!!notbase64\r\n'); l = line(); assert l.startswith(b'-ERR'), l
s.sendall(b'AUTH LOGIN =\r\n'); l = line(); assert l.startswith(b'-ERR'), l
s.sendall(b'AUTH LOGIN ' + P["u"].encode() + b'\r\n'); l = line(); assert l.startswith(b'+ '), l
s.sendall(P["wrong"].encode() + b'\r\n'); l = line(); assert l.startswith(b'-ERR'), l
s.sendall(b'QUIT\r\n'); l = line(); assert l.startswith(b'+OK'), l
""", u=u, wrong=wrong)
    assert out[-2] == "-ERR [AUTH] Authentication failed.\r\n"
    assert len(out) == 11


@pytest.mark.parametrize("sasl_ir", [False, True])
def test_curl_auth_login(lab, gw, sasl_ir):
    cmd = ["curl", "-sS", "--max-time", "20", "--user", "alice:" + lab.PASS_alice,
           "--login-options", "AUTH=LOGIN", f"pop3://{lab.OLD4}/"]
    if sasl_ir:
        cmd.insert(1, "--sasl-ir")
    cr = lab.run("client", cmd, capture_output=True, text=True)
    assert cr.returncode == 0, cr.stderr
    lines = [l for l in cr.stdout.splitlines() if l.strip()]
    assert len(lines) >= 1 and all(re.fullmatch(r"\d+ \d+", l.strip()) for l in lines), cr.stdout


def test_hostile_input(lab, gw):
    out = raw(lab, r"""
try:
    s.sendall(b'USER ' + b'a' * (1 << 20) + b'\r\n')
except OSError:
    pass
try:
    l = line()
    rest = f.read()
except OSError as e:
    out.append('reset: %s' % e)
""")
    assert out[1].startswith("-ERR") or out[1].startswith("reset"), out
    out = raw(lab, r"""
for i in range(11):
    s.sendall(b'FROB %d\r\n' % i)
rest = f.read()
out.append(rest.decode())
""")
    text = "".join(out[1:])
    assert text.count("-ERR") == 11 and "Too many invalid commands" in text
    # the daemon still serves
    r = lab.py_json("client", r'''
import poplib
p = poplib.POP3(P["host"], 110, timeout=15)
p.user("alice"); resp = p.pass_(P["pw"]).decode(); p.quit()
RESULT = resp
''', host=lab.OLD4, pw=lab.PASS_alice)
    assert r.startswith("+OK")


def test_password_never_logged_or_stored(lab, gw):
    for u in ("alice", "bob", "carol"):
        assert gw.files_holding(lab.env["PASS_" + u].encode()) == []
    assert gw.files_holding(b"wrong-password-123") == []
    # the AUTH LOGIN paths above (challenges, initial response, curl)
    assert gw.files_holding(b"wrong-login-pass-456") == []
