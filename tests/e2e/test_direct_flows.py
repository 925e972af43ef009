"""Issue 6 (and the retire report of issue 5): flows that reach the old
server directly, never meeting the gateway — a client subnet that is not
intercepted, or the daemon stopped while fail-open — are counted per
client address and port by the nftables rules (sets direct4/direct6 with
a counter per element) and drained into the ledger: by the daemon every
few seconds, and by `mailferry flows list` itself, so the counts of a
stopped daemon are not left behind in the kernel. A flow is counted
once; flows through the gateway are not counted as direct."""
import json
import re
import time

from mfgateway import client_py, running


def flows(g):
    out = g.cli("flows", "list", "--json").stdout
    return {(r["subnet"], r["port"]): r for r in map(json.loads, out.splitlines())}


def connect_code(lab, targets):
    """IMAP logins (port 143) or bare SMTP greetings (25) from the client."""
    pw = lab.env["PASS_alice"]
    return f"""
import imaplib, smtplib
for host, port in {targets!r}:
    if port == 143:
        m = imaplib.IMAP4(host, 143, timeout=10)
        assert m.login('alice', {pw!r})[0] == 'OK'
        m.logout()
    else:
        s = smtplib.SMTP(host, port, timeout=10)
        s.ehlo('client.example')
        s.quit()
"""


# Direct flows come from addresses of their own: the client's main address
# has made many gateway sessions by now, whose 4-tuples the router's
# conntrack still holds (TIME_WAIT), and a SYN that meets one of those may be
# retransmitted into a second conntrack entry, which counts as a new flow.
SRC4, SRC6 = "198.18.1.77", "2001:db8:1::77"

DIRECT = r"""
import socket, sys
for host, port in %r:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(10)
    s.bind((%r if fam == socket.AF_INET6 else %r, 0))
    s.connect((host, port))
    assert s.recv(512)[:1] in (b"*", b"2", b"+"), "no greeting"
    s.close()
"""


def direct_code(targets):
    """One flow (connect, greeting, close) per target, from SRC4/SRC6."""
    return DIRECT % (targets, SRC6, SRC4)


def daemon_rows(g, since):
    return sum(int(n) for n in re.findall(r"direct_flows rows=(\d+)", g.log()[since:]))


def test_direct_flows_counted_per_client_and_port(lab, tmp_path):
    old4, old6 = lab.env["OLD4"], lab.env["OLD6"]
    c4, c6 = SRC4 + "/32", SRC6 + "/128"
    lab.run("client", ["ip", "addr", "add", SRC4 + "/24", "dev", "eth0"], check=True)
    lab.run("client", ["ip", "addr", "add", SRC6 + "/64", "dev", "eth0", "nodad"], check=True)
    try:
        run_direct_flows(lab, tmp_path, c4, c6)
    finally:
        lab.run("client", ["ip", "addr", "del", SRC4 + "/24", "dev", "eth0"], check=False)
        lab.run("client", ["ip", "addr", "del", SRC6 + "/64", "dev", "eth0"], check=False)


def run_direct_flows(lab, tmp_path, c4, c6):
    old4, old6 = lab.env["OLD4"], lab.env["OLD6"]
    with running(lab, str(tmp_path), ports=(143, 25), imap_ports=(143,),
                 intercept={"fail": "open"}) as g:
        # Interception off for the client's subnets: everything goes direct.
        g.cli("subnet", "del", lab.env["CLIENT_NET4"])
        g.cli("subnet", "del", lab.env["CLIENT_NET6"])
        mark = len(g.log())
        client_py(lab, direct_code([(old4, 143)] * 3 + [(old6, 143), (old4, 25), (old4, 25)]))
        assert g.conns() == []  # nothing went through the gateway
        # The daemon drains the kernel's counters by itself (3 rows).
        deadline = time.monotonic() + 20
        while daemon_rows(g, mark) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert daemon_rows(g, mark) >= 3, g.log()[-2000:]
        got = flows(g)
        assert got[(c4, 143)]["direct"] == 3, got
        assert got[(c4, 25)]["direct"] == 2, got
        assert got[(c6, 143)]["direct"] == 1, got
        assert got[(c4, 143)]["observed"] == 0 and got[(c4, 143)]["intercepted"] == 0

        # Interception back on: a login through the gateway is not direct.
        g.cli("subnet", "add", lab.env["CLIENT_NET4"])
        client_py(lab, connect_code(lab, [(old4, 143)]))
        g.wait_conn(lambda c: c.get("user") == "alice")
        time.sleep(6)  # past the daemon's next drain
        got = flows(g)
        assert got[(c4, 143)]["direct"] == 3, got
        assert got[(lab.env["CLIENT_NET4"], 143)]["intercepted"] == 1, got

        # The daemon stopped, fail-open: flows pass to the source directly,
        # and `flows list` drains what the kernel counted meanwhile.
        assert g.stop() == 0
        client_py(lab, direct_code([(old4, 143), (old4, 143)]))
        got = flows(g)
        assert got[(c4, 143)]["direct"] == 5, got
        # Drained once: a second listing adds nothing.
        assert flows(g)[(c4, 143)]["direct"] == 5
        out = g.cli("flows", "list").stdout
        assert re.search(r"^%s\s+143\s+0\s+0\s+5\s" % re.escape(c4), out, re.M), out
        # Back up: the daemon finds nothing new to count.
        g.start()
        time.sleep(6)
        assert flows(g)[(c4, 143)]["direct"] == 5
