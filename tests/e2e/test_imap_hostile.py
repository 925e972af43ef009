"""Issue 3, tests 5 and 6 for the IMAP front end: hostile input and secrets.

NUL bytes, bad SASL, a 100 KB SASL line, STARTTLS injection, 500 slow
pre-auth connections from one address (bounded RSS, other clients served,
all closed by the pre-auth timeout), and the test passwords nowhere in the
gateway's log, ledger or work dir. Real Dovecot on `old`; raw sockets on
`client`; mailferryd with imap_ports = 143 on `router`."""
import base64
import json
import os
import select
import subprocess
import time

import pytest

from mfgateway import client_py, running

PREAUTH_MS = 8000
WRONG_PW = "hostile-wrong-pw-4711"


@pytest.fixture(scope="module")
def gw(lab, tmp_path_factory):
    with running(lab, str(tmp_path_factory.mktemp("imaphostile")), ports=(143,),
                imap_ports=(143,), gateway={"preauth_timeout": str(PREAUTH_MS), "preauth_per_client": "0"}) as g:
        yield g



def dlog(lab, which):
    with open(lab.env["DOVECOT_LOG_" + which], errors="replace") as f:
        return f.read()


# A raw client: line() prints and returns one line, until(tag) reads up to
# the tagged reply, rest() everything until the server closes.
RAW = r"""
import socket, sys
s = socket.create_connection((HOST, 143), timeout=10)
f = s.makefile('rb')
def line():
    l = f.readline()
    sys.stdout.write(repr(l) + '\n')
    return l
def until(tag):
    for _ in range(100):
        l = line()
        if not l or l.startswith(tag.encode() + b' '):
            return l
    raise SystemExit('no reply for ' + tag)
g = line(); assert g.startswith(b'* OK'), g
"""


def raw(lab, body, timeout=60):
    return client_py(lab, "HOST = %r\n" % lab.env["OLD4"] + RAW + body, timeout)


def login_ok(lab, user="alice"):
    out = raw(lab, f"""
s.sendall(b'z1 LOGIN {user} ' + {lab.env['PASS_' + user]!r}.encode() + b'\\r\\n')
l = until('z1'); assert l.startswith(b'z1 OK'), l
s.sendall(b'z2 LOGOUT\\r\\n'); until('z2')
print('served')
""")
    assert "served" in out


def test_nul_in_command_line_is_bad_and_session_continues(lab, gw):
    # must_close is false for IMAP_ERR_NUL: BAD, the rest of the line is
    # dropped, the session goes on.
    out = raw(lab, """
s.sendall(b'n1 NOOP\\x00junk\\r\\n')
l = until('n1'); assert l == b'n1 BAD NUL byte in command\\r\\n', l
s.sendall(b'n2 NO\\x00OP\\r\\nn3 NOOP\\r\\n')
l = until('n2'); assert l.startswith(b'n2 BAD'), l
l = until('n3'); assert l.startswith(b'n3 OK'), l
s.sendall(b'n4 LOGOUT\\r\\n'); print(f.read())
""")
    assert "* BYE Logging out" in out and "n4 OK" in out
    assert "BYE NUL" not in out


def test_nul_inside_login_literal_is_bad_no_login(lab, gw):
    start = len(dlog(lab, "OLD"))
    pw = lab.env["PASS_alice"]
    out = raw(lab, f"""
s.sendall(b'l1 LOGIN {{5}}\\r\\n')
l = line(); assert l.startswith(b'+'), l
s.sendall(b'al\\x00ce ' + {pw!r}.encode() + b'\\r\\n')
l = until('l1'); assert l.startswith(b'l1 BAD NUL'), l
# a non-synchronizing literal: the rest of it is skipped, not parsed
s.sendall(b'l2 LOGIN alice {{%d+}}\\r\\n' % len({pw!r}) + {pw!r}.encode()[:2] + b'\\x00'
          + {pw!r}.encode()[2:] + b' l9 LOGIN alice x\\r\\nl3 NOOP\\r\\n')
l = until('l2'); assert l.startswith(b'l2 BAD NUL'), l
l = until('l3'); assert l.startswith(b'l3 OK'), l
s.sendall(b'l4 LOGOUT\\r\\n'); print(f.read())
""")
    assert "l4 OK" in out and "l9" not in out
    time.sleep(0.5)
    assert "Login: user=<al" not in dlog(lab, "OLD")[start:]
    assert "user=<alice>" not in dlog(lab, "OLD")[start:]


def b64(b):
    return base64.b64encode(b).decode()


