"""The lab itself is real and correct: real Dovecot and Postfix on old/new, reached from the
client namespace through the router, TLS verifiable against the lab CA, logs that show the
client's own address, and a lab life cycle that cleans up after itself."""

import base64
import os
import re
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from lab import LAB_SH, PYTHON, Lab

REQUIRED_KEYS = """LAB_PREFIX LAB_DIR NS_CLIENT NS_ROUTER NS_OLD NS_NEW CLIENT4 CLIENT6
ROUTER_CLIENT4 ROUTER_CLIENT6 ROUTER_SERVER4 ROUTER_SERVER6 OLD4 OLD6 NEW4 NEW6 CLIENT_NET4
CLIENT_NET6 CA_CERT OLD_CERT OLD_KEY NEW_CERT NEW_KEY MASTER_USER MASTER_PASS USERS PASS_alice
PASS_bob PASS_carol DOVECOT_LOG_OLD DOVECOT_LOG_NEW POSTFIX_LOG_OLD POSTFIX_LOG_NEW MAILDIR_OLD
MAILDIR_NEW""".split()


def netns_names():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def lab_ns(prefix):
    return {prefix + r for r in ("client", "router", "old", "new")}


# --------------------------------------------------------------------------- lab.env, topology
def test_env_has_required_keys(lab):
    missing = [k for k in REQUIRED_KEYS if not lab.env.get(k)]
    assert not missing, f"lab.env lacks {missing}"
    assert lab.NS_CLIENT == lab.prefix + "client" == lab.ns("client")
    assert lab.CLIENT_NET4 == "198.18.1.0/24"
    assert set(lab.user_names) >= {"alice", "bob", "carol"}
    assert len({lab.password(u) for u in lab.user_names}) == len(lab.user_names)
    for k in ("CA_CERT", "OLD_CERT", "OLD_KEY", "NEW_CERT", "NEW_KEY"):
        assert Path(lab.env[k]).is_file(), k
    for line in Path(lab.LAB_DIR, "lab.env").read_text().splitlines():
        assert " " not in line or line.startswith("#"), line


