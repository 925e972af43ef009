"""Politeness and back-off of the in-daemon copy ([migrate] source_connections,
max_messages_per_second, busy_retries, busy_wait_max, retry_after, retry_max).

The copy reads old through a scripted throttling IMAP server in old's namespace
(tests/e2e/tools/throttle_proxy.py, relaying to old's real Dovecot): it refuses
connections with BYE [UNAVAILABLE], answers body fetches NO [LIMIT], cuts connections in
the middle of a FETCH answer, and records how many connections were open at once.

- A source that sheds load several ways: the copy backs off by itself, resumes from its
  checkpoints and ends MIGRATED, old = new byte for byte (nothing lost or twice).
- A source that keeps refusing: FAILED after busy_retries with the reason; the failures
  of later logins wait longer each time (retry_after doubled up to retry_max, the attempt
  and the wait recorded in the ledger's reason), and a login before the wait is over
  starts nothing.
- source_connections = 1 with two copy workers and two accounts: never two connections to
  the source at once; both accounts exact.
- max_messages_per_second: the copy of N messages takes at least the time the limit asks
  (a lower bound only: a busy machine is only slower).
"""

import json
import os
import time

import pytest

from mfgateway import TOOLS, Gateway, client_py
from test_migrate_trigger import LOGIN_SELECT, append, dump, wait_state, wipe

PROXY_PORT = 1143
USERS = ("bob", "carol")


def msgs_for(n_small, big=()):
    out = []
    for i in range(n_small):
        folder = ["INBOX", "Projects", "Projects.2024"][i % 3]
        out.append([folder, ["", "(\\Seen)", "(\\Flagged kw1)"][i % 3],
                    f'"{1 + i % 28:02d}-Mar-2021 10:{i % 60:02d}:00 +0000"', 500 + i,
                    400 + 37 * i, f"Message-ID: <p{i}@lab.test>\r\n",
                    ["text", "8bit", "binary"][i % 3]])
    for j, size in enumerate(big):
        out.append(["INBOX", "(\\Seen)", '"02-Feb-2022 02:02:02 +0000"', 900 + j, size, "",
                    "binary"])
    return out


@pytest.fixture(scope="module")
def plab(lab):
    for u in USERS:
        wipe(lab, u)
    yield lab
    for u in USERS:
        wipe(lab, u)


