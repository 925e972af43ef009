"""Issue 6: migrations running at a restart resume from their checkpoints,
without a duplicate or a loss.

A user's bulk copy (the bulk corpus: folders, flags, a 16 MiB message, 1,200
small messages) is interrupted twice:
1. kill -9 of mailferryd while COPYING: the account stays COPYING in the
   ledger; the restarted daemon sees that no process holds the account's copy
   lock any more and puts it back to SEEN; the user's next login resumes.
2. A restart with hand-over while the resumed copy runs: the successor starts
   beside the running daemon and leaves the account alone (its predecessor
   holds the copy lock: logged); SIGTERM then stops the predecessor's copy at
   its next checkpoint, quickly (not at the end of the copy), and it puts the
   account back to SEEN; the next login, now served by the successor, copies
   what is left.
The account ends MIGRATED; every message checkpointed before an interruption
is copied once (the last bulk pass copies fewer messages than the mailbox
holds), and old and new are equal, message for message and byte for byte."""
import re
import signal
import time

from demo import copied as checkpointed  # tests/lab: the demo reads progress the same way
from mfgateway import Gateway, client_py
from test_migrate_trigger import (append, bulk_corpus, dump, tlab, wait_state,  # noqa: F401
                                  wipe)

LOGIN = r"""
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], 143, timeout=30)
typ, data = m.login(sys.argv[2], sys.argv[3])
assert typ == 'OK', (typ, data)
m.logout()
print('ok')
"""


def wait_checkpointed(g, user, path, more_than, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = checkpointed(path)
        st = g.account(user)["state"]
        assert st in ("SEEN", "COPYING"), f"copy over before the interruption: {st}"
        if st == "COPYING" and n > more_than:
            return n
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint past {more_than} within {timeout}s")


def test_restarts_resume_the_copy_exactly(tlab, tmp_path):  # noqa: F811
    lab, user = tlab
    pw = lab.env[f"PASS_{user}"]
    folders, subs, msgs = bulk_corpus()
    wipe(lab, user)
    append(lab, lab.OLD4, user, msgs, create=folders, subscribe=subs)
    state_dir = tmp_path / "gw" / "migrate"
    state = state_dir / f"{user}.state"
    a = Gateway(lab, str(tmp_path / "gw"), ports=(143,), imap_ports=(143,),
                migrate={"enabled": "yes", "workers": "1", "state_dir": str(state_dir)})
    # The successor: same config, ledger and state directory, its own log.
    b = Gateway(lab, str(tmp_path / "b"), ports=(143,), imap_ports=(143,))
    b.conf, b.ledger = a.conf, a.ledger
    try:
        a.install_rules()
        a.start()
        assert client_py(lab, LOGIN, lab.OLD4, user, pw).strip() == "ok"
        first = wait_checkpointed(a, user, state, 0)

        # 1. kill -9 in the middle of the bulk copy.
        a.stop(signal.SIGKILL)
        assert a.account(user)["state"] == "COPYING"
        a.start()
        acc = a.account(user)
        assert acc["state"] == "SEEN" and "interrupted by a restart" in acc["reason"], acc
        assert client_py(lab, LOGIN, lab.OLD4, user, pw).strip() == "ok"
        second = wait_checkpointed(a, user, state, first + 100)

        # 2. Hand-over: the successor leaves the running copy alone...
        b.start()
        b.wait_log(rf"migrate user={user}\S* copy still running in another mailferryd")
        assert b.account(user)["state"] == "COPYING"
        # ...and SIGTERM stops it at a checkpoint, well before the copy's end.
        t0 = time.monotonic()
        assert a.stop(timeout=60) == 0
        stopped_in = time.monotonic() - t0
        acc = b.account(user)
        assert acc["state"] == "SEEN" and "interrupted by a shutdown" in acc["reason"], acc
        done = checkpointed(state)
        assert second <= done < len(msgs), (second, done, len(msgs))
        print(f"checkpointed: {first} at kill -9, {done} at SIGTERM "
              f"(stopped in {stopped_in:.1f} s), of {len(msgs)}")

        # The next login (served by the successor) copies what is left.
        assert client_py(lab, LOGIN, lab.OLD4, user, pw).strip() == "ok"
        wait_state(b, user, "MIGRATED", timeout=240)
        bulk = [(int(n), int(v)) for n, v in
                re.findall(r"bulk copy done \((\d+) messages, (\d+) read back", b.log())]
        # Copied: what was left; read back: everything (the interrupted runs
        # never got to their read-back).
        assert bulk == [(len(msgs) - done, len(msgs))], (bulk, len(msgs), done)
        old, new = dump(lab, lab.OLD4, user), dump(lab, lab.NEW4, user)
        assert sorted(new["folders"]) == sorted(old["folders"])
        for name, m in old["folders"].items():
            assert new["folders"][name] == m, f"folder {name} differs"
        assert sum(len(m) for m in new["folders"].values()) == len(msgs)
        assert b.stop() == 0
    finally:
        b.teardown()
        a.teardown()
    wipe(lab, user)
