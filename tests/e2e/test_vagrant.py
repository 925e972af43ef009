"""Issue 5: the Vagrant lab. `vagrant validate` (Debian's vagrant, provider
configuration ignored: no VirtualBox or libvirt here) passes on the project's
Vagrantfile and fails on a broken one; it runs in a network namespace of its
own with no interface but loopback, and with Vagrant's version and box checks
off, so it cannot contact anything. The VMs' provisioning script
(tests/lab/vm.sh, the lab's own functions without namespaces) is run for the
`old` host inside a throwaway namespace that stands in for the VM: Dovecot and
Postfix come up on the lab's addresses and serve a login and a delivery."""
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VM_SH = os.path.join(ROOT, "tests", "lab", "vm.sh")


def validate(workdir, tmp_path):
    env = dict(os.environ, VAGRANT_CHECKPOINT_DISABLE="1", VAGRANT_BOX_UPDATE_CHECK_DISABLE="1",
               VAGRANT_HOME=str(tmp_path / "vagrant-home"))
    return subprocess.run(["unshare", "--net", "vagrant", "validate", "--ignore-provider"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="needs Debian's vagrant (make deps)")
def test_vagrantfile_validates(tmp_path):
    r = validate(ROOT, tmp_path)
    assert r.returncode == 0 and "validated successfully" in r.stdout, r.stdout + r.stderr
    for name in ("old", "new", "router", "client"):
        assert f"==> {name}:" in r.stdout
    # The check can fail: a Vagrantfile with an unknown setting does not pass.
    broken = tmp_path / "broken"
    broken.mkdir()
    with open(os.path.join(ROOT, "Vagrantfile")) as f:
        text = f.read()
    (broken / "Vagrantfile").write_text(text.replace('config.vm.box_check_update = false',
                                                     'config.vm.box_check_update = false\n'
                                                     '  config.vm.no_such_setting = 1'))
    r = validate(str(broken), tmp_path)
    assert r.returncode != 0 and "no_such_setting" in (r.stdout + r.stderr), r.stdout


def ns_run(ns, argv, **kw):
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True,
                          **kw)


CHECK = r"""
import imaplib, smtplib, sys, time
m = imaplib.IMAP4('198.18.11.2', 143, timeout=10)
assert m.login('alice', 'alice-Pw-lab')[0] == 'OK'
m.logout()
s = smtplib.SMTP('198.18.11.2', 25, timeout=10)
s.sendmail('sender@example.net', ['bob@lab.test'], sys.argv[1].encode())
s.quit()
print('ok')
"""


def test_vm_provisioning_brings_up_a_mail_host(tmp_path):
    ns = "mfvm%s-old" % uuid.uuid4().hex[:6]
    # Postfix's and Dovecot's unprivileged processes must reach the lab
    # directory: not under pytest's 0700 tmp_path.
    base = pathlib.Path(tempfile.mkdtemp(prefix="mfvm-"))
    base.chmod(0o755)
    lab_dir, pki = base / "vm", base / "pki"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for cmd in (["ip", "link", "set", "lo", "up"],
                    # (no dummy driver in this kernel: a veth pair, both ends here)
                    ["ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"],
                    ["ip", "link", "set", "eth1p", "up"],
                    ["ip", "addr", "add", "198.18.11.2/24", "dev", "eth1"],
                    ["ip", "addr", "add", "2001:db8:11::2/64", "dev", "eth1", "nodad"],
                    ["ip", "link", "set", "eth1", "up"]):
            ns_run(ns, cmd, check=True)
        r = subprocess.run(["bash", VM_SH, "pki", str(pki)], capture_output=True, text=True)
        assert r.returncode == 0 and (pki / "ca.crt").exists(), r.stderr
        env = dict(os.environ, LAB_DIR=str(lab_dir), LAB_PKI=str(pki), LAB_SKIP_APT="1")
        r = subprocess.run(["ip", "netns", "exec", ns, "bash", VM_SH, "old"], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "old ready" in r.stderr
        routes = ns_run(ns, ["ip", "route"]).stdout
        assert "198.18.1.0/24 via 198.18.11.1" in routes, routes
        token = "vm" + uuid.uuid4().hex
        msg = (f"From: s@example.net\r\nTo: bob@lab.test\r\nSubject: {token}\r\n"
               f"Message-ID: <{token}@example.net>\r\nDate: Sat, 28 Nov 2026 04:00:00 +0000\r\n"
               "\r\nHello.\r\n")
        r = ns_run(ns, ["/usr/bin/python3", "-c", CHECK, msg], timeout=60)
        assert r.stdout.strip() == "ok", r.stdout + r.stderr
        deadline = time.monotonic() + 20
        found = []
        while not found and time.monotonic() < deadline:
            for d in ("new", "cur"):
                base = lab_dir / "old" / "mail" / "bob" / "Maildir" / d
                if base.is_dir():
                    found += [p for p in base.iterdir() if token.encode() in p.read_bytes()]
            time.sleep(0.1)
        assert len(found) == 1
        assert found[0].read_bytes().endswith(msg.replace("\r\n", "\n").encode())
    finally:
        env = dict(os.environ, LAB_DIR=str(lab_dir), LAB_PKI=str(pki), LAB_SKIP_APT="1")
        subprocess.run(["ip", "netns", "exec", ns, "bash", VM_SH, "stop", "old"], env=env,
                       capture_output=True, timeout=60)
        subprocess.run(["ip", "netns", "del", ns])
        shutil.rmtree(base, ignore_errors=True)
