"""Issue 3, TLS: implicit TLS on 993/995, STARTTLS/STLS on 143/110, the
user-space pump after login, backend_tls, SNI and STARTTLS injection.

mailferryd on `router` presents the source's certificate (the lab CA's
old.lab.test, with the source's addresses as names); clients in `client`
verify it against the lab CA, as a real client would verify the source."""
import os

import pytest

from mfgateway import client_py, running


def pki(lab, name):
    return os.path.join(lab.lab_dir, "pki", name)


def tls_conf(lab, **extra):
    conf = {"cert": [pki(lab, "old.crt")], "key": [pki(lab, "old.key")]}
    conf.update(extra)
    return conf


@pytest.fixture(scope="module")
def gw(lab, tmp_path_factory):
    with running(lab, str(tmp_path_factory.mktemp("tlsgw")), ports=(143, 993, 110, 995),
                 imap_ports=(143,), pop3_ports=(110,), tls=tls_conf(lab)) as g:
        g.cli("accounts", "set-state", "bob", "MIGRATED")
        g.cli("accounts", "set-state", "carol", "CUTOVER")
        yield g


def dlog(lab, which):
    with open(lab.env["DOVECOT_LOG_" + which], errors="replace") as f:
        return f.read()


def ctx_code(lab):
    return f"""
import ssl
ctx = ssl.create_default_context(cafile={pki(lab, 'ca.crt')!r})
"""


def test_imaps_routes_by_state_and_pumps(lab, gw):
    """993: UNSEEN → source (and SEEN), MIGRATED → destination, CUTOVER →
    NO [UNAVAILABLE]; SELECT and FETCH run through the TLS pump."""
    start_old, start_new = len(dlog(lab, "OLD")), len(dlog(lab, "NEW"))
    out = client_py(lab, ctx_code(lab) + f"""
import imaplib
def login(user, pw):
    m = imaplib.IMAP4_SSL({lab.env['OLD4']!r}, 993, ssl_context=ctx, timeout=10)
    assert 'STARTTLS' not in m.capabilities, m.capabilities
    return m, m.login(user, pw)
m, r = login('alice', {lab.env['PASS_alice']!r})
assert r[0] == 'OK', r
assert m.select('INBOX')[0] == 'OK'
assert m.noop()[0] == 'OK'
m.logout()
m, r = login('bob', {lab.env['PASS_bob']!r})
assert r[0] == 'OK', r
assert m.select('INBOX')[0] == 'OK'
m.logout()
try:
    login('carol', {lab.env['PASS_carol']!r})
    print('carol got in')
except imaplib.IMAP4.error as e:
    print('carol', e)
""")
    assert "[UNAVAILABLE]" in out and "got in" not in out, out
    assert "Login: user=<alice>" in dlog(lab, "OLD")[start_old:]
    assert "Login: user=<bob>" in dlog(lab, "NEW")[start_new:]
    assert "user=<carol>" not in dlog(lab, "NEW")[start_new:]
    assert gw.account("alice")["state"] == "SEEN"
    c = gw.wait_conn(lambda c: c.get("user") == "bob")
    assert c["route"] == "destination"


@pytest.mark.parametrize("how", ["LOGIN", "AUTHENTICATE PLAIN", "SASL-IR"])
def test_imap_starttls_logins(lab, gw, how):
    """143 + STARTTLS: STARTTLS advertised before, not after; every login
    form works over the upgraded connection."""
    start = len(dlog(lab, "OLD"))
    out = client_py(lab, ctx_code(lab) + f"""
import imaplib
m = imaplib.IMAP4({lab.env['OLD4']!r}, 143, timeout=10)
assert 'STARTTLS' in m.capabilities, m.capabilities
assert m.starttls(ssl_context=ctx)[0] == 'OK'
assert 'STARTTLS' not in m.capabilities, m.capabilities
how = {how!r}
user, pw = 'alice', {lab.env['PASS_alice']!r}
if how == 'LOGIN':
    r = m.login(user, pw)
elif how == 'SASL-IR':
    r = m.authenticate('PLAIN', lambda _: ('\\0' + user + '\\0' + pw).encode())
else:
    m._mode_utf8 = False
    m.capabilities = tuple(c for c in m.capabilities if c != 'SASL-IR')
    r = m.authenticate('PLAIN', lambda _: ('\\0' + user + '\\0' + pw).encode())
assert r[0] == 'OK', r
assert m.select('INBOX')[0] == 'OK'
m.logout()
print('ok')
""")
    assert out.strip() == "ok"
    assert "Login: user=<alice>" in dlog(lab, "OLD")[start:]


