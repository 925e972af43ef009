"""Issue 3: the SMTP front end (plaintext): port 25 routed per recipient,
587 submission routed by the authenticated account.

Real Postfix + Dovecot LMTP on `old` and `new`; smtplib, swaks and raw
sockets on `client`; mailferryd with smtp_ports = 25 and submission_ports =
587 on `router`. Messages are found in the recipients' Maildirs on the
server they must have reached and compared byte for byte (Postfix and LMTP
only prepend trace headers; Dovecot stores LF line ends)."""
import base64
import glob
import os
import re
import subprocess
import time
import uuid

import pytest

from mfgateway import running

DOMAIN = "lab.test"
TRACE = re.compile(rb"^(Return-Path|Delivered-To|Received|X-Original-To):|^[ \t]")


@pytest.fixture(scope="module")
def gw(lab, tmp_path_factory):
    with running(lab, str(tmp_path_factory.mktemp("smtpgw")), ports=(25, 587),
                 smtp_ports=(25,), submission_ports=(587,),
                 ledger={"default_domain": DOMAIN}) as g:
        yield g


def message(token, body=b"Hello.\r\n", extra=b""):
    return (b"From: sender@example.net\r\nTo: someone@lab.test\r\n"
            b"Subject: mailferry " + token.encode() + b"\r\n"
            b"Message-ID: <" + token.encode() + b"@example.net>\r\n"
            b"Date: Sat, 28 Nov 2026 04:00:00 +0000\r\n" + extra + b"\r\n" + body)


def stored(lab, host, user, token):
    """Messages in user's Maildir on host holding token (file contents)."""
    out = []
    for path in glob.glob(os.path.join(lab.lab_dir, host, "mail", user, "Maildir", "*", "*")):
        if os.path.basename(os.path.dirname(path)) not in ("new", "cur"):
            continue
        with open(path, "rb") as f:
            data = f.read()
        if token.encode() in data:
            out.append(data)
    return out


