"""Issue 3, TLS configuration: SNI among several certificates, backend_tls
(STARTTLS and implicit, verified against backend_ca), certificate reload.

Each test runs its own gateway; none may overlap with another module's
(two daemons on one TPROXY port would share its flows)."""
import os
import signal
import subprocess

import pytest

from mfgateway import client_py, running
from test_tls import ctx_code, dlog, pki, tls_conf


def test_sni_picks_matching_certificate(lab, tmp_path):
    """Two certificates: a client asking for new.lab.test gets new's, any
    other name (or none) the first one."""
    conf = tls_conf(lab)
    conf["cert"].append(pki(lab, "new.crt"))
    conf["key"].append(pki(lab, "new.key"))
    with running(lab, str(tmp_path), ports=(993,), tls=conf):
        out = client_py(lab, ctx_code(lab) + f"""
import socket
for name in ('new.lab.test', 'old.lab.test', None):
    c = ssl.create_default_context(cafile={pki(lab, 'ca.crt')!r})
    c.check_hostname = False
    s = c.wrap_socket(socket.create_connection(({lab.env['OLD4']!r}, 993), timeout=10),
                      server_hostname=name)
    cn = dict(x[0] for x in s.getpeercert()['subject'])['commonName']
    print(name, cn)
    s.close()
""")
    assert out.split("\n")[:3] == ["new.lab.test new.lab.test", "old.lab.test old.lab.test",
                                   "None old.lab.test"], out


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_backend_tls(lab, tmp_path, mode):
    """backend_tls: the backend leg is TLS (Dovecot logs the login as
    secured) whatever the client used, verified against backend_ca."""
    conf = tls_conf(lab, backend_tls=mode, backend_ca=pki(lab, "ca.crt"))
    with running(lab, str(tmp_path), ports=(143, 993), imap_ports=(143,), tls=conf):
        start = len(dlog(lab, "OLD"))
        out = client_py(lab, ctx_code(lab) + f"""
import imaplib
m = imaplib.IMAP4({lab.env['OLD4']!r}, 143, timeout=10)
assert m.login('alice', {lab.env['PASS_alice']!r})[0] == 'OK'
assert m.select('INBOX')[0] == 'OK'
m.logout()
m = imaplib.IMAP4_SSL({lab.env['OLD4']!r}, 993, ssl_context=ctx, timeout=10)
assert m.login('alice', {lab.env['PASS_alice']!r})[0] == 'OK'
m.logout()
print('ok')
""")
        assert out.strip() == "ok"
        logins = [l for l in dlog(lab, "OLD")[start:].splitlines() if "Login: user=<alice>" in l]
        assert len(logins) == 2 and all("TLS" in l for l in logins), logins


def test_backend_certificate_is_verified(lab, tmp_path):
    """A backend whose certificate does not chain to backend_ca is refused:
    the client gets NO [UNAVAILABLE] and the log says why."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=other CA", "-keyout", str(tmp_path / "o.key"),
                    "-out", str(tmp_path / "o.crt")], check=True, capture_output=True)
    conf = tls_conf(lab, backend_tls="starttls", backend_ca=str(tmp_path / "o.crt"))
    with running(lab, str(tmp_path / "gw"), ports=(143,), imap_ports=(143,), tls=conf) as g:
        out = client_py(lab, f"""
import imaplib
m = imaplib.IMAP4({lab.env['OLD4']!r}, 143, timeout=10)
try:
    m.login('alice', {lab.env['PASS_alice']!r}); print('in')
except imaplib.IMAP4.error as e:
    print(e)
""")
        assert "[UNAVAILABLE]" in out, out
        g.wait_log(r"certificate verify failed")


def test_reload_swaps_certificates(lab, tmp_path):
    """SIGHUP re-reads the certificates: the default one changes for new
    connections."""
    with running(lab, str(tmp_path), ports=(993,), tls=tls_conf(lab)) as g:
        code = ctx_code(lab) + f"""
import socket
c = ssl.create_default_context(cafile={pki(lab, 'ca.crt')!r})
c.check_hostname = False
s = c.wrap_socket(socket.create_connection(({lab.env['OLD4']!r}, 993), timeout=10))
print(dict(x[0] for x in s.getpeercert()['subject'])['commonName'])
"""
        assert client_py(lab, code).strip() == "old.lab.test"
        text = open(g.conf).read().replace("old.crt", "new.crt").replace("old.key", "new.key")
        open(g.conf, "w").write(text)
        g.send(signal.SIGHUP)
        g.wait_log(r"reloaded config")
        assert client_py(lab, code).strip() == "new.lab.test"
