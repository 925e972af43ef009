"""bench/migrate: `mailferry migrate` vs mbsync and `doveadm backup` over imapc (on new
and from the router) on one generated mailbox, the FETCH and MULTIAPPEND ceilings of one
connection, mailferry's peak RSS on a mailbox 1/5 the size, and 20 accounts copied W at a
time (see run.sh and README.md)."""

import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "lab"))
from lab import PYTHON, Lab  # noqa: E402

sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from mfgateway import Gateway  # noqa: E402

N = int(os.environ.get("BENCH_MSGS", "5000"))
AVG_KB = int(os.environ.get("BENCH_AVG_KB", "60"))
REPS = int(os.environ.get("BENCH_REPS", "1"))
MAX_S = int(os.environ.get("BENCH_MAX_SECONDS", "900"))
BATCH = int(os.environ.get("BENCH_BATCH", "100"))  # messages per FETCH / APPEND (ceilings)
USERS = int(os.environ.get("BENCH_USERS", "20"))  # accounts of the parallel rows
USER_MSGS = int(os.environ.get("BENCH_USER_MSGS", "250"))  # messages in each of them
WORKERS = [int(w) for w in os.environ.get("BENCH_WORKERS", "1 2 4 8").split()]
# where the lab keeps its files, the servers' mail stores included (default
# /tmp/<prefix>lab); a tmpfs (/dev/shm/...) takes the disk out of the figures
LAB_DIR = os.environ.get("BENCH_LAB_DIR") or None
# BENCH_ONLY=daemon: only the "daemon live copy" section (no 20 accounts, no other rows)
ONLY = os.environ.get("BENCH_ONLY", "")
# reps of the daemon live copy section (default: BENCH_REPS)
DAEMON_REPS = int(os.environ.get("BENCH_DAEMON_REPS", str(REPS)))
# BENCH_DAEMON_TRACE=0: no extra traced run (tcpdump of the daemon's connections)
DAEMON_TRACE = os.environ.get("BENCH_DAEMON_TRACE", "1") != "0"
USER = "alice"
SMALL_USER = "bob"  # the same kind of mailbox, 1/5 of the messages: peak RSS vs size

# Runs in the router namespace: raw IMAP with LITERAL+ pipelining (fast corpus making),
# wiping, counting.
IMAP = r'''
import os, socket, random, re, time
def conn(host, user=None, password=None):
    s = socket.create_connection((host, 143), timeout=120)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b'a LOGIN %s "%s"\r\n' % ((user or P["user"]).encode(),
                                          (password or P["password"]).encode()))
    l = f.readline()
    while l and not l.startswith(b"a "):
        l = f.readline()
    assert l.startswith(b"a OK"), l
    return s, f
def cmd(s, f, line):
    s.sendall(b"t " + line + b"\r\n")
    out = []
    while True:
        l = f.readline()
        if not l:
            raise SystemExit("closed")
        m = re.match(rb"^\* (?:.*) \{(\d+)\}\r\n$", l)
        if m:
            f.read(int(m.group(1)))
        if l.startswith(b"t "):
            assert l.startswith(b"t OK"), (line, l)
            return out
        out.append(l)
def folders(s, f):
    names = []
    for l in cmd(s, f, b'LIST "" "*"'):
        m = re.match(rb'^\* LIST \(([^)]*)\) "." (.*)\r\n$', l)
        if m and b"Noselect" not in m.group(1):
            names.append(m.group(2).strip(b'"'))
    return names
def wipe(s, f):
    for n in sorted(folders(s, f), key=len, reverse=True):
        if n != b"INBOX":
            cmd(s, f, b'DELETE "' + n + b'"')
    sel = b"".join(cmd(s, f, b"SELECT INBOX"))
    if not re.search(rb"\* 0 EXISTS", sel):
        cmd(s, f, b"STORE 1:* +FLAGS.SILENT (\\Deleted)")
        cmd(s, f, b"EXPUNGE")
def count(s, f):
    total = 0
    for n in folders(s, f):
        for l in cmd(s, f, b'STATUS "' + n + b'" (MESSAGES)'):
            m = re.search(rb"MESSAGES (\d+)", l)
            if m:
                total += int(m.group(1))
    return total
def fetch_box(s, f, box, batch, keep):
    """SELECT box, then UID FETCH every message in batches of `batch`, all commands sent
    at once (pipelined). keep: return [(flags, internaldate, body)], else count only.
    Returns (messages, bytes, kept)."""
    cmd(s, f, b'SELECT "' + box + b'"')
    uids = []
    for l in cmd(s, f, b"UID SEARCH ALL"):
        if l.startswith(b"* SEARCH"):
            uids += [int(x) for x in l.split()[2:]]
    uids.sort()
    batches = [uids[i:i + batch] for i in range(0, len(uids), batch)]
    items = b"(FLAGS INTERNALDATE BODY.PEEK[])" if keep else b"(BODY.PEEK[])"
    s.sendall(b"".join(b"f%d UID FETCH %d:%d %s\r\n" % (k, b[0], b[-1], items)
                       for k, b in enumerate(batches)))
    n = nbytes = done = 0
    kept = []
    while done < len(batches):
        l = f.readline()
        if not l:
            raise SystemExit("closed")
        m = re.search(rb"\{(\d+)\}\r\n$", l)
        if m and l.startswith(b"* "):
            body = f.read(int(m.group(1)))
            n += 1
            nbytes += len(body)
            if keep:
                fl = re.search(rb"FLAGS \(([^)]*)\)", l).group(1)
                fl = b" ".join(x for x in fl.split() if x != b"\\Recent")
                date = re.search(rb'INTERNALDATE "([^"]+)"', l).group(1)
                kept.append((fl, date, body))
        elif l.startswith(b"f"):
            assert b" OK" in l, l
            done += 1
    assert n == len(uids), (box, n, len(uids))
    return n, nbytes, kept
'''

