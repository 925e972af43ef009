"""Issue 6, least privilege: with [gateway] user set, mailferryd runs as
that user with exactly CAP_NET_ADMIN and CAP_NET_RAW in every thread, and
still relays, routes by the ledger (which it now owns) and flips the SYN
gate over netlink.

The user is `nobody` (present on every Debian box); its work directory is
made under /tmp, owned by it, so it can create the ledger's -wal and -shm.

Run: /usr/bin/python3 -m pytest -x tests/e2e/test_privdrop.py   (as root)
"""
import os
import pwd
import shutil
import stat
import tempfile

from mfgateway import Gateway
from test_fail_modes import gate_set, login

CAP_NET_ADMIN, CAP_NET_RAW = 12, 13
TWO_CAPS = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW)


def task_status(pid):
    """{tid: {field: value}} of /proc/pid/status of every thread."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            out[tid] = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    return out


def test_runs_as_user_with_exactly_two_capabilities(lab):
    nobody = pwd.getpwnam("nobody")
    work = tempfile.mkdtemp(prefix="mf-privdrop-", dir="/tmp")
    os.chown(work, nobody.pw_uid, nobody.pw_gid)
    os.chmod(work, 0o700)
    g = Gateway(lab, work, ports=(143,), imap_ports=(143,), gateway={"user": "nobody"})
    try:
        g.install_rules()
        g.start()
        g.wait_log(r"privileges user=nobody uid=%d caps=cap_net_admin,cap_net_raw" % nobody.pw_uid)
        threads = task_status(g.proc.pid)
        assert len(threads) >= 3, threads.keys()  # main, a worker, the gate
        for tid, st in threads.items():
            assert st["Uid"].split() == [str(nobody.pw_uid)] * 4, (tid, st["Uid"])
            assert st["Gid"].split() == [str(nobody.pw_gid)] * 4, (tid, st["Gid"])
            assert st["Groups"].strip() in ("", str(nobody.pw_gid)), (tid, st["Groups"])
            assert int(st["CapEff"], 16) == TWO_CAPS, (tid, st["CapEff"])
            assert int(st["CapPrm"], 16) == TWO_CAPS, (tid, st["CapPrm"])
            assert int(st["CapInh"], 16) == 0, (tid, st["CapInh"])
            assert int(st["CapBnd"], 16) & ~TWO_CAPS == 0, (tid, st["CapBnd"])
        # The ledger is the daemon's, private.
        st = os.stat(g.ledger)
        assert st.st_uid == nobody.pw_uid and stat.S_IMODE(st.st_mode) == 0o600
        # Still works: transparent upstream, ledger writes, gate flips.
        assert login(lab, "alice")[0] == "OK"
        c = g.wait_conn(lambda c: c.get("user") == "alice")
        assert c["route"] == "source" and c["up"].startswith(lab.env["CLIENT4"] + ":"), c
        assert g.account("alice")["state"] == "SEEN"
        g.cli("accounts", "set-state", "bob", "MIGRATED")
        g.wait_log(r"syn_gate mode=closed fail=auto")
        assert "tcp" in gate_set(lab).split("{", 2)[-1]
        assert "cannot set mode" not in g.log()
        assert g.stop() == 0
    finally:
        g.teardown()
        shutil.rmtree(work, ignore_errors=True)
