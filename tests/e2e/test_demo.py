"""`make demo` must keep working: run it and check what it claims to show."""
import os
import re
import subprocess

from mfgateway import ROOT


def test_demo_runs_and_shows_interception():
    r = subprocess.run([os.path.join(ROOT, "tests", "lab", "demo.sh")], capture_output=True,
                       text=True, timeout=180, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert "rules: installed" in out
    assert "INBOX" in out
    assert "conn client=198.18.1.2:" in out and "up=198.18.1.2:" in out
    assert "rip=198.18.1.2" in out
    assert re.search(r"gateway flows before: (\d+), after: \1 \(unchanged\)", out)
    assert re.search(r"alice\s+SEEN\s+source\s+1", out)
    assert re.search(r"new server's Dovecot: .*Login: user=<bob>.*rip=198\.18\.1\.2, lip=198\.18\.11\.3", out)
    assert "user=bob route=destination" in out
    assert "user=carol route=unavailable" in out
    assert "mailferryd exit status: 0" in out
    assert "nft ruleset on the router now: ''" in out
