"""Destination refusals during the in-daemon copy: reported per message and per
account, never skipped.

new's Dovecot runs the quota plugin (tests/lab/lab.sh); this module gives the test user
limits there through userdb extra fields in new's users file, and takes them away after.

- Over quota: the copy stops at the message new refuses (NO [OVERQUOTA]); the account
  is FAILED with a reason naming that message (UID, folder, size, the server's answer),
  the log has one "refused" line for it, the user keeps being served by old, and what
  reached new is a byte-exact subset of old without duplicates. With the quota raised,
  the next login (retry_after passed) resumes and ends MIGRATED with old = new exactly.
- Message too large (quota_max_mail_size): the same, naming the big message.
"""

import os
import time

import pytest

from mfgateway import Gateway, client_py
from test_migrate_trigger import LOGIN_SELECT, append, dump, wait_state, wipe

USER = "bob"


@pytest.fixture(scope="module")
def rlab(lab):
    path = os.path.join(lab.lab_dir, "new", "users")
    with open(path) as f:
        original = f.read()
    wipe(lab, USER)

    def limit(extra):
        """Sets USER's userdb extra fields on new ("" for none)."""
        lines = []
        for line in original.splitlines():
            if line.startswith(USER + ":") and extra:
                line = line + extra
            lines.append(line)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        st = os.stat(path)
        os.chown(tmp, st.st_uid, st.st_gid)
        os.chmod(tmp, st.st_mode & 0o777)
        # A new file, in another second than the last one: passwd-file
        # reloads on the next lookup. (An mtime set in the future made it
        # flip back and forth here.)
        time.sleep(1.1)
        os.replace(tmp, path)
        time.sleep(1.1)

    yield lab, limit
    limit("")
    wipe(lab, USER)


def msgs(n, size, big=None):
    out = [["INBOX" if i % 2 else "Projects", "(\\Seen)" if i % 3 else "",
            f'"{1 + i % 28:02d}-Jun-2023 08:{i % 60:02d}:00 +0000"', 700 + i, size,
            f"Message-ID: <q{i}@lab.test>\r\n", "text" if i % 2 else "8bit"]
           for i in range(n)]
    if big is not None:
        out.insert(n // 2, ["Projects", "", '"03-Mar-2023 03:03:03 +0000"', 799, big, "", "binary"])
    return out


def subset_exact(old, new):
    """Every message on new is a distinct byte-exact copy of one on old."""
    for name, got in new["folders"].items():
        want = list(old["folders"].get(name, []))
        for m in got:
            assert m in want, (name, m)
            want.remove(m)  # a second copy would not find its twin


def gateway(lab, tmp_path, **extra):
    m = {"enabled": "yes", "state_dir": str(tmp_path / "gw" / "migrate"), "retry_after": "1"}
    m.update(extra)
    return Gateway(lab, str(tmp_path / "gw"), ports=(143,), imap_ports=(143,), migrate=m)


def login(lab):
    out = client_py(lab, LOGIN_SELECT, lab.OLD4, USER, lab.env[f"PASS_{USER}"]).split()
    assert out[0] == "ok", out
    return int(out[1])


def wait_failed(g, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        a = g.account(USER)
        if a["state"] == "FAILED":
            return a
        time.sleep(0.2)
    raise AssertionError(g.account(USER))


@pytest.mark.parametrize("case", ["quota", "too_large"])
def test_destination_refusal(rlab, tmp_path, case):
    lab, limit = rlab
    wipe(lab, USER)
    if case == "quota":
        corpus = msgs(40, 20000)          # ~800 KB against 300 KB
        limit("userdb_quota_rule=*:storage=300k")
    else:
        corpus = msgs(20, 3000, big=400000)
        limit("userdb_quota_max_mail_size=100k")
    append(lab, lab.OLD4, USER, corpus, create=["Projects"], subscribe=["INBOX"])
    n_inbox = len(dump(lab, lab.OLD4, USER)["folders"]["INBOX"])
    g = gateway(lab, tmp_path)
    try:
        g.install_rules()
        g.start()
        assert login(lab) == n_inbox
        a = wait_failed(g)
        reason = a["reason"]
        assert "destination refused message UID " in reason, a
        assert "(attempt 1, next in 1 s)" in reason, a
        refused = [line for line in g.log().splitlines() if f"migrate user={USER} refused" in line]
        assert len(refused) == 1, refused
        if case == "quota":
            assert "[OVERQUOTA]" in reason and "code=OVERQUOTA" in refused[0], (a, refused)
        else:
            assert "(400000 bytes)" in reason and "size=400000" in refused[0], (a, refused)
            assert 'folder="Projects"' in refused[0], refused
        # Still on old; new holds an exact subset of old, nothing twice.
        assert login(lab) == n_inbox
        assert all(c["route"] == "source" for c in g.conns() if c.get("user") == USER)
        old = dump(lab, lab.OLD4, USER)
        new = dump(lab, lab.NEW4, USER)
        subset_exact(old, new)
        assert sum(len(v) for v in new["folders"].values()) < len(corpus)

        # The limit raised (not removed: Maildir++ keeps the last limit in
        # maildirsize): the next login resumes, no loss, no duplicate.
        limit("userdb_quota_rule=*:storage=1G userdb_quota_max_mail_size=0")
        time.sleep(1.1)
        login(lab)
        wait_state(g, USER, "MIGRATED", timeout=120)
        assert dump(lab, lab.NEW4, USER) == old
        assert sum(len(v) for v in old["folders"].values()) == len(corpus)
        assert g.stop() == 0
    finally:
        g.teardown()
    limit("")
    wipe(lab, USER)
