"""Issue 6: a per-client-address concurrency limit. With
max_sessions_per_client = 3, a fourth concurrent flow from one address is
held at the SYN gate (dropped, so the client retransmits) until one of its
sessions ends; another address is not affected."""
import re
import time

from mfgateway import DataServers, client_py, running
from test_fail_modes import client_address
from test_relay import ECHO, Interactive

CONNECT = r"""
import socket, sys, time
src = sys.argv[3] if len(sys.argv) > 3 else None
t0 = time.monotonic()
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[4]) if len(sys.argv) > 4 else 2.5,
                                 source_address=(src, 0) if src else None)
    s.sendall(b"x\n")
    print("ok" if s.recv(10) == b"x\n" else "bad", round(time.monotonic() - t0, 2))
except OSError as e:
    print("failed", type(e).__name__)
"""


def connect(lab, src="", timeout=2.5):
    args = [lab.env["OLD4"], ECHO, src or "", timeout]
    return client_py(lab, CONNECT, *args).split()


def test_fourth_session_held_until_one_ends(lab, tmp_path):
    servers = DataServers(lab)
    servers.start("echo", lab.env["OLD4"], ECHO)
    held = []
    try:
        with running(lab, str(tmp_path), ports=(ECHO,),
                     gateway={"max_sessions_per_client": "3"}, intercept={"fail": "open"}) as g:
            for i in range(3):
                held.append(Interactive(lab, lab.env["OLD4"], ECHO))
                assert held[-1].roundtrip("s%d" % i) == "s%d" % i
            assert connect(lab)[0] == "failed"
            with client_address(lab, "198.18.1.3") as other:
                assert connect(lab, other)[0] == "ok"
            # one session ends: a waiting client gets through on a retransmit
            held.pop().close()
            out = connect(lab, timeout=8)
            assert out[0] == "ok", out
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                m = re.findall(r"syn_gate .*dropped_sessions=(\d+)", g.log())
                if m and int(m[-1]) >= 1:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("no dropped_sessions count in the log")
            for h in held:
                assert h.roundtrip("still") == "still"
    finally:
        for h in held:
            h.close()
        servers.close()
