"""`mailferry migrate` one-shot, old -> new on the lab, byte-exact and resumable.

The corpus is made here, by APPENDing straight to old with imaplib (no gateway):
nested folders, a modified-UTF-7 name, an empty folder, a folder marked \\Sent whose
name differs from new's \\Sent folder (CREATE ... USE, when Dovecot offers it), flags
and custom keywords, distinct INTERNALDATEs, sizes from 200 bytes to 5 MiB, 8-bit and
binary bodies, malformed MIME, duplicate Message-IDs and messages without one,
subscriptions. After each run the whole mailbox of old is compared with new's: every
folder, every message's bytes (SHA-256, in UID order), flags, keywords, INTERNALDATE,
and the subscriptions.

The test user (carol) is wiped on both servers before and after this module.
"""

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# MF_MIGRATE_BIN=build/asan/mailferry runs these tests on the ASan+UBSan build
# (a sanitizer report makes the run exit non-zero; the RSS bound is not checked then).
MAILFERRY = Path(os.environ.get("MF_MIGRATE_BIN") or ROOT / "build" / "mailferry").resolve()
SANITIZED = "asan" in str(MAILFERRY)
USER = "carol"

# Runs inside a lab namespace (py_json): helpers over imaplib.
HELPERS = r'''
import imaplib, hashlib, re, datetime, time

def conn(host):
    c = imaplib.IMAP4(host, 143, timeout=60)
    c.login(P["user"], P["password"])
    return c

def q(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'

LIST_RX = re.compile(rb'^\((?P<flags>[^)]*)\) (?P<delim>"[^"]*"|NIL) (?P<name>.*)$')

def unq(b):
    b = b.strip()
    if b.startswith(b'"'):
        return b[1:-1].replace(b'\\"', b'"').replace(b'\\\\', b'\\').decode()
    return b.decode()

def listing(c, cmd="LIST"):
    typ, data = c._simple_command(cmd, '""', '"*"')
    assert typ == "OK", (typ, data)
    typ, data = c._untagged_response(typ, data, cmd)
    out = {}
    for line in data:
        if line is None:
            continue
        if isinstance(line, tuple):  # name as a literal
            head, lit = line
            m = LIST_RX.match(head.rsplit(b" {", 1)[0] + b" x")
            out[lit.decode()] = m.group("flags").decode().split()
            continue
        m = LIST_RX.match(line)
        out[unq(m.group("name"))] = m.group("flags").decode().split()
    return out

def wipe(c):
    for name in listing(c, "LSUB"):
        c._simple_command("UNSUBSCRIBE", q(name))
    names = [n for n in listing(c) if n != "INBOX"]
    for n in sorted(names, key=len, reverse=True):
        typ, data = c._simple_command("DELETE", q(n))
    left = [n for n in listing(c) if n != "INBOX"]
    assert not left, left
    typ, data = c.select("INBOX")
    if int(data[0]) > 0:
        c.store("1:*", "+FLAGS.SILENT", "(\\Deleted)")
        c.expunge()
    c.close()

FETCH_RX = re.compile(rb'UID (\d+)|FLAGS \(([^)]*)\)|INTERNALDATE "([^"]+)"')

def dump(c):
    """{folder: [[sha256, size, sorted flags, internaldate epoch], ...] in UID order}"""
    out = {"folders": {}, "subscribed": sorted(listing(c, "LSUB")), "special": {}}
    for name, flags in sorted(listing(c).items()):
        for f in flags:
            if f in ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive"):
                out["special"][f] = name
        if "\\Noselect" in flags or "\\NonExistent" in flags:
            continue
        typ, data = c.select(q(name), readonly=True)
        assert typ == "OK", (name, typ, data)
        msgs = []
        out["folders"][name] = msgs
        if int(data[0]) == 0:
            continue
        typ, data = c.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        assert typ == "OK", (name, typ, data)
        for item in data:
            if not isinstance(item, tuple):
                continue
            head, body = item
            uid = flags_s = date = None
            for m in FETCH_RX.finditer(head):
                if m.group(1):
                    uid = int(m.group(1))
                if m.group(2) is not None:
                    flags_s = m.group(2).decode()
                if m.group(3):
                    date = m.group(3).decode()
            assert uid and flags_s is not None and date, head
            ts = datetime.datetime.strptime(date, "%d-%b-%Y %H:%M:%S %z").timestamp()
            fl = sorted(f for f in flags_s.split() if f.lower() != "\\recent")
            msgs.append([uid, hashlib.sha256(body).hexdigest(), len(body), fl, ts])
        msgs.sort()
        msgs[:] = [m[1:] for m in msgs]
    return out

def mime(i, size, extra_headers="", body_kind="text"):
    """A message of about size bytes (latin-1 text: 8-bit safe)."""
    head = (f"From: Sender {i} <s{i}@lab.test>\r\nTo: {P['user']}@lab.test\r\n"
            f"Subject: message {i} \xe9t\xe9\r\nDate: Mon, 1 Jan 2024 10:00:{i % 60:02d} +0000\r\n"
            + extra_headers)
    if body_kind == "8bit":
        head += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=latin1\r\n" \
                "Content-Transfer-Encoding: 8bit\r\n"
        line = "caf\xe9 na\xefve \xfcber \xff\xfe r\xe9sum\xe9 " * 2 + "\r\n"
    elif body_kind == "binary":
        head += "MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n" \
                "Content-Transfer-Encoding: binary\r\n"
        line = "".join(chr((k * 37 + i) % 256) for k in range(1, 200) if (k * 37 + i) % 256
                       not in (0, 10, 13)) + "\r\n"
    elif body_kind == "malformed":
        head += "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"nowhere\r\n"
        line = "--wrong-boundary\r\nContent-Type: text/plain\r\n\r\nunterminated part\r\n"
    else:
        line = f"line of message {i} " * 4 + "\r\n"
    out = head + "\r\n"
    while len(out) < size:
        out += line
    return out[:max(size, len(head) + 2)]
'''


