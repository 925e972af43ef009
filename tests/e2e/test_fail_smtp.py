"""Issue 6, test 2 (SMTP part): with an account MIGRATED (fail = auto has
turned closed) and mailferryd down, a real MTA's message for that account
is not delivered to the old server; the MTA retries (Postfix, in the client
namespace, relaying through the old server's address as its relayhost) and
once the gateway is back the message lands on the new server, exactly once
and byte-exact."""
import os
import re
import shutil
import subprocess
import time

from test_fail_modes import gateway
from test_smtp_front import DOMAIN, assert_exact, message, stored, token, wait_stored


def start_mta(lab, d):
    """A sending Postfix of its own in the client namespace: no listener,
    relayhost = the old server (diverted by the gateway), quick retries."""
    for sub in ("conf", "data"):
        os.makedirs(os.path.join(d, sub))
    q = os.path.join(d, "queue")
    os.makedirs(os.path.join(q, "pid"))
    for sub in ("active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming",
                "private", "saved", "trace"):
        os.makedirs(os.path.join(q, sub))
        shutil.chown(os.path.join(q, sub), "postfix", "root")
        os.chmod(os.path.join(q, sub), 0o700)
    for sub, mode in (("maildrop", 0o730), ("public", 0o710)):
        os.makedirs(os.path.join(q, sub))
        shutil.chown(os.path.join(q, sub), "postfix", "postdrop")
        os.chmod(os.path.join(q, sub), mode)
    shutil.chown(os.path.join(d, "data"), "postfix", "root")
    os.chmod(os.path.join(d, "data"), 0o700)
    os.chmod(d, 0o755)
    open(os.path.join(q, "quick-start"), "w").close()
    with open(os.path.join(d, "conf", "main.cf"), "w") as f:
        f.write(f"""compatibility_level = 3.6
queue_directory = {q}
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.client.lab.test
mydomain = client.lab.test
myorigin = $mydomain
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
relayhost = [{lab.env['OLD4']}]:25
smtp_dns_support_level = disabled
smtp_tls_security_level = none
alias_maps =
alias_database =
local_transport = error:no local delivery
maillog_file = {d}/postfix.log
maillog_file_prefixes = {d}
minimal_backoff_time = 2s
maximal_backoff_time = 3s
queue_run_delay = 2s
smtp_connect_timeout = 20s
""")
    # Debian's services, without the SMTP listener.
    with open("/etc/postfix/master.cf") as src, \
            open(os.path.join(d, "conf", "master.cf"), "w") as dst:
        for line in src:
            if re.match(r"^(smtp|submission|smtps)\s+inet\b", line):
                line = "#" + line
            dst.write(line)
    for name in ("main.cf", "master.cf"):
        os.utime(os.path.join(d, "conf", name), (time.time() - 60, time.time() - 60))
    r = lab.run("client", ["postfix", "-c", os.path.join(d, "conf"), "start"],
                capture_output=True, text=True)
    if r.returncode != 0:
        log = os.path.join(d, "postfix.log")
        check = lab.run("client", ["postfix", "-c", os.path.join(d, "conf"), "check"],
                        capture_output=True, text=True)
        raise AssertionError("postfix start: %s%s\n%s\ncheck: %s%s" % (
            r.stdout, r.stderr, open(log).read() if os.path.exists(log) else "(no log)",
            check.stdout, check.stderr))


def stop_mta(lab, d):
    lab.run("client", ["postfix", "-c", os.path.join(d, "conf"), "abort"], capture_output=True)
    pidfile = os.path.join(d, "queue", "pid", "master.pid")
    if os.path.exists(pidfile):
        try:
            os.kill(int(open(pidfile).read().strip()), 9)
        except (ValueError, ProcessLookupError):
            pass


def test_mta_retries_into_the_new_server_after_the_gateway_is_back(lab, tmp_path):
    # Under the lab's directory: the postfix user must reach its queue
    # (pytest's tmp dirs are root's alone).
    mta = os.path.join(lab.lab_dir, "mta-%d" % os.getpid())
    with gateway(lab, tmp_path / "gw", ports=(25,), smtp_ports=(25,), imap_ports=(),
                 ledger={"default_domain": DOMAIN}) as g:
        g.cli("accounts", "set-state", "carol@" + DOMAIN, "MIGRATED")
        g.wait_log(r"fail_mode switched mode=closed fail=auto", timeout=10)
        g.wait_log(r"syn_gate mode=closed")
        assert g.stop() == 0
        start_mta(lab, mta)
        try:
            t = token()
            m = message(t, body=b"Sent while the gateway was down.\r\n.dot line\r\n")
            r = lab.run("client", ["sendmail", "-C", os.path.join(mta, "conf"), "-f",
                                   "sender@client.lab.test", "-i", "carol@" + DOMAIN],
                        input=m, capture_output=True, timeout=30)
            assert r.returncode == 0, r.stderr
            # The MTA tries while the gateway is down: nothing may arrive anywhere.
            time.sleep(4)
            assert stored(lab, "old", "carol", t) == []
            assert stored(lab, "new", "carol", t) == []
            g.start()
            got = wait_stored(lab, "new", "carol", t, timeout=60)
            assert len(got) == 1
            # the MTA's Received: line is trace; the rest is byte for byte
            assert_exact(got[0], m)
            assert stored(lab, "old", "carol", t) == []
            log = open(os.path.join(mta, "postfix.log")).read()
            assert re.search(r"to=<carol@lab\.test>, relay=.*status=sent", log), log[-2000:]
            g.wait_log(r"smtp txn client=198\.18\.1\.2:\d+ route=destination rcpts=1")
        finally:
            stop_mta(lab, mta)
            shutil.rmtree(mta, ignore_errors=True)
