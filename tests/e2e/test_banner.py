"""Issue 3: greetings mirrored from the source, adjusted honestly.

The gateway probes each source at start (and reload) and greets like it:
the real Dovecot's text for the lab's old server, and for a scripted source
that refuses plaintext logins (LOGINDISABLED, no USER before STLS) the same
refusal — while advertising only what the front end handles itself."""
import subprocess

import pytest

from mfgateway import client_py, running
from test_tls import tls_conf

FAKE4 = "198.18.11.9"

FAKE_SERVER = r"""
import socketserver, sys, threading

class Imap(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 LOGINDISABLED STARTTLS "
                         b"AUTH=GSSAPI] Fake IMAP ready.\r\n")
        for line in self.rfile:
            tag, _, cmd = line.decode().strip().partition(" ")
            if cmd.upper() == "CAPABILITY":
                self.wfile.write(b"* CAPABILITY IMAP4rev1 IMAP4rev2 LOGINDISABLED\r\n")
                self.wfile.write(tag.encode() + b" OK done\r\n")
            else:
                self.wfile.write(b"* BYE bye\r\n" + tag.encode() + b" OK done\r\n")
                return

class Pop3(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"+OK Fake POP3 <1234.5678@fake.lab.test> ready.\r\n")
        for line in self.rfile:
            if line.strip().upper() == b"CAPA":
                self.wfile.write(b"+OK\r\nSTLS\r\nTOP\r\nUIDL\r\n.\r\n")
            else:
                self.wfile.write(b"+OK bye\r\n")
                return

class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

for port, h in ((143, Imap), (110, Pop3)):
    srv = Server((sys.argv[1], port), h)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
print("up", flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def fake_source(lab):
    lab.run("old", ["ip", "addr", "add", FAKE4 + "/24", "dev", "eth0", "nodad"], check=True)
    proc = lab.popen("old", ["/usr/bin/python3", "-c", FAKE_SERVER, FAKE4],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "up"
        yield FAKE4
    finally:
        proc.kill()
        proc.wait()
        lab.run("old", ["ip", "addr", "del", FAKE4 + "/24", "dev", "eth0"])


@pytest.fixture(scope="module")
def gw(lab, fake_source, tmp_path_factory):
    with running(lab, str(tmp_path_factory.mktemp("bannergw")), ports=(143, 110),
                 imap_ports=(143,), pop3_ports=(110,), extra_sources=(fake_source,),
                 tls=tls_conf(lab)) as g:
        yield g


def test_dovecot_greeting_mirrored(lab, gw):
    out = client_py(lab, f"""
import imaplib, poplib
m = imaplib.IMAP4({lab.env['OLD4']!r}, 143, timeout=10)
print(m.welcome.decode())
m.logout()
p = poplib.POP3({lab.env['OLD4']!r}, 110, timeout=10)
print(p.getwelcome().decode())
p.quit()
""").splitlines()
    assert out[0].startswith("* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID STARTTLS "
                             "AUTH=PLAIN AUTH=LOGIN] Dovecot ready (old.lab.test)."), out
    assert out[1] == "+OK Dovecot ready (old.lab.test).", out


def test_imap_logindisabled_mirrored(lab, gw, fake_source):
    out = client_py(lab, f"""
import imaplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m = imaplib.IMAP4({fake_source!r}, 143, timeout=10)
print(m.welcome.decode())
try:
    m.login('alice', 'x'); print('login accepted')
except imaplib.IMAP4.error as e:
    print('refused', e)
m.starttls(ssl_context=ctx)
print(' '.join(m.capabilities))
""").splitlines()
    assert out[0] == ("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID STARTTLS "
                      "LOGINDISABLED] Fake IMAP ready."), out
    assert out[1].startswith("refused") and "PRIVACYREQUIRED" in out[1], out
    assert "AUTH=PLAIN" in out[2] and "LOGINDISABLED" not in out[2], out


def test_pop3_plaintext_refused_like_source(lab, gw, fake_source):
    out = client_py(lab, f"""
import poplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
p = poplib.POP3({fake_source!r}, 110, timeout=10)
print(p.getwelcome().decode())
print(sorted(p.capa()))
try:
    p.user('alice'); print('user accepted')
except poplib.error_proto as e:
    print('refused', e)
p.stls(context=ctx)
print(sorted(p.capa()))
""").splitlines()
    assert out[0] == "+OK Fake POP3 ready.", out
    assert "USER" not in out[1] and "STLS" in out[1], out
    assert out[2].startswith("refused") and "[AUTH]" in out[2], out
    assert "USER" in out[3] and "STLS" not in out[3], out


def test_probe_reported(gw):
    m = gw.wait_log(r"banners probed=(\d+) answered=(\d+)")
    # old (v4, v6) and the fake source, each on 143 and 110
    assert m.group(1) == "6" and m.group(2) == "6", m.group(0)