def helper(lab, host, code, timeout=300, **params):
    return lab.py_json("router", HELPERS + code, timeout=timeout, host=host, user=USER,
                       password=lab.env[f"PASS_{USER}"], **params)


def wipe(lab):
    for host in (lab.OLD4, lab.NEW4):
        helper(lab, host, "c = conn(P['host']); wipe(c); c.logout()")


def dump(lab, host):
    return helper(lab, host, "c = conn(P['host']); RESULT = dump(c); c.logout()")


CORPUS_APPEND = r'''
c = conn(P["host"])
caps = c.capabilities
res = {"special_create": False}
rename = {}
for f in P["create"]:
    typ, data = c._simple_command("CREATE", q(f))
    assert typ == "OK", (f, data)
if P.get("sent_as"):
    typ, data = c._simple_command("CREATE", q(P["sent_as"]) + " (USE (\\Sent))")
    res["special_create"] = typ == "OK" and "\\Sent" in listing(c).get(P["sent_as"], [])
    if not res["special_create"]:
        c._simple_command("DELETE", q(P["sent_as"]))
        # No CREATE-SPECIAL-USE: old's \\Sent folder is the one lab.sh names, "Sent".
        rename[P["sent_as"]] = "Sent"
        typ, data = c._simple_command("CREATE", q("Sent"))
        assert typ == "OK", data
for f in P["subscribe"]:
    typ, data = c._simple_command("SUBSCRIBE", q(f))
    assert typ == "OK", (f, data)
for folder, flags, date, i, size, extra, kind in P["msgs"]:
    body = mime(i, size, extra, kind).encode("latin-1")
    folder = rename.get(folder, folder)
    typ, data = c.append(q(folder), flags, date, body)
    assert typ == "OK", (folder, typ, data)
c.logout()
RESULT = res
'''


def append_msgs(lab, host, msgs, create=(), subscribe=(), sent_as=None, timeout=300):
    return helper(lab, host, CORPUS_APPEND, timeout=timeout, msgs=msgs, create=list(create),
                  subscribe=list(subscribe), sent_as=sent_as)