def test_topology_is_closed(lab):
    def links(ns):
        out = lab.run(ns, ["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
        return {re.match(r"\d+: ([^:@]+)", l).group(1) for l in out.splitlines()}

    assert links("client") == {"lo", "eth0"}
    assert links("old") == {"lo", "eth0"}
    assert links("new") == {"lo", "eth0"}
    assert links("router") == {"lo", "rcl", "rold", "rnew", "br0"}
    # nothing leaves the lab: the router has no default route of its own
    for fam in ("-4", "-6"):
        out = lab.run("router", ["ip", fam, "route", "show", "default"],
                      capture_output=True, text=True, check=True).stdout
        assert out.strip() == "", out
    got = lab.run("client", ["ip", "route", "get", lab.OLD4], capture_output=True, text=True,
                  check=True).stdout
    assert f"via {lab.ROUTER_CLIENT4}" in got
    got = lab.run("client", ["ip", "-6", "route", "get", lab.OLD6], capture_output=True,
                  text=True, check=True).stdout
    assert f"via {lab.ROUTER_CLIENT6}" in got
    fwd = lab.run("router", ["sysctl", "-n", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"],
                  capture_output=True, text=True, check=True).stdout.split()
    assert fwd == ["1", "1"]
    # the lab's addresses never appear in the root namespace
    root = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    for a in (lab.CLIENT4, lab.OLD4, lab.ROUTER_CLIENT4, lab.CLIENT6, lab.OLD6):
        assert f" {a}/" not in root


# --------------------------------------------------------------------------- IMAP / POP3
IMAP_LOGIN = r"""
import imaplib, ssl
def ctx():
    return ssl.create_default_context(cafile=P["ca"])
mode = P["mode"]
if mode == "ssl":
    m = imaplib.IMAP4_SSL(P["host"], 993, ssl_context=ctx(), timeout=10)
else:
    m = imaplib.IMAP4(P["host"], 143, timeout=10)
greeting = m.welcome.decode()
if mode == "starttls":
    m.starttls(ssl_context=ctx())
tls = getattr(m.sock, "version", lambda: None)()
typ, _ = m.login(P["user"], P["password"])
typ2, data = m.select("INBOX")
m.logout()
RESULT = {"greeting": greeting, "login": typ, "select": typ2, "tls": tls}
"""


@pytest.mark.parametrize("host,mode,name", [
    ("OLD4", "plain", "old.lab.test"),
    ("NEW4", "plain", "new.lab.test"),
    ("OLD4", "ssl", "old.lab.test"),
    ("NEW4", "ssl", "new.lab.test"),
    ("OLD4", "starttls", "old.lab.test"),
    ("OLD6", "plain", "old.lab.test"),
    ("NEW6", "starttls", "new.lab.test"),
])
def test_imap_login(lab, host, mode, name):
    r = lab.py_json("client", IMAP_LOGIN, host=lab.env[host], mode=mode, ca=lab.CA_CERT,
                    user="alice", password=lab.PASS_alice)
    assert r["login"] == "OK" and r["select"] == "OK"
    assert name in r["greeting"]  # really the server we meant
    if mode == "plain":
        assert r["tls"] is None
    else:
        assert r["tls"] in ("TLSv1.2", "TLSv1.3")


def test_imap_login_with_domain(lab):
    r = lab.py_json("client", IMAP_LOGIN, host=lab.OLD4, mode="plain", ca=lab.CA_CERT,
                    user="carol@lab.test", password=lab.PASS_carol)
    assert r["login"] == "OK"


TLS_CHECKS = r"""
import socket, ssl
def attempt(ctx, port, server_hostname):
    s = socket.create_connection((P["host"], port), timeout=10)
    try:
        t = ctx.wrap_socket(s, server_hostname=server_hostname)
        cn = dict(x[0] for x in t.getpeercert()["subject"])["commonName"]
        t.close()
        return "ok:" + cn
    except ssl.SSLCertVerificationError as e:
        return "verify-failed:" + e.verify_message
    finally:
        s.close()
lab_ctx = ssl.create_default_context(cafile=P["ca"])
RESULT = {
    "ip": attempt(lab_ctx, 993, P["host"]),
    "name": attempt(lab_ctx, 993, P["name"]),
    "pop3s": attempt(lab_ctx, 995, P["name"]),
    "wrong_name": attempt(lab_ctx, 993, P["other"]),
    "no_ca": attempt(ssl.create_default_context(), 993, P["name"]),
}
"""


@pytest.mark.parametrize("which", ["old", "new"])
def test_tls_is_verifiable(lab, which):
    host = lab.OLD4 if which == "old" else lab.NEW4
    name, other = f"{which}.lab.test", ("new.lab.test" if which == "old" else "old.lab.test")
    r = lab.py_json("client", TLS_CHECKS, host=host, name=name, other=other, ca=lab.CA_CERT)
    assert r["ip"] == f"ok:{name}"
    assert r["name"] == f"ok:{name}"
    assert r["pop3s"] == f"ok:{name}"
    assert r["wrong_name"].startswith("verify-failed"), r
    assert r["no_ca"].startswith("verify-failed"), r


POP3_LOGIN = r"""
import poplib, ssl
ctx = ssl.create_default_context(cafile=P["ca"])
out = {}
for mode in ("plain", "stls", "ssl"):
    if mode == "ssl":
        p = poplib.POP3_SSL(P["host"], 995, context=ctx, timeout=10)
    else:
        p = poplib.POP3(P["host"], 110, timeout=10)
        if mode == "stls":
            p.stls(context=ctx)
    greeting = p.getwelcome().decode()
    p.user(P["user"])
    resp = p.pass_(P["password"]).decode()
    count, size = p.stat()
    p.quit()
    out[mode] = [greeting, resp, count]
RESULT = out
"""


@pytest.mark.parametrize("host", ["OLD4", "NEW4", "OLD6"])
def test_pop3_login(lab, host):
    r = lab.py_json("client", POP3_LOGIN, host=lab.env[host], ca=lab.CA_CERT,
                    user="bob", password=lab.PASS_bob)
    for mode in ("plain", "stls", "ssl"):
        greeting, resp, count = r[mode]
        assert greeting.startswith("+OK"), (mode, greeting)
        assert resp.startswith("+OK"), (mode, resp)
        assert count >= 0


BAD_LOGINS = r"""
import imaplib, poplib, threading
res = {}
def imap(key, user, pw):
    m = imaplib.IMAP4(P["host"], 143, timeout=20)
    try:
        m.login(user, pw); res[key] = "OK"
    except imaplib.IMAP4.error as e:
        res[key] = "NO:" + str(e)
    finally:
        m.shutdown()
def pop(key, user, pw):
    p = poplib.POP3(P["host"], 110, timeout=20)
    try:
        p.user(user); p.pass_(pw); res[key] = "OK"
    except poplib.error_proto as e:
        res[key] = "ERR:" + str(e)
    finally:
        p.close()
jobs = [
    (imap, "imap_wrong_pw", "alice", P["pw"] + "x"),
    (imap, "imap_other_users_pw", "alice", P["bob_pw"]),
    (imap, "imap_unknown_user", "mallory", P["pw"]),
    (imap, "imap_master_wrong_pw", "alice*" + P["master"], P["master_pw"] + "x"),
    (imap, "imap_master_unknown_target", "mallory*" + P["master"], P["master_pw"]),
    (pop, "pop3_wrong_pw", "alice", P["pw"] + "x"),
]
ts = [threading.Thread(target=f, args=a) for f, *a in jobs]
for t in ts: t.start()
for t in ts: t.join()
RESULT = res
"""


def test_wrong_credentials_fail(lab):
    r = lab.py_json("client", BAD_LOGINS, host=lab.OLD4, pw=lab.PASS_alice, bob_pw=lab.PASS_bob,
                    master=lab.MASTER_USER, master_pw=lab.MASTER_PASS)
    assert len(r) == 6
    for key, val in r.items():
        assert not val.startswith("OK"), (key, val)
        if key == "imap_master_unknown_target":  # master password right, target unknown
            assert "AUTHORIZATIONFAILED" in val, (key, val)
        elif key.startswith("imap"):
            assert "AUTHENTICATIONFAILED" in val, (key, val)
        else:
            assert val.startswith("ERR:") and "-ERR [AUTH]" in val, (key, val)


MASTER_LOGIN = r"""
import imaplib
m = imaplib.IMAP4(P["host"], 143, timeout=10)
typ, _ = m.login(P["user"], P["password"])
typ2, _ = m.select("INBOX")
m.logout()
RESULT = [typ, typ2]
"""


@pytest.mark.parametrize("host", ["OLD4", "NEW4"])
def test_master_user_login(lab, host):
    mark = lab.log_mark("DOVECOT_LOG_OLD" if host == "OLD4" else "DOVECOT_LOG_NEW")
    r = lab.py_json("client", MASTER_LOGIN, host=lab.env[host],
                    user=f"alice*{lab.MASTER_USER}", password=lab.MASTER_PASS)
    assert r == ["OK", "OK"]
    lab.wait_log("DOVECOT_LOG_OLD" if host == "OLD4" else "DOVECOT_LOG_NEW",
                 r"Master user logging in as alice", mark)


# --------------------------------------------------------------------------- SMTP
SMTP_SEND = r"""
import base64, smtplib, ssl
s = smtplib.SMTP(P["host"], P["port"], local_hostname="client.lab.test", timeout=30)
s.ehlo()
before = sorted(s.esmtp_features)
after = before
if P["starttls"]:
    s.starttls(context=ssl.create_default_context(cafile=P["ca"]))
    s.ehlo()
    after = sorted(s.esmtp_features)
auth = None
if P.get("user"):
    s.user, s.password = P["user"], P["password"]
    auth = list(s.auth("PLAIN", s.auth_plain))
    auth[1] = auth[1].decode()
mail = s.mail(P["from"], P.get("mail_options", []))
rcpt = s.rcpt(P["to"])
data = None
if rcpt[0] == 250:
    data = s.data(base64.b64decode(P["msg"]))
    data = [data[0], data[1].decode()]
else:
    s.rset()
s.quit()
RESULT = {"before": before, "after": after, "auth": auth, "rcpt": [rcpt[0], rcpt[1].decode()],
          "data": data}
"""

IMAP_FIND = r"""
import base64, imaplib
m = imaplib.IMAP4(P["host"], 143, timeout=10)
m.login(P["user"], P["password"])
m.select("INBOX", readonly=True)
typ, data = m.uid("SEARCH", "HEADER", "Message-ID", '"%s"' % P["msgid"])
uids = data[0].split()
bodies = []
for uid in uids:
    typ, fd = m.uid("FETCH", uid, "(BODY.PEEK[])")
    bodies.append(base64.b64encode(fd[0][1]).decode())
m.logout()
RESULT = bodies
"""


def make_message(tag, extra_body=b""):
    msgid = f"<{uuid.uuid4().hex}.{tag}@client.lab.test>"
    head = (
        "From: Lab Sender <sender@example.org>\r\n"
        "To: Alice <alice@lab.test>\r\n"
        f"Subject: lab byte test {tag}\r\n"
        f"Message-ID: {msgid}\r\n"
        "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
        "X-Folded: first part\r\n\tsecond part\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
    ).encode()
    body = (
        b"line one\r\n"
        b".a line that starts with a dot\r\n"
        b"..and one with two\r\n"
        b".\r\n"
        b"trailing spaces   \r\n"
        b"\ttab first\r\n"
        b"\r\n"
        + b"x" * 900 + b"\r\n"
        + extra_body
        + b"From the last line\r\n"
    )
    return msgid, head + body


def check_delivered(lab, msgid, sent, qid, client_ip):
    """Exactly one copy on old (none on new), byte-exact after the added trace headers."""
    lab.wait_log("POSTFIX_LOG_OLD", rf"{qid}: to=<alice@lab\.test>, relay=.*status=sent", 0, 15)
    lab.wait_log("POSTFIX_LOG_OLD", rf"{qid}: removed", 0, 15)
    bodies = lab.py_json("client", IMAP_FIND, host=lab.OLD4, user="alice",
                         password=lab.PASS_alice, msgid=msgid)
    assert len(bodies) == 1, f"expected exactly one copy, got {len(bodies)}"
    got = base64.b64decode(bodies[0])
    assert got.endswith(sent), "delivered message differs from what was sent"
    added = got[: len(got) - len(sent)].decode()
    assert added.endswith("\r\n")
    names = []
    for line in added[:-2].split("\r\n"):
        if line[:1] in (" ", "\t"):
            continue
        names.append(line.split(":", 1)[0].lower())
    assert set(names) <= {"return-path", "delivered-to", "received"}, names
    assert "delivered-to" in names and names.count("received") >= 1
    assert f"[{client_ip}]" in added  # Postfix's Received: names the real client
    # on disk, in the Maildir, owned by the mail uid
    files = [p for d in ("new", "cur") for p in Path(lab.MAILDIR_OLD, "alice", "Maildir", d).iterdir()
             if msgid.encode() in p.read_bytes()]
    assert len(files) == 1
    assert files[0].stat().st_uid == int(lab.MAIL_UID)
    # not on new
    assert lab.py_json("client", IMAP_FIND, host=lab.NEW4, user="alice",
                       password=lab.PASS_alice, msgid=msgid) == []


def queue_id(data_reply):
    m = re.search(r"queued as ([0-9A-Za-z]+)", data_reply)
    assert m, data_reply
    return m.group(1)


def test_smtp_25_delivers_byte_exact(lab):
    msgid, msg = make_message("port25")
    r = lab.py_json("client", SMTP_SEND, host=lab.OLD4, port=25, starttls=False, ca=lab.CA_CERT,
                    msg=base64.b64encode(msg).decode(), to="alice@lab.test",
                    **{"from": "sender@example.org"})
    assert r["rcpt"][0] == 250 and r["data"][0] == 250, r
    qid = queue_id(r["data"][1])
    lab.wait_log("POSTFIX_LOG_OLD", rf"{qid}: client=unknown\[198\.18\.1\.2\]$", 0, 10)
    check_delivered(lab, msgid, msg, qid, lab.CLIENT4)


def test_smtp_25_rejects_unknown_recipient(lab):
    _, msg = make_message("unknown")
    r = lab.py_json("client", SMTP_SEND, host=lab.OLD4, port=25, starttls=False, ca=lab.CA_CERT,
                    msg=base64.b64encode(msg).decode(), to="mallory@lab.test",
                    **{"from": "sender@example.org"})
    assert r["rcpt"][0] == 550, r


def test_smtp_587_auth_plain_after_starttls(lab):
    msgid, msg = make_message("port587", "eight bit: \u00e4\u00f6\u00fc \u20ac\r\n".encode())
    mark = lab.log_mark("POSTFIX_LOG_OLD")
    r = lab.py_json("client", SMTP_SEND, host=lab.OLD4, port=587, starttls=True, ca=lab.CA_CERT,
                    user="bob", password=lab.PASS_bob, msg=base64.b64encode(msg).decode(),
                    to="alice@lab.test", mail_options=["BODY=8BITMIME"],
                    **{"from": "bob@lab.test"})
    assert "auth" not in r["before"], "AUTH must not be offered before STARTTLS"
    assert "auth" in r["after"]
    assert r["auth"][0] == 235, r
    assert r["data"][0] == 250, r
    qid = queue_id(r["data"][1])
    lab.wait_log("POSTFIX_LOG_OLD",
                 rf"{qid}: client=unknown\[198\.18\.1\.2\], sasl_method=PLAIN, sasl_username=bob",
                 mark, 10)
    lab.wait_log("POSTFIX_LOG_OLD", r"postfix/submission/smtpd\[\d+\]: connect from unknown\[198\.18\.1\.2\]",
                 mark, 10)
    check_delivered(lab, msgid, msg, qid, lab.CLIENT4)


def test_smtp_587_requires_auth(lab):
    _, msg = make_message("noauth")
    r = lab.py_json("client", SMTP_SEND, host=lab.OLD4, port=587, starttls=True, ca=lab.CA_CERT,
                    msg=base64.b64encode(msg).decode(), to="alice@lab.test",
                    **{"from": "bob@lab.test"})
    assert r["rcpt"][0] >= 500, r


def test_smtp_new_server_over_ipv6(lab):
    msgid, msg = make_message("v6new")
    r = lab.py_json("client", SMTP_SEND, host=lab.NEW6, port=25, starttls=True, ca=lab.CA_CERT,
                    msg=base64.b64encode(msg).decode(), to="carol@lab.test",
                    **{"from": "sender@example.org"})
    assert r["data"][0] == 250, r
    qid = queue_id(r["data"][1])
    lab.wait_log("POSTFIX_LOG_NEW", rf"{qid}: client=unknown\[2001:db8:1::2\]", 0, 10)
    lab.wait_log("POSTFIX_LOG_NEW", rf"{qid}: to=<carol@lab\.test>.*status=sent", 0, 15)
    got = lab.py_json("client", IMAP_FIND, host=lab.NEW4, user="carol", password=lab.PASS_carol,
                      msgid=msgid)
    assert len(got) == 1 and base64.b64decode(got[0]).endswith(msg)


# --------------------------------------------------------------------------- logs
@pytest.mark.parametrize("host,key,client,lip", [
    ("OLD4", "DOVECOT_LOG_OLD", "CLIENT4", "OLD4"),
    ("OLD6", "DOVECOT_LOG_OLD", "CLIENT6", "OLD6"),
    ("NEW4", "DOVECOT_LOG_NEW", "CLIENT4", "NEW4"),
])
def test_dovecot_log_shows_client_address(lab, host, key, client, lip):
    mark = lab.log_mark(key)
    r = lab.py_json("client", IMAP_LOGIN, host=lab.env[host], mode="plain", ca=lab.CA_CERT,
                    user="bob", password=lab.PASS_bob)
    assert r["login"] == "OK"
    line = lab.wait_log(key, r"imap-login: Info: Login: user=<bob>, method=PLAIN, rip=(\S+), "
                             r"lip=(\S+),.*", mark, 10)
    rip = re.search(r"rip=([^,]+)", line).group(1)
    lip_got = re.search(r"lip=([^,]+)", line).group(1)
    assert rip == lab.env[client]
    assert lip_got == lab.env[lip]


# --------------------------------------------------------------------------- life cycle
def test_net_only_lab_and_teardown(lab):
    with Lab.up(net_only=True) as small:
        assert small.prefix != lab.prefix
        assert small.NET_ONLY == "1"
        assert lab_ns(small.prefix) <= netns_names()
        for role in ("old", "new"):
            pids = subprocess.run(["ip", "netns", "pids", small.ns(role)], capture_output=True,
                                  text=True, check=True).stdout.split()
            assert pids == [], f"net-only lab runs processes in {role}: {pids}"
        # the path is there (RST from old's kernel), no server listens
        r = small.py_json("client", r"""
import socket
out = []
for host in P["hosts"]:
    try:
        socket.create_connection((host, 143), timeout=3).close(); out.append("open")
    except ConnectionRefusedError:
        out.append("refused")
    except OSError as e:
        out.append(repr(e))
RESULT = out
""", hosts=[small.OLD4, small.OLD6, small.NEW4, small.NEW6])
        assert r == ["refused"] * 4
        lab_dir = small.lab_dir
    assert not (lab_ns(small.prefix) & netns_names())
    assert not os.path.exists(lab_dir)
    # the session lab is untouched
    assert lab_ns(lab.prefix) <= netns_names()


CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from lab import Lab
l = Lab.up(net_only=sys.argv[2] == "net")
print(l.prefix, l.lab_dir, flush=True)
sys.stdin.read()
"""


def spawn_child_lab(mode="net"):
    env = {k: v for k, v in os.environ.items() if k not in ("LAB_PREFIX", "LAB_DIR", "LAB_KEEP")}
    p = subprocess.Popen([PYTHON, "-c", CHILD, str(LAB_SH.parent), mode], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    assert len(line) == 2, "child lab did not come up"
    return p, line[0], line[1]


def test_sigterm_tears_down(lab):
    p, prefix, lab_dir = spawn_child_lab()
    assert prefix == f"mfl{p.pid}-"
    assert lab_ns(prefix) <= netns_names()
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) != 0
    assert not (lab_ns(prefix) & netns_names())
    assert not os.path.exists(lab_dir)


def test_reap_removes_only_labs_of_dead_processes(lab):
    alive, alive_prefix, alive_dir = spawn_child_lab("net")
    dead, dead_prefix, dead_dir = spawn_child_lab("full")
    try:
        daemons = set()
        for role in ("old", "new"):
            out = subprocess.run(["ip", "netns", "pids", dead_prefix + role], capture_output=True,
                                 text=True, check=True).stdout.split()
            daemons |= {int(x) for x in out}
        assert daemons, "full child lab has no daemons"
        dead.kill()
        dead.wait(timeout=10)
        assert lab_ns(dead_prefix) <= netns_names()  # SIGKILL: nothing cleaned up
        subprocess.run(["bash", str(LAB_SH), "reap"], check=True, timeout=60,
                       stdin=subprocess.DEVNULL, capture_output=True)
        names = netns_names()
        assert not (lab_ns(dead_prefix) & names)
        assert not os.path.exists(dead_dir)
        assert lab_ns(alive_prefix) <= names
        assert lab_ns(lab.prefix) <= names
        for pid in daemons:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except FileNotFoundError:
                continue
            assert state == "Z", f"daemon {pid} of the reaped lab still runs"
    finally:
        for p in (alive, dead):
            if p.poll() is None:
                p.stdin.close()
                p.terminate()
                p.wait(timeout=30)
    assert not (lab_ns(alive_prefix) & netns_names())
