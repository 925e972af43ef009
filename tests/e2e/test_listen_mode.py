"""Issue 5: `intercept = listen`, the IP-takeover deployment. The gateway box
owns the address clients use for the old server and listens on it like any
server (no TPROXY, no rules); the old server answers at another address that
`[intercept] moved_sources = OLD=NEW` names. Same front ends, routing and
copying as the router mode.

The lab keeps Dovecot and Postfix where they are: the address clients use
is a fresh one (198.18.11.30, 2001:db8:11::30) put on the router for this
module, and moved_sources says the old server now answers at OLD4/OLD6 —
the same situation as an old server renumbered after the takeover.
"""
import os
import subprocess
import time

import pytest

from mfgateway import Gateway, client_py
from test_migrate_trigger import dump, wipe, append, corpus, migrate_user  # noqa: F401
from test_smtp_front import assert_exact, message, stored, token, wait_stored, SEND

SVC4, SVC6 = "198.18.11.30", "2001:db8:11::30"
DOMAIN = "lab.test"


@pytest.fixture(scope="module")
def takeover(lab):
    """The service addresses on the router's server-side interface."""
    dev = lab.env["ROUTER_SERVER_IF"]
    lab.run("router", ["ip", "addr", "add", SVC4 + "/32", "dev", dev])
    lab.run("router", ["ip", "addr", "add", SVC6 + "/128", "dev", dev, "nodad"])
    try:
        yield lab
    finally:
        lab.run("router", ["ip", "addr", "del", SVC4 + "/32", "dev", dev], check=False)
        lab.run("router", ["ip", "addr", "del", SVC6 + "/128", "dev", dev], check=False)


def listen_gateway(lab, workdir, **kw):
    return Gateway(lab, workdir, ports=(143, 110, 25), imap_ports=(143,), pop3_ports=(110,),
                   smtp_ports=(25,), sources=[],
                   gateway={"intercept": "listen"},
                   intercept={"moved_sources": f"{SVC4}={lab.env['OLD4']}, "
                                                f"{SVC6}={lab.env['OLD6']}"},
                   ledger={"default_domain": DOMAIN}, **kw)


LOGIN = r"""
import imaplib, poplib, sys
host, proto, user, pw = sys.argv[1:5]
if proto == 'imap':
    m = imaplib.IMAP4(host, 143, timeout=15)
    typ, data = m.login(user, pw)
    typ, data = m.select('INBOX')
    print(typ, int(data[0]))
    m.logout()
else:
    p = poplib.POP3(host, 110, timeout=15)
    p.user(user)
    print(p.pass_(pw).decode().split()[0], p.stat()[0])
    p.quit()
"""


def test_listen_mode_routes_like_the_router(takeover, tmp_path):
    lab = takeover
    pw = lab.env["PASS_alice"]
    g = listen_gateway(lab, str(tmp_path / "gw"))
    try:
        # No rules in this mode: the CLI says so rather than install any.
        r = g.cli("rules", "install", check=False)
        assert r.returncode != 0 and "intercept = listen" in r.stderr, r
        g.start()
        assert "syn_gate" not in g.log()
        # IMAP and POP3 from the client to the service address, v4 and v6: the
        # source answers (at its real address), through the gateway.
        mark = lab.log_mark("DOVECOT_LOG_OLD")
        assert client_py(lab, LOGIN, SVC4, "imap", "alice", pw).split()[0] == "OK"
        assert client_py(lab, LOGIN, SVC6, "imap", "alice", pw).split()[0] == "OK"
        assert client_py(lab, LOGIN, SVC4, "pop3", "alice", pw).split()[0] == "+OK"
        lab.wait_log("DOVECOT_LOG_OLD", r"imap-login: Info: Login: user=<alice", mark)
        conns = [c for c in g.conns() if c.get("user", "").startswith("alice")]
        assert len(conns) == 3 and all(c["route"] == "source" for c in conns), conns
        # The old server sees one of the gateway's own addresses, not the
        # client's (upstream_source defaults to gateway in this mode).
        ours = (lab.env["ROUTER_SERVER4"] + ":", "[%s]:" % lab.env["ROUTER_SERVER6"],
                SVC4 + ":", "[%s]:" % SVC6)
        assert all(c["up"].startswith(ours) for c in conns), conns

        # A MIGRATED account lands on new.
        g.cli("accounts", "set-state", "alice@" + DOMAIN, "MIGRATED")
        mark = lab.log_mark("DOVECOT_LOG_NEW")
        assert client_py(lab, LOGIN, SVC4, "imap", "alice", pw).split()[0] == "OK"
        lab.wait_log("DOVECOT_LOG_NEW", r"imap-login: Info: Login: user=<alice", mark)
        assert g.conns()[-1]["route"] == "destination"

        # SMTP: mail for the MIGRATED account goes to new, for another to
        # old, byte for byte.
        t1, t2 = token(), token()
        m1, m2 = message(t1), message(t2)
        for rcpt, msg in (("alice@" + DOMAIN, m1), ("bob@" + DOMAIN, m2)):
            caps, refused = lab.py_json("client", SEND, host=SVC4, rcpts=[rcpt],
                                        text=msg.decode())
            assert refused == {}, refused
        got = wait_stored(lab, "new", "alice", t1)
        assert len(got) == 1 and stored(lab, "old", "alice", t1) == []
        assert_exact(got[0], m1)
        got = wait_stored(lab, "old", "bob", t2)
        assert len(got) == 1 and stored(lab, "new", "bob", t2) == []
        assert_exact(got[0], m2)

        # Daemon stopped: nothing listens on the service address; the
        # client is refused and nothing reaches the old server.
        assert g.stop() == 0
        out = client_py(lab, r"""
import socket, sys
s = socket.socket()
s.settimeout(5)
try:
    s.connect((sys.argv[1], 143))
    print('connected')
except OSError as e:
    print('refused', type(e).__name__)
""", SVC4)
        assert out.startswith("refused ConnectionRefusedError"), out
    finally:
        g.teardown()


def test_listen_mode_copies_on_login(takeover, tmp_path):
    """The in-daemon copy works from the source's real address."""
    lab = takeover
    user = migrate_user(lab)
    pw = lab.env[f"PASS_{user}"]
    wipe(lab, user)
    msgs = [m for m in corpus()[2] if m[0] == "INBOX"][:3]
    append(lab, lab.OLD4, user, msgs)
    g = listen_gateway(lab, str(tmp_path / "gw"),
                       migrate={"enabled": "yes", "state_dir": str(tmp_path / "gw" / "migrate")})
    try:
        g.start()
        assert client_py(lab, LOGIN, SVC4, "imap", user, pw).split() == ["OK", "3"]
        deadline = time.monotonic() + 60
        while g.account(user)["state"] != "MIGRATED" and time.monotonic() < deadline:
            assert g.account(user)["state"] != "FAILED", g.account(user)
            time.sleep(0.2)
        assert g.account(user)["state"] == "MIGRATED"
        assert dump(lab, lab.NEW4, user) == dump(lab, lab.OLD4, user)
        assert client_py(lab, LOGIN, SVC4, "imap", user, pw).split() == ["OK", "3"]
        assert g.conns()[-1]["route"] == "destination"
        assert g.stop() == 0
    finally:
        g.teardown()
    wipe(lab, user)