def corpus():
    """(folders to create, subscriptions, messages [folder, flags, date, body])."""
    utf7 = "Re&AwE-sum&AOk-"  # modified UTF-7 of "Résumé"-like name
    folders = ["Projects", "Projects.2024", "Projects.2024.Q1", utf7, "Empty", "Archive2",
               "Drafts"]
    subs = ["INBOX", "Projects", "Projects.2024.Q1", utf7, "Empty"]
    msgs = []
    sizes = [200, 1024, 4096, 30000, 120000, 700000, 5 * 1024 * 1024]
    flagsets = ["", "(\\Seen)", "(\\Seen \\Answered)", "(\\Flagged $Label1)",
                "(\\Seen custom_kw $Forwarded)", "(\\Draft)", "(NonJunk \\Deleted)"]
    places = ["INBOX", "Projects", "Projects.2024.Q1", utf7, "Archive2", "Drafts",
              "Sent Items"]
    for i in range(42):
        size = sizes[i % len(sizes)] if i < 21 else 200 + 37 * i
        kind = ["text", "8bit", "binary", "malformed"][i % 4]
        extra = ""
        if i % 5 == 0:
            extra = "Message-ID: <dup@lab.test>\r\n"  # duplicate Message-IDs
        elif i % 5 != 1:
            extra = f"Message-ID: <m{i}@lab.test>\r\n"  # i % 5 == 1: no Message-ID
        date = f'"{(i % 27) + 1:02d}-Mar-20{10 + i % 14} {i % 24:02d}:{i % 60:02d}:07 ' \
               f'{"+" if i % 2 else "-"}0{i % 10}30"'
        msgs.append([places[i % len(places)], flagsets[i % len(flagsets)], date,
                     i, size, extra, kind])
    # 20 MiB, streamed: never held whole (peak RSS is checked).
    msgs.append(["Archive2", "(\\Seen)", '"03-Mar-2023 03:03:03 +0000"', 20000, 20 << 20, "",
                 "8bit"])
    # Exact duplicates in one folder: both must arrive.
    msgs.append(["INBOX", "(\\Seen)", '"02-Feb-2022 02:02:02 +0000"', 999, 500, "", "text"])
    msgs.append(["INBOX", "(\\Seen)", '"02-Feb-2022 02:02:02 +0000"', 999, 500, "", "text"])
    return folders, subs, msgs


# Runs argv with our stdin and reports the child's peak RSS on stderr's last line.
RSS_WRAP = ("import resource, subprocess, sys\n"
            "rc = subprocess.call(sys.argv[1:])\n"
            "sys.stderr.write('\\nMAXRSS_KB=%d\\n' % "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            "sys.exit(rc)\n")


def max_rss_kb(p):
    return int(p.stderr.rsplit("MAXRSS_KB=", 1)[1].split()[0])


def run_migrate(lab, tmp_path, *extra, timeout=600, state=None):
    state = state or tmp_path / "state.db"
    argv = ["/usr/bin/python3", "-c", RSS_WRAP, str(MAILFERRY), "migrate", "--source", f"imap://{lab.OLD4}:143",
            "--destination", f"imap://{lab.NEW4}:143", "--user", USER, "--password-stdin",
            "--state", str(state), *extra]
    p = lab.run("router", argv, input=lab.env[f"PASS_{USER}"] + "\n", capture_output=True,
                text=True, timeout=timeout)
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    assert lines, (p.returncode, p.stdout, p.stderr)
    return p, lines[-1], lines


def expected_new(old, sent_map):
    """What new must look like: old with the \\Sent folder renamed as new names it."""
    out = {"folders": {}, "subscribed": []}
    ren = lambda n: sent_map.get(n, n)  # noqa: E731
    for name, msgs in old["folders"].items():
        out["folders"][ren(name)] = msgs
    out["subscribed"] = sorted(ren(n) for n in old["subscribed"])
    return out


def assert_same(lab, sent_map):
    old = dump(lab, lab.OLD4)
    new = dump(lab, lab.NEW4)
    want = expected_new(old, sent_map)
    assert sorted(new["folders"]) == sorted(want["folders"])
    for name, msgs in want["folders"].items():
        assert new["folders"][name] == msgs, f"folder {name} differs"
    assert new["subscribed"] == want["subscribed"]
    return old, new


@pytest.fixture(scope="module")
def mlab(lab):
    if not MAILFERRY.exists():
        pytest.skip("build/mailferry not built (make)")
    wipe(lab)
    yield lab
    wipe(lab)


