"""Issue 3, first step: the IMAP pre-auth front end on plaintext port 143.

Real Dovecot on `old` and `new`, imaplib and raw sockets on `client`,
mailferryd with imap_ports = 143 on `router`; accounts routed by the ledger."""
import time

import pytest

from mfgateway import client_py, running


@pytest.fixture(scope="module")
def gw(lab, tmp_path_factory):
    with running(lab, str(tmp_path_factory.mktemp("imapgw")), ports=(143,),
                imap_ports=(143,)) as g:
        yield g




def dlog(lab, which):
    with open(lab.env["DOVECOT_LOG_" + which], errors="replace") as f:
        return f.read()


def wait_in_log(lab, which, needle, start, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in dlog(lab, which)[start:]:
            return
        time.sleep(0.1)
    raise AssertionError("%r not in %s's Dovecot log" % (needle, which))


RAW = r"""
import socket, sys
s = socket.create_connection((HOST, 143), timeout=10)
f = s.makefile('rb')
def line():
    l = f.readline()
    sys.stdout.write(l.decode(errors='replace'))
    return l
def until(tag):
    while True:
        l = line()
        if not l or l.startswith(tag.encode() + b' '):
            return l
line()
"""


def raw(lab, body):
    return client_py(lab, "HOST = %r\n" % lab.env["OLD4"] + RAW + body)


def test_login_unseen_goes_to_source_and_becomes_seen(lab, gw):
    start = len(dlog(lab, "OLD"))
    out = client_py(lab, f"""
import imaplib
m = imaplib.IMAP4({lab.env['OLD4']!r}, 143, timeout=10)
assert 'AUTH=PLAIN' in m.capabilities, m.capabilities
typ, data = m.login('alice', {lab.env['PASS_alice']!r})
assert typ == 'OK', (typ, data)
typ, data = m.select('INBOX')
assert typ == 'OK', typ
typ, data = m.search(None, 'ALL')
assert typ == 'OK', typ
m.logout()
print('ok')
""")
    assert out.strip() == "ok"
    wait_in_log(lab, "OLD", "Login: user=<alice>", start)
    assert "rip=198.18.1.2" in dlog(lab, "OLD")[start:]
    assert gw.account("alice")["state"] == "SEEN"
    c = gw.wait_conn(lambda c: c.get("user") == "alice")
    assert c["route"] == "source"


def test_login_literal_and_sasl_ir(lab, gw):
    pw = lab.env["PASS_alice"]
    import base64
    ir = base64.b64encode(b"\0alice\0" + pw.encode()).decode()
    out = raw(lab, f"""
s.sendall(b'a1 LOGIN {{5}}\\r\\n'); l = line(); assert l.startswith(b'+'), l
s.sendall(b'alice {{%d+}}\\r\\n%s\\r\\n' % (len({pw!r}), {pw!r}.encode()))
l = until('a1'); assert l.startswith(b'a1 OK'), l
s.sendall(b'a2 LOGOUT\\r\\n'); until('a2')
s2 = socket.create_connection((HOST, 143), timeout=10); f = s2.makefile('rb'); s = s2
line()
s.sendall(b'b1 AUTHENTICATE PLAIN {ir}\\r\\nb2 SELECT INBOX\\r\\n')
l = until('b1'); assert l.startswith(b'b1 OK'), l
l = until('b2'); assert l.startswith(b'b2 OK'), l
print('done')
""")
    assert "done" in out


def test_authenticate_plain_without_ir(lab, gw):
    out = client_py(lab, f"""
import imaplib
m = imaplib.IMAP4({lab.env['OLD4']!r}, 143, timeout=10)
typ, data = m.authenticate('PLAIN', lambda _: b'\\0bob\\0' + {lab.env['PASS_bob']!r}.encode())
assert typ == 'OK', (typ, data)
m.logout()
print('ok')
""")
    assert out.strip() == "ok"


def test_migrated_goes_to_destination_cutover_unavailable(lab, gw):
    gw.cli("accounts", "set-state", "bob", "MIGRATED")
    gw.cli("accounts", "set-state", "carol", "CUTOVER")
    start = len(dlog(lab, "NEW"))
    out = client_py(lab, f"""
import imaplib
m = imaplib.IMAP4({lab.env['OLD4']!r}, 143, timeout=10)
typ, data = m.login('bob', {lab.env['PASS_bob']!r})
assert typ == 'OK', (typ, data)
m.select('INBOX'); m.logout()
m = imaplib.IMAP4({lab.env['OLD4']!r}, 143, timeout=10)
try:
    m.login('carol', {lab.env['PASS_carol']!r})
    raise SystemExit('carol logged in')
except imaplib.IMAP4.error as e:
    print(e)
""")
    assert "[UNAVAILABLE]" in out
    wait_in_log(lab, "NEW", "Login: user=<bob>", start)
    c = gw.wait_conn(lambda c: c.get("user") == "bob" and c.get("route") == "destination")
    assert c["up"].startswith("198.18.1.2:")


def test_wrong_password_passes_source_text(lab, gw):
    gw.cli("accounts", "set-state", "carol", "UNSEEN")
    out = raw(lab, """
s.sendall(b'x1 LOGIN carol wrong-password-123\\r\\n')
l = until('x1'); assert l.startswith(b'x1 NO '), l
""")
    assert "x1 NO [AUTHENTICATIONFAILED] Authentication failed." in out
    assert gw.account("carol")["state"] == "UNSEEN"


def test_authenticate_login_unseen_goes_to_source_and_becomes_seen(lab, gw):
    gw.cli("accounts", "set-state", "carol", "UNSEEN")
    start = len(dlog(lab, "OLD"))
    out = client_py(lab, f"""
import imaplib
m = imaplib.IMAP4({lab.env['OLD4']!r}, 143, timeout=10)
assert 'AUTH=LOGIN' in m.capabilities, m.capabilities
asked = []
def answer(challenge):
    asked.append(challenge)
    return {{b'Username:': b'carol',
             b'Password:': {lab.env['PASS_carol']!r}.encode()}}[challenge]
typ, data = m.authenticate('LOGIN', answer)
assert typ == 'OK', (typ, data)
assert asked == [b'Username:', b'Password:'], asked
typ, data = m.select('INBOX')
assert typ == 'OK', typ
m.logout()
print('ok')
""")
    assert out.strip() == "ok"
    wait_in_log(lab, "OLD", "Login: user=<carol>", start)
    assert gw.account("carol")["state"] == "SEEN"
    c = gw.wait_conn(lambda c: c.get("user") == "carol" and c.get("route") == "source")
    assert c["up"]


def test_authenticate_login_sasl_ir_cancel_and_bad_base64(lab, gw):
    import base64
    u = base64.b64encode(b"alice").decode()
    pw = base64.b64encode(lab.env["PASS_alice"].encode()).decode()
    wrong = base64.b64encode(b"wrong-login-pass-456").decode()
    out = raw(lab, f"""
s.sendall(b'c1 CAPABILITY\\r\\n'); l = line(); assert b'AUTH=LOGIN' in l, l; until('c1')
s.sendall(b'k1 AUTHENTICATE LOGIN\\r\\n'); l = line(); assert l == b'+ VXNlcm5hbWU6\\r\\n', l
s.sendall(b'*\\r\\n'); l = until('k1'); assert l.startswith(b'k1 BAD'), l
s.sendall(b'k2 AUTHENTICATE LOGIN {u}\\r\\n'); l = line(); assert l == b'+ UGFzc3dvcmQ6\\r\\n', l
s.sendall(b'*\\r\\n'); l = until('k2'); assert l.startswith(b'k2 BAD'), l
s.sendall(b'k3 AUTHENTICATE LOGIN\\r\\n'); l = line(); assert l.startswith(b'+ '), l
s.sendall(b'!!notbase64\\r\\n'); l = until('k3'); assert l.startswith(b'k3 BAD'), l
s.sendall(b'k4 AUTHENTICATE LOGIN {u}\\r\\n'); l = line(); assert l.startswith(b'+ '), l
s.sendall(b'!!notbase64\\r\\n'); l = until('k4'); assert l.startswith(b'k4 BAD'), l
s.sendall(b'k5 AUTHENTICATE LOGIN =\\r\\n'); l = until('k5'); assert l.startswith(b'k5 BAD'), l
s.sendall(b'k6 AUTHENTICATE LOGIN {u}\\r\\n'); l = line(); assert l.startswith(b'+ '), l
s.sendall(b'{wrong}\\r\\n'); l = until('k6'); assert l.startswith(b'k6 NO '), l
s.sendall(b'k7 AUTHENTICATE LOGIN {u}\\r\\n'); l = line(); assert l == b'+ UGFzc3dvcmQ6\\r\\n', l
s.sendall(b'{pw}\\r\\nk8 SELECT INBOX\\r\\n')
l = until('k7'); assert l.startswith(b'k7 OK'), l
l = until('k8'); assert l.startswith(b'k8 OK'), l
print('done')
""")
    assert "done" in out
    assert "k6 NO [AUTHENTICATIONFAILED] Authentication failed." in out


@pytest.mark.parametrize("sasl_ir", [False, True])
def test_curl_authenticate_login(lab, gw, sasl_ir):
    cmd = ["curl", "-sS", "--max-time", "20", "--user", "alice:" + lab.env["PASS_alice"],
           "--login-options", "AUTH=LOGIN", "imap://%s/" % lab.env["OLD4"]]
    if sasl_ir:
        cmd.insert(1, "--sasl-ir")
    cr = lab.run("client", cmd, capture_output=True, text=True)
    assert cr.returncode == 0, cr.stderr
    assert "INBOX" in cr.stdout, cr.stdout


def test_password_never_logged_or_stored(lab, gw):
    # after PLAIN, LOGIN and AUTHENTICATE LOGIN (challenge, SASL-IR, curl)
    for u in ("alice", "bob", "carol"):
        assert gw.files_holding(lab.env["PASS_" + u].encode()) == []
    assert gw.files_holding(b"wrong-password-123") == []
    assert gw.files_holding(b"wrong-login-pass-456") == []


def test_hostile_input(lab, gw):
    out = raw(lab, """
s.sendall(b'h1 LOGIN ' + b'a' * (1 << 20) + b'\\r\\n')
l = until('h1'); print('GOT', l[:40])
""")
    assert "h1 BAD" in out or "* BYE" in out
    out = raw(lab, """
s.sendall(b'h2 LOGIN {4294967295}\\r\\n')
l = until('h2'); assert l.startswith(b'h2 BAD'), l
""")
    out = raw(lab, """
for i in range(11):
    s.sendall(b'e%d FROB\\r\\n' % i)
rest = f.read()
print(rest.decode())
""")
    assert "* BYE" in out
    assert out.count(" BAD ") == 11
    out = raw(lab, """
s.sendall(b'c1 CAPABILITY\\r\\nc2 ID NIL\\r\\nc3 NOOP\\r\\nc4 STARTTLS\\r\\nc5 LOGOUT\\r\\n')
print(f.read().decode())
""")
    assert "* CAPABILITY IMAP4rev1" in out and "c2 OK" in out and "c3 OK" in out
    assert "c4 BAD" in out and "* BYE" in out and "c5 OK" in out
    # the daemon still serves
    test_authenticate_plain_without_ir(lab, gw)
