"""Issue 5, metrics and dashboard: the Prometheus exposition and the dashboard
of mailferryd ([metrics] listen, default 127.0.0.1:9473), read inside the
router namespace.

- Real IMAP, POP3, submission and SMTP sessions through the gateway move the
  counters by exactly what happened: logins by protocol, backend and result,
  login-latency histogram counts, sessions per protocol and backend, and the
  bytes per protocol and direction equal to the sum of the sessions' own
  `conn` log lines; nothing else moves. The exposition parses (HELP and TYPE
  before each family, histogram invariants).
- A login-triggered copy moves the copy counters: messages and bytes equal to
  what arrived on new, one copy migrated, one duration observation; while it
  runs /api/status lists it with its progress.
- Headless Chromium (Debian's chromium, in the router namespace, with every
  background network feature off) loads the dashboard: after its script ran
  the page shows the ledger's account counts per state and the retire
  verdict; a screenshot is saved (the test's tmp dir, copied to
  build/dashboard.png).
"""

import json
import os
import re
import shutil
import subprocess
import time

import pytest

from mfgateway import ROOT, running
from test_migrate_oneshot import CORPUS_APPEND, HELPERS
from test_smtp_front import SUBMIT, message, postfix_587, token

DOMAIN = "lab.test"
METRICS = "http://127.0.0.1:9473"


@pytest.fixture(scope="module")
def gw(lab, tmp_path_factory):
    work = tmp_path_factory.mktemp("metricsgw")
    with running(lab, str(work), ports=(143, 110, 25, 587), imap_ports=(143,),
                 pop3_ports=(110,), smtp_ports=(25,), submission_ports=(587,),
                 ledger={"default_domain": DOMAIN},
                 migrate={"enabled": "yes", "workers": "1",
                          "state_dir": str(work / "migrate")}) as g:
        yield g