def test_oneshot_copy_rerun_incremental_kill(mlab, tmp_path):
    lab = mlab
    folders, subs, msgs = corpus()
    # new names its \Sent folder "Sent" (lab.sh); old gets "Sent Items" marked \Sent.
    info = append_msgs(lab, lab.NEW4, [], create=["Sent"])
    info = append_msgs(lab, lab.OLD4, msgs, create=folders, subscribe=subs,
                       sent_as="Sent Items")
    old = dump(lab, lab.OLD4)
    sent_map = {}
    if info["special_create"] and old["special"].get("\\Sent") == "Sent Items":
        sent_map = {"Sent Items": "Sent"}
    else:
        # Dovecot here cannot mark another name \Sent: the names are the same on
        # both sides and the mapping is exercised with those.
        assert old["special"].get("\\Sent") == "Sent" and len(old["folders"]["Sent"]) > 0
    total = sum(len(v) for v in old["folders"].values())
    assert total == len(msgs)
    assert len(old["folders"]["INBOX"]) >= 2 and old["folders"]["Empty"] == []

    # 1. The copy: exit 0, everything copied, new == old.
    p, last, lines = run_migrate(lab, tmp_path)
    assert p.returncode == 0, (p.stdout[-3000:], p.stderr)
    assert last["event"] == "done" and last["verify_ok"] is True
    assert last["copied"] == total and last["verified"] == total
    assert any(x.get("phase") == "copy" for x in lines)
    # 5 and 20 MiB messages went through without being held in memory.
    print(f"peak RSS of the copy: {max_rss_kb(p)} KB")
    if not SANITIZED:
        assert max_rss_kb(p) < 24 * 1024, max_rss_kb(p)
    _, new = assert_same(lab, sent_map)
    if sent_map:
        assert new["special"].get("\\Sent") == "Sent"
        assert "Sent Items" not in new["folders"]
    assert "Re&AwE-sum&AOk-" in new["folders"] and new["folders"]["Empty"] == []
    assert "\\Deleted" in new["folders"]["Projects.2024.Q1"][0][2] or any(
        "\\Deleted" in m[2] for f in new["folders"].values() for m in f)
    # Every copy's destination UID came from APPENDUID (Dovecot has UIDPLUS), with the
    # source's size and SHA-256; the state file is private.
    db = sqlite3.connect(str(tmp_path / "state.db"))
    rows = db.execute("SELECT count(*), sum(dst_uid = 0), sum(length(sha256) = 32) FROM msg")
    assert list(rows.fetchone()) == [total, 0, total]
    db.close()
    assert (tmp_path / "state.db").stat().st_mode & 0o777 == 0o600
    # The password went nowhere: not in the output, not in the state file.
    pw = lab.env[f"PASS_{USER}"]
    assert pw not in p.stdout and pw not in p.stderr
    assert pw.encode() not in (tmp_path / "state.db").read_bytes()

    # 2. Rerun: nothing copied twice.
    p, last, _ = run_migrate(lab, tmp_path)
    assert p.returncode == 0, p.stderr
    assert last["copied"] == 0 and last["verified"] == total
    assert_same(lab, sent_map)

    # 3. One more message on old (and a flag changed there): exactly one more.
    append_msgs(lab, lab.OLD4, [["Projects", "(\\Seen kw_new)", '"05-May-2025 05:05:05 +0500"',
                                 5000, 3000, "", "8bit"]])
    helper(lab, lab.OLD4, "c = conn(P['host']); c.select('INBOX'); "
                          "c.store('1', '+FLAGS', '(\\\\Answered later_kw)'); c.logout()")
    p, last, _ = run_migrate(lab, tmp_path)
    assert p.returncode == 0, p.stderr
    assert last["copied"] == 1 and last["verified"] == total + 1
    assert last["flags_fixed"] == 1
    assert_same(lab, sent_map)

    # 4. A lost state file: everything is found on new by size + SHA-256, nothing copied.
    p, last, _ = run_migrate(lab, tmp_path, state=tmp_path / "fresh.db")
    assert p.returncode == 0, p.stderr
    assert last["copied"] == 0 and last["reconciled"] == total + 1
    assert_same(lab, sent_map)

    # 5. UIDVALIDITY changes on old (folder deleted and recreated with the same
    # messages): re-planned, matched by content, nothing duplicated.
    q1 = [m for m in msgs if m[0] == "Projects.2024.Q1"]
    helper(lab, lab.OLD4, "c = conn(P['host']); c._simple_command('DELETE', q('Projects.2024.Q1'));"
                          " c.logout()")
    append_msgs(lab, lab.OLD4, q1, create=["Projects.2024.Q1"])
    p, last, _ = run_migrate(lab, tmp_path)
    assert p.returncode == 0, p.stderr
    assert last["copied"] == 0 and last["reconciled"] == len(q1)
    assert_same(lab, sent_map)