def test_imap_starttls_injection_discarded(lab, gw):
    """A command pipelined after STARTTLS in plaintext must never be run
    (CVE-2011-0411): after the handshake the first answer is to what the
    client sent over TLS."""
    out = client_py(lab, ctx_code(lab) + f"""
import socket
s = socket.create_connection(({lab.env['OLD4']!r}, 143), timeout=10)
f = s.makefile('rb')
f.readline()
s.sendall(b'a STARTTLS\\r\\nb CAPABILITY\\r\\nc LOGOUT\\r\\n')
l = f.readline()
assert l.startswith(b'a OK'), l
t = ctx.wrap_socket(s, server_hostname={lab.env['OLD4']!r})
t.sendall(b'd NOOP\\r\\n')
tf = t.makefile('rb')
lines = []
while True:
    l = tf.readline()
    lines.append(l)
    if not l or l[:1] != b'*':
        break
print(lines)
""")
    assert "d OK" in out and "b OK" not in out and "* CAPABILITY" not in out, out


def test_imaps_large_append_fetch_byte_exact(lab, gw):
    """4 MiB each way through the TLS pump, checked by digest."""
    out = client_py(lab, ctx_code(lab) + f"""
import hashlib, imaplib, os, time
body = b''.join(b'line %07d ' % i + os.urandom(24).hex().encode() + b'\\r\\n'
                for i in range(70000))
msg = b'From: a@lab.test\\r\\nTo: alice@lab.test\\r\\nSubject: big\\r\\n\\r\\n' + body
m = imaplib.IMAP4_SSL({lab.env['OLD4']!r}, 993, ssl_context=ctx, timeout=30)
assert m.login('alice', {lab.env['PASS_alice']!r})[0] == 'OK'
m.create('tlsbig')
assert m.append('tlsbig', None, None, msg)[0] == 'OK'
m.select('tlsbig')
typ, data = m.search(None, 'ALL')
n = data[0].split()[-1]
typ, data = m.fetch(n, '(BODY.PEEK[])')
got = data[0][1]
print(len(msg), hashlib.sha256(msg).hexdigest() == hashlib.sha256(got).hexdigest())
m.store(n, '+FLAGS', '\\\\Deleted'); m.expunge(); m.close()
m.delete('tlsbig')
m.logout()
""", timeout=120)
    size, same = out.split()
    assert int(size) > 4 << 20 and same == "True", out


