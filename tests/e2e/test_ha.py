"""Issue 8: two gateways, one truth. A lab with two router namespaces (router with its
clients on client, router2 with its own on client2; both reach old and new) runs one
gateway in each, on one throwaway PostgreSQL ledger (tests/pg/with-pg.sh: a Unix socket
both namespaces reach), with the in-daemon copy on in both.

1. The same user logs in through both gateways at the same moment: one copy runs (one
   claim of the copy job, one COPYING in the history), and after the flip both gateways
   route the user to new at once — with a routing-cache TTL of ten minutes, so it is the
   NOTIFY that told the gateway that did not copy, not the cache expiring.
2. kill -9 of the gateway running a copy: the other gateway gives the job back once the
   dead one's lease has run out, and the user's next login there (credentials are never
   stored) resumes the copy from what is on new; the result is exact byte for byte.
3. PostgreSQL stopped for 30 s during a copy and during logins: accounts in a final state
   (MIGRATED) keep being routed from the cache, accounts whose state could change are
   refused (IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP], SMTP 451), never guessed; the
   copy pauses; when the server is back everything resumes by itself and old and new are
   equal byte for byte.

Users: user0001..user0004 (the module's own lab has LAB_USERS=4), alice (MIGRATED by
the test; her mailbox is not touched).
"""
import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from lab import Lab
from mfgateway import ROOT, Gateway
from test_migrate_restart import checkpointed
from test_migrate_trigger import append, bulk_corpus, corpus, dump, wait_state, wipe

WITH_PG = os.path.join(ROOT, "tests", "pg", "with-pg.sh")
LEASE_MS = 3000


