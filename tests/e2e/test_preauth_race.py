"""Stress: client bytes that arrive right at the pre-auth deadline.

Every session must still end with the pre-auth timeout's BYE and a close,
however its last bytes and its deadline meet: the RECV completing with a
byte just as its linked timeout fires (the next RECV then gets the 1 ms
floor), the timeout winning with a byte queued, a byte every millisecond
around the deadline, a single byte at the deadline plus or minus up to
25 ms. RACE_N / RACE_ROUNDS in the environment scale it (45,000 sessions
passed when the test_500_slow_preauth_connections flake was looked into)."""
import json
import os

import pytest

from mfgateway import client_py, running

PREAUTH_MS = 2000


@pytest.fixture(scope="module")
def gw(lab, tmp_path_factory):
    with running(lab, str(tmp_path_factory.mktemp("preauthrace")), ports=(143,),
                 imap_ports=(143,),
                 gateway={"preauth_timeout": str(PREAUTH_MS), "preauth_per_client": "0"}) as g:
        yield g


RACE = r"""
import json, selectors, socket, sys, time
HOST, N, PRE, ROUNDS = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
BYE = b'* BYE Pre-authentication timeout'
bad = []
for rnd in range(ROUNDS):
    socks, dl = [], []
    for i in range(N):
        s = socket.create_connection((HOST, 143), timeout=10)
        dl.append(time.monotonic() + PRE)
        socks.append(s)
    for s in socks:
        assert s.recv(4096).startswith(b'* OK')
        s.setblocking(False)
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, i)
    # i % 3 == 0: a byte every ms from 25 ms before to 25 ms after the
    # deadline; 1: one byte at deadline + offset, offsets -25..+25 ms;
    # 2: a byte every 10 ms, deadline +/- 60 ms, offset by i.
    nxt = []
    for i in range(N):
        if i % 3 == 0:
            nxt.append(dl[i] - 0.025)
        elif i % 3 == 1:
            nxt.append(dl[i] - 0.025 + 0.05 * ((i * 7919) % N) / N)
        else:
            nxt.append(dl[i] - 0.060 + 0.01 * (i % 10) / 10)
    closed, data = {}, {}
    end = max(dl) + 6
    while len(closed) < N and time.monotonic() < end:
        now = time.monotonic()
        for i in range(N):
            if i in closed or nxt[i] is None or now < nxt[i]:
                continue
            try:
                socks[i].send(b'x')
            except OSError:
                pass
            if i % 3 == 0:
                nxt[i] = nxt[i] + 0.001 if nxt[i] < dl[i] + 0.025 else None
            elif i % 3 == 1:
                nxt[i] = None
            else:
                nxt[i] = nxt[i] + 0.01 if nxt[i] < dl[i] + 0.060 else None
        for key, _ in sel.select(0.0005):
            i = key.data
            try:
                d = key.fileobj.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                d = b''
            if d:
                data[i] = data.get(i, b'') + d
            else:
                closed[i] = time.monotonic() - dl[i]
                sel.unregister(key.fileobj)
    for i in range(N):
        if i not in closed or BYE not in data.get(i, b''):
            bad.append({'round': rnd, 'i': i, 'closed': closed.get(i),
                        'data': data.get(i, b'').decode(errors='replace'),
                        'port': socks[i].getsockname()[1]})
    late = max(closed.values(), default=0)
    print('round %d closed %d late %.3f' % (rnd, len(closed), late), file=sys.stderr, flush=True)
    sel.close()
    for s in socks:
        s.close()
print(json.dumps(bad))
"""


def test_bytes_at_the_preauth_deadline(lab, gw):
    n, rounds = int(os.environ.get("RACE_N", 300)), int(os.environ.get("RACE_ROUNDS", 6))
    out = client_py(lab, RACE, lab.env["OLD4"], n, PREAUTH_MS / 1000, rounds,
                    timeout=rounds * (PREAUTH_MS / 1000 + 20) + 60)
    bad = json.loads(out.strip().splitlines()[-1])
    assert not bad, bad[:5]
    ends = [c.get("end") for c in gw.conns()]
    assert ends.count("preauth-timeout") >= n * rounds, {e: ends.count(e) for e in set(ends)}