GEN = IMAP + r'''
s, f = conn(P["host"])
wipe(s, f)
boxes = [b"INBOX", b"Archive", b"Archive.2023", b"Lists", b"Sent"]
for b in boxes[1:]:
    cmd(s, f, b'CREATE "' + b + b'"')
rnd = random.Random(P["seed"])
total = 0
k = 0
pending = 0
for i in range(P["n"]):
    size = min(int(rnd.expovariate(1.0 / (P["avg_kb"] * 1024))) + 800, 20 << 20)
    hdr = (b"From: s%d@lab.test\r\nTo: alice@lab.test\r\nSubject: bench %d\r\n"
           b"Message-ID: <b%d@lab.test>\r\n\r\n" % (i, i, i))
    line = (b"bench line %d " % i) * 5 + b"\r\n"
    body = hdr + line * ((size - len(hdr)) // len(line) + 1)
    body = body[:size]
    if body.endswith(b"\r"):  # Dovecot would drop a bare CR at the end: keep sizes exact
        body = body[:-1] + b"."
    box = boxes[i % len(boxes)]
    s.sendall(b'g%d APPEND "%s" (\\Seen) "0%d-Jan-2022 10:00:00 +0000" {%d+}\r\n'
              % (i, box, 1 + i % 9, len(body)) + body + b"\r\n")
    total += len(body)
    pending += 1
    if pending == 50 or i == P["n"] - 1:
        while pending:
            l = f.readline()
            if l.startswith(b"g"):
                assert b" OK" in l, l
                pending -= 1
RESULT = {"bytes": total, "count": count(s, f)}
'''

# P["users"]: [[user, password], ...]; RESULT: {user: messages left}
WIPE = IMAP + r'''
RESULT = {}
for user, pw in P["users"]:
    s, f = conn(P["host"], user, pw); wipe(s, f); RESULT[user] = count(s, f); s.close()
'''

COUNT = IMAP + r'''
RESULT = {}
for user, pw in P["users"]:
    s, f = conn(P["host"], user, pw); RESULT[user] = count(s, f); s.close()
'''

# Ceiling 1: what one connection can read from old. Connect, log in, and per folder
# SELECT + pipelined UID FETCH BODY.PEEK[] in batches; bodies read and discarded.
FETCH_CEIL = IMAP + r'''
t = time.monotonic()
s, f = conn(P["host"])
n = nbytes = 0
for box in folders(s, f):
    bn, bb, _ = fetch_box(s, f, box, P["batch"], keep=False)
    n += bn
    nbytes += bb
RESULT = {"seconds": time.monotonic() - t, "count": n, "bytes": nbytes}
'''

# Ceiling 2: what one connection can write to new. The messages (flags, internal date,
# body) are read from old into memory first, new is wiped and its folders created; then,
# timed: one MULTIAPPEND command of `batch` messages after another with LITERAL+, all sent
# without waiting (pipelined), until every tagged OK is in.
APPEND_CEIL = IMAP + r'''
s, f = conn(P["src"])
data = {}
for box in folders(s, f):
    data[box] = fetch_box(s, f, box, P["batch"], keep=True)[2]
s.close()
d, g = conn(P["dst"])
wipe(d, g)
caps = b"".join(cmd(d, g, b"CAPABILITY"))
assert b"MULTIAPPEND" in caps and b"LITERAL+" in caps, caps
for box in data:
    if box != b"INBOX":
        cmd(d, g, b'CREATE "' + box + b'"')
os.sync()
t = time.monotonic()
k = 0
for box, msgs in data.items():
    for i in range(0, len(msgs), P["batch"]):
        parts = [b'm%d APPEND "%s"' % (k, box)]
        for flags, date, body in msgs[i:i + P["batch"]]:
            parts.append(b' (%s) "%s" {%d+}\r\n' % (flags, date, len(body)))
            parts.append(body)
        parts.append(b"\r\n")
        d.sendall(b"".join(parts))
        k += 1
done = 0
while done < k:
    l = g.readline()
    if not l:
        raise SystemExit("closed")
    if l.startswith(b"m"):
        assert b" OK" in l, l
        done += 1
dt = time.monotonic() - t
RESULT = {"seconds": dt, "count": count(d, g), "commands": k,
          "bytes": sum(len(m[2]) for msgs in data.values() for m in msgs)}
'''

RUN = r'''
import resource, subprocess, time
t = time.monotonic()
p = subprocess.run(P["argv"], input=P["input"], capture_output=True, text=True,
                   timeout=P["limit"])
dt = time.monotonic() - t
RESULT = {"rc": p.returncode, "seconds": dt, "stderr": p.stderr[-1500:],
          "stdout": p.stdout[-1500:],
          "rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}
'''


