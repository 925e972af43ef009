"""Issue 3, SMTP front end: backends that cannot be reached, and XCLIENT.

Each test runs its own mailferryd (smtp_ports = 25) on `router`, so these
live apart from test_smtp_front.py's module-wide gateway."""
import os
import subprocess
import time
import uuid

import pytest

from mfgateway import running

DOMAIN = "lab.test"

RAW = r"""
import socket
s = socket.create_connection((P["host"], 25), timeout=20)
f = s.makefile('rb')
out = []
def reply():
    lines = []
    while True:
        l = f.readline()
        lines.append(l.decode(errors='replace'))
        if len(l) < 4 or l[3:4] != b'-':
            break
    out.append(''.join(lines))
assert f.readline().startswith(b'220 ')
"""


def raw(lab, body, **params):
    return lab.py_json("client", RAW + body + "\nRESULT = out\n", host=lab.OLD4, **params)


def test_unreachable_backend_421_then_close(lab, tmp_path):
    # 198.18.11.9: on the server network, nobody there.
    with running(lab, str(tmp_path / "gw"), ports=(25,), smtp_ports=(25,),
                 destination=["198.18.11.9"], ledger={"default_domain": DOMAIN}) as gw:
        gw.cli("accounts", "set-state", "bob@" + DOMAIN, "MIGRATED")
        t0 = time.monotonic()
        out = raw(lab, r"""
s.sendall(b'EHLO mta.example.net\r\n'); reply()
s.sendall(b'MAIL FROM:<a@example.net>\r\n'); reply()
s.sendall(b'RCPT TO:<bob@lab.test>\r\n'); reply()
out.append(f.read().decode())
""")
        assert out[1].startswith("250 "), out
        assert out[2].startswith("421 4.3.2"), out
        assert out[3] == ""  # closed
        assert time.monotonic() - t0 < 10
        gw.wait_log(r"smtp login user=- up=198\.18\.11\.9:25 failed")
        # the source is still served
        out = raw(lab, r"""
s.sendall(b'EHLO mta.example.net\r\nMAIL FROM:<a@example.net>\r\n'); reply(); reply()
s.sendall(b'RCPT TO:<alice@lab.test>\r\nQUIT\r\n'); reply(); reply()
""")
        assert [o[:3] for o in out] == ["250", "250", "250", "221"], out


def test_xclient_names_the_real_client(lab, tmp_path):
    """upstream_source = gateway: Postfix sees the router's address, and
    XCLIENT (allowed for the router on old) tells it the client's."""
    conf = os.path.join(lab.lab_dir, "old", "postfix")
    lab.run("old", ["postconf", "-c", conf, "-e",
                    "smtpd_authorized_xclient_hosts = " + lab.env["ROUTER_SERVER4"]], check=True)
    lab.run("old", ["postfix", "-c", conf, "reload"], check=True, capture_output=True)
    try:
        time.sleep(1)
        with running(lab, str(tmp_path / "gw"), ports=(25,), smtp_ports=(25,),
                     gateway={"smtp_xclient": "yes", "upstream_source": "gateway"},
                     ledger={"default_domain": DOMAIN}):
            t = "t" + uuid.uuid4().hex
            mark = lab.log_mark("POSTFIX_LOG_OLD")
            out = raw(lab, r"""
s.sendall(b'EHLO mta.example.net\r\n'); reply()
s.sendall(b'MAIL FROM:<a@example.net>\r\n'); reply()
s.sendall(b'RCPT TO:<alice@lab.test>\r\n'); reply()
s.sendall(b'DATA\r\n'); reply()
s.sendall(b'Subject: ' + P["t"].encode() + b'\r\n\r\nxclient\r\n.\r\nQUIT\r\n'); reply(); reply()
""", t=t)
            assert [o[:3] for o in out] == ["250", "250", "250", "354", "250", "221"], out
            log = lab.wait_log("POSTFIX_LOG_OLD", r"client=unknown\[198\.18\.1\.2\]", mark)
            assert "connect from unknown[%s]" % lab.env["ROUTER_SERVER4"] in \
                lab.log_since("POSTFIX_LOG_OLD", mark), log
    finally:
        lab.run("old", ["postconf", "-c", conf, "-X", "smtpd_authorized_xclient_hosts"],
                check=True)
        lab.run("old", ["postfix", "-c", conf, "reload"], check=True, capture_output=True)


def test_ledger_unavailable_451_430(lab, tmp_path):
    with running(lab, str(tmp_path / "gw"), ports=(25,), smtp_ports=(25,),
                 ledger={"default_domain": DOMAIN}) as gw:
        # Workers open the ledger at first use: make that fail.
        os.rename(gw.ledger, gw.ledger + ".away")
        os.mkdir(gw.ledger)
        try:
            out = raw(lab, r"""
s.sendall(b'EHLO mta.example.net\r\nMAIL FROM:<a@example.net>\r\n'); reply(); reply()
s.sendall(b'RCPT TO:<alice@lab.test>\r\n'); reply()
s.sendall(b'RCPT TO:<"quoted local"@lab.test>\r\nRSET\r\nQUIT\r\n'); reply(); reply(); reply()
""")
        finally:
            os.rmdir(gw.ledger)
            os.rename(gw.ledger + ".away", gw.ledger)
        assert out[2].startswith("451 4.3.0"), out
        # an address no account can have goes to the source without the
        # ledger, and the source's own refusal comes back unchanged
        assert out[3].startswith("550 5.1.1 <quoted local@lab.test>: Recipient address "
                                 "rejected: User unknown"), repr(out[3])
        assert [o[:3] for o in out[4:]] == ["250", "221"], out


