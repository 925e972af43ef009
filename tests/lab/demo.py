#!/usr/bin/python3
"""make demo: the whole product on the lab network, in a few minutes.

A lab of four network namespaces (client, router, old, new; real Dovecot and
Postfix on old and new) is made for this run and removed at the end, also on
failure. Three users get a few hundred messages each on old (folders, flags,
keywords). mailferryd runs on the router with the in-daemon copy on; the
rules divert the client subnet's mail flows to it. Then:
  alice logs in with IMAP and keeps working: she is copied live (progress
        shown), her session is closed at the cutover, her next login is on new;
  bob   reads his mail with POP3: that login copies him too;
  carol never logs in: she stays on old.
The per-folder comparison shows old and new equal (every message's SHA-256),
`mailferry accounts list` the states, and the retire report says the old
server cannot be switched off yet (carol).
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from lab import Lab  # noqa: E402

BOLD, END = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
MESSAGES = int(os.environ.get("DEMO_MESSAGES", "300"))


def step(text):
    print(f"\n{BOLD}== {text}{END}", flush=True)


def say(text):
    print(f"   {text}", flush=True)


# Runs in the router namespace: fills a mailbox on old (folders, flags,
# keywords, dates), or lists one (folder -> [(size, sha256, flags)]).
IMAP_TOOLS = r'''
import hashlib, imaplib, re
def conn(host, user, pw):
    c = imaplib.IMAP4(host, 143, timeout=60)
    c.login(user, pw)
    return c
LIST_RX = re.compile(r'^\((?P<flags>[^)]*)\) "(?P<delim>[^"]*)" "?(?P<name>[^"]*)"?$')
def delim(c):
    typ, data = c.list('""', '""')
    return LIST_RX.match(data[0].decode()).group("delim")
def fill(c, user, n):
    folders = ["INBOX", "Work", "Work" + delim(c) + "2025", "Receipts"]
    for f in folders[1:]:
        c.create(f)
    c.subscribe("Work")
    flagsets = ["", "(\\Seen)", "(\\Seen \\Answered)", "(\\Flagged $Important)", "(\\Seen $Paid)"]
    for i in range(n):
        f = folders[i % len(folders)]
        body = ("From: Sender %d <sender%d@example.net>\r\nTo: %s@lab.test\r\n"
                "Subject: demo message %d for %s\r\nMessage-ID: <demo-%s-%d@example.net>\r\n"
                "Date: Mon, 03 Mar 2025 10:%02d:00 +0000\r\n\r\n" % (i % 7, i % 7, user, i, user, user, i, i % 60)
                + ("Line %d of a demo message.\r\n" % i) * (20 + (i * 37) % 400))
        date = '"%02d-Mar-2025 10:%02d:00 +0000"' % (1 + i % 28, i % 60)
        typ, _ = c.append(f, flagsets[i % len(flagsets)], date, body.encode())
        assert typ == "OK"
def listing(c):
    out = {}
    typ, data = c.list()
    for line in data:
        name = LIST_RX.match(line.decode()).group("name")
        typ, d = c.select('"%s"' % name, readonly=True)
        msgs = []
        if int(d[0]) > 0:
            typ, d = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
            for part in d:
                if isinstance(part, tuple):
                    flags = sorted(f for f in re.search(rb"FLAGS \(([^)]*)\)", part[0]).group(1).decode().split() if f != "\\Recent")
                    msgs.append([len(part[1]), hashlib.sha256(part[1]).hexdigest(), flags])
        out[name] = sorted(msgs)
    return out
'''

WORKING = r"""
import imaplib, sys, time
host, user, pw = sys.argv[1:4]
m = imaplib.IMAP4(host, 143, timeout=30)
m.login(user, pw)
typ, data = m.select('INBOX')
print('alice: logged in, INBOX holds', int(data[0]), 'messages; reading mail...', flush=True)
m.store('1:3', '+FLAGS', '(\\Seen)')
try:
    for n in range(1200):
        m.noop()
        time.sleep(0.1)
    print('alice: never closed')
except Exception as e:
    print('alice: the gateway closed her session at the cutover (%s); her client reconnects'
          % type(e).__name__, flush=True)
"""

POP3 = r"""
import poplib, sys
host, user, pw = sys.argv[1:4]
p = poplib.POP3(host, 110, timeout=30)
p.user(user)
p.pass_(pw)
n, size = p.stat()
print('bob: POP3 STAT says %d messages, %d bytes in his INBOX' % (n, size))
p.quit()
"""


def mailferry(lab, conf, *args, check=True):
    r = lab.run("router", [str(ROOT / "build" / "mailferry"), "-c", conf, *args],
                capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError(f"mailferry {' '.join(args)}: {r.stderr}")
    return r.stdout


def account(lab, conf, user):
    r = lab.run("router", [str(ROOT / "build" / "mailferry"), "-c", conf, "accounts", "show",
                           user, "--json"], capture_output=True, text=True, timeout=30)
    return json.loads(r.stdout) if r.returncode == 0 else {"state": "UNSEEN"}


def copied(state_file):
    """Messages the copy has checkpointed (its state file; read-only)."""
    import sqlite3
    if not state_file.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{state_file}?mode=ro", uri=True, timeout=1)
        n = db.execute("SELECT count(*) FROM msg").fetchone()[0]
        db.close()
        return n
    except sqlite3.Error:
        return 0


def main():
    t0 = time.monotonic()
    with Lab.up() as lab:
        step("Lab: client 198.18.1.2 -- router (mailferryd) -- old 198.18.11.2 / new 198.18.11.3")
        say("network namespaces made for this run, linked only to each other; Dovecot + "
            "Postfix on old and new")
        users = {u: lab.env[f"PASS_{u}"] for u in ("alice", "bob", "carol")}

        step(f"Old server: {MESSAGES} messages each for alice, bob and carol "
             "(INBOX, Work, Work.2025, Receipts; flags and keywords)")
        for u, pw in users.items():
            lab.py_json("router", IMAP_TOOLS + "c = conn(P['host'], P['user'], P['pw'])\n"
                        "fill(c, P['user'], P['n'])\nc.logout()",
                        host=lab.OLD4, user=u, pw=pw, n=MESSAGES, timeout=300)
            say(f"{u}: done")

        conf = str(Path(lab.env["LAB_DIR"]) / "mailferry.conf")
        state_dir = Path(lab.env["LAB_DIR"]) / "migrate"
        Path(conf).write_text(f"""[gateway]