def http_get(lab, path, method="GET", headers=()):
    """(status, headers text, body) of a request made inside the router namespace."""
    argv = ["curl", "-sS", "-X", method, "-D", "-", "--max-time", "10"]
    for h in headers:
        argv += ["-H", h]
    r = lab.run("router", argv + [METRICS + path], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition("\n\n")  # text mode: CRLF read as LF
    return int(head.split()[1]), head, body


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_exposition(text):
    """{(name, ((label, value), ...)): float}, checking the format on the way:
    every sample after its family's HELP and TYPE, no family twice,
    histograms cumulative with _count equal to the +Inf bucket."""
    assert text.endswith("\n")
    samples, families, family, types = {}, set(), None, {}
    lines = text.split("\n")[:-1]
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("# HELP "):
            family = line.split()[2]
            assert family not in families, family
            families.add(family)
            t = lines[i + 1].split()
            assert t[:3] == ["#", "TYPE", family], lines[i + 1]
            assert t[3] in ("counter", "gauge", "histogram"), t
            types[family] = t[3]
            i += 2
            continue
        m = SAMPLE.match(line)
        assert m, line
        name, labels, value = m.groups()
        assert family and name.startswith(family), (family, line)
        suffix = name[len(family):]
        assert suffix == "" or (types[family] == "histogram" and
                                suffix in ("_bucket", "_sum", "_count")), line
        pairs = []
        rest = labels or ""
        while rest:
            lm = LABEL.match(rest)
            assert lm, line
            pairs.append((lm.group(1), lm.group(2)))
            rest = rest[lm.end():]
        samples[(name, tuple(pairs))] = float(value)
        i += 1
    for fam, typ in types.items():
        if typ != "histogram":
            continue
        sets = {}
        for (name, labels), v in samples.items():
            if name == fam + "_bucket":
                base = tuple(p for p in labels if p[0] != "le")
                le = dict(labels)["le"]
                sets.setdefault(base, []).append((float("inf") if le == "+Inf" else float(le), v))
        assert sets, fam
        for base, buckets in sets.items():
            values = [v for _, v in sorted(buckets)]
            assert values == sorted(values), (fam, base, buckets)
            assert sorted(buckets)[-1][0] == float("inf")
            assert samples[(fam + "_count", base)] == values[-1]
            assert (fam + "_sum", base) in samples
    return samples


def scrape(lab):
    status, head, body = http_get(lab, "/metrics")
    assert status == 200, (head, body)
    assert "text/plain; version=0.0.4" in head, head
    return parse_exposition(body)


def key(name, **labels):
    order = {"protocol": 0, "backend": 1, "result": 2, "direction": 1, "state": 0, "le": 9}
    return (name, tuple(sorted(labels.items(), key=lambda kv: order.get(kv[0], 5))))


def wait_idle(lab, timeout=20):
    """A scrape once every session has ended (all sessions_open are 0)."""
    deadline = time.monotonic() + timeout
    while True:
        s = scrape(lab)
        open_now = {k: v for k, v in s.items() if k[0] == "mailferry_sessions_open" and v}
        if not open_now:
            return s
        assert time.monotonic() < deadline, open_now
        time.sleep(0.2)


IMAP_LOGIN = r"""
import imaplib
res = []
for user, pw in P["logins"]:
    m = imaplib.IMAP4(P["host"], 143, timeout=30)
    try:
        m.login(user, pw)
        m.select("INBOX")
        res.append("OK")
        m.logout()
    except imaplib.IMAP4.error as e:
        res.append(str(e))
        m.logout()
RESULT = res
"""

POP3_LOGIN = r"""
import poplib
res = []
for user, pw in P["logins"]:
    p = poplib.POP3(P["host"], 110, timeout=30)
    try:
        p.user(user)
        p.pass_(pw)
        p.stat()
        res.append("OK")
    except poplib.error_proto as e:
        res.append(e.args[0].decode())
    p.quit()
RESULT = res
"""


def ledger_states(gw):
    """The ledger's accounts (`accounts list --json`, JSON Lines) and their
    count per state."""
    listed = [json.loads(x) for x in gw.cli("accounts", "list", "--json").stdout.splitlines()
              if x.strip()]
    by_state = {}
    for a in listed:
        by_state[a["state"]] = by_state.get(a["state"], 0) + 1
    return listed, by_state


def test_counters_move_exactly(lab, gw):
    # alice: PINNED (served by old, and no copy starts); carol: MIGRATED
    # (served by new); nobody: CUTOVER (refused before any backend).
    gw.cli("accounts", "set-state", "alice@" + DOMAIN, "PINNED")
    gw.cli("accounts", "set-state", "carol@" + DOMAIN, "MIGRATED")
    gw.cli("accounts", "set-state", "nobody@" + DOMAIN, "CUTOVER")
    before = wait_idle(lab)
    conn_mark = len(gw.conns())

    imap = lab.py_json("client", IMAP_LOGIN, host=lab.OLD4, logins=[
        ["alice", lab.PASS_alice], ["alice", "wrong-password"],
        ["carol", lab.PASS_carol], ["nobody", "x"]])
    assert imap[0] == "OK" and imap[2] == "OK", imap
    assert "AUTHENTICATIONFAILED" in imap[1] or "Authentication failed" in imap[1], imap
    assert "UNAVAILABLE" in imap[3], imap
    pop3 = lab.py_json("client", POP3_LOGIN, host=lab.OLD4, logins=[
        ["alice", lab.PASS_alice], ["alice", "wrong-password"]])
    assert pop3[0] == "OK" and pop3[1].startswith("-ERR"), pop3
    postfix_587(lab, tls_only=False)
    try:
        sub = lab.py_json("client", SUBMIT, host=lab.OLD4, mech="PLAIN", user="alice",
                          pw=lab.PASS_alice)
    finally:
        postfix_587(lab, tls_only=True)
    assert sub["auth"][0] == 235, sub
    # Port 25: an MTA session, no login; one message to alice on old.
    t = token()
    r = lab.py_json("client", r"""
import smtplib
s = smtplib.SMTP(P["host"], 25, local_hostname="mta.example.net", timeout=30)
RESULT = {k: v[0] for k, v in s.sendmail("s@example.net", [P["rcpt"]], P["text"].encode()).items()}
s.quit()
""", host=lab.OLD4, rcpt="alice@" + DOMAIN, text=message(t).decode())
    assert r == {}

    after = wait_idle(lab)
    # A session's conn line is written just after its counters close it.
    deadline = time.monotonic() + 10
    while len(gw.conns()) - conn_mark < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    conns = gw.conns()[conn_mark:]
    assert len(conns) == 8, conns  # 4 IMAP, 2 POP3, 1 submission, 1 SMTP

    want = {
        key("mailferry_logins_total", protocol="imap", backend="source", result="ok"): 1,
        key("mailferry_logins_total", protocol="imap", backend="source", result="fail"): 1,
        key("mailferry_logins_total", protocol="imap", backend="destination", result="ok"): 1,
        key("mailferry_logins_total", protocol="imap", backend="none", result="refused"): 1,
        key("mailferry_logins_total", protocol="pop3", backend="source", result="ok"): 1,
        key("mailferry_logins_total", protocol="pop3", backend="source", result="fail"): 1,
        key("mailferry_logins_total", protocol="submission", backend="source", result="ok"): 1,
        key("mailferry_login_duration_seconds_count", protocol="imap"): 3,
        key("mailferry_login_duration_seconds_count", protocol="pop3"): 2,
        key("mailferry_login_duration_seconds_count", protocol="submission"): 1,
        key("mailferry_sessions_total", protocol="imap"): 4,
        key("mailferry_sessions_total", protocol="pop3"): 2,
        key("mailferry_sessions_total", protocol="submission"): 1,
        key("mailferry_sessions_total", protocol="smtp"): 1,
        key("mailferry_sessions_relayed_total", protocol="imap", backend="source"): 1,
        key("mailferry_sessions_relayed_total", protocol="imap", backend="destination"): 1,
        key("mailferry_sessions_relayed_total", protocol="pop3", backend="source"): 1,
        key("mailferry_sessions_relayed_total", protocol="submission", backend="source"): 1,
        key("mailferry_smtp_transactions_total", backend="source", result="accepted"): 1,
        key("mailferry_smtp_recipients_total", backend="source", result="routed"): 1,
    }
    # Bytes: exactly what the sessions' own conn lines say, per protocol.
    port_proto = {"143": "imap", "110": "pop3", "587": "submission", "25": "smtp"}
    for c in conns:
        proto = port_proto[c["dst"].rsplit(":", 1)[1]]
        for d, field in (("client_to_server", "c2s"), ("server_to_client", "s2c")):
            k = key("mailferry_bytes_total", protocol=proto, direction=d)
            want[k] = want.get(k, 0) + int(c[field])
    # (An MTA session's replies are the gateway's own: its log, and so the
    # counter, carries what the client sent.)
    for proto in ("imap", "pop3", "submission", "smtp"):
        assert want[key("mailferry_bytes_total", protocol=proto,
                        direction="client_to_server")] > 0, proto
        if proto != "smtp":
            assert want[key("mailferry_bytes_total", protocol=proto,
                            direction="server_to_client")] > 0, proto

    want = {k: v for k, v in want.items() if v != 0}
    moved = {}
    for k, v in after.items():
        if k[0].startswith("mailferry_login_duration_seconds_bucket") or \
           k[0] in ("mailferry_login_duration_seconds_sum", "mailferry_accounts",
                    "mailferry_accounts_on_source",
                    "mailferry_gateway_heartbeat_time_seconds"):  # a clock
            continue
        if v != before.get(k, 0):
            moved[k] = v - before.get(k, 0)
    assert moved == want, {"unexpected": {k: v for k, v in moved.items() if want.get(k) != v},
                           "missing": {k: v for k, v in want.items() if moved.get(k) != v}}
    # The latency histogram grew by its count in the +Inf bucket, and its sum.
    for proto, n in (("imap", 3), ("pop3", 2), ("submission", 1)):
        inf = key("mailferry_login_duration_seconds_bucket", protocol=proto, le="+Inf")
        assert after[inf] - before.get(inf, 0) == n
        s = key("mailferry_login_duration_seconds_sum", protocol=proto)
        assert after[s] > before.get(s, 0)

    # Accounts by state: what the ledger lists.
    listed, by_state = ledger_states(gw)
    for st in ("UNSEEN", "SEEN", "COPYING", "CUTOVER", "MIGRATED", "FAILED", "PINNED"):
        assert after[key("mailferry_accounts", state=st)] == by_state.get(st, 0), st
    assert by_state.get("PINNED") == 1 and by_state.get("CUTOVER") == 1


def test_http_is_read_only_and_bounded(lab, gw):
    status, head, _ = http_get(lab, "/metrics", method="POST")
    assert status == 405 and "Allow: GET" in head
    status, _, _ = http_get(lab, "/metrics", method="DELETE")
    assert status == 405
    status, _, _ = http_get(lab, "/nothing")
    assert status == 404
    # A name that is not an address (DNS rebinding) is refused.
    status, _, _ = http_get(lab, "/api/status", headers=["Host: attacker.example:9473"])
    assert status == 403
    status, head, body = http_get(lab, "/")
    assert status == 200 and "text/html" in head
    assert "Content-Security-Policy: default-src 'none'" in head
    # No external resource anywhere in the page.
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', body), "external resource"
    assert "@import" not in body and "url(" not in body
    # The server listens on localhost only, as configured by default.
    ss = lab.run("router", ["ss", "-Hltn", "sport = :9473"], capture_output=True, text=True)
    assert ss.stdout.split()[3] == "127.0.0.1:9473", ss.stdout


def helper(lab, host, code, user, timeout=300, **params):
    return lab.py_json("router", HELPERS + code, timeout=timeout, host=host, user=user,
                       password=lab.env[f"PASS_{user}"], **params)


N_COPY = 2400


def copy_user(lab):
    return "user0001" if lab.env.get("PASS_user0001") else "bob"


def test_copy_counters(lab, gw, tmp_path):
    user = copy_user(lab)
    for host in (lab.OLD4, lab.NEW4):
        helper(lab, host, "c = conn(P['host']); wipe(c); c.logout()", user)
    try:
        # Enough messages that the copy lasts seconds (Dovecot's per-APPEND
        # work): long enough to load the dashboard while it runs.
        msgs = [["INBOX" if i % 2 else "Work", "(\\Seen)", '"01-Feb-2024 10:00:00 +0000"', i,
                 2000 + 7 * i, "", "text"] for i in range(N_COPY)]
        for i in range(0, N_COPY, 300):  # the parameters travel on a command line
            helper(lab, lab.OLD4, CORPUS_APPEND, user, msgs=msgs[i:i + 300],
                   create=["Work"] if i == 0 else [], subscribe=[], sent_as=None)
        gw.cli("accounts", "set-state", f"{user}@{DOMAIN}", "UNSEEN")
        before = wait_idle(lab)
        login = lab.popen("client", ["/usr/bin/python3", "-c", r"""
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], 143, timeout=30)
m.login(sys.argv[2], sys.argv[3])
m.logout()
""", lab.OLD4, user, lab.env[f"PASS_{user}"]], stdout=subprocess.DEVNULL)
        # While the copy runs, /api/status shows it with its progress.
        seen, deadline, copy_dom_seen = None, time.monotonic() + 180, False
        while time.monotonic() < deadline:
            _, _, body = http_get(lab, "/api/status")
            st = json.loads(body)
            mine = [c for c in st["copies"] if c["account"] == f"{user}@{DOMAIN}"]
            if mine and mine[0]["planned"] > 0 and seen is None:
                seen = mine[0]
                # The dashboard in Chromium while the copy runs: its row with
                # a progress bar; a screenshot for people.
                r = chromium(lab, tmp_path, "--dump-dom", METRICS + "/")
                assert r.returncode == 0, r.stderr[-3000:]
                row = re.search(r'<tr class="copy"><td>([^<]*)</td><td>(\w+)</td><td><div class="bar"'
                                r' title="(\d+) %"><div style="width:[0-9.]+%"></div></div></td>'
                                r'<td class="n">(\d+) / (\d+)</td>', r.stdout)
                assert row, r.stdout[-3000:]
                assert row.group(1) == f"{user}@{DOMAIN}" and row.group(2) in ("bulk", "delta")
                assert int(row.group(4)) <= int(row.group(5)) and int(row.group(5)) > 0
                copy_dom_seen = True
                shot = tmp_path / "dashboard-copy.png"
                r = chromium(lab, tmp_path, f"--screenshot={shot}", METRICS + "/")
                assert r.returncode == 0 and shot.read_bytes()[:4] == b"\x89PNG"
                shutil.copy(shot, os.path.join(ROOT, "build", "dashboard-copy.png"))
            if gw.account(f"{user}@{DOMAIN}")["state"] in ("MIGRATED", "FAILED"):
                break
            time.sleep(0.05)
        assert login.wait(30) == 0
        assert gw.account(f"{user}@{DOMAIN}")["state"] == "MIGRATED"
        assert seen is not None, "the copy never showed in /api/status"
        assert copy_dom_seen
        assert seen["phase"] in ("bulk", "delta") and 0 <= seen["messages"] <= seen["planned"]
        new = helper(lab, lab.NEW4, "c = conn(P['host']); RESULT = dump(c); c.logout()", user)
        sizes = [m[1] for f in new["folders"].values() for m in f]
        assert len(sizes) == N_COPY
        after = wait_idle(lab)
        d = {k: after[k] - before.get(k, 0) for k in after}
        assert d[key("mailferry_copies_started_total")] == 1
        assert d[key("mailferry_copies_total", result="migrated")] == 1
        assert d[key("mailferry_copies_total", result="failed")] == 0
        assert d[key("mailferry_copy_errors_total")] == 0
        assert d[key("mailferry_copy_messages_total")] == N_COPY
        assert d[key("mailferry_copy_bytes_total")] == sum(sizes)
        assert d[key("mailferry_copy_duration_seconds_count")] == 1
        assert d[key("mailferry_cutover_duration_seconds_count")] == 1
        assert after[key("mailferry_copies_running")] == 0
        _, _, body = http_get(lab, "/api/status")
        st = json.loads(body)
        assert st["copies"] == []
        assert st["totals"]["copy_messages"] == after[key("mailferry_copy_messages_total")]
    finally:
        for host in (lab.OLD4, lab.NEW4):
            helper(lab, host, "c = conn(P['host']); wipe(c); c.logout()", user)


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps",
    "--disable-extensions", "--disable-domain-reliability", "--disable-breakpad",
    "--disable-client-side-phishing-detection", "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater,InterestFeedContentSuggestions",
    "--dns-prefetch-disable", "--hide-scrollbars", "--window-size=1280,1100",
    # No name resolves: whatever a background feature might still try
    # to reach by name fails before any packet is made.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--virtual-time-budget=8000",
]