# Several accounts copied by one-shot `mailferry migrate`s, P["workers"] at a time (a new
# copy starts as soon as one ends), all within P["limit"] seconds. Peak RSS: the largest
# of any one copy.
RUN_PAR = r'''
import resource, subprocess, tempfile, time
t = time.monotonic()
queue = list(P["users"])
running = []
rcs, errs = {}, {}
while queue or running:
    while queue and len(running) < P["workers"]:
        user, pw = queue.pop(0)
        err = tempfile.TemporaryFile()
        p = subprocess.Popen(P["argv"] + ["--user", user], stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=err)
        p.stdin.write((pw + "\n").encode())
        p.stdin.close()
        running.append((user, p, err))
    for job in list(running):
        user, p, err = job
        if p.poll() is not None:
            running.remove(job)
            rcs[user] = p.returncode
            if p.returncode:
                err.seek(0)
                errs[user] = err.read()[-500:].decode("utf-8", "replace")
            err.close()
    if time.monotonic() - t > P["limit"]:
        for user, p, err in running:
            p.kill()
            p.wait()
            rcs[user] = "killed"
        for user, pw in queue:
            rcs[user] = "not run"
        break
    time.sleep(0.005)
RESULT = {"seconds": time.monotonic() - t, "rcs": rcs, "errs": errs,
          "rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}
'''


def make_mailbox(lab, user: str, n: int, seed: int) -> dict:
    """Generate n messages for user on old (its account wiped first)."""
    return lab.py_json("router", GEN, timeout=MAX_S, host=lab.OLD4, n=n, avg_kb=AVG_KB,
                       seed=seed, user=user, password=lab.password(user))


def wipe_new(lab, users: list[str]) -> None:
    left = lab.py_json("router", WIPE, timeout=MAX_S, host=lab.NEW4,
                       users=[[u, lab.password(u)] for u in users])
    assert not any(left.values()), left


def count_new(lab, users: list[str]) -> dict:
    return lab.py_json("router", COUNT, timeout=MAX_S, host=lab.NEW4,
                       users=[[u, lab.password(u)] for u in users])


def result_row(tool: str, rep: int, ok: bool, seconds: float, count: int, nbytes: int,
               rss_kb: float | None, **extra) -> dict:
    row = dict(tool=tool, rep=rep, ok=ok, seconds=seconds, copied=count,
               msgs_s=count / seconds, mb_s=nbytes / 1e6 / seconds,
               rss_mb=None if rss_kb is None else rss_kb / 1024, **extra)
    print(json.dumps(row), flush=True)
    return row


def mailferry_argv(lab) -> list[str]:
    return [str(ROOT / "build" / "mailferry"), "migrate",
            "--source", f"imap://{lab.OLD4}:143", "--destination", f"imap://{lab.NEW4}:143",
            "--password-stdin"]


def copy_tools(lab, tmp: Path) -> list[tuple]:
    """(name, user, argv, stdin, namespace it runs in) of each one-account copy."""
    pw = lab.password(USER)
    runs = [("mailferry", USER, mailferry_argv(lab) + ["--user", USER], pw + "\n", "router"),
            # the same, reading back the sizes of all copies but the SHA-256 of only 1%
            ("mailferry hash 1%", USER,
             mailferry_argv(lab) + ["--user", USER, "--verify-sample", "1"], pw + "\n",
             "router"),
            ("mailferry 1/5", SMALL_USER, mailferry_argv(lab) + ["--user", SMALL_USER],
             lab.password(SMALL_USER) + "\n", "router")]
    if shutil.which("mbsync"):
        cfg = tmp / "mbsyncrc"
        acc = ""
        for name, host in (("old", lab.OLD4), ("new", lab.NEW4)):
            acc += (f"IMAPAccount {name}\nHost {host}\nPort 143\nUser {USER}\n"
                    f"Pass {pw}\nSSLType None\nAuthMechs LOGIN\n\n"
                    f"IMAPStore {name}\nAccount {name}\n\n")
        acc += ("Channel mig\nFar :old:\nNear :new:\nPatterns *\nCreate Near\n"
                "Sync Pull\nExpunge None\nCopyArrivalDate yes\n"
                f"SyncState {tmp}/mbsync-state/\n")
        cfg.write_text(acc)
        cfg.chmod(0o600)
        runs.append(("mbsync", USER, ["mbsync", "-q", "-c", str(cfg), "mig"], "", "router"))
    if shutil.which("doveadm"):
        # Dovecot's own migration: dsync on the destination host pulling from old over
        # imapc (the "doveadm on the destination"), with the imapc features
        # Dovecot's migration notes recommend.
        conf = str(Path(lab.lab_dir) / "new" / "dovecot.conf")
        imapc = ["-o", f"imapc_host={lab.OLD4}", "-o", "imapc_port=143",
                 "-o", f"imapc_user={USER}", "-o", f"imapc_password={pw}",
                 "-o", "imapc_ssl=no", "-o", "imapc_features=rfc822.size fetch-headers",
                 "-o", "mail_prefetch_count=20"]
        runs.append(("doveadm", USER, ["doveadm", "-c", conf, *imapc,
                                       "backup", "-R", "-u", USER, "imapc:"], "", "new"))
        # doveadm from the router: dsync has no imapc destination, so the router's doveadm
        # reads old over imapc (its own side: mail_location=imapc:, indexes in memory) and
        # sends to a doveadm server on new over TCP (enable_doveadm_server), which writes
        # new's maildir. It finds the user through new's auth socket (a path on the
        # shared file system), the only thing it takes from new's configuration.
        runs.append(("doveadm router", USER, [
            "doveadm", "-c", conf, "-o", "mail_location=imapc:", *imapc,
            "backup", "-u", USER, f"tcp:{lab.NEW4}:{DOVEADM_PORT}"], "", "router"))
    return runs


DOVEADM_PORT = 2425


