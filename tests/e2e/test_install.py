"""Issue 5, packaging: `make install` with PREFIX and DESTDIR, the systemd
unit (valid, hardened, the paths of the install) and the man pages (no
groff warnings). Needs no lab."""
import os
import re
import stat
import subprocess

from mfgateway import ROOT


def make_install(tmp_path, **kw):
    args = ["make", "--no-print-directory", "-C", ROOT, "install"]
    args += [f"{k}={v}" for k, v in kw.items()]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_destdir_layout(tmp_path):
    dest = tmp_path / "dest"
    make_install(tmp_path, DESTDIR=dest, PREFIX="/usr")
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == ["etc/mailferry/mailferry.conf.example",
                     "usr/lib/systemd/system/mailferryd.service",
                     "usr/sbin/mailferry", "usr/sbin/mailferryd",
                     "usr/share/man/man5/mailferry.conf.5",
                     "usr/share/man/man8/mailferry.8", "usr/share/man/man8/mailferryd.8"]
    assert stat.S_IMODE(os.stat(dest / "usr/sbin/mailferryd").st_mode) == 0o755
    unit = (dest / "usr/lib/systemd/system/mailferryd.service").read_text()
    assert "ExecStart=/usr/sbin/mailferryd -c /etc/mailferry/mailferry.conf" in unit
    assert "@" not in re.sub(r"#.*", "", unit)


def test_unit_verifies_and_is_hardened(tmp_path):
    pfx = tmp_path / "pfx"
    make_install(tmp_path, PREFIX=pfx / "usr", SYSCONFDIR=pfx / "etc")
    unit = pfx / "usr/lib/systemd/system/mailferryd.service"
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for mailferryd.service: ([0-9.]+)", r.stdout)
    assert m and float(m.group(1)) <= 4.0, r.stdout[-2000:]
    text = unit.read_text()
    caps = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M).group(1).split()
    assert sorted(caps) == ["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text
    r = subprocess.run([str(pfx / "usr/sbin/mailferryd"), "-h"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage: mailferryd" in r.stdout


def test_man_pages_render_without_warnings():
    for page in ("mailferryd.8", "mailferry.8", "mailferry.conf.5"):
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", os.path.join(ROOT, "man", page)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stderr == "", (page, r.stderr)
