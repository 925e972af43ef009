"""Issue 3, test 6: passwords never stay in the daemon's memory — what a core
file would hold — after logins of every kind, plaintext and TLS, accepted
and refused, with sessions still open and closed.

Runs the plain build (build/mailferryd): the sanitizer build maps terabytes
of shadow memory that cannot be scanned, and glibc's free() keeps freed
bytes, so this also checks that the code wipes before it frees."""
import base64
import os
import time

import pytest

from mfgateway import ROOT, client_py, running
from test_tls import ctx_code, pki, tls_conf

PLAIN_DAEMON = os.path.join(ROOT, "build", "mailferryd")
WRONG = "Wr0ng-secret-pw-7781"


@pytest.mark.skipif(not os.path.exists(PLAIN_DAEMON), reason="needs build/mailferryd")
def test_no_password_in_daemon_memory(lab, tmp_path):
    pw = {u: lab.env["PASS_" + u] for u in ("alice", "bob")}
    with running(lab, str(tmp_path), ports=(143, 993, 110, 995), imap_ports=(143,),
                 pop3_ports=(110,), tls=tls_conf(lab), daemon=PLAIN_DAEMON) as g:
        g.cli("accounts", "set-state", "bob", "MIGRATED")
        # One client keeps a TLS session and a plaintext session open
        # (relaying) while the scan runs; it exits when told.
        holder = lab.popen("client", ["/usr/bin/python3", "-c", ctx_code(lab) + f"""
import imaplib, sys
a = imaplib.IMAP4_SSL({lab.env['OLD4']!r}, 993, ssl_context=ctx, timeout=30)
a.login('alice', {pw['alice']!r}); a.select('INBOX')
b = imaplib.IMAP4({lab.env['OLD4']!r}, 143, timeout=30)
b.login('bob', {pw['bob']!r}); b.select('INBOX')
print('open', flush=True)
sys.stdin.readline()
a.logout(); b.logout()
"""], stdin=-1, stdout=-1, text=True)
        try:
            assert holder.stdout.readline().strip() == "open"
            client_py(lab, ctx_code(lab) + f"""
import imaplib, poplib
O = {lab.env['OLD4']!r}
for user, pw in (('alice', {pw['alice']!r}), ('bob', {pw['bob']!r})):
    m = imaplib.IMAP4(O, 143, timeout=10)
    m.authenticate('PLAIN', lambda _: ('\\0' + user + '\\0' + pw).encode()); m.logout()
    m = imaplib.IMAP4(O, 143, timeout=10)
    m.starttls(ssl_context=ctx); m.login(user, pw); m.logout()
    m = imaplib.IMAP4(O, 143, timeout=10)
    m.login(user, pw); m.logout()
    p = poplib.POP3_SSL(O, 995, context=ctx, timeout=10); p.user(user); p.pass_(pw); p.quit()
    p = poplib.POP3(O, 110, timeout=10); p.stls(context=ctx); p.user(user); p.pass_(pw); p.quit()
for port in (143, 993):
    m = imaplib.IMAP4_SSL(O, 993, ssl_context=ctx, timeout=10) if port == 993 else imaplib.IMAP4(O, 143, timeout=10)
    try:
        m.login('alice', {WRONG!r})
    except imaplib.IMAP4.error:
        pass
    m.logout()
""", timeout=120)
            time.sleep(0.5)
            secrets = [p.encode() for p in pw.values()] + [WRONG.encode()]
            secrets += [base64.b64encode(b"\0" + u.encode() + b"\0" + p.encode())
                        for u, p in (("alice", pw["alice"]), ("bob", pw["bob"]))]
            # The scan sees the daemon's heap: the ledger path from the
            # config it parsed is there.
            assert g.memory_holding(g.ledger.encode()) != []
            for secret in secrets:
                assert g.memory_holding(secret) == [], secret
        finally:
            holder.stdin.write("\n")
            holder.stdin.flush()
            holder.wait(30)
        assert holder.returncode == 0
