"""`make demo` must keep working: run it and check what it claims to show."""
import os
import re
import subprocess

from mfgateway import ROOT


def run_demo(*args):
    """demo.sh's output; it must succeed."""
    r = subprocess.run([os.path.join(ROOT, "tests", "lab", "demo.sh"), *args],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def test_demo_runs_and_shows_the_migration():
    out = run_demo()
    assert "installed: table inet mailferry" in out
    assert re.search(r"alice MIGRATED +\[#{30}\] 300/300 messages copied", out), out
    assert "the gateway closed her session at the cutover" in out
    assert re.search(r"bob: MIGRATED \(copied and verified", out), out
    assert re.search(r"new server's Dovecot: Login: user=<alice>.*rip=198\.18\.1\.2, "
                     r"lip=198\.18\.11\.3", out), out
    assert re.search(r"new server's Dovecot: Login: user=<bob>.*rip=198\.18\.1\.2", out), out
    rows = re.findall(r"^ +(alice|bob) +(\S+) +old +(\d+) +new +(\d+) +(\w+)$", out, re.M)
    assert len(rows) == 8 and all(r[2] == r[3] and r[4] == "identical" for r in rows), rows
    assert "all identical" in out
    assert re.search(r"alice@lab\.test\s+MIGRATED\s+destination", out)
    assert re.search(r"bob@lab\.test\s+MIGRATED\s+destination", out)
    assert "carol@lab.test" not in out.split("(mailferry accounts list)")[1].split("==")[0]
    assert re.search(r"Done in \d+ s", out)


def test_demo_bridge_mode():
    out = run_demo("--bridge")
    assert "rules: installed" in out
    assert "bridge mode: table bridge mailferry on br0" in out
    assert "meta pkttype set host ether daddr set 02:6d:66:62:72:30 accept" in out
    assert "conn client=198.18.1.2:" in out and "dst=198.18.1.11:143" in out
    assert "rip=198.18.1.2, lip=198.18.1.11" in out
    assert re.search(r"new server's Dovecot: .*Login: user=<bob>.*rip=198\.18\.1\.2, lip=198\.18\.11\.3", out)
    assert re.search(r"ttl=64 ", out)
    m = re.search(r"ARP entry for 198\.18\.1\.11: .*lladdr (\S+) .*old's own MAC: (\S+);", out)
    assert m and m.group(1) == m.group(2), out
    assert re.search(r"gateway flows before: (\d+), after: \1 \(unchanged\)", out)
    assert "mailferryd exit status: 0" in out
    assert "nft ruleset on the router now: ''" in out
    assert "net.bridge.bridge-nf-call-iptables = 1" in out.split("nft ruleset on the router now")[1]