def test_oneshot_killed_midway_resumes_exact(mlab, tmp_path):
    lab = mlab
    # 240 messages of 20..120 KB in a folder of their own, copied in batches of 8.
    big = [["Bulk", "(\\Seen)" if i % 3 else "()", f'"{(i % 28) + 1:02d}-Jun-2021 12:00:00 +0000"',
            10000 + i, 20000 + (i * 4111) % 100000, "", "text"] for i in range(240)]
    for k in range(0, len(big), 60):
        append_msgs(lab, lab.OLD4, big[k:k + 60], create=["Bulk"] if k == 0 else [])
    state = tmp_path / "kill.db"
    kills = 0
    seen = []
    for round_ in range(3):
        argv = [str(MAILFERRY), "migrate", "--source", f"imap://{lab.OLD4}:143",
                "--destination", f"imap://{lab.NEW4}:143", "--user", USER,
                "--password-stdin", "--state", str(state), "--batch", "8"]
        proc = lab.popen("router", argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        proc.stdin.write(lab.env[f"PASS_{USER}"] + "\n")
        proc.stdin.close()
        want = 40 + 30 * round_
        deadline = time.monotonic() + 120
        killed = False
        for line in proc.stdout:
            if time.monotonic() > deadline:
                break
            ev = json.loads(line)
            seen.append(ev)
            if ev.get("phase") == "copy" and ev.get("messages", 0) >= want:
                # Progress comes after a batch's commit: wait a little so the
                # kill also lands inside a batch (FETCH/APPEND in flight).
                time.sleep((0, 0.004, 0.012)[round_])
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()
        if not killed:
            break
        assert proc.returncode == -signal.SIGKILL
        kills += 1
    assert kills >= 1, seen[-3:]
    p, last, _ = run_migrate(lab, tmp_path, "--batch", "8", state=state)
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr)
    assert last["verify_ok"] is True
    print(f"killed {kills} times; the last run copied {last['copied']},"
          f" found {last['reconciled']} already there")
    old, new = dump(lab, lab.OLD4), dump(lab, lab.NEW4)
    assert len(new["folders"]["Bulk"]) == len(big)
    assert new["folders"]["Bulk"] == old["folders"]["Bulk"]