class Postgres:
    """A throwaway cluster (with-pg.sh --hold) that can be stopped and started."""

    def __init__(self):
        self.p = subprocess.Popen([WITH_PG, "--hold"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().strip()
        assert line.startswith("MF_TEST_PG="), line
        self.url = line.split("=", 1)[1]

    def command(self, cmd, answer):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        assert self.p.stdout.readline().strip() == answer

    def close(self):
        self.p.stdin.close()
        self.p.wait(60)


@pytest.fixture(scope="module")
def hlab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    with Lab.up(users=4, gateways=2) as lab:
        yield lab


@pytest.fixture
def pg():
    p = Postgres()
    try:
        yield p
    finally:
        p.close()


class Pair:
    """Gateway 1 on router, gateway 2 on router2, on one PostgreSQL ledger."""

    def __init__(self, lab, tmp_path, pg_url, cache_ttl_ms=2000, migrate_extra=None):
        self.g = []
        for i, router in ((1, "router"), (2, "router2")):
            d = tmp_path / f"gw{i}"
            mig = {"enabled": "yes", "workers": "1", "state_dir": str(d / "migrate")}
            mig.update(migrate_extra or {})
            self.g.append(Gateway(
                lab, str(d), ports=(143, 110, 25), imap_ports=(143,), pop3_ports=(110,),
                smtp_ports=(25,), router=router,
                ledger={"path": pg_url, "gateway_id": f"gw{i}", "lease_ms": LEASE_MS,
                        "cache_ttl_ms": cache_ttl_ms, "default_domain": lab.env["MAIL_DOMAIN"]},
                migrate=mig))

    def __enter__(self):
        for g in self.g:
            g.install_rules()
            g.start()
        return self.g

    def __exit__(self, *exc):
        try:
            for g in self.g:
                if g.proc is not None:
                    assert g.stop() == 0
        finally:
            for g in self.g:
                g.teardown()


IMAP_LOGIN = r"""
import imaplib, sys
host, user, pw = sys.argv[1:4]
m = imaplib.IMAP4(host, 143, timeout=15)
try:
    typ, _ = m.login(user, pw)
    m.select('INBOX')
    print(typ)
except imaplib.IMAP4.error as e:
    print('NO', e)
m.logout()
"""

POP3_LOGIN = r"""
import poplib, sys
host, user, pw = sys.argv[1:4]
p = poplib.POP3(host, 110, timeout=15)
try:
    p.user(user)
    print(p.pass_(pw).decode())
except poplib.error_proto as e:
    print(e.args[0].decode())
p.quit()
"""

SMTP_RCPT = r"""
import smtplib, sys
host, rcpt = sys.argv[1:3]
s = smtplib.SMTP(host, 25, timeout=15)
s.ehlo('client2.lab.test')
s.mail('someone@example.net')
code, msg = s.rcpt(rcpt)
print(code, msg.decode())
s.quit()
"""

CLIENT_NS = {1: "client", 2: "client2"}


def run_client(lab, gw, code, *args):
    return lab.py_in(CLIENT_NS[gw], code, args=[lab.OLD4, *args], timeout=60).strip()


def imap_login(lab, gw, user):
    return run_client(lab, gw, IMAP_LOGIN, user, lab.env[f"PASS_{user}"])


def conn_after(g, n0, user, timeout=15):
    """The first conn line of user after the first n0 conn lines of g's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in g.conns()[n0:]:
            if c.get("user", "").split("@")[0] == user:
                return c
        time.sleep(0.05)
    raise AssertionError(f"no conn line for {user}:\n" + g.log()[-3000:])


def routed(lab, g, gw, user):
    """Logs user in through gateway gw; returns (answer, route of its conn line)."""
    n0 = len(g.conns())
    out = imap_login(lab, gw, user)
    return out, conn_after(g, n0, user).get("route")


def claims(g, user):
    return len(re.findall(rf"migrate user={user}@\S* state=COPYING owner=", g.log()))


def copied_rows(g, user):
    """Messages the copy on g has checkpointed for user (its state file)."""
    return checkpointed(Path(g.workdir) / "migrate" / f"{user}@{g.lab.env['MAIL_DOMAIN']}.state")


def wait_copying(g, user, min_rows=1, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = g.account(user)["state"]
        assert st in ("UNSEEN", "SEEN", "COPYING"), f"copy over before the check: {st}"
        if st == "COPYING" and copied_rows(g, user) >= min_rows:
            return
        time.sleep(0.02)
    raise AssertionError(f"{user}: no copy progress within {timeout}s\n" + g.log()[-3000:])


def fill_more(lab, user):
    """Two more bulk folders (a bulk copy of a few seconds), in calls of their
    own: the helper's parameters travel in one environment variable."""
    for f in ("Bulk3", "Bulk4"):
        append(lab, lab.OLD4, user, [[f, "", '"10-Oct-2023 10:10:10 +0000"', 2000 + i, 400,
                                      "", "text"] for i in range(600)], create=[f])


def fill(lab, user, corpus_fn):
    wipe(lab, user)
    folders, subs, msgs = corpus_fn()
    append(lab, lab.OLD4, user, msgs, create=folders, subscribe=subs)


def test_same_user_two_gateways_one_copy(hlab, pg, tmp_path):
    lab, user = hlab, "user0001"
    fill(lab, user, corpus)
    with Pair(lab, tmp_path, pg.url, cache_ttl_ms=600000) as (g1, g2):
        go = threading.Barrier(2)
        out = {}

        def login(gw):
            go.wait()
            out[gw] = imap_login(lab, gw, user)

        threads = [threading.Thread(target=login, args=(gw,)) for gw in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert out == {1: "OK", 2: "OK"}, out
        a = wait_state(g1, f"{user}@lab.test", "MIGRATED", 120)
        # one claim, on one gateway; the other was told the job is taken
        assert claims(g1, user) + claims(g2, user) == 1, (g1.log()[-2000:], g2.log()[-2000:])
        assert [e["to"] for e in a["history"]].count("COPYING") == 1, a["history"]
        assert sorted(x["gateway"] for x in a["gateways"]) == ["gw1", "gw2"], a
        # both route to new now: the gateway that did not copy had the account
        # cached (TTL 10 min) and heard of the flip by NOTIFY
        for gw, g in ((1, g1), (2, g2)):
            assert routed(lab, g, gw, user) == ("OK", "destination")
        assert dump(lab, lab.OLD4, user) == dump(lab, lab.NEW4, user)
        # Each gateway's status lists both, running, from their heartbeats
        # in the shared ledger; which gateway saw the user is in the report.
        for g in (g1, g2):
            st = json.loads(g.cli("status", "--json").stdout)
            gws = {x["id"]: x["health"] for x in st["gateways"]}
            assert gws == {"gw1": "running", "gw2": "running"}, st["gateways"]
    wipe(lab, user)


def test_kill9_owner_other_gateway_takes_over(hlab, pg, tmp_path):
    lab, user = hlab, "user0002"
    fill(lab, user, bulk_corpus)
    fill_more(lab, user)
    with Pair(lab, tmp_path, pg.url) as (g1, g2):
        assert imap_login(lab, 1, user) == "OK"
        wait_copying(g1, user, min_rows=50)
        assert claims(g1, user) == 1
        # its checkpoints reach the ledger with a lease renewal
        g1.wait_log(rf"lease user={user}@\S*: checkpoints stored", timeout=10)
        assert g1.account(user)["state"] == "COPYING"
        g1.proc.kill()                     # kill -9 in the middle of the bulk copy
        g1.proc.wait()
        g1.proc = None
        killed = time.monotonic()
        # The user keeps logging in through gateway 2 (a mail client polling):
        # refused a copy while gw1's lease runs, served by the source all along
        # (or refused "try again" if gw1 died in CUTOVER), never by new.
        taken = None
        while time.monotonic() - killed < 4 * LEASE_MS / 1000 + 10:
            n0 = len(g2.conns())
            out = imap_login(lab, 2, user)
            assert out == "OK" or "[UNAVAILABLE]" in out, out
            if out == "OK":
                assert conn_after(g2, n0, user)["route"] == "source"
            if claims(g2, user) == 1:
                taken = time.monotonic() - killed
                break
            time.sleep(0.5)
        assert taken is not None, g2.log()[-3000:]
        # given back by gw2's keeper after the lease (plus its reap period),
        # resumed from gw1's checkpoints
        assert re.search(rf"lease user={user}@\S* owner=gw1: copy job given back", g2.log())
        assert re.search(rf"migrate user={user}@\S*: checkpoints of gateway gw1 restored",
                         g2.log())
        a = wait_state(g2, f"{user}@lab.test", "MIGRATED", 180)
        hist = [e["to"] for e in a["history"]]
        assert hist[-3:] == ["COPYING", "CUTOVER", "MIGRATED"], a["history"]
        assert hist[-4] == "SEEN" and "gw1 lost its lease" in a["history"][-4]["reason"]
        assert hist.count("COPYING") == 2
        # exact: nothing lost, nothing twice (the second copy reconciled what the
        # first had put on new by size and SHA-256)
        assert dump(lab, lab.OLD4, user) == dump(lab, lab.NEW4, user)
        assert routed(lab, g2, 2, user) == ("OK", "destination")
    wipe(lab, user)


def test_kill9_owner_master_user_resumes_without_login(hlab, pg, tmp_path):
    """With a master user, the job a killed gateway held is resumed by the other
    gateway as soon as its keeper gives it back: no login of the user needed."""
    from test_migrate_tls_master import master_file
    lab, user = hlab, "user0003"
    fill(lab, user, bulk_corpus)
    fill_more(lab, user)
    extra = {"master_user": lab.env["MASTER_USER"],
             "master_password_file": master_file(tmp_path, lab)}
    with Pair(lab, tmp_path, pg.url, migrate_extra=extra) as (g1, g2):
        assert imap_login(lab, 1, user) == "OK"
        wait_copying(g1, user, min_rows=50)
        g1.wait_log(rf"lease user={user}@\S*: checkpoints stored", timeout=10)
        n0 = len(g2.conns())
        g1.proc.kill()                     # kill -9 in the middle of the bulk copy
        # (the copy's state file names the account, so the master's login form,
        # "user0003" for user0003@lab.test, resumes gw1's checkpoints)
        g1.proc.wait()
        g1.proc = None
        g2.wait_log(rf"lease user={user}@\S* owner=gw1: copy job given back, user served "
                    r"by the source until its copy resumes here \(master user\)",
                    timeout=4 * LEASE_MS / 1000 + 20)
        a = wait_state(g2, f"{user}@lab.test", "MIGRATED", 180)
        hist = a["history"]
        assert [e["to"] for e in hist][-4:] == ["SEEN", "COPYING", "CUTOVER", "MIGRATED"], hist
        assert "resumed without a login as master user" in hist[-3]["reason"], hist[-3]
        # Nobody logged in meanwhile: gateway 2 saw no session of the user.
        assert [c for c in g2.conns()[n0:] if c.get("user", "").split("@")[0] == user] == []
        assert dump(lab, lab.OLD4, user) == dump(lab, lab.NEW4, user)
    wipe(lab, user)


def test_postgresql_down_30s(hlab, pg, tmp_path):
    lab, user, other, final = hlab, "user0003", "user0004", "alice"
    fill(lab, user, bulk_corpus)
    with Pair(lab, tmp_path, pg.url) as (g1, g2):
        g1.cli("accounts", "set-state", final, "MIGRATED")
        # FAILED (no retry for an hour): a state that could change, and no copy
        g1.cli("accounts", "set-state", other, "FAILED", "--reason", "test")
        for gw, g in ((1, g1), (2, g2)):
            assert routed(lab, g, gw, final) == ("OK", "destination")
            assert routed(lab, g, gw, other) == ("OK", "source")
        assert imap_login(lab, 1, user) == "OK"
        wait_copying(g1, user, min_rows=50)
        pg.command("stop", "stopped")
        down = time.monotonic()
        # the copy pauses: its lease cannot be renewed
        g1.wait_log(rf"lease user={user}@\S*: not renewed .*copy paused", timeout=10)
        rounds = 0
        while time.monotonic() - down < 30:
            for gw, g in ((1, g1), (2, g2)):
                assert routed(lab, g, gw, final) == ("OK", "destination")
                out = imap_login(lab, gw, other)
                assert out.startswith("NO") and "[UNAVAILABLE]" in out, out
                out = imap_login(lab, gw, user)
                assert out.startswith("NO") and "[UNAVAILABLE]" in out, out
            out = run_client(lab, 2, POP3_LOGIN, other, lab.env[f"PASS_{other}"])
            assert out.startswith("-ERR [SYS/TEMP]"), out
            out = run_client(lab, 2, SMTP_RCPT, f"{other}@lab.test")
            assert out.startswith("451"), out
            rounds += 1
            time.sleep(1)
        assert rounds >= 5
        pg.command("start", "started")
        # everything resumes by itself: the copy, the flip, the routing
        wait_state(g1, f"{user}@lab.test", "MIGRATED", 180)
        assert dump(lab, lab.OLD4, user) == dump(lab, lab.NEW4, user)
        for gw, g in ((1, g1), (2, g2)):
            deadline = time.monotonic() + 20
            while True:
                out, route = routed(lab, g, gw, other)
                if out == "OK" or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert (out, route) == ("OK", "source")
            assert routed(lab, g, gw, user) == ("OK", "destination")
        # never a wrong route: the final account always went to new, the copied
        # one to the source only before its flip, to new after
        for g in (g1, g2):
            for c in g.conns():
                who = c.get("user", "").split("@")[0]
                if who == final:
                    assert c.get("route") == "destination", c
        a = g1.account(user)
        assert [e["to"] for e in a["history"]].count("MIGRATED") == 1
    wipe(lab, user)