@pytest.mark.parametrize("resp", [
    "!!!not-base64!!!",                 # bad alphabet
    "YWxpY2U",                          # bad padding
    b64(b"alice"),                      # no NUL at all
    b64(b"\0alice"),                    # password missing
    b64(b"\0\0secret"),                 # empty authcid
    b64(b"\0alice\0"),                  # empty password
    b64(b"a\0b\0c\0d"),                 # extra field
])
def test_authenticate_plain_bad_responses(lab, gw, resp):
    out = raw(lab, f"""
s.sendall(b'p1 AUTHENTICATE PLAIN {resp}\\r\\n')
l = until('p1'); assert l.startswith(b'p1 BAD') or l.startswith(b'p1 NO'), l
s.sendall(b'p2 AUTHENTICATE PLAIN\\r\\n')
l = line(); assert l.startswith(b'+'), l
s.sendall(b'{resp}\\r\\n')
l = until('p2'); assert l.startswith(b'p2 BAD') or l.startswith(b'p2 NO'), l
s.sendall(b'p3 NOOP\\r\\n'); l = until('p3'); assert l.startswith(b'p3 OK'), l
print('alive')
""")
    assert "alive" in out and "Invalid SASL PLAIN response" in out


def test_authenticate_plain_100k_line(lab, gw):
    out = raw(lab, """
big = b'A' * 100000
s.sendall(b'q1 AUTHENTICATE PLAIN\\r\\n')
l = line(); assert l.startswith(b'+'), l
s.sendall(big + b'\\r\\n')
l = until('q1'); assert l.startswith(b'q1 BAD'), l
s.sendall(b'q2 AUTHENTICATE PLAIN ' + big + b'\\r\\nq3 NOOP\\r\\n')
l = until('q2'); assert l.startswith(b'q2 BAD'), l
l = until('q3'); assert l.startswith(b'q3 OK'), l
print('alive')
""")
    assert "alive" in out and "too long" in out.lower()
    login_ok(lab)


def test_starttls_injection(lab, gw):
    # STARTTLS is neither advertised nor accepted today, so the session
    # stays plaintext and the pipelined LOGIN is the client's own plaintext
    # command: it is answered after STARTTLS's BAD, and served. Once
    # STARTTLS is offered this test must change: bytes after a successful
    # STARTTLS are discarded (CVE-2011-0411).
    start = len(dlog(lab, "OLD"))
    pw = lab.env["PASS_alice"]
    out = raw(lab, f"""
s.sendall(b'c0 CAPABILITY\\r\\n'); l = until('c0')
s.sendall(b'a STARTTLS\\r\\nb LOGIN alice ' + {pw!r}.encode() + b'\\r\\n')
l = line(); assert l.startswith(b'a BAD'), l
l = until('b'); assert l.startswith(b'b OK'), l
s.sendall(b'c SELECT INBOX\\r\\n'); l = until('c'); assert l.startswith(b'c OK'), l
s.sendall(b'd LOGOUT\\r\\n'); until('d')
""")
    assert "STARTTLS" not in out.split("c0 OK")[0], "STARTTLS advertised: revisit this test"
    deadline = time.monotonic() + 10
    while "Login: user=<alice>" not in dlog(lab, "OLD")[start:] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert dlog(lab, "OLD")[start:].count("Login: user=<alice>") == 1


SLOW = r"""
import json, selectors, socket, sys, time
N, HOST, LIMIT = %d, %r, %f
t0 = time.monotonic()
socks = []
try:
    for i in range(N):
        s = socket.create_connection((HOST, 143), timeout=10)
        socks.append(s)
    greet, greetings = 0, []
    for s in socks:
        g = s.recv(4096)
        greetings.append(g)
        if g.startswith(b'* OK'):
            greet += 1
    print('open %%d %%.2f' %% (greet, time.monotonic() - t0), flush=True)
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    closed, data, tick = {}, {}, 0.0
    deadline = time.monotonic() + LIMIT
    while len(closed) < N and time.monotonic() < deadline:
        now = time.monotonic()
        if now >= tick:  # the even ones send one byte a second
            for i in range(0, N, 2):
                if i not in closed:
                    try:
                        socks[i].send(b'x')
                    except OSError:
                        pass
            tick = now + 1.0
        for key, _ in sel.select(0.2):
            i = key.data
            try:
                d = key.fileobj.recv(4096)
            except OSError:
                d = b''
            if d:
                data[i] = data.get(i, b'') + d
            else:
                closed[i] = time.monotonic() - t0
                sel.unregister(key.fileobj)
    byes = sum(1 for i in range(N) if b'* BYE Pre-authentication timeout' in data.get(i, b''))
    # The ones never seen closed, to tell a session the gateway did not
    # end from one it never had (its port in the gateway's conn lines).
    unclosed = [{'i': i, 'port': socks[i].getsockname()[1],
                 'greeting': greetings[i].decode(errors='replace'),
                 'data': data.get(i, b'').decode(errors='replace')}
                for i in range(N) if i not in closed]
    print(json.dumps({'closed': len(closed), 'byes': byes,
                      'first': min(closed.values(), default=-1),
                      'last': max(closed.values(), default=-1),
                      'unclosed': unclosed[:5]}), flush=True)
finally:
    for s in socks:
        s.close()
"""


