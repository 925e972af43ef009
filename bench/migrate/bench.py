"""bench/migrate: `mailferry migrate` vs mbsync and `doveadm backup` over imapc on one
generated mailbox (see run.sh)."""

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "lab"))
from lab import Lab  # noqa: E402

N = int(os.environ.get("BENCH_MSGS", "5000"))
AVG_KB = int(os.environ.get("BENCH_AVG_KB", "60"))
REPS = int(os.environ.get("BENCH_REPS", "1"))
MAX_S = int(os.environ.get("BENCH_MAX_SECONDS", "900"))
USER = "alice"

# Runs in the router namespace: raw IMAP with LITERAL+ pipelining (fast corpus making),
# wiping, counting.
IMAP = r'''
import socket, random, re, time
def conn(host):
    s = socket.create_connection((host, 143), timeout=120)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b'a LOGIN %s "%s"\r\n' % (P["user"].encode(), P["password"].encode()))
    while not f.readline().startswith(b"a "):
        pass
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
'''

GEN = IMAP + r'''
s, f = conn(P["host"])
wipe(s, f)
boxes = [b"INBOX", b"Archive", b"Archive.2023", b"Lists", b"Sent"]
for b in boxes[1:]:
    cmd(s, f, b'CREATE "' + b + b'"')
rnd = random.Random(42)
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

WIPE = IMAP + r'''
s, f = conn(P["host"]); wipe(s, f); RESULT = count(s, f)
'''

COUNT = IMAP + r'''
s, f = conn(P["host"]); RESULT = count(s, f)
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


def main() -> int:
    res_dir = ROOT / "bench" / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with Lab.up() as lab:
        pw = lab.env[f"PASS_{USER}"]
        params = dict(user=USER, password=pw)
        t = time.monotonic()
        gen = lab.py_json("router", GEN, timeout=MAX_S, host=lab.OLD4, n=N, avg_kb=AVG_KB,
                          **params)
        print(f"corpus: {gen['count']} messages, {gen['bytes'] / 1e6:.1f} MB on old "
              f"({time.monotonic() - t:.1f} s to make)", flush=True)
        tmp = Path(tempfile.mkdtemp(prefix="mfbench-"))
        try:
            # (name, argv, stdin, namespace it runs in)
            runs = [("mailferry", [str(ROOT / "build" / "mailferry"), "migrate",
                                   "--source", f"imap://{lab.OLD4}:143",
                                   "--destination", f"imap://{lab.NEW4}:143",
                                   "--user", USER, "--password-stdin"], pw + "\n", "router")]
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
                runs.append(("mbsync", ["mbsync", "-q", "-c", str(cfg), "mig"], "", "router"))
            if shutil.which("doveadm"):
                # Dovecot's own migration: dsync on the destination host pulling
                # from old over imapc (the "doveadm on the destination"),
                # with the imapc features Dovecot's migration notes recommend.
                runs.append(("doveadm", [
                    "doveadm", "-c", str(Path(lab.lab_dir) / "new" / "dovecot.conf"),
                    "-o", f"imapc_host={lab.OLD4}", "-o", "imapc_port=143",
                    "-o", f"imapc_user={USER}", "-o", f"imapc_password={pw}",
                    "-o", "imapc_ssl=no", "-o", "imapc_features=rfc822.size fetch-headers",
                    "-o", "mail_prefetch_count=20",
                    "backup", "-R", "-u", USER, "imapc:"], "", "new"))
            for rep in range(REPS):
                for name, argv, stdin, ns in runs:
                    lab.py_json("router", WIPE, host=lab.NEW4, **params)
                    if name == "doveadm":
                        # dsync backup wants a fresh account: over an emptied one
                        # it fails ("INBOX can't be deleted": the INBOX it finds
                        # is not the one it would sync to). Nothing has it open.
                        shutil.rmtree(Path(lab.lab_dir) / "new" / "mail" / USER,
                                      ignore_errors=True)
                    shutil.rmtree(tmp / "mbsync-state", ignore_errors=True)
                    (tmp / "mbsync-state").mkdir()
                    r = lab.py_json(ns, RUN, timeout=MAX_S + 30, argv=argv, input=stdin,
                                    limit=MAX_S)
                    got = lab.py_json("router", COUNT, host=lab.NEW4, **params)
                    ok = r["rc"] == 0 and got == gen["count"]
                    rows.append(dict(tool=name, rep=rep, ok=ok, rc=r["rc"], copied=got,
                                     seconds=r["seconds"], rss_mb=r["rss_kb"] / 1024,
                                     msgs_s=got / r["seconds"],
                                     mb_s=gen["bytes"] / 1e6 / r["seconds"],
                                     err=r["stderr"] if r["rc"] else ""))
                    print(json.dumps(rows[-1]), flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    best = {}
    for r in rows:
        if r["ok"] and (r["tool"] not in best or r["seconds"] < best[r["tool"]]["seconds"]):
            best[r["tool"]] = r
    lines = [f"mailbox: {N} messages, {gen['bytes'] / 1e6:.1f} MB, old -> new (Dovecot)",
             f"{'tool':<10} {'seconds':>8} {'msgs/s':>8} {'MB/s':>7} {'peak RSS MB':>12}"]
    for name, r in best.items():
        lines.append(f"{name:<10} {r['seconds']:>8.2f} {r['msgs_s']:>8.0f} {r['mb_s']:>7.1f} "
                     f"{r['rss_mb']:>12.1f}")
    for peer in ("mbsync", "doveadm"):
        if "mailferry" in best and peer in best:
            lines.append(f"mailferry is {best[peer]['seconds'] / best['mailferry']['seconds']:.2f}x "
                         f"{peer}'s speed, {best[peer]['rss_mb'] / best['mailferry']['rss_mb']:.1f}x "
                         f"less peak RSS (mailferry verified every message; {peer} was not "
                         "asked to)")
    failed = [r for r in rows if not r["ok"]]
    for r in failed:
        lines.append(f"FAILED {r['tool']}: rc={r['rc']} copied={r['copied']} {r['err'][:300]}")
    text = "\n".join(lines)
    print(text)
    (res_dir / f"migrate-{time.strftime('%Y%m%d-%H%M%S')}.txt").write_text(
        text + "\n" + "\n".join(json.dumps(r) for r in rows) + "\n")
    return 1 if failed or "mailferry" not in best else 0


if __name__ == "__main__":
    sys.exit(main())
