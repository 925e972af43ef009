"""Flows that are not intercepted must not suffer from the gateway's past
sessions. The gateway speaks with the client's own address and port, so
TIME_WAIT sockets of those 4-tuples stay on the router for a minute; with
the kernel's early demux on, a client reusing such a port for a flow the
router merely forwards (its subnet off, observe mode, the daemon stopped
fail-open) had its packets swallowed by them until its connect timed out.
mailferryd turns early demux off in its network namespace."""
import json
import time

from mfgateway import client_py, running

DIRECT = r"""
import json, socket, sys, time
host, n = sys.argv[1], int(sys.argv[2])
timeouts, slow = [], 0
for i in range(n):
    s = socket.socket()
    s.settimeout(5)
    t0 = time.monotonic()
    try:
        s.connect((host, 143))
        slow += time.monotonic() - t0 > 0.5
    except OSError as e:
        timeouts.append(type(e).__name__)
    s.close()
print(json.dumps({"timeouts": timeouts, "slow": slow}))
"""


def test_direct_connects_after_many_gateway_sessions(lab, tmp_path):
    pw = lab.env["PASS_alice"]
    with running(lab, str(tmp_path), ports=(143,), imap_ports=(143,)) as g:
        client_py(lab, f"""
import imaplib
for i in range(300):
    m = imaplib.IMAP4({lab.env['OLD4']!r}, 143, timeout=10)
    m.login('alice', {pw!r}); m.logout()
""", timeout=300)
        # The last session's conn line is written once its relay has
        # wound down, a moment after the client's logout returned.
        deadline = time.monotonic() + 10
        while len(g.conns()) < 300 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(g.conns()) >= 300
    # the daemon stopped and its rules removed: the router only forwards
    res = json.loads(client_py(lab, DIRECT, lab.env["OLD4"], 3000, timeout=300))
    # A reused port can still meet the server's own TIME_WAIT of the
    # gateway's leg (one SYN retransmission, as with any quick reuse of a
    # 4-tuple); never a connect that fails.
    assert res["timeouts"] == [], res
    assert res["slow"] < 3000 // 20, res
