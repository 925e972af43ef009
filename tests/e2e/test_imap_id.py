"""Issue 3: forward_client_address — with the gateway's own address as the
upstream source, the backend still learns the client's address through
IMAP ID (Dovecot trusts the router: login_trusted_networks in the lab)."""
import time

import pytest

from mfgateway import client_py, running


def dlog(lab):
    with open(lab.env["DOVECOT_LOG_OLD"], errors="replace") as f:
        return f.read()


def login_line(lab, start, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [l for l in dlog(lab)[start:].splitlines() if "Login: user=<alice>" in l]
        if lines:
            return lines[-1]
        time.sleep(0.1)
    raise AssertionError("no login line")


@pytest.mark.parametrize("forward", ["yes", "no"])
def test_client_address_reaches_backend(lab, tmp_path, forward):
    with running(lab, str(tmp_path), ports=(143,), imap_ports=(143,),
                 gateway={"upstream_source": "gateway", "forward_client_address": forward}):
        start = len(dlog(lab))
        client_py(lab, f"""
import imaplib
m = imaplib.IMAP4({lab.env['OLD4']!r}, 143, timeout=10)
assert m.login('alice', {lab.env['PASS_alice']!r})[0] == 'OK'
assert m.select('INBOX')[0] == 'OK'
m.logout()
""")
        line = login_line(lab, start)
    if forward == "yes":
        assert "rip=198.18.1.2," in line, line
    else:
        assert "rip=198.18.11.1," in line, line