workers = 1
[intercept]
sources = {lab.OLD4}, {lab.OLD6}
ports = 25, 110, 143, 465, 587, 993, 995
clients = {lab.env['CLIENT_NET4']}, {lab.env['CLIENT_NET6']}
destination = {lab.NEW4}, {lab.NEW6}
[ledger]
path = {lab.env['LAB_DIR']}/ledger.db
default_domain = lab.test
[migrate]
enabled = yes
workers = 2
state_dir = {state_dir}
""")
        step("Router: install the interception rules (netlink, one atomic batch), start mailferryd")
        say(mailferry(lab, conf, "rules", "install").strip().replace("\n", "\n   "))
        log_path = Path(lab.env["LAB_DIR"]) / "mailferryd.log"
        with open(log_path, "w") as log:
            gw = lab.popen("router", [str(ROOT / "build" / "mailferryd"), "-c", conf],
                           stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 15
            while "banners probed" not in log_path.read_text():
                if gw.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("mailferryd did not start:\n" + log_path.read_text())
                time.sleep(0.1)
            say("mailferryd is up: " + [ln for ln in log_path.read_text().splitlines()
                                         if "started" in ln][0])

            step("alice logs in with IMAP and keeps working: the gateway copies her live")
            mark_new = lab.log_mark("DOVECOT_LOG_NEW")
            alice = lab.popen("client", ["/usr/bin/python3", "-c", WORKING, lab.OLD4, "alice",
                                         users["alice"]], stdout=subprocess.PIPE, text=True)
            say(alice.stdout.readline().strip())
            total = MESSAGES
            last = -1
            deadline = time.monotonic() + 240
            while True:
                a = account(lab, conf, "alice")
                n = copied(state_dir / "alice@lab.test.state")
                if (n, a["state"]) != last:
                    bar = "#" * int(30 * min(n, total) / total)
                    say(f"alice {a['state']:<9} [{bar:<30}] {n}/{total} messages copied")
                    last = (n, a["state"])
                if a["state"] in ("MIGRATED", "FAILED") or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            say(alice.communicate(timeout=60)[0].strip())
            say("ledger: " + a.get("reason", ""))

            step("bob reads his mail with POP3: that login copies him too")
            say(lab.py_in("client", POP3, args=[lab.OLD4, "bob", users["bob"]]).strip())
            deadline = time.monotonic() + 240
            while account(lab, conf, "bob")["state"] not in ("MIGRATED", "FAILED"):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            b = account(lab, conf, "bob")
            say(f"bob: {b['state']} ({b.get('reason', '')})")

            step("Next logins: alice (IMAP) and bob (POP3) are served by the new server")
            say(lab.py_in("client", WORKING.replace("range(1200)", "range(0)"),
                          args=[lab.OLD4, "alice", users["alice"]]).splitlines()[0])
            say(lab.py_in("client", POP3, args=[lab.OLD4, "bob", users["bob"]]).strip())
            time.sleep(0.3)
            new_logins = [ln for ln in lab.log_since("DOVECOT_LOG_NEW", mark_new).splitlines()
                          if "-login: Info: Login:" in ln and "rip=198.18.1.2" in ln]
            for ln in new_logins[-2:]:
                say("new server's Dovecot: " + ln.split(": Info: ", 1)[1][:90])

            step("Nothing lost: old and new compared folder by folder (every message's size, "
                 "SHA-256, flags)")
            same = True
            for u in ("alice", "bob"):
                code = IMAP_TOOLS + "c = conn(P['host'], P['user'], P['pw']); RESULT = listing(c); c.logout()"
                old = lab.py_json("router", code, host=lab.OLD4, user=u, pw=users[u], timeout=120)
                new = lab.py_json("router", code, host=lab.NEW4, user=u, pw=users[u], timeout=120)
                for folder in sorted(old):
                    ok = old[folder] == new.get(folder)
                    same = same and ok
                    say(f"{u:<6} {folder:<10} old {len(old[folder]):>4}  new "
                        f"{len(new.get(folder, [])):>4}  {'identical' if ok else 'DIFFERENT'}")
            say("all identical" if same else "DIFFERENCES FOUND")

            step("The ledger (mailferry accounts list)")
            say(mailferry(lab, conf, "accounts", "list").rstrip().replace("\n", "\n   "))
            extra = os.environ.get("DEMO_EXTRA_CMDS", "")
            for cmd in filter(None, extra.split(";")):
                step("mailferry " + cmd.strip())
                say(mailferry(lab, conf, *cmd.split(), check=False).rstrip().replace("\n", "\n   "))
        finally:
            if gw.poll() is None:
                gw.terminate()
                gw.wait(30)
            mailferry(lab, conf, "rules", "remove", check=False)
        step(f"Done in {time.monotonic() - t0:.0f} s: mailferryd stopped, rules removed, "
             "lab torn down")
        if not same:
            sys.exit(1)


if __name__ == "__main__":
    main()