def test_oneshot_refuses_bad_input(mlab, tmp_path):
    lab = mlab
    # Wrong password: exit 1, the server's refusal, no verification claimed.
    argv = [str(MAILFERRY), "migrate", "--source", f"imap://{lab.OLD4}:143",
            "--destination", f"imap://{lab.NEW4}:143", "--user", USER, "--password-stdin"]
    p = lab.run("router", argv, input="wrong-password\n", capture_output=True, text=True,
                timeout=60)
    assert p.returncode == 1
    last = json.loads(p.stdout.splitlines()[-1])
    assert last["ok"] is False and "source" in last["error"]
    assert "wrong-password" not in p.stdout + p.stderr
    # Bad scheme, a POP3 destination, missing options: usage errors.
    for bad in (["--source", "pop2://x", "--destination", "imap://y", "--user", "u",
                 "--password-stdin"],
                ["--source", "imap://x", "--destination", "pop3://y", "--user", "u",
                 "--password-stdin"], ["--source", f"imap://{lab.OLD4}"]):
        p = lab.run("router", [str(MAILFERRY), "migrate", *bad], input="x\n",
                    capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, p.stderr
    # A state file of another migration is refused.
    state = tmp_path / "other.db"
    p, last, _ = run_migrate(lab, tmp_path, state=state)
    assert p.returncode == 0, p.stderr
    argv2 = [str(MAILFERRY), "migrate", "--source", f"imap://{lab.OLD4}:143",
             "--destination", f"imap://{lab.NEW4}:143", "--user", USER, "--dest-user", "bob",
             "--password-stdin", "--dest-password-stdin", "--state", str(state)]
    p = lab.run("router", argv2, input=lab.env[f"PASS_{USER}"] + "\n" + lab.env["PASS_bob"] + "\n",
                capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "another migration" in p.stderr


def test_oneshot_tls_and_master_user(mlab, tmp_path):
    lab = mlab
    append_msgs(lab, lab.OLD4, [["TLS", "(\\Seen tls_kw)", '"09-Sep-2019 09:09:09 +0900"',
                                 7000, 4000, "", "8bit"]], create=["TLS"])
    base = [str(MAILFERRY), "migrate", "--source", f"imaps://{lab.OLD4}:993",
            "--destination", f"imap+starttls://{lab.NEW4}:143", "--user", USER]
    master = ["--master-user", lab.env["MASTER_USER"], "--master-password-stdin"]
    mpw = lab.env["MASTER_PASS"] + "\n"
    # No CA given: the system store does not know the lab CA -> refused.
    p = lab.run("router", [*base, *master, "--state", str(tmp_path / "a.db")], input=mpw,
                capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "certificate verify failed" in p.stderr, p.stderr
    # The lab CA: implicit TLS to old, STARTTLS to new, the master user on both sides.
    p = lab.run("router", [*base, *master, "--ca", lab.env["CA_CERT"],
                           "--state", str(tmp_path / "b.db")],
                input=mpw, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr)
    last = json.loads(p.stdout.splitlines()[-1])
    assert last["verify_ok"] is True and last["verified"] >= 1
    assert lab.env["MASTER_PASS"] not in p.stdout + p.stderr
    # --insecure skips verification (same result, nothing left to copy).
    p = lab.run("router", [*base, *master, "--insecure", "--state", str(tmp_path / "b.db")],
                input=mpw, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.splitlines()[-1])["copied"] == 0
    old, new = dump(lab, lab.OLD4), dump(lab, lab.NEW4)
    assert new["folders"]["TLS"] == old["folders"]["TLS"]


def test_oneshot_plain_append(mlab, tmp_path):
    """Without MULTIAPPEND and LITERAL+: one APPEND per message, synchronizing literals."""
    lab = mlab
    msgs = [["Plain", "(\\Flagged kw_plain)", f'"1{i}-Oct-2020 10:10:10 -0230"', 8000 + i,
             [300, 5000, 1 << 20, 77, 20000][i], "", ["text", "8bit", "binary", "malformed",
                                                       "text"][i]] for i in range(5)]
    append_msgs(lab, lab.OLD4, msgs, create=["Plain"])
    p, last, _ = run_migrate(lab, tmp_path, "--plain-append", "--batch", "2")
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr)
    assert last["copied"] == 5 and last["verify_ok"] is True
    old, new = dump(lab, lab.OLD4), dump(lab, lab.NEW4)
    assert new["folders"]["Plain"] == old["folders"]["Plain"]


def test_oneshot_ipv6(mlab, tmp_path):
    lab = mlab
    append_msgs(lab, lab.OLD4, [["V6", "()", '"06-Jun-2006 06:06:06 +0600"', 6000, 2500, "",
                                 "text"]], create=["V6"])
    argv = [str(MAILFERRY), "migrate", "--source", f"imap://[{lab.OLD6}]:143",
            "--destination", f"imap://[{lab.NEW6}]", "--user", USER, "--password-stdin",
            "--state", str(tmp_path / "v6.db")]
    p = lab.run("router", argv, input=lab.env[f"PASS_{USER}"] + "\n", capture_output=True,
                text=True, timeout=300)
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr)
    last = json.loads(p.stdout.splitlines()[-1])
    assert last["verify_ok"] is True and last["copied"] >= 1
    old, new = dump(lab, lab.OLD4), dump(lab, lab.NEW4)
    assert new["folders"]["V6"] == old["folders"]["V6"]


def test_oneshot_verification_catches_damage(mlab, tmp_path):
    """Verification is not a formality: a message altered on new (same size, one byte
    changed in its file), or missing there, fails the run (exit 1, the reason given)."""
    lab = mlab
    msgs = [["Damage", "()", '"07-Jul-2017 07:07:07 +0000"', 7700 + i, 3000, "", "text"]
            for i in range(3)]
    append_msgs(lab, lab.OLD4, msgs, create=["Damage"])
    p, last, _ = run_migrate(lab, tmp_path)
    assert p.returncode == 0, p.stderr
    # Flip one byte of one copy in new's maildir (Dovecot serves the file as it is).
    box = Path(lab.lab_dir) / "new" / "mail" / USER / "Maildir" / ".Damage"
    files = sorted(f for d in ("cur", "new") for f in (box / d).glob("*") if f.is_file())
    assert len(files) == 3, files
    data = files[1].read_bytes()
    pos = data.index(b"line of message")
    files[1].write_bytes(data[:pos] + b"LINE" + data[pos + 4:])
    p, last, _ = run_migrate(lab, tmp_path)
    assert p.returncode == 1 and last["ok"] is False
    assert "differs on the destination" in last["error"], last["error"]
    # A message gone from new: reported as missing, still exit 1.
    helper(lab, lab.NEW4, "c = conn(P['host']); c.select(q('Damage'));"
                          " c.store('2', '+FLAGS.SILENT', '(\\\\Deleted)'); c.expunge(); c.logout()")
    p, last, _ = run_migrate(lab, tmp_path)
    assert p.returncode == 1
    assert "is not on the destination" in last["error"], last["error"]
    # Put right by hand (the damaged folder emptied on new, its checkpoint with it):
    # a run with a fresh state copies the folder again, exactly.
    helper(lab, lab.NEW4, "c = conn(P['host']); c._simple_command('DELETE', q('Damage'));"
                          " c.logout()")
    p, last, _ = run_migrate(lab, tmp_path, state=tmp_path / "fresh.db")
    assert p.returncode == 0, p.stderr
    old, new = dump(lab, lab.OLD4), dump(lab, lab.NEW4)
    assert new["folders"]["Damage"] == old["folders"]["Damage"]


def sampled(uid, pct):
    """migrate/mig_verify.c's mig_verify_sampled()."""
    return ((uid * 2654435761) & 0xffffffff) % 100 < pct


def test_oneshot_verify_sample(mlab, tmp_path):
    """--verify-sample 25: every message is checked for presence, size, date and flags,
    the sampled quarter (chosen by source UID) also by SHA-256 of new's bytes. A byte
    flipped in a sampled message fails the run; in an unsampled one only a full
    verification sees it."""
    lab = mlab
    wipe(lab)
    n = 40
    msgs = [["Sample", "()", '"08-Aug-2018 08:08:08 +0000"', 8800 + i, 2000 + 37 * i,
             f"Message-ID: <sample{i}@lab.test>\r\n", "text"] for i in range(n)]
    append_msgs(lab, lab.OLD4, msgs, create=["Sample"])
    want_hashed = sum(sampled(uid, 25) for uid in range(1, n + 1))
    assert 0 < want_hashed < n
    p, last, _ = run_migrate(lab, tmp_path, "--verify-sample", "25")
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr)
    assert last["verified"] == n and last["verified_hashed"] == want_hashed, last
    p, last, _ = run_migrate(lab, tmp_path)
    assert p.returncode == 0 and last["verified_hashed"] == n, last

    box = Path(lab.lab_dir) / "new" / "mail" / USER / "Maildir" / ".Sample"

    def flip(i, old=b"line of message", new=b"LINE of message"):
        for f in (f for d in ("cur", "new") for f in (box / d).glob("*") if f.is_file()):
            data = f.read_bytes()
            if f"<sample{i}@lab.test>".encode() in data:
                f.write_bytes(data.replace(old, new, 1))
                return
        raise AssertionError(f"message {i} not found on new")

    # Source UID i + 1 is message i (appended in order into a fresh folder).
    unsampled = next(i for i in range(n) if not sampled(i + 1, 25))
    flip(unsampled)
    p, last, _ = run_migrate(lab, tmp_path, "--verify-sample", "25")
    assert p.returncode == 0, last
    p, last, _ = run_migrate(lab, tmp_path)
    assert p.returncode == 1 and "differs on the destination" in last["error"], last
    flip(unsampled, b"LINE of message", b"line of message")  # put back
    picked = next(i for i in range(n) if sampled(i + 1, 25))
    flip(picked)
    p, last, _ = run_migrate(lab, tmp_path, "--verify-sample", "25")
    assert p.returncode == 1 and "differs on the destination" in last["error"], last
    assert f"source UID {picked + 1} " in last["error"], last