def test_pop3s_and_stls_with_poplib_curl_fetchmail(lab, gw, tmp_path):
    """995 and 110+STLS: poplib and curl log in, a MIGRATED account lands
    on new, CUTOVER gets [IN-USE]; fetchmail fetches over STLS."""
    start_new = len(dlog(lab, "NEW"))
    out = client_py(lab, ctx_code(lab) + f"""
import poplib
p = poplib.POP3_SSL({lab.env['OLD4']!r}, 995, context=ctx, timeout=10)
assert 'STLS' not in p.capa()
p.user('alice'); print(p.pass_({lab.env['PASS_alice']!r}))
p.stat(); p.quit()
p = poplib.POP3({lab.env['OLD4']!r}, 110, timeout=10)
assert 'STLS' in p.capa(), p.capa()
p.stls(context=ctx)
assert 'STLS' not in p.capa()
p.user('bob'); print(p.pass_({lab.env['PASS_bob']!r}))
p.quit()
p = poplib.POP3_SSL({lab.env['OLD4']!r}, 995, context=ctx, timeout=10)
p.user('carol')
try:
    p.pass_({lab.env['PASS_carol']!r}); print('carol got in')
except poplib.error_proto as e:
    print('carol', e)
""")
    assert out.count("+OK") == 2 and "[IN-USE]" in out, out
    assert "user=<bob>" in dlog(lab, "NEW")[start_new:]

    r = lab.run("client", ["curl", "-sS", "--max-time", "10", "--cacert", pki(lab, "ca.crt"),
                           "-u", "alice:" + lab.env["PASS_alice"],
                           f"pop3s://{lab.env['OLD4']}:995/"],
                capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr

    # fetchmail fetches a message put there for it, over STLS
    marker = "fetchmail-marker-%d" % os.getpid()
    client_py(lab, ctx_code(lab) + f"""
import imaplib
m = imaplib.IMAP4_SSL({lab.env['OLD4']!r}, 993, ssl_context=ctx, timeout=10)
m.login('alice', {lab.env['PASS_alice']!r})
m.append('INBOX', None, None, b'Subject: {marker}\\r\\n\\r\\nbody {marker}\\r\\n')
m.logout()
""")
    got = tmp_path / "fetched"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(f"""set no bouncemail
poll {lab.env['OLD4']} protocol pop3 port 110 timeout 15
  user "alice" password "{lab.env['PASS_alice']}"
  sslproto tls1.2+ sslcertck sslcertfile {pki(lab, 'ca.crt')} sslcommonname old.lab.test
  keep fetchall mda "/bin/sh -c 'cat >> {got}'"
""")
    rc.chmod(0o600)
    r = lab.run("client", ["fetchmail", "-f", str(rc), "--nosyslog", "-v"],
                capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "STLS" in r.stdout + r.stderr, r.stdout + r.stderr
    assert ("body " + marker) in got.read_text(), got.read_text()[-2000:]


def test_password_not_in_logs_or_ledger(lab, gw):
    assert gw.files_holding(lab.env["PASS_alice"].encode()) == []


def test_tls_sessions_logged_with_bytes(lab, gw):
    c = gw.wait_conn(lambda c: c.get("user") == "alice" and c.get("dst", "").endswith(":993"))
    assert int(c["c2s"]) > 0 and int(c["s2c"]) > 0, c


def test_tls_hostile_handshakes(lab, gw):
    """Garbage instead of a ClientHello (on 993 and after STARTTLS), and a
    plaintext client on 993: each is closed promptly with the reason
    logged, while a logged-in TLS session carries on."""
    out = client_py(lab, ctx_code(lab) + f"""
import imaplib, socket, time
O = {lab.env['OLD4']!r}
keep = imaplib.IMAP4_SSL(O, 993, ssl_context=ctx, timeout=10)
keep.login('alice', {lab.env['PASS_alice']!r})
def closed(s):
    t0 = time.monotonic()
    s.settimeout(5)
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - t0 < 5
s = socket.create_connection((O, 993), timeout=5)
s.sendall(b'\\x16\\x03\\x01\\x00\\x05hello' + b'\\xff' * 64)
print('garbage993', closed(s))
s = socket.create_connection((O, 993), timeout=5)
s.sendall(b'a LOGIN alice x\\r\\n')
print('plain993', closed(s))
s = socket.create_connection((O, 143), timeout=5)
s.recv(4096)
s.sendall(b'a STARTTLS\\r\\n')
s.recv(4096)
s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')
print('garbage-starttls', closed(s))
print('bystander', keep.noop()[0])
keep.logout()
""")
    assert out.split() == ["garbage993", "True", "plain993", "True", "garbage-starttls", "True",
                           "bystander", "OK"], out
    gw.wait_log(r"imap tls client=198\.18\.1\.2:\d+: handshake failed")


def test_tls_sessions_end_in_order(lab, gw):
    """LOGOUT over TLS: the pump passes the server's close on as
    close_notify + FIN, so the session ends as eof, not as a reset."""
    client_py(lab, ctx_code(lab) + f"""
import imaplib
m = imaplib.IMAP4_SSL({lab.env['OLD4']!r}, 993, ssl_context=ctx, timeout=10)
m.login('alice', {lab.env['PASS_alice']!r}); m.select('INBOX'); m.logout()
""")
    c = gw.wait_conn(lambda c: c.get("user") == "alice" and c.get("dst", "").endswith(":993")
                     and c.get("end") == "eof")
    assert int(c["s2c"]) > 0