def enable_doveadm_server(lab) -> None:
    """A doveadm listener on new (for the "doveadm router" row); Dovecot reloaded."""
    conf = Path(lab.lab_dir) / "new" / "dovecot.conf"
    with open(conf, "a") as f:
        f.write(f"\n# bench/migrate: dsync from the router\ndoveadm_password = mfbench\n"
                f"service doveadm {{\n  inet_listener {{\n    port = {DOVEADM_PORT}\n  }}\n}}\n")
    lab.run("new", ["doveadm", "-c", str(conf), "reload"], check=True, timeout=30)
    for _ in range(100):
        ss = lab.run("new", ["ss", "-ltnH"], capture_output=True, text=True, timeout=10)
        if f"{lab.NEW4}:{DOVEADM_PORT} " in ss.stdout:
            return
        time.sleep(0.1)
    raise RuntimeError(f"no doveadm listener on {lab.NEW4}:{DOVEADM_PORT}")


def run_copy(lab, tmp: Path, rep: int, run: tuple, corpus: dict) -> dict:
    name, user, argv, stdin, ns = run
    wipe_new(lab, [user])
    if name.startswith("doveadm"):
        # dsync backup wants a fresh account: over an emptied one it fails ("INBOX
        # can't be deleted": the INBOX it finds is not the one it would sync to).
        # Nothing has it open.
        shutil.rmtree(Path(lab.lab_dir) / "new" / "mail" / user, ignore_errors=True)
    shutil.rmtree(tmp / "mbsync-state", ignore_errors=True)
    (tmp / "mbsync-state").mkdir()
    os.sync()  # the previous copies' dirty pages written back now, not during this one
    r = lab.py_json(ns, RUN, timeout=MAX_S + 30, argv=argv, input=stdin, limit=MAX_S)
    got = count_new(lab, [user])[user]
    return result_row(name, rep, r["rc"] == 0 and got == corpus["count"], r["seconds"], got,
                      corpus["bytes"], r["rss_kb"], rc=r["rc"],
                      err=r["stderr"] if r["rc"] else "")


def run_ceilings(lab, rep: int, corpus: dict) -> list[dict]:
    params = dict(user=USER, password=lab.password(USER), batch=BATCH)
    os.sync()
    r = lab.py_json("router", FETCH_CEIL, timeout=MAX_S, host=lab.OLD4, **params)
    rows = [result_row("FETCH ceiling", rep,
                       r["count"] == corpus["count"] and r["bytes"] == corpus["bytes"],
                       r["seconds"], r["count"], r["bytes"], None, bytes=r["bytes"],
                       expected_bytes=corpus["bytes"])]
    r = lab.py_json("router", APPEND_CEIL, timeout=MAX_S, src=lab.OLD4, dst=lab.NEW4,
                    **params)
    rows.append(result_row("APPEND ceiling", rep,
                           r["count"] == corpus["count"] and r["bytes"] == corpus["bytes"],
                           r["seconds"], r["count"], r["bytes"], None,
                           commands=r["commands"], bytes=r["bytes"],
                           expected_bytes=corpus["bytes"]))
    return rows


def run_parallel(lab, rep: int, users: list[str], workers: int, corpora: dict) -> dict:
    wipe_new(lab, users)
    os.sync()
    r = lab.py_json("router", RUN_PAR, timeout=MAX_S + 30, argv=mailferry_argv(lab),
                    users=[[u, lab.password(u)] for u in users], workers=workers,
                    limit=MAX_S)
    got = count_new(lab, users)
    bad = [u for u in users if r["rcs"].get(u) != 0 or got[u] != corpora[u]["count"]]
    return result_row(f"parallel W={workers}", rep, not bad, r["seconds"],
                      sum(got.values()), sum(c["bytes"] for c in corpora.values()),
                      r["rss_kb"], workers=workers,
                      err="; ".join(f"{u}: rc={r['rcs'].get(u)} copied={got[u]} "
                                    f"{r['errs'].get(u, '')[:200]}" for u in bad))