def daemon_pid(gw):
    pid = gw.proc.pid
    with open("/proc/%d/comm" % pid) as f:
        assert f.read().strip() == "mailferryd", "gateway pid is not mailferryd"
    return pid


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def read_line(p, timeout):
    r, _, _ = select.select([p.stdout], [], [], timeout)
    assert r, "slow-client helper silent for %ss" % timeout
    return p.stdout.readline()


def test_500_slow_preauth_connections(lab, gw):
    n = 500
    pid = daemon_pid(gw)
    login_ok(lab)  # warm up: ledger open, first session
    before = rss_kb(pid)
    conns_before = len([c for c in gw.conns() if c.get("end") == "preauth-timeout"])
    p = lab.popen("client", ["/usr/bin/python3", "-c",
                             SLOW % (n, lab.env["OLD4"], PREAUTH_MS / 1000 + 15)],
                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  text=True)
    try:
        line = read_line(p, 30)
        assert line.startswith("open "), line + p.stderr.read()
        greeted, secs = int(line.split()[1]), float(line.split()[2])
        assert greeted == n
        assert secs < PREAUTH_MS / 1000 - 3, "opening took too long to test anything"
        t_open = time.monotonic()
        held = rss_kb(pid)
        login_ok(lab)  # another client is served while the 500 wait
        t_served = time.monotonic() - t_open
        during = rss_kb(pid)
        res = json.loads(read_line(p, PREAUTH_MS / 1000 + 30))
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    after = rss_kb(pid)
    growth = max(held, during) - before
    print("\nRSS kB before=%d with-%d-open=%d during-login=%d after-close=%d; growth %.1f kB/conn; "
          "login served in %.2fs; closes at %.2f..%.2fs after first connect"
          % (before, n, held, during, after, growth / n, t_served, res["first"], res["last"]))
    assert growth < 64 * 1024, "RSS grew by %d kB" % growth
    assert t_served < PREAUTH_MS / 1000
    # all closed by the pre-auth timeout, none before it
    if res["closed"] != n or res["byes"] != n:
        ports = {c.get("client", "").rsplit(":", 1)[-1]: c.get("end") for c in gw.conns()}
        for u in res["unclosed"]:
            u["gateway_end"] = ports.get(str(u["port"]), "no conn line")
        pytest.fail("not all closed by the pre-auth timeout: %r" % (res,))
    assert res["first"] >= PREAUTH_MS / 1000 - 0.5, res
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done = len([c for c in gw.conns() if c.get("end") == "preauth-timeout"]) - conns_before
        if done >= n:
            break
        time.sleep(0.2)
    assert done == n
    login_ok(lab)


def test_password_never_in_log_ledger_or_workdir(lab, gw):
    # This run had successful logins (alice, bob) and failed ones: a wrong
    # password the source refuses, and a PLAIN response refused locally.
    # One source failure only: Dovecot delays answers after failed logins
    # from one address (auth penalty), and the upstream wait is bounded by
    # the pre-auth deadline (PREAUTH_MS here), which would turn later
    # answers into NO [UNAVAILABLE].
    login_ok(lab, "bob")
    out = raw(lab, f"""
s.sendall(b'w1 LOGIN bob {WRONG_PW}\\r\\n')
l = until('w1'); assert l.startswith(b'w1 NO [AUTHENTICATIONFAILED]'), l
s.sendall(b'w2 AUTHENTICATE PLAIN ' + __import__('base64').b64encode(b'x\\0carol\\0{WRONG_PW}') + b'\\r\\n')
l = until('w2'); assert l.startswith(b'w2 NO [AUTHORIZATIONFAILED]'), l
""")
    assert "w2 NO" in out
    time.sleep(0.5)
    secrets = [WRONG_PW.encode()] + [lab.env["PASS_" + u].encode() for u in ("alice", "bob")]
    secrets += [base64.b64encode(b"x\0carol\0" + WRONG_PW.encode())]
    files = [gw.logfile] + [gw.ledger + s for s in ("", "-wal", "-shm")]
    for root, _, names in os.walk(gw.workdir):
        files += [os.path.join(root, n) for n in names]
    checked = 0
    for path in sorted(set(files)):
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            body = f.read()
        checked += 1
        for pw in secrets:
            assert pw not in body, "a password is in %s" % path
    assert checked >= 3
