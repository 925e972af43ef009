"""Issue 6: observe mode — the SYN gate counts new flows per client subnet
and port and lets them through to the source untouched; switching observe
off by reload intercepts new flows while the observed ones keep going to
the source."""
import json
import re
import signal
import time

from mfgateway import client_py, running

HOLD = r"""
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], 143, timeout=30)
m.login('alice', sys.argv[2])
print('in', flush=True)
sys.stdin.readline()
print(m.noop()[0], flush=True)
m.logout()
"""


def flows(g):
    out = g.cli("flows", "list", "--json").stdout
    return {(r["subnet"], r["port"]): r for r in map(json.loads, out.splitlines())}


def wait_flows(g, key, field, n, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = flows(g).get(key)
        if row and row[field] >= n:
            return row
        time.sleep(0.2)
    raise AssertionError("flows: %s" % flows(g))


def test_observe_counts_and_passes_then_switch_on(lab, tmp_path):
    pw = lab.env["PASS_alice"]
    with running(lab, str(tmp_path), ports=(143,), imap_ports=(143,),
                 intercept={"fail": "open", "observe": "yes"}) as g:
        login = f"""
import imaplib
for host in ({lab.env['OLD4']!r}, {lab.env['OLD4']!r}, {lab.env['OLD4']!r}, {lab.env['OLD6']!r}):
    m = imaplib.IMAP4(host, 143, timeout=10)
    assert m.login('alice', {pw!r})[0] == 'OK'
    m.logout()
"""
        client_py(lab, login)
        held = lab.popen("client", ["/usr/bin/python3", "-c", HOLD, lab.env["OLD4"], pw],
                         stdin=-1, stdout=-1, text=True)
        try:
            assert held.stdout.readline().strip() == "in"
            v4 = (lab.env["CLIENT_NET4"], 143)
            v6 = (lab.env["CLIENT_NET6"], 143)
            row = wait_flows(g, v4, "observed", 4)
            assert row["observed"] == 4 and row["intercepted"] == 0, row
            assert wait_flows(g, v6, "observed", 1)["observed"] == 1
            assert g.conns() == []  # nothing went through the gateway
            # observe off: new flows are intercepted, the held one is not
            with open(g.conf) as f:
                text = f.read()
            with open(g.conf, "w") as f:
                f.write(re.sub(r"observe = yes", "observe = no", text))
            g.send(signal.SIGHUP)
            g.wait_log(r"reloaded config")
            time.sleep(1.2)  # the gate reads its tunables at its next tick
            client_py(lab, f"""
import imaplib
m = imaplib.IMAP4({lab.env['OLD4']!r}, 143, timeout=10)
assert m.login('alice', {pw!r})[0] == 'OK'
m.logout()
""")
            g.wait_conn(lambda c: c.get("user") == "alice")
            row = wait_flows(g, v4, "intercepted", 1)
            assert row["observed"] == 4 and row["intercepted"] == 1, row
            held.stdin.write("\n")
            held.stdin.flush()
            assert held.stdout.readline().strip() == "OK"
            assert held.wait(10) == 0
            assert len(g.conns()) == 1
        finally:
            if held.poll() is None:
                held.kill()
                held.wait()
