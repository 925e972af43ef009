"""Issue 3, SMTP over TLS: STARTTLS on port 25 (the injection of pipelined
plaintext dropped), submission on 587 with STARTTLS and on 465 with implicit
TLS, and the backend leg with STARTTLS (the lab's Postfix demands it before
AUTH on 587, as real ones do), byte-exact delivery checked in the Maildirs."""
import pytest

from mfgateway import running
from test_smtp_front import DOMAIN, assert_exact, message, stored, token, wait_stored
from test_tls import pki, tls_conf

CTX = """
import smtplib, ssl
ctx = ssl.create_default_context(cafile=P["ca"])
"""

SEND_TLS = CTX + r"""
mode, port = P["mode"], P["port"]
if mode == "implicit":
    s = smtplib.SMTP_SSL(P["host"], port, local_hostname="mta.example.net", timeout=30, context=ctx)
else:
    s = smtplib.SMTP(P["host"], port, local_hostname="mta.example.net", timeout=30)
    code, caps = s.ehlo()
    assert "starttls" in s.esmtp_features, caps
    s.starttls(context=ctx)
code, caps = s.ehlo()
assert "starttls" not in s.esmtp_features, caps
if P.get("user"):
    s.login(P["user"], P["password"])
refused = s.sendmail("sender@example.net", P["rcpts"], P["text"].encode())
s.quit()
RESULT = [caps.decode(), {k: [v[0], v[1].decode()] for k, v in refused.items()}]
"""


@pytest.fixture(scope="module")
def gw(lab, tmp_path_factory):
    conf = tls_conf(lab, backend_tls="starttls", backend_ca=pki(lab, "ca.crt"))
    with running(lab, str(tmp_path_factory.mktemp("smtptlsgw")), ports=(25, 587, 465),
                 smtp_ports=(25,), submission_ports=(587,), tls=conf,
                 ledger={"default_domain": DOMAIN}) as g:
        g.cli("accounts", "set-state", "bob@" + DOMAIN, "MIGRATED")
        yield g


def send_tls(lab, mode, port, rcpts, msg, **kw):
    return lab.py_json("client", SEND_TLS, host=lab.OLD4, ca=pki(lab, "ca.crt"), mode=mode,
                       port=port, rcpts=rcpts, text=msg.decode(), **kw)


def test_port25_starttls_routes_and_delivers_exact(lab, gw):
    t1, t2 = token(), token()
    m1, m2 = message(t1), message(t2, body=b".leading dot\r\n..two\r\nend\r\n")
    caps, refused = send_tls(lab, "starttls", 25, ["bob@" + DOMAIN], m1)
    assert refused == {}
    got = wait_stored(lab, "new", "bob", t1)
    assert len(got) == 1
    assert_exact(got[0], m1)
    assert stored(lab, "old", "bob", t1) == []
    assert send_tls(lab, "starttls", 25, ["alice@" + DOMAIN], m2)[1] == {}
    got = wait_stored(lab, "old", "alice", t2)
    assert len(got) == 1
    assert_exact(got[0], m2)


def test_port25_starttls_injection_dropped(lab, gw):
    """MAIL pipelined after STARTTLS in plaintext must not count: after the
    handshake, a RCPT without MAIL is refused (503), and EHLO is needed
    again."""
    out = lab.py_json("client", CTX + r"""
import socket
s = socket.create_connection((P["host"], 25), timeout=10)
f = s.makefile("rb")
def reply(f):
    lines = []
    while True:
        l = f.readline()
        lines.append(l.decode().strip())
        if l[3:4] != b"-":
            return lines
reply(f)
s.sendall(b"EHLO mta.example.net\r\n")
reply(f)
s.sendall(b"STARTTLS\r\nMAIL FROM:<evil@example.net>\r\n")
first = reply(f)
t = ctx.wrap_socket(s, server_hostname=P["host"])
tf = t.makefile("rb")
t.sendall(b"RCPT TO:<alice@lab.test>\r\n")
rcpt = reply(tf)
t.sendall(b"EHLO mta.example.net\r\n")
ehlo = reply(tf)
t.sendall(b"QUIT\r\n")
RESULT = [first, rcpt, ehlo]
""", host=lab.OLD4, ca=pki(lab, "ca.crt"))
    first, rcpt, ehlo = out
    assert first == ["220 2.0.0 Ready to start TLS"], out
    assert rcpt[0].startswith("503"), out
    assert ehlo[0].startswith("250-") and not any("STARTTLS" in l for l in ehlo), out


@pytest.mark.parametrize("mode,port", [("starttls", 587), ("implicit", 465)])
def test_submission_over_tls_with_backend_starttls(lab, gw, mode, port):
    """AUTH over TLS at the front, STARTTLS then AUTH at the back (the lab's
    Postfix allows AUTH only after STARTTLS): the message arrives once,
    exact, and the account is routed by its state."""
    t = token()
    m = message(t)
    caps, refused = send_tls(lab, mode, port, ["alice@" + DOMAIN], m, user="bob",
                             password=lab.env["PASS_bob"])
    assert refused == {}
    assert "AUTH PLAIN LOGIN" in caps
    # bob is MIGRATED: he submitted through new's Postfix, which delivers
    # to alice on new (new is authoritative for lab.test there)
    got = wait_stored(lab, "new", "alice", t)
    assert len(got) == 1
    assert_exact(got[0], m)
    gw.wait_conn(lambda c: c.get("user") == "bob@" + DOMAIN and c.get("dst", "").endswith(":%d" % port))


def test_no_password_in_gateway_files(lab, gw):
    assert gw.files_holding(lab.env["PASS_bob"].encode()) == []
