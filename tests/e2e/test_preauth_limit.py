"""Issue 3, Bounds: pre-auth sessions per client address.

mailferryd with one worker and preauth_per_client = 10 on `router`; raw
IMAP sockets from `client` (one address). Of 50 idle connections exactly
10 are greeted and 40 get `* BYE [UNAVAILABLE]` and a close at once; a
session that logs in and relays frees its slot for a new connection."""
import json

import pytest

from mfgateway import client_py, running

LIMIT = 10


@pytest.fixture(scope="module")
def gw(lab, tmp_path_factory):
    with running(lab, str(tmp_path_factory.mktemp("preauthlimit")), ports=(143,),
                 imap_ports=(143,),
                 gateway={"workers": "1", "preauth_per_client": str(LIMIT)}) as g:
        yield g


FLOOD = r"""
import json, socket, sys, time
HOST, N, PW = sys.argv[1], int(sys.argv[2]), sys.argv[3]
BYE = b'* BYE [UNAVAILABLE] Too many connections from your address\r\n'

def first(s):
    # The first line, then whether the server closed right after it.
    t0 = time.monotonic()
    f = s.makefile('rb')
    l = f.readline()
    closed = None
    if l == BYE:
        closed = f.read() == b''
    return l, closed, time.monotonic() - t0, f

socks = [socket.create_connection((HOST, 143), timeout=5) for _ in range(N)]
greeted, refused, other, slow = [], 0, [], 0
for s in socks:
    l, closed, secs, f = first(s)
    if l.startswith(b'* OK'):
        greeted.append((s, f))
    elif l == BYE and closed:
        refused += 1
        slow += secs > 2
        s.close()
    else:
        other.append(repr(l))

# One greeted session logs in; a NOOP answered by the backend proves it relays.
s, f = greeted[0]
s.sendall(b'a1 LOGIN alice ' + PW.encode() + b'\r\n')
login = f.readline()
s.sendall(b'a2 NOOP\r\n')
noop = b''
for _ in range(20):
    noop = f.readline()
    if not noop or noop.startswith(b'a2 '):
        break

def one():
    c = socket.create_connection((HOST, 143), timeout=5)
    l, closed, secs, cf = first(c)
    return c, cf, l

after1, _, l1 = one()   # the freed slot
after2, _, l2 = one()   # the limit again
print(json.dumps({"greeted": len(greeted), "refused": refused, "slow": slow,
                  "other": other, "login": login.decode(errors='replace'),
                  "noop": noop.decode(errors='replace'),
                  "after_relay": l1.decode(errors='replace'),
                  "over_again": l2.decode(errors='replace')}))
s.sendall(b'a3 LOGOUT\r\n')
for c, _ in greeted:
    c.close()
after1.close()
after2.close()
"""


def test_preauth_per_client_limit(lab, gw):
    n = 50
    before = gw.log().count("reason=preauth-per-client")
    out = client_py(lab, FLOOD, lab.env["OLD4"], n, lab.env["PASS_alice"], timeout=90)
    res = json.loads(out.strip().splitlines()[-1])
    print("\n", res)
    assert res["other"] == [], res
    assert res["greeted"] == LIMIT, res
    assert res["refused"] == n - LIMIT, res
    assert res["slow"] == 0, res
    assert res["login"].startswith("a1 OK"), res
    assert res["noop"].startswith("a2 OK"), res
    # Relaying freed alice's slot: one new connection is greeted, the next
    # is over the limit again.
    assert res["after_relay"].startswith("* OK"), res
    assert res["over_again"].startswith("* BYE [UNAVAILABLE]"), res
    gw.wait_log(r"refused client=\S+ reason=preauth-per-client")
    assert gw.log().count("reason=preauth-per-client") - before == n - LIMIT + 1