def wait_stored(lab, host, user, token, n=1, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = stored(lab, host, user, token)
        if len(got) >= n:
            time.sleep(0.5)  # a duplicate would show up now
            return stored(lab, host, user, token)
        time.sleep(0.1)
    raise AssertionError(f"no message {token} for {user} on {host}")


def assert_exact(data, original):
    """data is original (LF line ends) after trace headers only."""
    want = original.replace(b"\r\n", b"\n")
    assert data.endswith(want), data[:2000]
    for line in data[:len(data) - len(want)].split(b"\n")[:-1]:
        assert TRACE.match(line), line


SEND = r"""
import smtplib
s = smtplib.SMTP(P["host"], P.get("port", 25), local_hostname="mta.example.net", timeout=30)
code, caps = s.ehlo()
msg = open(P["msg"], "rb").read() if "msg" in P else P["text"].encode()
try:
    refused = s.sendmail("sender@example.net", P["rcpts"], msg)
    res = {k: [v[0], v[1].decode()] for k, v in refused.items()}
except smtplib.SMTPRecipientsRefused as e:
    res = {k: [v[0], v[1].decode()] for k, v in e.recipients.items()}
s.quit()
RESULT = [caps.decode(), res]
"""


def send(lab, rcpts, msg, tmp_path=None):
    params = {"host": lab.OLD4, "rcpts": rcpts}
    if len(msg) > 60000:
        path = os.path.join(lab.lab_dir, "msg-%s.eml" % uuid.uuid4().hex)
        with open(path, "wb") as f:
            f.write(msg)
        params["msg"] = path
    else:
        params["text"] = msg.decode()
    return lab.py_json("client", SEND, **params)


def token():
    return "t" + uuid.uuid4().hex


def test_migrated_to_new_unseen_to_old(lab, gw):
    gw.cli("accounts", "set-state", "bob@" + DOMAIN, "MIGRATED")
    t1, t2 = token(), token()
    m1, m2 = message(t1), message(t2)
    mark = lab.log_mark("POSTFIX_LOG_NEW")
    caps, refused = send(lab, ["bob@" + DOMAIN], m1)
    assert refused == {}
    assert caps.splitlines()[0] == "[%s]" % lab.OLD4
    assert set(caps.splitlines()[1:]) == {"PIPELINING", "8BITMIME", "CHUNKING",
                                          "ENHANCEDSTATUSCODES"}
    got = wait_stored(lab, "new", "bob", t1)
    assert len(got) == 1
    assert_exact(got[0], m1)
    assert stored(lab, "old", "bob", t1) == []
    # Postfix saw the real client (transparent upstream source).
    lab.wait_log("POSTFIX_LOG_NEW", r"connect from [^\n]*\[198\.18\.1\.2\]", mark)
    assert send(lab, ["alice@" + DOMAIN], m2)[1] == {}
    got = wait_stored(lab, "old", "alice", t2)
    assert len(got) == 1
    assert_exact(got[0], m2)
    assert stored(lab, "new", "alice", t2) == []
    # Mail for an account is not a login: its state does not change.
    assert gw.account("alice@" + DOMAIN)["state"] == "UNSEEN"
    gw.wait_log(r"smtp txn client=198\.18\.1\.2:\d+ route=destination rcpts=1 refused=0 "
                r"size=\d+ reply=250")


def test_mixed_recipients_retried_arrive_once(lab, gw):
    gw.cli("accounts", "set-state", "bob@" + DOMAIN, "MIGRATED")
    gw.cli("accounts", "set-state", "carol@" + DOMAIN, "SEEN")
    t = token()
    m = message(t)
    caps, refused = send(lab, ["bob@" + DOMAIN, "alice@" + DOMAIN, "carol@" + DOMAIN], m)
    assert sorted(refused) == ["alice@" + DOMAIN, "carol@" + DOMAIN]
    for code, text in refused.values():
        assert code == 451 and text.startswith("4.3.0"), (code, text)
    c = gw.wait_conn(lambda c: c.get("refused") == "2")
    assert (c["txns"], c["delivered"], c["rcpts"], c["route"]) == ("1", "1", "1", "destination")
    # The retrying MTA: the refused ones in a transaction of their own.
    assert send(lab, sorted(refused), m)[1] == {}
    assert len(wait_stored(lab, "new", "bob", t)) == 1
    assert len(wait_stored(lab, "old", "alice", t)) == 1
    assert len(wait_stored(lab, "old", "carol", t)) == 1
    for host, user in (("old", "bob"), ("new", "alice"), ("new", "carol")):
        assert stored(lab, host, user, t) == []


def test_cutover_recipient_gets_451_420(lab, gw):
    gw.cli("accounts", "set-state", "carol@" + DOMAIN, "CUTOVER")
    try:
        t = token()
        caps, refused = send(lab, ["carol@" + DOMAIN], message(t))
        code, text = refused["carol@" + DOMAIN]
        assert code == 451 and text.startswith("4.2.0"), (code, text)
        time.sleep(2)
        assert stored(lab, "old", "carol", t) == [] and stored(lab, "new", "carol", t) == []
    finally:
        gw.cli("accounts", "set-state", "carol@" + DOMAIN, "SEEN")


def test_two_transactions_one_session_different_backends(lab, gw):
    gw.cli("accounts", "set-state", "bob@" + DOMAIN, "MIGRATED")
    t1, t2, t3 = token(), token(), token()
    r = lab.py_json("client", r"""
import smtplib
s = smtplib.SMTP(P["host"], 25, local_hostname="mta.example.net", timeout=30)
out = []
for rcpt, text in P["txns"]:
    out.append(s.sendmail("sender@example.net", [rcpt], text.encode()))
out.append(list(s.noop()))
s.quit()
RESULT = [len(o) for o in out[:-1]] + [out[-1][0]]
""", host=lab.OLD4, txns=[["bob@" + DOMAIN, message(t1).decode()],
                          ["alice@" + DOMAIN, message(t2).decode()],
                          ["bob@" + DOMAIN, message(t3).decode()]])
    assert r == [0, 0, 0, 250]
    assert len(wait_stored(lab, "new", "bob", t1)) == 1
    assert len(wait_stored(lab, "old", "alice", t2)) == 1
    assert len(wait_stored(lab, "new", "bob", t3)) == 1
    c = gw.wait_conn(lambda c: c.get("txns") == "3")
    assert (c["delivered"], c["rcpts"], c["refused"], c["route"]) == ("3", "3", "0", "destination")
    assert "user" not in c  # recipients are not logged


def test_dot_lines_and_large_message_byte_exact(lab, gw):
    gw.cli("accounts", "set-state", "bob@" + DOMAIN, "MIGRATED")
    t = token()
    lines = [b".leading dot", b"..two dots", b".", b" .", b"x" * 980]
    n = 0
    body = []
    while n < (1 << 20) + 300000:
        line = lines[len(body) % len(lines)] + b" %d" % len(body)
        body.append(line)
        n += len(line) + 2
    m = message(t, b"\r\n".join(body) + b"\r\n")
    assert send(lab, ["bob@" + DOMAIN], m)[1] == {}
    got = wait_stored(lab, "new", "bob", t)
    assert len(got) == 1
    assert_exact(got[0], m)


def test_swaks_unseen_to_old(lab, gw):
    t = token()
    r = lab.run("client", ["swaks", "--server", lab.OLD4, "--port", "25",
                           "--helo", "mta.example.net", "--from", "sender@example.net",
                           "--to", "carol@" + DOMAIN, "--header", "Subject: swaks " + t,
                           "--body", "swaks body\n.dot line\n", "--timeout", "20"],
                capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<-  250 2.0.0 Ok: queued" in r.stdout
    got = wait_stored(lab, "old", "carol", t)
    assert len(got) == 1 and b"\n.dot line\n" in got[0]


def test_ipv6_migrated_to_new(lab, gw):
    gw.cli("accounts", "set-state", "bob@" + DOMAIN, "MIGRATED")
    t = token()
    m = message(t)
    mark = lab.log_mark("POSTFIX_LOG_NEW")
    r = lab.py_json("client", r"""
import smtplib
s = smtplib.SMTP(P["host"], 25, local_hostname="mta.example.net", timeout=30)
code, caps = s.ehlo()
refused = s.sendmail("sender@example.net", ["bob@lab.test"], P["text"].encode())
s.quit()
RESULT = [caps.decode().splitlines()[0], len(refused)]
""", host=lab.OLD6, text=m.decode())
    assert r == ["[IPv6:%s]" % lab.OLD6, 0]
    got = wait_stored(lab, "new", "bob", t)
    assert len(got) == 1
    assert_exact(got[0], m)
    lab.wait_log("POSTFIX_LOG_NEW", r"connect from [^\n]*\[2001:db8:1::2\]", mark)


def test_pipelined_commands_answered_in_order(lab, gw):
    gw.cli("accounts", "set-state", "bob@" + DOMAIN, "MIGRATED")
    t = token()
    out = raw(lab, r"""
s.sendall(b'EHLO mta.example.net\r\n'); reply()
s.sendall(b'MAIL FROM:<a@example.net> BODY=8BITMIME\r\nRCPT TO:<bob@lab.test>\r\n'
          b'RCPT TO:<alice@lab.test>\r\nDATA\r\n')
for i in range(4):
    reply()
s.sendall(b'Subject: ' + P["t"].encode() + b'\r\n\r\n8bit \xc3\xa9\r\n.\r\nNOOP\r\nQUIT\r\n')
reply(); reply(); reply()
""", t=t)
    codes = [o[:3] for o in out]
    assert codes == ["220", "250", "250", "250", "451", "354", "250", "250", "221"], out
    got = wait_stored(lab, "new", "bob", t)
    assert len(got) == 1
    assert b"8bit \xc3\xa9\n" in got[0]
    assert stored(lab, "old", "alice", t) == []


def test_bdat_chunks_byte_exact(lab, gw):
    """Postfix offers CHUNKING: the client's BDAT lines and octets pass
    through; dots are not stuffed in BDAT, so a "." line is content."""
    gw.cli("accounts", "set-state", "bob@" + DOMAIN, "MIGRATED")
    t = token()
    body = b"".join(b".line %d\r\n..two\r\n.\r\n" % i for i in range(50000))
    m = message(t, body)
    path = os.path.join(lab.lab_dir, "bdat-%s.eml" % t)
    with open(path, "wb") as f:
        f.write(m)
    out = raw(lab, r"""
m = open(P["path"], "rb").read()
s.sendall(b'EHLO mta.example.net\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<bob@lab.test>\r\n')
reply(); reply(); reply()
a, b = m[:300000], m[300000:]
s.sendall(b'BDAT %d\r\n' % len(a) + a + b'BDAT %d LAST\r\n' % len(b) + b)
reply(); reply()
s.sendall(b'QUIT\r\n'); reply()
""", path=path)
    assert len(m) > (1 << 20)
    assert out[4] == "250 2.0.0 Ok: 300000 bytes\r\n", out  # Postfix's own words
    assert [o[:3] for o in out[2:]] == ["250", "250", "250", "250", "221"], out
    got = wait_stored(lab, "new", "bob", t)
    assert len(got) == 1
    assert_exact(got[0], m)
    gw.wait_log(r"smtp txn client=198\.18\.1\.2:\d+ route=destination rcpts=1 refused=0 "
                r"size=%d reply=250" % len(m))


# --- submission (587) -------------------------------------------------------
#
# The lab's Postfix demands STARTTLS on 587, and the gateway speaks plaintext
# to its backends until the TLS layer exists: these tests let plaintext AUTH
# through on 587 for their duration.

def postfix_587(lab, tls_only):
    for host in ("old", "new"):
        conf = os.path.join(lab.lab_dir, host, "postfix")
        level, only = ("encrypt", "yes") if tls_only else ("may", "no")
        lab.run(host, ["postconf", "-c", conf, "-P",
                       "587/inet/smtpd_tls_security_level=" + level,
                       "587/inet/smtpd_tls_auth_only=" + only], check=True)
        lab.run(host, ["postfix", "-c", conf, "reload"], check=True,
                capture_output=True)
    time.sleep(1)


@pytest.fixture(scope="module")
def plain587(lab, gw):
    postfix_587(lab, tls_only=False)
    yield
    postfix_587(lab, tls_only=True)


SUBMIT = r"""
import smtplib, base64
s = smtplib.SMTP(P["host"], 587, local_hostname="laptop.example.net", timeout=30)
code, caps = s.ehlo()
out = {"caps": caps.decode()}
try:
    if P["mech"] == "LOGIN":
        r = s.docmd("AUTH", "LOGIN")
        assert r[0] == 334, r
        r = s.docmd(base64.b64encode(P["user"].encode()).decode())
        assert r[0] == 334, r
        r = s.docmd(base64.b64encode(P["pw"].encode()).decode())
    else:
        ir = base64.b64encode(("\0" + P["user"] + "\0" + P["pw"]).encode()).decode()
        r = s.docmd("AUTH", "PLAIN " + ir)
    out["auth"] = [r[0], r[1].decode()]
    if r[0] == 235 and "rcpt" in P:
        out["refused"] = {k: v[0] for k, v in
                          s.sendmail(P["user"] + "@lab.test", [P["rcpt"]], P["text"].encode()).items()}
    s.quit()
except smtplib.SMTPServerDisconnected:
    out["closed"] = True
RESULT = out
"""


def test_submission_auth_plain_unseen_to_old(lab, gw, plain587):
    gw.cli("accounts", "set-state", "alice@" + DOMAIN, "UNSEEN")
    t = token()
    mark = lab.log_mark("POSTFIX_LOG_OLD")
    r = lab.py_json("client", SUBMIT, host=lab.OLD4, mech="PLAIN", user="alice",
                    pw=lab.PASS_alice, rcpt="carol@" + DOMAIN, text=message(t).decode())
    assert "AUTH PLAIN LOGIN" in r["caps"] and "STARTTLS" not in r["caps"]
    assert r["auth"][0] == 235, r
    assert r["refused"] == {}
    assert len(wait_stored(lab, "old", "carol", t)) == 1
    lab.wait_log("POSTFIX_LOG_OLD", r"client=[^\n]*\[198\.18\.1\.2\], sasl_method=PLAIN, "
                 r"sasl_username=alice", mark)
    assert gw.account("alice@" + DOMAIN)["state"] == "SEEN"
    c = gw.wait_conn(lambda c: c.get("user") == "alice@" + DOMAIN and c.get("route") == "source")
    assert c["end"] == "eof"


def test_submission_auth_login_migrated_to_new(lab, gw, plain587):
    gw.cli("accounts", "set-state", "bob@" + DOMAIN, "MIGRATED")
    t = token()
    mark = lab.log_mark("POSTFIX_LOG_NEW")
    r = lab.py_json("client", SUBMIT, host=lab.OLD4, mech="LOGIN", user="bob",
                    pw=lab.PASS_bob, rcpt="alice@" + DOMAIN, text=message(t).decode())
    assert r["auth"][0] == 235, r
    assert r["refused"] == {}
    lab.wait_log("POSTFIX_LOG_NEW", r"sasl_method=PLAIN, sasl_username=bob", mark)
    # Submitted on new: new delivers to its own alice.
    assert len(wait_stored(lab, "new", "alice", t)) == 1
    assert gw.account("bob@" + DOMAIN)["state"] == "MIGRATED"


def test_submission_wrong_password_source_text_cutover_454(lab, gw, plain587):
    gw.cli("accounts", "set-state", "carol@" + DOMAIN, "UNSEEN")
    # The source's own answer, asked directly from the router.
    direct = lab.py_json("router", r"""
import smtplib, base64
s = smtplib.SMTP(P["host"], 587, local_hostname="laptop.example.net", timeout=30)
s.ehlo()
r = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0carol\0wrong-smtp-pass-789").decode())
RESULT = [r[0], r[1].decode()]
""", host=lab.OLD4)
    r = lab.py_json("client", SUBMIT, host=lab.OLD4, mech="PLAIN", user="carol",
                    pw="wrong-smtp-pass-789")
    assert direct[0] == 535
    assert r["auth"] == direct
    assert gw.account("carol@" + DOMAIN)["state"] == "UNSEEN"
    gw.cli("accounts", "set-state", "carol@" + DOMAIN, "CUTOVER")
    try:
        r = lab.py_json("client", SUBMIT, host=lab.OLD4, mech="PLAIN", user="carol",
                        pw=lab.PASS_carol)
        assert r["auth"][0] == 454 and r["auth"][1].startswith("4.7.0"), r
    finally:
        gw.cli("accounts", "set-state", "carol@" + DOMAIN, "SEEN")


def test_submission_wrong_then_right_password_one_session(lab, gw, plain587):
    """A second login attempt reconnects to the same backend from the
    same client address (not the same port: that 4-tuple may still be in
    TIME_WAIT)."""
    gw.cli("accounts", "set-state", "carol@" + DOMAIN, "SEEN")
    wrong = base64.b64encode(b"\0carol\0wrong-smtp-pass-789").decode()
    right = base64.b64encode(b"\0carol\0" + lab.PASS_carol.encode()).decode()
    out = raw(lab, r"""
s.sendall(b'EHLO laptop\r\n'); reply()
s.sendall(b'AUTH PLAIN ' + P["wrong"].encode() + b'\r\n'); reply()
s.sendall(b'AUTH PLAIN ' + P["right"].encode() + b'\r\n'); reply()
s.sendall(b'QUIT\r\n'); reply()
""", port=587, wrong=wrong, right=right)
    assert [o[:3] for o in out] == ["220", "250", "535", "235", "221"], out


# --- hostile input ------------------------------------------------------------

RAW = r"""
import socket
s = socket.create_connection((P["host"], P["port"]), timeout=15)
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
    return lines[-1]
assert reply().startswith('220 ')
"""


def raw(lab, body, port=25, **params):
    return lab.py_json("client", RAW + body + "\nRESULT = out\n", host=lab.OLD4, port=port,
                       **params)


def test_hostile_input(lab, gw, plain587):
    # a 1 MiB line: refused, then closed (the close of a socket with
    # unread bytes may reset the connection before the reply is read)
    out = raw(lab, r"""
try:
    s.sendall(b'EHLO ' + b'x' * (1 << 20) + b'\r\n')
except OSError:
    pass
try:
    reply(); out.append(f.read().decode(errors="replace"))
except OSError as e:
    out.append('reset: %s' % e)
""")
    assert out[1].startswith("500 5.5.6") or out[1].startswith("reset"), out
    assert out[-1] == "" or out[-1].startswith("reset"), out  # closed
    # NUL: refused, closed
    out = raw(lab, r"""
s.sendall(b'EHLO a\0b\r\n'); reply(); out.append(f.read().decode(errors="replace"))
""")
    assert out[1].startswith("500 5.5.2"), out
    assert out[2] == ""
    # bare LF: refused, the session goes on
    out = raw(lab, r"""
s.sendall(b'EHLO a\nNOOP\r\n'); reply(); reply()
s.sendall(b'QUIT\r\n'); reply()
""")
    assert out[1].startswith("500 5.5.2 Error: line ended by bare LF"), out
    assert out[2].startswith("250 "), out
    assert out[3].startswith("221 "), out
    # too many errors: closed
    out = raw(lab, r"""
for i in range(12):
    s.sendall(b'BOGUS\r\n')
    if reply().startswith('421'):
        break
""")
    assert out[-1].startswith("421 4.7.0"), out
    # an ambiguous end of data (SMTP smuggling): refused, nothing delivered
    t = token()
    out = raw(lab, r"""
s.sendall(b'EHLO mta.example.net\r\n'); reply()
s.sendall(b'MAIL FROM:<a@example.net>\r\n'); reply()
s.sendall(b'RCPT TO:<alice@lab.test>\r\n'); reply()
s.sendall(b'DATA\r\n'); reply()
s.sendall(b'Subject: ' + P["t"].encode() + b'\r\n\r\nx\n.\nMAIL FROM:<evil@example.net>\r\n'
          b'RCPT TO:<bob@lab.test>\r\nDATA\r\nSubject: ' + P["t"].encode() + b' smuggled\r\n\r\n.\r\n')
reply()
s.sendall(b'NOOP\r\n'); reply()
s.sendall(b'QUIT\r\n'); reply()
""", t=t)
    assert out[3].startswith("250 "), out
    assert out[4].startswith("354 "), out
    assert out[5].startswith("550 5.6.0"), out
    assert out[6].startswith("250 "), out
    time.sleep(2)
    for host in ("old", "new"):
        for user in ("alice", "bob"):
            assert stored(lab, host, user, t) == []
    # submission: bad base64, then a good session still works
    out = raw(lab, r"""
s.sendall(b'EHLO laptop\r\n'); reply()
s.sendall(b'AUTH PLAIN !!!notbase64\r\n'); reply()
s.sendall(b'AUTH LOGIN\r\n'); reply()
s.sendall(b'%%%\r\n'); reply()
s.sendall(b'MAIL FROM:<a@lab.test>\r\n'); reply()
s.sendall(b'QUIT\r\n'); reply()
""", port=587)
    assert out[2].startswith("501 5.5.2"), out
    assert out[3].startswith("334 VXNlcm5hbWU6"), out
    assert out[4].startswith("501 5.5.2"), out
    assert out[5].startswith("530 5.7.0"), out
    assert out[6].startswith("221 "), out
    # a BDAT without a transaction: refused, its octets skipped, never
    # read as commands
    out = raw(lab, r"""
s.sendall(b'EHLO mta\r\nBDAT 12\r\nQUIT\r\nQUIT\r\nNOOP\r\n'); reply(); reply(); reply()
""")
    assert out[2].startswith("503 5.5.1"), out
    assert out[3].startswith("250 "), out


def test_passwords_never_logged_or_stored(lab, gw):
    for u in ("alice", "bob", "carol"):
        assert gw.files_holding(lab.env["PASS_" + u].encode()) == []
    assert gw.files_holding(b"wrong-smtp-pass-789") == []