def median_run(rows: list[dict], tool: str) -> dict | None:
    """The median successful run of a row (the upper one of an even count)."""
    ok = sorted((r for r in rows if r["tool"] == tool and r["ok"]), key=lambda r: r["seconds"])
    return ok[len(ok) // 2] if ok else None


def paired_ratio(rows: list[dict], num: str, den: str, key: str = "seconds") -> float | None:
    """Median over the reps of row num's `key` / row den's `key`, both from the same rep."""
    by = {(r["tool"], r["rep"]): r for r in rows if r["ok"]}
    xs = sorted(by[num, k][key] / by[den, k][key] for k in range(REPS)
                if (num, k) in by and (den, k) in by)
    return statistics.median(xs) if xs else None


ROWS = ("mailferry", "mailferry hash 1%", "mbsync", "doveadm", "doveadm router",
        "FETCH ceiling", "APPEND ceiling", "mailferry 1/5")


def report(rows: list[dict], gen: dict, small: dict, corpora: dict) -> list[str]:
    med = {t: median_run(rows, t) for t in ROWS}
    rss = lambda r: "-" if r["rss_mb"] is None else f"{r['rss_mb']:.1f}"  # noqa: E731
    out = [f"mailbox: {gen['count']} messages, {gen['bytes'] / 1e6:.1f} MB in 5 folders, "
           f"old -> new (Dovecot, mail stores under {LAB_DIR or '/tmp'}); median run of "
           f"{REPS}; ratios: median over the runs of the ratio within each run",
           f"{'row':<18} {'seconds':>8} {'msgs/s':>8} {'MB/s':>7} {'peak RSS MB':>12}"]
    for name, r in med.items():
        if r:
            out.append(f"{name:<18} {r['seconds']:>8.2f} {r['msgs_s']:>8.0f} "
                       f"{r['mb_s']:>7.1f} {rss(r):>12}")
    goals = (("mbsync", 1.8, "mailferry vs mbsync (speed)"),
             ("doveadm", 1.0, "mailferry vs doveadm on new (speed)"),
             ("doveadm router", None, "mailferry vs doveadm in the router (speed)"),
             ("APPEND ceiling", 0.85, "MULTIAPPEND ceiling seconds / mailferry seconds"),
             ("FETCH ceiling", None, "FETCH ceiling seconds / mailferry seconds"))
    for peer, target, what in goals:
        for tool in ("mailferry", "mailferry hash 1%"):
            x = paired_ratio(rows, peer, tool)
            if x is None:
                continue
            goal = f" (target >= {target}: {'met' if x >= target else 'MISSED'})" \
                if target and tool == "mailferry" else ""
            label = what.replace("mailferry", tool)
            out.append(f"{label}: {x:.2f}{goal}")
    x = paired_ratio(rows, "mailferry", "mailferry 1/5", "rss_mb")
    if x is not None:
        out.append(f"peak RSS of mailferry, {gen['count']} messages / {gen['bytes'] / 1e6:.0f}"
                   f" MB vs {small['count']} / {small['bytes'] / 1e6:.0f} MB: {x:.2f}x")
    par = [median_run(rows, f"parallel W={w}") for w in WORKERS]
    if any(par):
        total = sum(c["bytes"] for c in corpora.values())
        out.append(f"{len(corpora)} accounts, {sum(c['count'] for c in corpora.values())} "
                   f"messages, {total / 1e6:.1f} MB, one `mailferry migrate` per account, "
                   "W at a time:")
        out.append(f"{'W':>3} {'seconds':>8} {'MB/s':>7} {'x W=1':>6} {'max RSS MB':>11}")
        for w, r in zip(WORKERS, par):
            if r:
                x = paired_ratio(rows, f"parallel W={w}", "parallel W=1", "mb_s")
                x = "-" if x is None else f"{x:.2f}"
                out.append(f"{w:>3} {r['seconds']:>8.2f} {r['mb_s']:>7.1f} {x:>6} "
                           f"{r['rss_mb']:>11.1f}")
    for r in rows:
        if not r["ok"]:
            out.append(f"FAILED {r['tool']} (rep {r['rep']}): rc={r.get('rc')} "
                       f"copied={r['copied']} {r.get('err', '')[:300]}")
    return out


# --- daemon live copy: the cutover window ------------------------------------------------
# mailferryd on the router (TPROXY interception of port 143 for the client subnet, the IMAP
# front end, [migrate] enabled, strategy live, workers 1), a fresh gateway (ledger, state
# directory) for every copy. A real IMAP client in the client namespace logs in through the
# gateway (to old's address), SELECTs INBOX and keeps working until the cutover closes its
# session, then retries LOGIN every 0.1 s until one succeeds (on new).
LIVE_CLIENT = r'''
import imaplib, json, select, sys, time
P = json.loads(sys.argv[1])
host, user, pw = P["host"], P["user"], P["password"]
t_end = time.monotonic() + P["limit"]
def ev(**k):
    k["t"] = time.time()
    print(json.dumps(k), flush=True)
m = imaplib.IMAP4(host, 143, timeout=30)
typ, d = m.login(user, pw)
ev(e="login", ok=typ == "OK")
typ, d = m.select("INBOX")
ev(e="select", exists=int(d[0]))
noops = 0
how = None
while time.monotonic() < t_end:
    # wait for the server (an unsolicited BYE) at most 0.2 s, then NOOP
    r, _, _ = select.select([m.sock], [], [], 0.2)
    if r:
        line = m.readline()
        if not line:
            how = "eof"
        elif line.startswith(b"* BYE"):
            how = line.decode("utf-8", "replace").strip()
        else:
            continue  # other untagged data
        break
    try:
        m.noop()
        noops += 1
    except (imaplib.IMAP4.abort, OSError) as e:
        how = "noop: " + str(e)
        break
t_closed = time.time()
eof = False
if how is not None:
    m.sock.settimeout(5)
    try:
        eof = m.sock.recv(4096) == b""  # the gateway closes after the BYE
    except OSError:
        eof = True
ev(e="closed", how=how, noops=noops, eof=eof, t_closed=t_closed)
refused = 0
other = []
while how is not None and time.monotonic() < t_end:
    try:
        c = imaplib.IMAP4(host, 143, timeout=10)
        try:
            typ, d = c.login(user, pw)
        except imaplib.IMAP4.error as e:
            if "UNAVAILABLE" in str(e):
                refused += 1
            else:
                other.append(str(e)[:200])
            try:
                c.logout()
            except Exception:
                pass
            time.sleep(0.1)
            continue
        t_ok = time.time()
        typ, d = c.select("INBOX")
        ev(e="back", t_ok=t_ok, refused=refused, other=other[:5], exists=int(d[0]))
        c.logout()
        break
    except (OSError, imaplib.IMAP4.abort) as e:
        other.append(type(e).__name__ + ": " + str(e)[:200])
        time.sleep(0.1)
'''

# Per folder message counts (STATUS MESSAGES) of P["user"] on each of P["hosts"].
STATUS_FOLDERS = IMAP + r'''
RESULT = {}
for host in P["hosts"]:
    s, f = conn(host)
    got = {}
    for n in folders(s, f):
        for l in cmd(s, f, b'STATUS "' + n + b'" (MESSAGES)'):
            m = re.search(rb"MESSAGES (\d+)", l)
            if m:
                got[n.decode()] = int(m.group(1))
    RESULT[host] = got
    s.close()
'''

LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z ")


def log_time(line: str) -> float | None:
    m = LOG_TS.match(line)
    if not m:
        return None
    return datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()


# An optional packet trace of the daemon's own connections (the copy's, from the router's
# server-side address to old and new: SYN/FIN/RST and the client side's small segments,
# i.e. the commands it sends), to tell which part of the cutover takes the time. Only in
# the extra, untimed "traced" run. LOGIN/AUTHENTICATE arguments are never kept.
def trace_start(lab, path: Path):
    me = lab.env.get("ROUTER_SERVER4", "198.18.11.1")
    flt = (f"tcp and src host {me} and (dst host {lab.OLD4} or dst host {lab.NEW4}) and "
           "((tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0) or "
           "((ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2)) > 0 and ip[2:2] < 1200))")
    out = open(path, "w")
    p = lab.popen("router", ["tcpdump", "-i", "any", "-n", "-tt", "-X", "-l", "-s", "256",
                             flt], stdout=out, stderr=subprocess.DEVNULL)
    out.close()
    time.sleep(1.0)  # tcpdump listening before the login
    return p


def trace_stop(p) -> None:
    time.sleep(0.2)
    p.terminate()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def trace_timeline(path: Path, t0: float, t1: float) -> list[str]:
    """The daemon's connections and commands between t0 and t1, consecutive repeats of a
    command to one server merged: '+s  server  what (xN)'."""
    pkts, cur, seen = [], None, set()
    for line in path.read_text(errors="replace").splitlines():
        m = re.match(r"^(\d+\.\d+) .*?\bIP (\S+)\.(\d+) > (\S+)\.(\d+): Flags \[([^\]]*)\]", line)
        if m:
            # -i any sees a packet on more than one interface: once is enough
            key = line[line.index(" IP ", len(m.group(1)) - 1):]
            cur = [float(m.group(1)), f"{m.group(4)}:{m.group(5)}/{m.group(3)}",
                   m.group(6), bytearray()]
            if key in seen:
                cur = None
                continue
            seen.add(key)
            pkts.append(cur)
        elif cur is not None and line.startswith("\t0x"):
            hexpart = line.split(":", 1)[1][:41]
            cur[3] += bytes.fromhex(hexpart.replace(" ", ""))
    events = []
    for t, conn, flags, raw in pkts:
        if not t0 - 0.002 <= t <= t1 + 0.002:
            continue
        what = None
        if "S" in flags:
            what = "connect"
        elif "F" in flags or "R" in flags:
            what = "close" if "F" in flags else "reset"
        elif len(raw) > 20:
            ihl = (raw[0] & 15) * 4
            doff = (raw[ihl + 12] >> 4) * 4 if len(raw) > ihl + 12 else 0
            first = bytes(raw[ihl + doff:]).split(b"\r\n")[0].decode("ascii", "replace")
            mm = re.match(r"^([A-Za-z0-9.]+) ((?:UID )?[A-Z]+)(.*)", first)
            if mm:
                verb = mm.group(2)
                what = verb if verb in ("LOGIN", "AUTHENTICATE") else \
                    f"{verb}{mm.group(3)[:48]}"
            elif re.match(r"^(USER|PASS|STLS|CAPA|UIDL|QUIT|AUTH)\b", first):
                what = first.split()[0]
        if what is None:
            continue
        srv = conn.split("/")[0]
        key = " ".join(what.split()[:2 if what.startswith("UID ") else 1])
        if events and events[-1][1] == srv and events[-1][5] == key \
                and what not in ("connect", "close", "reset"):
            events[-1][3] += 1
            events[-1][4] = t
            continue
        events.append([t, srv, what, 1, t, key])
    lines = [f"+{e[0] - t0:.3f}" + (f"..+{e[4] - t0:.3f}" if e[3] > 1 else "")
             + f" {e[1]} {e[2]}" + (f" (x{e[3]})" if e[3] > 1 else "") for e in events]
    # the delta's phases, from the first command of each
    first = lambda pred: next((e[0] - t0 for e in events if pred(e)), None)  # noqa: E731
    t_list = first(lambda e: e[2].startswith("LIST"))
    t_ver = first(lambda e: "INTERNALDATE" in e[2])
    t_pop = first(lambda e: e[1].endswith((":110", ":995")))
    t_out = first(lambda e: e[2].startswith("LOGOUT"))
    phases = {}
    if None not in (t_list, t_ver, t_out):
        phases = {"connect+login": t_list, "delta sync": t_ver - t_list,
                  "verification": (t_pop if t_pop is not None else t_out) - t_ver,
                  "POP3 UIDL map": 0.0 if t_pop is None else t_out - t_pop,
                  "logout, ledger": t1 - t0 - t_out}
    return lines, phases


def daemon_live_copy(lab, tmp: Path, rep: int, user: str, corpus: dict,
                     trace: bool = False) -> dict:
    """One login-triggered live copy of user's mailbox through a fresh mailferryd.
    trace: with a packet trace of the daemon's connections (not counted in the medians)."""
    wipe_new(lab, [user])
    os.sync()
    work = tmp / f"gw-{user}-{rep}"
    g = Gateway(lab, str(work), ports=(143,), imap_ports=(143,),
                daemon=str(ROOT / "build" / "mailferryd"),
                migrate={"enabled": "yes", "strategy": "live", "workers": "1",
                         "state_dir": str(work / "migrate")})
    row = dict(tool=f"daemon live {corpus['count']}" + (" traced" if trace else ""),
               user=user, rep=rep, ok=False,
               messages=corpus["count"], mbytes=corpus["bytes"] / 1e6)
    proc = tracer = None
    problems = []
    try:
        g.install_rules()
        g.start(timeout=20)
        assert g.account(user)["state"] == "UNSEEN"
        if trace:
            tracer = trace_start(lab, work / "trace.txt")
        t_start = time.monotonic()
        proc = lab.popen("client", [PYTHON, "-c", LIVE_CLIENT, json.dumps(dict(
            host=lab.OLD4, user=user, password=lab.password(user), limit=MAX_S))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        acct = {"state": "UNSEEN"}
        polls = 0
        while time.monotonic() - t_start < MAX_S and polls < MAX_S * 10:
            polls += 1
            acct = g.account(user)
            if acct["state"] in ("MIGRATED", "FAILED") or proc.poll() is not None:
                break
            time.sleep(0.1)
        t_seen = time.time()
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            problems.append("client did not finish within 60 s of the ledger's last state")
        proc = None
        if tracer is not None:
            trace_stop(tracer)
            tracer = None
        acct = g.account(user)
        evs = {}
        for line in out.splitlines():
            if line.startswith("{"):
                e = json.loads(line)
                evs[e["e"]] = e
        if acct["state"] != "MIGRATED":
            problems.append(f"state {acct['state']}: {acct.get('reason', '')[:300]}")
        w = re.search(r"refused for (\d+\.\d+) s at the cutover$", acct.get("reason", ""))
        if not w:
            problems.append(f"no window in the reason: {acct.get('reason', '')[:300]}")
        # the daemon's own timeline (log lines with ms time stamps)
        states, cut_lines, kick = {}, [], None
        for line in g.log().splitlines():
            m = re.search(rf"migrate user={user}\S* state=(\w+)", line)
            if m and m.group(1) not in states:
                states[m.group(1)] = log_time(line)
            if "CUTOVER" in states and "MIGRATED" not in states:
                cut_lines.append(line)
                if kick is None and " end=cutover" in line:
                    kick = log_time(line)
        for st in ("COPYING", "CUTOVER", "MIGRATED"):
            if st not in states:
                problems.append(f"no state={st} line in the daemon's log")
        for k in ("login", "closed", "back"):
            if k not in evs:
                problems.append(f"client: no '{k}' event; stdout {out[-500:]!r} "
                                f"stderr {err[-800:]!r}")
        closed = evs.get("closed", {})
        if closed and not (closed.get("how") or "").startswith("* BYE [UNAVAILABLE]"):
            problems.append(f"session not ended by * BYE [UNAVAILABLE]: {closed.get('how')!r}")
        # old = new: every folder's message count
        st = lab.py_json("router", STATUS_FOLDERS, timeout=MAX_S, hosts=[lab.OLD4, lab.NEW4],
                         user=user, password=lab.password(user))
        old, new = st[lab.OLD4], st[lab.NEW4]
        if old != new or sum(old.values()) != corpus["count"]:
            problems.append(f"old {old} != new {new} (corpus {corpus['count']})")
        back = [c for c in g.conns() if c.get("user", "").startswith(user)
                and c.get("route") == "destination"]
        if not back:
            problems.append("no session of the user routed to new after the flip")
        rc = g.stop()
        if rc != 0:
            problems.append(f"mailferryd exited {rc}")
        if not problems:
            t_login, t_cut, t_mig = evs["login"]["t"], states["CUTOVER"], states["MIGRATED"]
            row.update(
                ok=True,
                total_s=t_mig - t_login,  # client's LOGIN OK -> the daemon's MIGRATED
                queue_s=states["COPYING"] - t_login,
                bulk_s=t_cut - states["COPYING"],
                window_s=float(w.group(1)),  # the daemon's own measure (the reason)
                window_log_s=t_mig - t_cut,  # CUTOVER -> MIGRATED log lines
                kick_s=None if kick is None else kick - t_cut,  # CUTOVER -> session closed
                unavail_s=evs["back"]["t_ok"] - closed["t_closed"],  # BYE -> LOGIN OK again
                bye_after_cut_s=closed["t_closed"] - t_cut,
                back_after_mig_s=evs["back"]["t_ok"] - t_mig,
                refused=evs["back"]["refused"], noops=closed["noops"],
                reason=acct.get("reason", ""),
                ledger_polled_total_s=t_seen - t_login,
                cutover_log=[f"+{log_time(x) - t_cut:.3f} {x[x.find(' level=') + 1:][:200]}"
                             for x in cut_lines if log_time(x) is not None][:40])
            row["window_frac"] = row["window_s"] / row["total_s"]
            if trace:
                row["cutover_trace"], row["cutover_phases"] = trace_timeline(
                    work / "trace.txt", t_cut, t_mig)
    except Exception as e:  # noqa: BLE001 - a failed rep is reported, not fatal
        problems.append(f"{type(e).__name__}: {str(e)[:1500]}")
    finally:
        if proc is not None:
            proc.kill()
            proc.communicate()
        if tracer is not None:
            trace_stop(tracer)
        g.teardown()
    if problems:
        row["err"] = "; ".join(problems)
        row["daemon_log_tail"] = g.log()[-2000:] if Path(g.logfile).exists() else ""
    print(json.dumps({k: v for k, v in row.items() if k not in ("cutover_log", "cutover_trace",
                                                               "cutover_phases")}),
          flush=True)
    return row


def daemon_report(rows: list[dict], gen: dict, small: dict) -> list[str]:
    big_t, small_t = f"daemon live {gen['count']}", f"daemon live {small['count']}"
    med = lambda tool, key: statistics.median(  # noqa: E731
        [r[key] for r in rows if r["tool"] == tool and r["ok"]] or [float("nan")])
    out = ["daemon live copy (mailferryd, [migrate] strategy live, workers 1; a client logs "
           "in through the gateway and NOOPs until the cutover closes it): median of "
           f"{DAEMON_REPS}",
           f"{'mailbox':<22} {'ok':>4} {'total s':>8} {'bulk s':>7} {'window s':>9} "
           f"{'client s':>9} {'window/total':>13} {'kick s':>7} {'refused':>8}"]
    for tool, c in ((big_t, gen), (small_t, small)):
        n = sum(1 for r in rows if r["tool"] == tool and r["ok"])
        if not n:
            out.append(f"{tool}: no successful run")
            continue
        out.append(f"{c['count']:>5} msgs {c['bytes'] / 1e6:>6.0f} MB {n:>3}/{DAEMON_REPS} "
                   f"{med(tool, 'total_s'):>8.2f} {med(tool, 'bulk_s'):>7.2f} "
                   f"{med(tool, 'window_s'):>9.3f} {med(tool, 'unavail_s'):>9.3f} "
                   f"{med(tool, 'window_frac'):>13.3f} {med(tool, 'kick_s'):>7.3f} "
                   f"{med(tool, 'refused'):>8.0f}")
    by = {(r["tool"], r["rep"]): r for r in rows if r["ok"]}
    for key, what in (("window_s", "cutover window (daemon)"),
                      ("unavail_s", "client-seen unavailability"),
                      ("total_s", "total copy")):
        xs = [by[big_t, k][key] / by[small_t, k][key] for k in range(DAEMON_REPS)
              if (big_t, k) in by and (small_t, k) in by]
        if xs:
            out.append(f"{what}, {gen['count']} / {small['count']} messages: "
                       f"{statistics.median(xs):.2f}x (per rep: "
                       f"{' '.join(f'{x:.2f}' for x in xs)}; mailbox {gen['count'] / small['count']:.1f}x)")
    for r in rows:
        if r["ok"] and r["rep"] == 0:
            out.append(f"daemon log during the cutover, {r['user']} rep 0 (s after CUTOVER):")
            out += ["  " + x for x in r["cutover_log"]]
    for r in rows:
        if r["ok"] and r.get("cutover_trace") is not None:
            out.append(f"traced run, {r['user']} ({r['messages']} messages; not in the medians):"
                       f" window {r['window_s']:.3f} s; the daemon's connections and commands,"
                       " s after CUTOVER (server:port/local port):")
            out.append("  phases (s): " + ", ".join(f"{k} {v:.3f}" for k, v in
                                                   r["cutover_phases"].items()))
            out += ["  " + x for x in r["cutover_trace"]]
    for r in rows:
        if not r["ok"]:
            out.append(f"FAILED {r['tool']} (rep {r['rep']}): {r.get('err', '')[:600]}")
    return out


def main() -> int:
    res_dir = ROOT / "bench" / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    rows, drows = [], []
    others = ONLY != "daemon"
    with Lab.up(users=USERS if others else 0, lab_dir=LAB_DIR) as lab:
        t = time.monotonic()
        gen = make_mailbox(lab, USER, N, 42)
        small = make_mailbox(lab, SMALL_USER, N // 5, 43)
        par_users = [u for u in lab.user_names if u.startswith("user")][:USERS] \
            if others else []
        corpora = {u: make_mailbox(lab, u, USER_MSGS, 100 + i)
                   for i, u in enumerate(par_users)}
        print(f"corpus: {gen['count']} messages, {gen['bytes'] / 1e6:.1f} MB for {USER}; "
              f"{small['count']}, {small['bytes'] / 1e6:.1f} MB for {SMALL_USER}; "
              f"{len(corpora)} x {USER_MSGS} messages, "
              f"{sum(c['bytes'] for c in corpora.values()) / 1e6:.1f} MB in all for "
              f"{len(corpora)} more accounts ({time.monotonic() - t:.1f} s to make)",
              flush=True)
        tmp = Path(tempfile.mkdtemp(prefix="mfbench-"))
        try:
            if others:
                runs = copy_tools(lab, tmp)
                if any(r[0] == "doveadm router" for r in runs):
                    enable_doveadm_server(lab)
                for rep in range(REPS):
                    for run in runs:
                        rows.append(run_copy(lab, tmp, rep, run,
                                             small if run[1] == SMALL_USER else gen))
                    rows += run_ceilings(lab, rep, gen)
                    for w in WORKERS:
                        rows.append(run_parallel(lab, rep, par_users, w, corpora))
            # the daemon's live copy, last: it leaves both accounts copied on new
            for rep in range(DAEMON_REPS):
                for user, corpus in ((USER, gen), (SMALL_USER, small)):
                    drows.append(daemon_live_copy(lab, tmp, rep, user, corpus))
            # one more of each with a packet trace: where the cutover's time goes
            if DAEMON_TRACE and shutil.which("tcpdump"):
                for user, corpus in ((USER, gen), (SMALL_USER, small)):
                    drows.append(daemon_live_copy(lab, tmp, DAEMON_REPS, user, corpus,
                                                  trace=True))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    text = "\n".join((report(rows, gen, small, corpora) if others else [])
                     + daemon_report(drows, gen, small))
    print(text)
    (res_dir / f"migrate-{time.strftime('%Y%m%d-%H%M%S')}.txt").write_text(
        text + "\n" + "\n".join(json.dumps(r) for r in rows + drows) + "\n")
    bad = any(not r["ok"] for r in rows + drows)
    return 1 if bad or (others and not any(r["tool"] == "mailferry" for r in rows)) \
        or not drows else 0


if __name__ == "__main__":
    sys.exit(main())