def chromium(lab, tmp_path, *args):
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed (make deps installs it)")
    # The router namespace has no default route: an address outside the
    # lab is unreachable from where Chromium runs.
    for fam in ("-4", "-6"):
        routes = lab.run("router", ["ip", fam, "route", "show", "default"],
                         capture_output=True, text=True, check=True).stdout
        assert routes.strip() == "", routes
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(tmp_path))
    r = lab.run("router", [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                capture_output=True, text=True, timeout=120, env=env)
    return r


def test_dashboard_in_chromium(lab, gw, tmp_path):
    gw.cli("accounts", "set-state", "dave@" + DOMAIN, "FAILED", "--reason", "test")
    gw.cli("accounts", "set-state", "erin@" + DOMAIN, "UNSEEN")
    listed, by_state = ledger_states(gw)
    time.sleep(2.5)  # past the server's 2 s cache of the ledger's counts
    r = chromium(lab, tmp_path, "--dump-dom", METRICS + "/")
    assert r.returncode == 0, r.stderr[-3000:]
    dom = r.stdout
    assert 'data-loaded="1"' in dom, dom[-3000:]
    for st in ("UNSEEN", "SEEN", "COPYING", "CUTOVER", "MIGRATED", "FAILED", "PINNED"):
        m = re.search(r'id="acct-%s">([^<]*)<' % st, dom)
        assert m, (st, dom[-3000:])
        assert m.group(1) == str(by_state.get(st, 0)), (st, m.group(1), by_state)
    m = re.search(r'id="acct-total">(\d+)<', dom)
    assert m and int(m.group(1)) == len(listed)
    m = re.search(r'<div id="verdict" class="(\w+)">([^<]*)<', dom)
    assert m and m.group(1) == "unsafe", dom[-3000:]
    on_source = len(listed) - by_state.get("MIGRATED", 0)
    assert f"source still needed: {on_source} of {len(listed)} accounts" in m.group(2)
    assert '<span id="err"></span>' in dom  # no failed poll
    # This gateway's heartbeat, in the gateways table.
    m = re.search(r'<tr data-gateway="([^"]+)" data-health="(\w+)">', dom)
    assert m and m.group(2) == "running", dom[-3000:]

    shot = tmp_path / "dashboard.png"
    r = chromium(lab, tmp_path, f"--screenshot={shot}", METRICS + "/")
    assert r.returncode == 0, r.stderr[-3000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    shutil.copy(shot, os.path.join(ROOT, "build", "dashboard.png"))
