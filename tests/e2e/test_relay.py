"""Issue 2: transparent interception and the splice relay, on the lab.

Real Dovecot on `old`, real clients (curl, imaplib) on `client`, mailferryd
and its nftables rules on `router`."""
import json
import os
import socket
import subprocess
import time

import pytest

from mfgateway import TOOLS, DataServers, Gateway, host_of

ECHO, BULK, CLOSED = 9000, 9001, 9003
UNREACHABLE4 = "198.18.11.9"  # in the sources set, but no host has it
GIB = 1 << 30


@pytest.fixture(scope="module")
def gw(lab, tmp_path_factory):
    g = Gateway(lab, str(tmp_path_factory.mktemp("gw")),
                ports=(143, 110, 25, 587, 993, 995, ECHO, BULK, CLOSED),
                extra_sources=(UNREACHABLE4,))
    servers = DataServers(lab)
    try:
        servers.start("echo", lab.env["OLD4"], ECHO)
        servers.start("echo", lab.env["OLD6"], ECHO)
        servers.start("bulk", lab.env["OLD4"], BULK, GIB)
        g.install_rules()
        g.start()
        yield g
        assert g.stop() == 0
    finally:
        try:
            g.teardown()
        finally:
            servers.close()


def client_py(lab, code, *args, timeout=60):
    r = lab.run("client", ["/usr/bin/python3", "-c", code, *map(str, args)],
                capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r.stdout


def imap_login(lab, host, user="alice"):
    code = f"""
import imaplib
m = imaplib.IMAP4({host!r}, 143, timeout=10)
typ, _ = m.login({user!r}, {lab.env['PASS_' + user]!r})
assert typ == 'OK', typ
typ, data = m.select('INBOX')
assert typ == 'OK', typ
m.logout()
print('ok')
"""
    return client_py(lab, code).strip()


def curl_imap(lab, host, user="alice"):
    url = "imap://%s/" % (host if ":" not in host else "[%s]" % host)
    r = lab.run("client", ["curl", "-sS", "--max-time", "10", url, "--user",
                           "%s:%s" % (user, lab.env["PASS_" + user])],
                capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert "INBOX" in r.stdout, r.stdout
    return r.stdout


def dovecot_log(lab):
    with open(lab.env["DOVECOT_LOG_OLD"], errors="replace") as f:
        return f.read()


def conns_to(gw, host, port):
    return [c for c in gw.conns() if c["dst"] in ("%s:%d" % (host, port), "[%s]:%d" % (host, port))]


def test_imap_login_is_intercepted_and_keeps_client_address(lab, gw):
    before_log = len(dovecot_log(lab))
    before = len(conns_to(gw, lab.env["OLD4"], 143))
    curl_imap(lab, lab.env["OLD4"])
    assert imap_login(lab, lab.env["OLD4"]) == "ok"
    gw.wait_conn(lambda c: len(conns_to(gw, lab.env["OLD4"], 143)) >= before + 2)
    for c in conns_to(gw, lab.env["OLD4"], 143)[before:]:
        assert host_of(c["client"]) == lab.env["CLIENT4"]
        assert c["up"] == c["client"], "upstream leg must use the client's address and port"
        assert c["end"] == "eof"
        assert int(c["c2s"]) > 0 and int(c["s2c"]) > 0
    new = dovecot_log(lab)[before_log:]
    assert "Login: user=<alice>" in new
    assert "rip=%s" % lab.env["CLIENT4"] in new
    assert "rip=198.18.1.1," not in new and "rip=198.18.11.1," not in new


def test_imap_over_ipv6_is_intercepted(lab, gw):
    before_log = len(dovecot_log(lab))
    before = len(conns_to(gw, lab.env["OLD6"], 143))
    assert imap_login(lab, lab.env["OLD6"], "bob") == "ok"
    curl_imap(lab, lab.env["OLD6"], "bob")
    c = gw.wait_conn(lambda c: len(conns_to(gw, lab.env["OLD6"], 143)) >= before + 2)
    for c in conns_to(gw, lab.env["OLD6"], 143)[before:]:
        assert host_of(c["client"]) == lab.env["CLIENT6"]
        assert host_of(c["up"]) == lab.env["CLIENT6"]
    assert "rip=%s" % lab.env["CLIENT6"] in dovecot_log(lab)[before_log:]


def test_subnet_disabled_goes_direct(lab, gw):
    gw.cli("subnet", "del", lab.env["CLIENT_NET4"])
    try:
        listed = gw.cli("subnet", "list").stdout
        assert lab.env["CLIENT_NET4"] not in listed
        before = len(gw.conns())
        before_log = len(dovecot_log(lab))
        curl_imap(lab, lab.env["OLD4"])
        assert imap_login(lab, lab.env["OLD4"]) == "ok"
        time.sleep(0.5)
        assert len(gw.conns()) == before, "the gateway saw a flow of a disabled subnet"
        assert "rip=%s" % lab.env["CLIENT4"] in dovecot_log(lab)[before_log:]
    finally:
        gw.cli("subnet", "add", lab.env["CLIENT_NET4"])
    assert lab.env["CLIENT_NET4"] in gw.cli("subnet", "list").stdout


INTERACTIVE = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
for line in sys.stdin:
    msg = line.strip().encode()
    if msg == b"quit":
        break
    s.sendall(msg + b"\n")
    back = b""
    while not back.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            print("closed", flush=True)
            sys.exit(1)
        back += chunk
    print(back.decode().strip(), flush=True)
s.close()
"""


class Interactive:
    """A client-side echo session driven line by line from the test."""

    def __init__(self, lab, host, port):
        self.p = lab.popen("client", ["/usr/bin/python3", "-c", INTERACTIVE, host, str(port)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def roundtrip(self, msg):
        self.p.stdin.write(msg + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
        except BrokenPipeError:
            pass
        self.p.wait(10)


def test_toggle_subnet_mid_session_keeps_established(lab, gw):
    sess = Interactive(lab, lab.env["OLD4"], ECHO)
    try:
        assert sess.roundtrip("before") == "before"
        gw.cli("subnet", "del", lab.env["CLIENT_NET4"])
        try:
            assert sess.roundtrip("while-disabled") == "while-disabled"
            before = len(gw.conns())
            # A new flow from the disabled subnet goes straight to the source.
            other = Interactive(lab, lab.env["OLD4"], ECHO)
            assert other.roundtrip("direct") == "direct"
            other.close()
            time.sleep(0.3)
            assert len(gw.conns()) == before
        finally:
            gw.cli("subnet", "add", lab.env["CLIENT_NET4"])
        assert sess.roundtrip("after") == "after"
    finally:
        sess.close()
    c = gw.wait_conn(lambda c: c["dst"] == "%s:%d" % (lab.env["OLD4"], ECHO)
                     and int(c["c2s"]) == len("before\nwhile-disabled\nafter\n"))
    assert c["end"] == "eof"


def test_subnet_enabled_mid_session_keeps_direct_flows(lab, gw):
    """The other way round: a flow that reached the source directly while
    its subnet was off keeps going there when the subnet is switched on
    (only new flows are diverted), and is not reset by the listener."""
    gw.cli("subnet", "del", lab.env["CLIENT_NET4"])
    try:
        before = len(gw.conns())
        direct = Interactive(lab, lab.env["OLD4"], ECHO)
        assert direct.roundtrip("direct-1") == "direct-1"
    finally:
        gw.cli("subnet", "add", lab.env["CLIENT_NET4"])
    try:
        assert direct.roundtrip("direct-2") == "direct-2"
        new = Interactive(lab, lab.env["OLD4"], ECHO)
        assert new.roundtrip("intercepted") == "intercepted"
        new.close()
        assert direct.roundtrip("direct-3") == "direct-3"
    finally:
        direct.close()
    assert direct.p.returncode == 0
    gw.wait_conn(lambda c: int(c["c2s"]) == len("intercepted\n"))
    time.sleep(0.3)
    assert len(gw.conns()) == before + 1


def test_one_gib_each_way_byte_exact_with_half_close(lab, gw):
    r = lab.run("client", ["/usr/bin/python3", os.path.join(TOOLS, "bulkcli.py"),
                           lab.env["OLD4"], str(BULK), str(GIB)],
                capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["received_len"] == GIB
    assert res["received_sha"] == res["expected_received_sha"], "server → client stream altered"
    assert res["server_saw_sha"] == res["sent_sha"], "client → server stream altered"
    c = gw.wait_conn(lambda c: c["dst"] == "%s:%d" % (lab.env["OLD4"], BULK))
    assert int(c["c2s"]) == GIB
    assert int(c["s2c"]) == GIB + 64
    assert c["end"] == "eof"


CLOSE_TIMER = r"""
import socket, sys, time
t0 = time.monotonic()
try:
    # The reset may beat the end of connect() itself.
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
    s.settimeout(30)
    data = s.recv(10)
    outcome = "eof" if data == b"" else "data"
except ConnectionResetError:
    outcome = "reset"
except socket.timeout:
    outcome = "timeout"
print(outcome, round(time.monotonic() - t0, 2))
"""


@pytest.mark.parametrize("host,port", [(UNREACHABLE4, ECHO), (None, CLOSED)],
                         ids=["no-such-host", "port-closed"])
def test_unreachable_upstream_closes_client_promptly(lab, gw, host, port):
    host = host or lab.env["OLD4"]
    bystander = Interactive(lab, lab.env["OLD4"], ECHO)
    try:
        assert bystander.roundtrip("one") == "one"
        out = client_py(lab, CLOSE_TIMER, host, port, timeout=40).split()
        assert out[0] in ("reset", "eof"), out
        assert float(out[1]) < 5.0, out
        assert bystander.roundtrip("two") == "two"
    finally:
        bystander.close()
    c = gw.wait_conn(lambda c: c["dst"] == "%s:%d" % (host, port))
    assert c["end"] in ("connect-failed", "connect-timeout"), c


def test_2000_concurrent_sessions_byte_exact(lab, gw):
    r = lab.run("client", ["/usr/bin/python3", os.path.join(TOOLS, "manycli.py"),
                           lab.env["OLD4"], str(ECHO), "2000", "8192"],
                capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res == {"exact": 2000, "mismatch": 0, "connect_errors": [], "io_errors": []}
    gw.wait_conn(lambda c: sum(1 for x in gw.conns()
                               if x["dst"] == "%s:%d" % (lab.env["OLD4"], ECHO)
                               and x["c2s"] == "8192" and x["s2c"] == "8192") >= 2000, timeout=30)
