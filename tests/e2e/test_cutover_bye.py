"""CUTOVER ends the user's IMAP sessions on old with `* BYE [UNAVAILABLE]` (issue 4),
where the server's response stream allows one, and plainly anywhere else.

A user with a mailbox on old (a few hundred small messages, so that the rate-limited
bulk copy lasts seconds, and one 20 MiB message of a known pattern) has three sessions
through the gateway when the copy starts:

- plain IMAP on 143, in IDLE: after `+ idling` it reads exactly the cutover's BYE line,
  then the end of the stream;
- implicit TLS on 993 (the TLS pump), in IDLE: the same BYE, then TLS's close_notify
  (an orderly end: Python's ssl is told not to hide a truncated stream);
- plain IMAP on 143 in the middle of `UID FETCH <20 MiB> BODY.PEEK[]`, reading nothing
  more after its first 64 KiB (a small receive buffer) until the account is MIGRATED:
  the relay is then inside the literal, so the session is closed with no BYE; what the
  client got is a prefix of the message, byte for byte, with nothing inserted, and
  shorter than the message.

Each session's conn line says end=cutover; the daemon logs which ones got the line.
"""

from mfgateway import Gateway
from test_migrate_trigger import append, dump, helper, tlab, wait_state, wipe  # noqa: F401
from test_tls import pki

BYE = b"* BYE [UNAVAILABLE] Your mailbox is moving to a new server, log in again\r\n"
BIG = 20 << 20

# The big message's body: numbered lines, so a prefix can be checked by the
# client without holding the message; no line could pass for an IMAP response.
PATTERN = r"""
def big_message(size):
    head = b"From: a@lab.test\r\nSubject: big\r\nMessage-ID: <big@lab.test>\r\n\r\n"
    lines = []
    n = len(head)
    i = 0
    while n < size:
        line = b"%010d abcdefghijklmnopqrstuvwxyz0123456789 ABCDEFGHIJKLMNOP\r\n" % i
        lines.append(line)
        n += len(line)
        i += 1
    return (head + b"".join(lines))[:size - 2] + b"\r\n"
"""

IDLE_CLIENT = r"""
import imaplib, os, ssl, sys
host, user, pw, tls, ca = sys.argv[1:6]
if tls == "1":
    ctx = ssl.create_default_context(cafile=ca)
    m = imaplib.IMAP4_SSL(host, 993, ssl_context=ctx, timeout=120)
    m.sock.suppress_ragged_eofs = False
else:
    m = imaplib.IMAP4(host, 143, timeout=120)
assert m.login(user, pw)[0] == 'OK'
assert m.select('INBOX')[0] == 'OK'
m.send(b'i1 IDLE\r\n')
line = m.readline()
assert line.startswith(b'+'), line
print('ready', flush=True)
got = b''
while True:
    try:
        chunk = m.sock.recv(65536)
    except ssl.SSLEOFError as e:
        print('truncated', repr(got), e, flush=True)
        sys.exit(0)
    if not chunk:
        break
    got += chunk
print('eof', repr(got), flush=True)
"""

FETCH_CLIENT = PATTERN + r"""
import socket, sys
host, user, pw, uid, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.settimeout(120)
s.connect((host, 143))
f = s.makefile('rb', buffering=0)
def line():
    b = b''
    while not b.endswith(b'\r\n'):
        c = f.read(1)
        assert c, ('eof in a line', b)
        b += c
    return b
def until(tag):
    while True:
        l = line()
        if l.startswith(tag.encode() + b' '):
            assert l.split()[1] == b'OK', l
            return
assert line().startswith(b'* OK')
s.sendall(('a LOGIN %s %s\r\n' % (user, pw)).encode()); until('a')
s.sendall(b'b SELECT INBOX\r\n'); until('b')
s.sendall(b'c UID FETCH %d BODY.PEEK[]\r\n' % uid)
head = line()
assert head.endswith(b'{%d}\r\n' % size), head
got = b''
while len(got) < 65536:
    got += f.read(65536 - len(got))
print('ready', flush=True)
sys.stdin.readline()
while True:
    c = f.read(1 << 20)
    if not c:
        break
    got += c
want = big_message(size)
ok = got == want[:len(got)]
print('got', len(got), 'prefix' if ok else 'DIFFERS', b'BYE' in got, flush=True)
"""