class Proxy:
    def __init__(self, lab, tmp_path, **script):
        self.log = str(tmp_path / "proxy.jsonl")
        self.proc = lab.popen("old", ["/usr/bin/python3", os.path.join(TOOLS, "throttle_proxy.py"),
                                      f"{lab.OLD4}:{PROXY_PORT}", f"{lab.OLD4}:143", self.log,
                                      json.dumps(script)],
                              stdout=-1, stderr=-1, text=True)
        assert self.proc.stdout.readline().strip() == "listening", self.proc.stderr.read()

    def events(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        self.proc.kill()
        self.proc.communicate()


def gateway(lab, tmp_path, **extra):
    m = {"enabled": "yes", "state_dir": str(tmp_path / "gw" / "migrate"),
         "source_port": str(PROXY_PORT), "timeout_ms": "20000"}
    m.update(extra)
    return Gateway(lab, str(tmp_path / "gw"), ports=(143,), imap_ports=(143,), migrate=m)


def populate(lab, user, msgs):
    wipe(lab, user)
    append(lab, lab.OLD4, user, msgs, create=["Projects", "Projects.2024", "Empty"],
           subscribe=["INBOX", "Projects"])


def login(lab, user):
    out = client_py(lab, LOGIN_SELECT, lab.OLD4, user, lab.env[f"PASS_{user}"]).split()
    assert out[0] == "ok", out


def test_source_sheds_load_copy_backs_off_and_is_exact(plab, tmp_path):
    lab = plab
    user = "bob"
    msgs = msgs_for(260, big=(3 << 20,))
    populate(lab, user, msgs)
    # Batches of 100: the INBOX's 3 MiB message and many fetches per folder.
    proxy = Proxy(lab, tmp_path, refuse_first=2, limit_fetches=[2], drop_fetches=[4],
                  drop_after=30000)
    g = gateway(lab, tmp_path, busy_retries="8", busy_wait_max="2")
    try:
        g.install_rules()
        g.start()
        login(lab, user)
        wait_state(g, user, "MIGRATED", timeout=180)
        ev = [e["ev"] for e in proxy.events()]
        assert ev.count("refuse") == 2 and "limit" in ev and "drop" in ev, ev
        busy = [line for line in g.log().splitlines() if "source busy" in line]
        assert len(busy) >= 4, busy  # two refusals, the LIMIT, the cut
        assert any("[UNAVAILABLE]" in b for b in busy) and any("[LIMIT]" in b for b in busy)
        assert any("connection closed by the server" in b for b in busy), busy
        old = dump(lab, lab.OLD4, user)
        assert dump(lab, lab.NEW4, user) == old
        assert sum(len(v) for v in old["folders"].values()) == len(msgs)
        assert g.stop() == 0
    finally:
        proxy.stop()
        g.teardown()


def test_source_keeps_refusing_failed_with_growing_backoff(plab, tmp_path):
    lab = plab
    user = "bob"
    populate(lab, user, msgs_for(6))
    proxy = Proxy(lab, tmp_path, limit_fetches=list(range(1, 1000)))
    g = gateway(lab, tmp_path, busy_retries="2", busy_wait_max="1", retry_after="2",
                retry_max="4")
    try:
        g.install_rules()
        g.start()

        def fail_once(n):
            queued = g.log().count("login observed: copy queued")
            login(lab, user)
            assert g.log().count("login observed: copy queued") == queued + 1
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                a = g.account(user)
                if a["state"] == "FAILED" and f"(attempt {n}," in a["reason"]:
                    return a
                time.sleep(0.1)
            raise AssertionError(g.account(user))

        a = fail_once(1)
        assert "[LIMIT]" in a["reason"] and a["reason"].endswith("(attempt 1, next in 2 s)"), a
        assert g.log().count(f"migrate user={user} source busy") == 2  # busy_retries
        # Before the wait is over a login starts nothing.
        login(lab, user)
        time.sleep(0.5)
        assert g.log().count("login observed: copy queued") == 1
        time.sleep(2)
        a = fail_once(2)
        assert a["reason"].endswith("(attempt 2, next in 4 s)"), a
        time.sleep(2.2)  # 2 s would have been enough for attempt 2: not any more
        login(lab, user)
        time.sleep(0.5)
        assert g.log().count("login observed: copy queued") == 2
        time.sleep(2)
        a = fail_once(3)
        assert a["reason"].endswith("(attempt 3, next in 4 s)"), a  # retry_max
        hist = g.cli("accounts", "show", user).stdout
        assert "(attempt 1," in hist and "(attempt 2," in hist, hist
        # Nothing was copied (the folders may have been made).
        assert all(v == [] for v in dump(lab, lab.NEW4, user)["folders"].values())
        assert g.stop() == 0
    finally:
        proxy.stop()
        g.teardown()
    wipe(lab, user)


def test_one_connection_per_source(plab, tmp_path):
    lab = plab
    for u in USERS:
        populate(lab, u, msgs_for(120))
    proxy = Proxy(lab, tmp_path, hold_ms=150)
    g = gateway(lab, tmp_path, workers="2", source_connections="1")
    try:
        g.install_rules()
        g.start()
        for u in USERS:
            login(lab, u)
        for u in USERS:
            wait_state(g, u, "MIGRATED", timeout=180)
        opens = [e for e in proxy.events() if e["ev"] == "open"]
        assert len(opens) >= 4, opens  # bulk and delta of each account
        assert max(e["live"] for e in opens) == 1, opens
        for u in USERS:
            old = dump(lab, lab.OLD4, u)
            assert dump(lab, lab.NEW4, u) == old
        assert g.stop() == 0
    finally:
        proxy.stop()
        g.teardown()


def test_message_rate_limit(plab, tmp_path):
    lab = plab
    user = "carol"
    n, rate = 60, 20
    populate(lab, user, msgs_for(n))
    proxy = Proxy(lab, tmp_path)
    g = gateway(lab, tmp_path, max_messages_per_second=str(rate))
    try:
        g.install_rules()
        g.start()
        login(lab, user)
        t0 = time.monotonic()
        g.wait_log(rf"migrate user={user} state=COPYING", timeout=30)
        wait_state(g, user, "MIGRATED", timeout=120)
        took = time.monotonic() - t0
        # A burst of one second's worth, then `rate` per second.
        assert took >= (n - rate) / rate * 0.8, took
        old = dump(lab, lab.OLD4, user)
        assert dump(lab, lab.NEW4, user) == old
        assert g.stop() == 0
        assert "migrate paced:" in g.log()
    finally:
        proxy.stop()
        g.teardown()