# A scripted backend on old:2525 (the gateway serves 2525 as an MTA port):
# "garbage" greets with nonsense; "dies" answers up to DATA (a two-line
# RCPT reply), records what it received, then closes without a final reply;
# "ok" records each transaction and queues it. It never offers CHUNKING.
FAKE = r"""
import socket, sys, time
host, mode, out = sys.argv[1], sys.argv[2], sys.argv[3]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((host, 2525))
ls.listen(8)
print("ready", flush=True)
while True:
    c, _ = ls.accept()
    f = c.makefile("rb")
    if mode == "garbage":
        c.sendall(b"hello there\r\n")
        time.sleep(0.5)
        f.close()
        c.close()
        continue
    c.sendall(b"220 fake ESMTP\r\n")
    got = b""
    while True:
        l = f.readline()
        if not l:
            break
        got += l
        u = l.upper()
        if u.startswith(b"EHLO") or u.startswith(b"RSET"):
            c.sendall(b"250-fake\r\n250 PIPELINING\r\n")
        elif u.startswith(b"MAIL"):
            c.sendall(b"250 2.1.0 ok\r\n")
        elif u.startswith(b"RCPT"):
            c.sendall(b"250-first line\r\n250 2.1.5 second line\r\n")
        elif u.startswith(b"DATA"):
            c.sendall(b"354 go\r\n")
            while not got.endswith(b"\r\n.\r\n"):
                l = f.readline()
                if not l:
                    break
                got += l
            with open(out, "wb") as o:
                o.write(got)
            if mode == "dies":
                c.shutdown(socket.SHUT_RDWR)
                break
            c.sendall(b"250 2.0.0 fake queued\r\n")
            got = b""
        elif u.startswith(b"QUIT"):
            c.sendall(b"221 bye\r\n")
            break
        else:
            c.sendall(b"500 what\r\n")
    f.close()
    c.close()
"""


def fake_backend(lab, mode, out):
    p = lab.popen("old", ["/usr/bin/python3", "-c", FAKE, lab.OLD4, mode, out],
                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                  text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


RAW2525 = RAW.replace('(P["host"], 25)', '(P["host"], 2525)')


@pytest.mark.parametrize("mode", ["garbage", "dies"])
def test_broken_backend_421_never_a_hang(lab, tmp_path, mode):
    out_file = str(tmp_path / "received")
    fake = fake_backend(lab, mode, out_file)
    try:
        with running(lab, str(tmp_path / "gw"), ports=(2525,), smtp_ports=(2525,),
                     ledger={"default_domain": DOMAIN}):
            t0 = time.monotonic()
            out = lab.py_json("client", RAW2525 + r"""
s.sendall(b'EHLO mta.example.net\r\n'); reply()
s.sendall(b'MAIL FROM:<a@example.net>\r\n'); reply()
s.sendall(b'RCPT TO:<alice@lab.test>\r\n'); reply()
if out[-1].startswith('250'):
    s.sendall(b'DATA\r\n'); reply()
    s.sendall(b'Subject: x\r\n\r\n..dot\r\n.\r\n'); reply()
out.append(f.read().decode())
RESULT = out
""", host=lab.OLD4)
            assert time.monotonic() - t0 < 10
    finally:
        fake.kill()
        fake.wait()
    if mode == "garbage":
        assert out[2].startswith("421 4.3.2"), out
        assert out[3] == "", out
        return
    # the two-line RCPT reply reaches the client unchanged
    assert out[2] == "250-first line\r\n250 2.1.5 second line\r\n", out
    assert out[3] == "354 go\r\n", out
    assert out[4].startswith("421 4.3.2"), out
    assert out[5] == "", out
    # what the backend got: the client's commands and content, byte for byte
    with open(out_file, "rb") as f:
        assert f.read() == (b"EHLO mta.example.net\r\nMAIL FROM:<a@example.net>\r\n"
                            b"RCPT TO:<alice@lab.test>\r\nDATA\r\n"
                            b"Subject: x\r\n\r\n..dot\r\n.\r\n")


def test_bdat_to_a_backend_without_chunking_becomes_data(lab, tmp_path):
    out_file = str(tmp_path / "received")
    fake = fake_backend(lab, "ok", out_file)
    try:
        with running(lab, str(tmp_path / "gw"), ports=(2525,), smtp_ports=(2525,),
                     ledger={"default_domain": DOMAIN}):
            out = lab.py_json("client", RAW2525 + r"""
s.sendall(b'EHLO mta.example.net\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<alice@lab.test>\r\n')
reply(); reply(); reply()
s.sendall(b'BDAT 8\r\n.a\r\n\n.\nb' + b'BDAT 0\r\n' + b'BDAT 6 LAST\r\n\r\n.\r\nc')
reply(); reply(); reply()
s.sendall(b'NOOP\r\nQUIT\r\n'); reply(); reply()
RESULT = out
""", host=lab.OLD4)
    finally:
        fake.kill()
        fake.wait()
    assert out[2] == "250-first line\r\n250 2.1.5 second line\r\n", out
    assert out[3] == "250 2.0.0 8 octets received\r\n", out
    assert out[4] == "250 2.0.0 8 octets received\r\n", out
    assert out[5] == "250 2.0.0 fake queued\r\n", out
    assert [o[:3] for o in out[6:]] == ["250", "221"], out
    with open(out_file, "rb") as f:
        got = f.read()
    # dots stuffed after every LF, CRLF added before the end
    assert got.endswith(b"DATA\r\n..a\r\n\n..\nb\r\n..\r\nc\r\n.\r\n"), got