def test_cutover_bye_at_boundaries_only(tlab, tmp_path):
    lab, user = tlab
    pw = lab.env[f"PASS_{user}"]
    wipe(lab, user)
    msgs = [["INBOX", "(\\Seen)", '"09-Sep-2022 09:09:09 +0000"', 2000 + i, 400, "", "text"]
            for i in range(400)]
    append(lab, lab.OLD4, user, msgs)
    big_uid = helper(lab, lab.OLD4, PATTERN + r"""
c = conn(P['host'])
typ, data = c.append('INBOX', None, None, big_message(P['size']))
assert typ == 'OK', (typ, data)
c.select('INBOX')
typ, data = c.uid('SEARCH', None, 'ALL')
RESULT = int(data[0].split()[-1])
c.logout()
""", user, size=BIG)
    # 400 messages at 100/s: the bulk copy lasts 4 s at least, whatever the
    # machine; the three sessions are in place long before.
    m = {"enabled": "yes", "workers": "1", "state_dir": str(tmp_path / "gw" / "migrate"),
         "max_messages_per_second": "100"}
    g = Gateway(lab, str(tmp_path / "gw"), ports=(143, 993), imap_ports=(143,),
                tls={"cert": [pki(lab, "old.crt")], "key": [pki(lab, "old.key")]},
                migrate=m)
    procs = {}
    try:
        g.install_rules()
        g.start()
        for name, argv in (("plain", ["-c", IDLE_CLIENT, lab.OLD4, user, pw, "0", "-"]),
                           ("tls", ["-c", IDLE_CLIENT, lab.OLD4, user, pw, "1",
                                    pki(lab, "ca.crt")]),
                           ("fetch", ["-c", FETCH_CLIENT, lab.OLD4, user, pw, str(big_uid),
                                      str(BIG)])):
            p = lab.popen("client", ["/usr/bin/python3", *argv], stdin=-1, stdout=-1,
                          stderr=-1, text=True)
            procs[name] = p
            line = p.stdout.readline().strip()
            assert line == "ready", (name, line, p.stderr.read() if not line else "")
        # All three are in place before the cutover, or the test proves nothing.
        assert g.account(user)["state"] in ("SEEN", "COPYING"), g.account(user)
        wait_state(g, user, "MIGRATED", timeout=240)
        out = {}
        procs["fetch"].stdin.write("\n")
        procs["fetch"].stdin.flush()
        for name, p in procs.items():
            o, e = p.communicate(timeout=60)
            assert p.returncode == 0, (name, o, e)
            out[name] = o.strip()
        procs = {}
        # IDLE sessions: the BYE line, then an orderly end (close_notify on TLS).
        for name in ("plain", "tls"):
            assert out[name] == "eof " + repr(BYE), (name, out[name])
        # Mid-literal: closed plainly, a true prefix of the message, nothing added.
        word, n, verdict, bye = out["fetch"].split()
        assert word == "got" and verdict == "prefix" and bye == "False", out["fetch"]
        assert 65536 <= int(n) < BIG, out["fetch"]
        log = g.log()
        assert log.count(f"imap user={user} cutover: session closed after the cutover line") == 2, log
        assert f"imap user={user} cutover: session closed (no response boundary" in log, log
        conns = [c for c in g.conns() if c.get("user", "").startswith(user)]
        assert len(conns) == 3 and all(c["end"] == "cutover" and c["route"] == "source"
                                       for c in conns), conns
        assert dump(lab, lab.NEW4, user) == dump(lab, lab.OLD4, user)
        assert g.stop() == 0
    finally:
        for p in procs.values():
            p.kill()
            p.communicate()
        g.teardown()
    wipe(lab, user)