def test_oneshot_destination_drops_mid_append(mlab, tmp_path):
    """The destination's connection is cut in the middle of an APPEND's literals (a
    proxy in front of new): the run fails saying so; the rerun resumes from the
    checkpoints (the folder whose APPEND was cut is reconciled by content) and new then
    equals old byte for byte — nothing lost, nothing twice."""
    lab = mlab
    wipe(lab)
    msgs = [["Cut", "(\\Seen)", '"09-Sep-2019 09:09:09 +0000"', 9900 + i, 3000 + 101 * i,
             f"Message-ID: <cut{i}@lab.test>\r\n", ["text", "8bit", "binary"][i % 3]]
            for i in range(250)]
    append_msgs(lab, lab.OLD4, msgs, create=["Cut"])
    log = tmp_path / "proxy.jsonl"
    proxy = lab.popen("new", ["/usr/bin/python3", str(Path(ROOT) / "tests/e2e/tools/throttle_proxy.py"),
                              f"{lab.NEW4}:1143", f"{lab.NEW4}:143", str(log),
                              json.dumps({"drop_appends": [2], "drop_after": 50000})],
                      stdout=-1, stderr=-1, text=True)
    try:
        assert proxy.stdout.readline().strip() == "listening"
        argv = ["--batch", "40"]
        state = tmp_path / "cut.db"

        def run():
            p = lab.run("router", [str(MAILFERRY), "migrate", "--source", f"imap://{lab.OLD4}:143",
                                   "--destination", f"imap://{lab.NEW4}:1143", "--user", USER,
                                   "--password-stdin", "--state", str(state), *argv],
                        input=lab.env[f"PASS_{USER}"] + "\n", capture_output=True, text=True,
                        timeout=600)
            return p, [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")][-1]

        p, last = run()
        assert p.returncode == 1 and last["ok"] is False, last
        events = [json.loads(x) for x in log.read_text().splitlines()]
        assert any(e["ev"] == "drop" and e.get("append") == 2 for e in events), events
        assert 0 < last["copied"] < len(msgs), last
        p, last = run()
        assert p.returncode == 0 and last["verify_ok"] is True, (p.stdout[-2000:], p.stderr)
        old, new = dump(lab, lab.OLD4), dump(lab, lab.NEW4)
        assert new["folders"]["Cut"] == old["folders"]["Cut"]
        assert len(new["folders"]["Cut"]) == len(msgs)
    finally:
        proxy.kill()
        proxy.communicate()


def test_oneshot_sync_deletes_imap_source(mlab, tmp_path):
    """Messages the user deleted on an IMAP source since the copy: a rerun without
    --sync-deletes fails the verification's count (new holds one more) and changes
    nothing; with it, exactly the two deleted messages are expunged from new, and old
    and new are equal again."""
    lab = mlab
    wipe(lab)
    msgs = [["Gone", "()", '"09-Sep-2019 09:09:09 +0000"', 9900 + i, 1500 + 11 * i,
             f"Message-ID: <gone{i}@lab.test>\r\n", "text"] for i in range(5)]
    append_msgs(lab, lab.OLD4, msgs, create=["Gone"])
    p, last, _ = run_migrate(lab, tmp_path)
    assert p.returncode == 0, p.stderr
    helper(lab, lab.OLD4, "c = conn(P['host']); c.select(q('Gone'));"
                          " c.store('2,4', '+FLAGS.SILENT', '(\\\\Deleted)'); c.expunge(); c.logout()")
    p, last, _ = run_migrate(lab, tmp_path)
    assert p.returncode == 1 and "3 messages on the source, 5 on the destination" in last["error"], \
        last
    assert len(dump(lab, lab.NEW4)["folders"]["Gone"]) == 5
    p, last, _ = run_migrate(lab, tmp_path, "--sync-deletes")
    assert p.returncode == 0, p.stderr
    assert last["expunged"] == 2 and last["copied"] == 0, last
    old, new = dump(lab, lab.OLD4), dump(lab, lab.NEW4)
    assert new["folders"]["Gone"] == old["folders"]["Gone"]
    assert len(new["folders"]["Gone"]) == 3
