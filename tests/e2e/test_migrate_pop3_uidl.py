"""POP3 UIDL continuity end to end (issue 4, tests 6 and 7): a POP3 client that keeps
mail on the server downloads nothing twice across its account's migration.

The user's mailbox is on old. Before the gateway is there, fetchmail (keep, uidl) and a
poplib client tracking UIDLs as a keep-mail client does have downloaded every message,
leaving them on the server. Through the gateway the poplib client checks again (nothing
new for it); the source's +OK to its login starts the in-daemon copy with the observed
credentials. The copy runs (from old's IMAP, or with `source_protocol = pop3` from old's POP3
alone), records at cutover which destination UIDL is which source UIDL, verifies and
flips the account. A message is then delivered to new. The client's next session goes
to new through the gateway: its UIDL listing holds every UIDL it knew — each naming the
very bytes it downloaded before — plus exactly one it does not know, the new message,
whose bytes are those delivered; fetchmail's next run fetches that message alone.

The test user (carol, whom test_migrate_pop3.py owns too) is wiped before and after.
"""

import hashlib

import pytest

from mfgateway import Gateway
from test_migrate_pop3 import add, bodies
from test_migrate_trigger import wait_state, wipe

USER = "carol"

# A keep-mail client: P["known"] maps UIDLs to sha256 of what it downloaded.
# Downloads (RETR) what it does not know; checks a sample of known ones again.
KEEP_CLIENT = r'''
import hashlib, poplib
p = poplib.POP3(P["host"], 110, timeout=120)
p.user(P["user"])
p.pass_(P["password"])
resp, lines, _ = p.uidl()
listing = [l.decode().split(" ", 1) for l in lines]
known = P["known"]
fetched, again = {}, {}
for n, u in listing:
    if u not in known or u in P["check"]:
        body = b"\r\n".join(p.retr(int(n))[1]) + b"\r\n"
        (again if u in known else fetched)[u] = hashlib.sha256(body).hexdigest()
p.quit()
RESULT = {"uidls": [u for _, u in listing], "fetched": fetched, "again": again}
'''

DELIVER = r'''
import imaplib
c = imaplib.IMAP4(P["host"], 143, timeout=60)
c.login(P["user"], P["password"])
typ, data = c.append("INBOX", None, None, P["body"].encode("latin-1"))
assert typ == "OK", (typ, data)
c.logout()
'''


def keep_client(lab, known, check=()):
    return lab.py_json("client", KEEP_CLIENT, timeout=300, host=lab.OLD4, user=USER,
                       password=lab.env[f"PASS_{USER}"], known=known, check=list(check))


def fetchmail(lab, tmp_path, idfile, out):
    rc = tmp_path / "fetchmailrc"
    rc.write_text(f"""set no bouncemail
poll {lab.OLD4} protocol pop3 port 110 timeout 60 uidl
  user "{USER}" password "{lab.env[f'PASS_{USER}']}"
  sslproto '' keep mda "/bin/sh -c 'cat > $(mktemp -p {out} msg.XXXXXXXX)'"
""")
    rc.chmod(0o600)
    r = lab.run("client", ["fetchmail", "-f", str(rc), "--nosyslog", "-i", str(idfile),
                           "-v"], capture_output=True, text=True, timeout=300)
    # 0: mail fetched, 1: no new mail.
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return r


@pytest.fixture
def ulab(lab):
    wipe(lab, USER)
    yield lab
    wipe(lab, USER)


@pytest.mark.parametrize("source", ["imap", "pop3"])
def test_keep_mail_client_downloads_nothing_twice(ulab, tmp_path, source):
    lab = ulab
    n = add(lab, bodies(0, 24), big=True)
    m = {"enabled": "yes", "workers": "1", "source_protocol": source,
         "state_dir": str(tmp_path / "gw" / "migrate")}
    if source == "pop3":
        m["source_port"] = "110"
    g = Gateway(lab, str(tmp_path / "gw"), ports=(110,), pop3_ports=(110,), migrate=m)
    fm_out = tmp_path / "fetchmail-out"
    fm_out.mkdir()
    fm_ids = tmp_path / "fetchmail.ids"
    # Before the gateway: the clients have been keeping mail on old for years.
    fetchmail(lab, tmp_path, fm_ids, fm_out)
    assert len(list(fm_out.iterdir())) == n
    before = keep_client(lab, {})
    assert len(before["fetched"]) == n and len(before["uidls"]) == n
    try:
        g.install_rules()
        g.start()
        # The client's next check, through the gateway now: nothing new for it; the
        # source's +OK to its login starts the copy.
        again = keep_client(lab, before["fetched"])
        assert again["fetched"] == {} and again["uidls"] == before["uidls"]
        wait_state(g, USER, "MIGRATED", timeout=240)

        new_body = "Subject: after the move\r\nMessage-ID: <after@lab.test>\r\n\r\nnew\r\n"
        lab.py_json("router", DELIVER, host=lab.NEW4, user=USER,
                    password=lab.env[f"PASS_{USER}"], body=new_body)
        check = before["uidls"][:3] + before["uidls"][-3:]
        after = keep_client(lab, before["fetched"], check=check)
        assert set(before["uidls"]) <= set(after["uidls"]), (before["uidls"], after["uidls"])
        assert len(after["uidls"]) == n + 1
        assert list(after["fetched"].values()) == [
            hashlib.sha256(new_body.encode("latin-1")).hexdigest()], after["fetched"]
        # Known UIDLs name the bytes the client has for them.
        for u in check:
            assert after["again"][u] == before["fetched"][u], u
        # The session went to new (the gateway's log says it rewrote UIDLs).
        g.wait_log(rf"pop3 user={USER}: served by the destination with {n} source UIDLs",
                   timeout=10)

        # fetchmail again: only the new message.
        got = len(list(fm_out.iterdir()))
        fetchmail(lab, tmp_path, fm_ids, fm_out)
        files = sorted(fm_out.iterdir(), key=lambda f: f.stat().st_mtime_ns)
        assert len(files) == got + 1, [f.name for f in files]
        assert b"Message-ID: <after@lab.test>" in files[-1].read_bytes()
        assert g.stop() == 0
    finally:
        g.teardown()
