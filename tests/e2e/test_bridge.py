"""Issue 7: bridge mode, mailferry as a bump in the wire.

Lab (tests/lab/lab.sh up --bridge): the router namespace is a transparent
bridge br0 between the client (port rcl) and the old server (port rold),
which share 198.18.1.0/24 and 2001:db8:1::/64; nobody routes through it.
The new server is routed behind it. mailferryd (ASan build) and
`[intercept] mode = bridge` rules on the router; real Dovecot and Postfix
on old and new; imaplib, poplib, smtplib, ping and raw sockets on the
client; tcpdump on old as the witness of what reaches the source.

The issue's five tests, in order: interception of IMAP, POP3 and SMTP with
the client's real address and migrated accounts on new; interception off
for the subnet; ARP, ICMP, other ports, IPv6 (and VLAN-tagged frames)
crossing unchanged; `rules remove` restoring a plain bridge; fail-closed
with the daemon stopped after a migration. Then: what works when br0 has
no address in the subnet.

Run: LAB_PREFIX=xx /usr/bin/python3 -m pytest -q tests/e2e/test_bridge.py
"""
import contextlib
import os
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from lab import Lab
from mfgateway import Gateway, port_of, running
from test_smtp_front import SEND, assert_exact, message, stored, token, wait_stored

DOMAIN = "lab.test"
BRIDGE = {"mode": "bridge", "bridge": "br0"}
FRONTS = dict(imap_ports=(143,), pop3_ports=(110,), smtp_ports=(25,),
              ports=(25, 110, 143), ledger={"default_domain": DOMAIN})


@pytest.fixture(scope="module")
def blab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    with Lab.up(bridge=True) as the_lab:
        yield the_lab


IMAP = r"""
import imaplib
c = imaplib.IMAP4(P["host"], 143, timeout=15)
c.login(P["user"], P["pw"])
typ, _ = c.select("INBOX")
c.logout()
RESULT = typ
"""

POP3 = r"""
import poplib
p = poplib.POP3(P["host"], 110, timeout=15)
p.user(P["user"])
p.pass_(P["pw"])
n = p.stat()[0]
p.quit()
RESULT = n
"""


def imap_login(lab, user, v6=False):
    return lab.py_json("client", IMAP, host=lab.env["OLD6" if v6 else "OLD4"], user=user,
                       pw=lab.password(user))


def pop3_login(lab, user, v6=False):
    return lab.py_json("client", POP3, host=lab.env["OLD6" if v6 else "OLD4"], user=user,
                       pw=lab.password(user))


def send_mail(lab, rcpt, msg, v6=False):
    return lab.py_json("client", SEND, host=lab.env["OLD6" if v6 else "OLD4"],
                       rcpts=[rcpt], text=msg.decode())[1]


def forwarded(lab):
    """Packets the router's IP stack forwarded (IPv4, IPv6): a frame that is
    only bridged never counts here."""
    def field(text, header, name):
        lines = [l.split() for l in text.splitlines() if l.startswith(header)]
        return int(lines[1][lines[0].index(name)])

    snmp = lab.run("router", ["cat", "/proc/net/snmp"], capture_output=True, text=True).stdout
    snmp6 = lab.run("router", ["cat", "/proc/net/snmp6"], capture_output=True, text=True).stdout
    v6 = int(re.search(r"^Ip6OutForwDatagrams\s+(\d+)", snmp6, re.M).group(1))
    return field(snmp, "Ip:", "ForwDatagrams"), v6


def old_logins(lab, mark, proto, user):
    """rip= of old's Dovecot logins of user over proto after mark."""
    return re.findall(r"%s-login: Info: Login: user=<%s>[^\n]*rip=([0-9a-f:.]+)" % (proto, user),
                      lab.log_since("DOVECOT_LOG_OLD", mark))


def new_logins(lab, mark, proto, user):
    return re.findall(r"%s-login: Info: Login: user=<%s>[^\n]*rip=([0-9a-f:.]+)" % (proto, user),
                      lab.log_since("DOVECOT_LOG_NEW", mark))


def conns(g, user=None):
    """conn lines (of user: logged with the default domain)."""
    return [c for c in g.conns() if user is None or c.get("user") == user + "@" + DOMAIN]


# --- 1. interception --------------------------------------------------------

def test_imap_pop3_smtp_intercepted_with_real_client_address(blab, tmp_path):
    lab = blab
    with running(lab, str(tmp_path), intercept=BRIDGE, **FRONTS) as g:
        out = g.cli("rules", "status").stdout
        assert "table bridge mailferry: present, chain prerouting present, 4 rules " \
               "(as configured, for this MAC)" in out, out
        assert "bridge-nf-call-iptables = 0, bridge-nf-call-ip6tables = 0" in out, out

        mark = lab.log_mark("DOVECOT_LOG_OLD")
        for v6 in (False, True):
            assert imap_login(lab, "alice", v6) == "OK"
            assert pop3_login(lab, "alice", v6) >= 0
        assert old_logins(lab, mark, "imap", "alice") == [lab.CLIENT4, lab.CLIENT6]
        assert old_logins(lab, mark, "pop3", "alice") == [lab.CLIENT4, lab.CLIENT6]
        for port in (143, 110):
            for client, dst in ((lab.CLIENT4, lab.OLD4), ("[%s]" % lab.CLIENT6, "[%s]" % lab.OLD6)):
                c = g.wait_conn(lambda c: c.get("user") == "alice@" + DOMAIN and
                                c["dst"] == "%s:%d" % (dst, port) and
                                c["client"].startswith(client + ":"))
                assert c["up"] == c["client"] and c["route"] == "source"

        # Mail for alice (UNSEEN) reaches old, byte for byte, from the client.
        mark_pf = lab.log_mark("POSTFIX_LOG_OLD")
        t = token()
        m = message(t, body=b"Across the bridge.\r\n.dot line\r\n")
        assert send_mail(lab, "alice@" + DOMAIN, m) == {}
        got = wait_stored(lab, "old", "alice", t)
        assert len(got) == 1
        assert_exact(got[0], m)
        assert stored(lab, "new", "alice", t) == []
        lab.wait_log("POSTFIX_LOG_OLD", r"connect from [^\n]*\[198\.18\.1\.2\]", mark_pf)
        g.wait_log(r"smtp txn client=198\.18\.1\.2:\d+ route=source rcpts=1 refused=0")

        # bob MIGRATED: IMAP, POP3 and mail land on new, which sees the client.
        g.cli("accounts", "set-state", "bob", "MIGRATED", "--reason", "bridge test")
        mark_new = lab.log_mark("DOVECOT_LOG_NEW")
        mark_old = lab.log_mark("DOVECOT_LOG_OLD")
        mark_pf = lab.log_mark("POSTFIX_LOG_NEW")
        for v6 in (False, True):
            assert imap_login(lab, "bob", v6) == "OK"
            assert pop3_login(lab, "bob", v6) >= 0
            t = token()
            m = message(t, body=b"For bob, now on new (%s).\r\n" % (b"v6" if v6 else b"v4"))
            assert send_mail(lab, "bob@" + DOMAIN, m, v6) == {}
            got = wait_stored(lab, "new", "bob", t)
            assert len(got) == 1
            assert_exact(got[0], m)
            assert stored(lab, "old", "bob", t) == []
        assert new_logins(lab, mark_new, "imap", "bob") == [lab.CLIENT4, lab.CLIENT6]
        assert new_logins(lab, mark_new, "pop3", "bob") == [lab.CLIENT4, lab.CLIENT6]
        assert old_logins(lab, mark_old, "imap", "bob") == []
        lab.wait_log("POSTFIX_LOG_NEW", r"connect from [^\n]*\[198\.18\.1\.2\]", mark_pf)
        lab.wait_log("POSTFIX_LOG_NEW", r"connect from [^\n]*\[2001:db8:1::2\]", mark_pf)
        assert len([c for c in conns(g, "bob") if c["route"] == "destination" and
                    port_of(c["dst"]) in (143, 110)]) == 4


# --- 2. interception off -----------------------------------------------------

def test_subnet_off_flows_without_the_gateway(blab, tmp_path):
    lab = blab
    with running(lab, str(tmp_path / "del"), intercept=BRIDGE, **FRONTS) as g:
        # A session diverted before the switch keeps its gateway.
        s = lab.popen("client", ["/usr/bin/python3", "-c", r"""
import imaplib, sys
c = imaplib.IMAP4(sys.argv[1], 143, timeout=15)
c.login(sys.argv[2], sys.argv[3])
print("in", flush=True)
sys.stdin.readline()
print(c.noop()[0], flush=True)
c.logout()
""", lab.OLD4, "alice", lab.password("alice")], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, text=True)
        assert s.stdout.readline().strip() == "in"
        for net in (lab.CLIENT_NET4, lab.CLIENT_NET6):
            g.cli("subnet", "del", net)
        n = len(g.conns())
        fwd = forwarded(lab)
        mark = lab.log_mark("DOVECOT_LOG_OLD")
        for v6 in (False, True):
            assert imap_login(lab, "carol", v6) == "OK"
            assert pop3_login(lab, "carol", v6) >= 0
        t = token()
        m = message(t)
        assert send_mail(lab, "carol@" + DOMAIN, m) == {}
        assert_exact(wait_stored(lab, "old", "carol", t)[0], m)
        assert old_logins(lab, mark, "imap", "carol") == [lab.CLIENT4, lab.CLIENT6]
        # Still taken up from the bridge (the bridge set keeps the subnet,
        # see subnet.c) and forwarded by the gateway's IP stack, undiverted.
        assert all(a > b for a, b in zip(forwarded(lab), fwd))
        s.stdin.write("\n")
        s.stdin.flush()
        assert s.stdout.readline().strip() == "OK"
        assert s.wait(15) == 0
        time.sleep(0.5)
        # Only the session from before the switch ended in the log.
        assert [c["user"] for c in g.conns()[n:]] == ["alice@" + DOMAIN]
        assert not [c for c in conns(g, "carol")]

    # Installed with the subnet not intercepted: purely bridged, the
    # gateway's IP stack forwards nothing.
    g = Gateway(lab, str(tmp_path / "off"), intercept=BRIDGE, **FRONTS)
    try:
        conf = open(g.conf).read().replace(
            "clients = %s, %s" % (lab.CLIENT_NET4, lab.CLIENT_NET6),
            "clients = 198.18.200.0/24")
        with open(g.conf, "w") as f:
            f.write(conf)
        g.install_rules()
        g.start()
        before = forwarded(lab)
        mark = lab.log_mark("DOVECOT_LOG_OLD")
        for v6 in (False, True):
            assert imap_login(lab, "carol", v6) == "OK"
        t = token()
        m = message(t)
        assert send_mail(lab, "carol@" + DOMAIN, m, v6=True) == {}
        assert_exact(wait_stored(lab, "old", "carol", t)[0], m)
        assert old_logins(lab, mark, "imap", "carol") == [lab.CLIENT4, lab.CLIENT6]
        assert forwarded(lab) == before
        assert g.conns() == []
        assert g.stop() == 0
    finally:
        g.teardown()


# --- 3. non-mail traffic ------------------------------------------------------

ECHO = r"""
import select, socket, sys
socks = []
for fam, addr in ((socket.AF_INET, sys.argv[1]), (socket.AF_INET6, sys.argv[2])):
    for typ in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(fam, typ)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, 4000))
        if typ == socket.SOCK_STREAM:
            s.listen(8)
        socks.append(s)
print("ready", flush=True)
for _ in range(40):
    r, _, _ = select.select(socks, [], [], 20)
    if not r:
        break
    for s in r:
        if s.type == socket.SOCK_STREAM:
            c, peer = s.accept()
            c.recv(100)
            c.sendall(peer[0].encode())
            c.close()
        else:
            data, peer = s.recvfrom(100)
            s.sendto(peer[0].encode(), peer)
"""

ECHO_CLIENT = r"""
import socket
res = []
for host in (P["v4"], P["v6"]):
    c = socket.create_connection((host, 4000), timeout=5)
    c.sendall(b"hi")
    res.append(c.recv(100).decode())
    c.close()
    u = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    u.sendto(b"hi", (host, 4000))
    res.append(u.recv(100).decode())
    u.close()
RESULT = res
"""


def mac_of(lab, ns):
    return lab.run(ns, ["cat", "/sys/class/net/eth0/address"], capture_output=True,
                   text=True, check=True).stdout.strip()


def test_arp_icmp_other_ports_ipv6_cross_unchanged(blab, tmp_path):
    lab = blab
    with running(lab, str(tmp_path), intercept=BRIDGE, **FRONTS) as g:
        before = forwarded(lab)
        old_mac = mac_of(lab, "old")
        # ARP and neighbour discovery across the bridge: the client learns
        # old's own MAC, not the bridge's.
        lab.run("client", ["ip", "neigh", "flush", "dev", "eth0"], check=True)
        for addr in (lab.OLD4, lab.OLD6):
            p = lab.run("client", ["ping", "-c", "2", "-W", "2", addr], capture_output=True,
                        text=True)
            assert p.returncode == 0, p.stdout + p.stderr
            # Not routed: the reply's TTL / hop limit is old's 64, undecremented.
            assert re.search(r"(ttl|hlim)=64 ", p.stdout), p.stdout
            neigh = lab.run("client", ["ip", "neigh", "show", addr], capture_output=True,
                            text=True).stdout
            assert "lladdr " + old_mac in neigh, neigh
        # TCP and UDP on a port that is not a mail port, both families: the
        # server sees the client, the gateway nothing.
        srv = lab.popen("old", ["/usr/bin/python3", "-c", ECHO, lab.OLD4, lab.OLD6],
                        stdout=subprocess.PIPE, text=True)
        try:
            assert srv.stdout.readline().strip() == "ready"
            got = lab.py_json("client", ECHO_CLIENT, v4=lab.OLD4, v6=lab.OLD6)
            assert got == [lab.CLIENT4, lab.CLIENT4, lab.CLIENT6, lab.CLIENT6]
        finally:
            srv.kill()
            srv.wait()
        assert forwarded(lab) == before
        assert g.conns() == []


def frame(src_mac, dst_mac, src, dst, vlan=None):
    """An Ethernet frame (802.1Q-tagged with vlan) holding a TCP SYN
    src:40143 -> dst:143."""
    def csum(b):
        if len(b) % 2:
            b += b"\0"
        s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        s = (s >> 16) + (s & 0xFFFF)
        return ~(s + (s >> 16)) & 0xFFFF

    saddr, daddr = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", 40143, 143, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    tcp = tcp[:16] + struct.pack("!H", csum(saddr + daddr + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, saddr, daddr)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    eth = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", ""))
    if vlan is not None:
        eth += struct.pack("!HH", 0x8100, vlan)
    return eth + struct.pack("!H", 0x0800) + ip + tcp


RAW_SEND = r"""
import socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
for f in P["frames"]:
    s.send(bytes.fromhex(f))
"""


def test_vlan_tagged_mail_frames_cross_untouched(blab, tmp_path):
    """The rules read the frame's own ether type: a SYN to old's IMAP port in
    an 802.1Q frame (VLAN 100) is bridged as it is, tag included; the same SYN
    untagged is taken up to the gateway. (This kernel has no VLAN devices, so
    the frames are written raw.)"""
    lab = blab
    with running(lab, str(tmp_path), intercept=BRIDGE, **FRONTS) as g:
        cap = Capture(lab, "(vlan 100 and tcp dst port 143) or "
                           "(not vlan and tcp dst port 143 and src host %s)" % lab.CLIENT4)
        try:
            src, dst = mac_of(lab, "client"), mac_of(lab, "old")
            lab.py_json("client", RAW_SEND, frames=[
                frame(src, dst, lab.CLIENT4, lab.OLD4, vlan=100).hex(),
                frame(src, dst, lab.CLIENT4, lab.OLD4).hex()])
            time.sleep(1)
        finally:
            seen = cap.stop()
        assert len(seen) == 1, seen
        assert "vlan 100" in seen[0] and "%s.40143 > %s.143" % (lab.CLIENT4, lab.OLD4) in seen[0]
        # The untagged SYN went to the listener (whose SYN-ACK the client resets).
        g.wait_log(r"syn_gate accepted=[1-9]")


# --- 4. rules remove ------------------------------------------------------------

def router_state(lab):
    out = []
    for argv in (["nft", "list", "ruleset"], ["ip", "rule"], ["ip", "-6", "rule"],
                 ["ip", "route", "show", "table", "all"],
                 ["ip", "-6", "route", "show", "table", "all"],
                 ["sh", "-c", "head /proc/sys/net/bridge/*"]):
        out.append(lab.run("router", argv, capture_output=True, check=True).stdout)
    return out


REFERENCE_NFT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "nft-rules", "mailferry-bridge.nft")


def bridge_exprs(lab):
    """The bridge chain's rules as nft --debug=netlink prints them, without
    handles: one list of expression lines per rule."""
    out = lab.run("router", ["nft", "--debug=netlink", "list", "chain", "bridge", "mailferry",
                             "prerouting"], capture_output=True, text=True, check=True).stdout
    rules = []
    for line in out.splitlines():
        if line.startswith("bridge mailferry prerouting"):
            rules.append([])
        elif line.startswith("  [") and rules:
            rules[-1].append(line.strip())
    return rules


def test_rules_remove_restores_a_plain_bridge(blab, tmp_path):
    lab = blab
    before = router_state(lab)
    assert b"bridge-nf-call-iptables <==\n1\n" in before[-1]
    g = Gateway(lab, str(tmp_path), intercept=BRIDGE, **FRONTS)
    try:
        r = g.cli("rules", "install")
        assert "bridge mode: table bridge mailferry on br0 (MAC %s)" % lab.BRIDGE_MAC in r.stdout
        assert router_state(lab) != before
        assert b"table bridge mailferry" in router_state(lab)[0]
        ours = bridge_exprs(lab)
        g.remove_rules()
        assert router_state(lab) == before
        # What install built is mailferry-bridge.nft, expression by expression.
        ref = os.path.join(str(tmp_path), "bridge.nft")
        with open(REFERENCE_NFT) as f, open(ref, "w") as out:
            out.write(f.read().replace("02:6d:66:62:72:30", lab.BRIDGE_MAC))
        lab.run("router", ["nft", "-f", ref], check=True)
        try:
            assert bridge_exprs(lab) == ours and len(ours) == 4
        finally:
            lab.run("router", ["nft", "delete", "table", "bridge", "mailferry"], check=True)
        assert router_state(lab) == before
        assert g.cli("rules", "status", check=False).returncode == 3
        # A plain bridge again: mail crosses it, unseen by the router's IP stack.
        fwd = forwarded(lab)
        mark = lab.log_mark("DOVECOT_LOG_OLD")
        assert imap_login(lab, "alice") == "OK"
        assert old_logins(lab, mark, "imap", "alice") == [lab.CLIENT4]
        assert forwarded(lab) == fwd
    finally:
        g.teardown()


# --- 5. fail-closed -------------------------------------------------------------

class Capture:
    """tcpdump on old's eth0 (with link-level headers: VLAN tags show)."""

    def __init__(self, lab, pcap_filter):
        self.p = lab.popen("old", ["tcpdump", "-i", "eth0", "-nn", "-e", "-l", "-U", pcap_filter],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = self.p.stderr.readline()
            if "listening on" in line or not line:
                break
        assert self.p.poll() is None, "tcpdump did not start"

    def stop(self):
        time.sleep(0.3)
        self.p.send_signal(signal.SIGINT)
        out, _ = self.p.communicate(timeout=10)
        return [l for l in out.splitlines() if " > " in l]


CONNECT = r"""
import socket
res = []
for host in (P["v4"], P["v6"]):
    for port in (143, 110, 25):
        try:
            socket.create_connection((host, port), timeout=2.5).close()
            res.append("connected")
        except OSError as e:
            res.append(type(e).__name__)
RESULT = res
"""


def test_daemon_stopped_after_migration_fail_closed(blab, tmp_path):
    lab = blab
    g = Gateway(lab, str(tmp_path), intercept=BRIDGE, **FRONTS)
    try:
        g.install_rules()
        g.start()
        g.cli("accounts", "set-state", "bob", "MIGRATED", "--reason", "bridge test")
        g.wait_log(r"fail_mode switched mode=closed fail=auto", timeout=10)
        assert g.stop() == 0
        # Any client packet to a mail port of old.
        cap = Capture(lab, "(dst port 143 or dst port 110 or dst port 25) and "
                           "(src host %s or src host %s)" % (lab.CLIENT4, lab.CLIENT6))
        try:
            got = lab.py_json("client", CONNECT, v4=lab.OLD4, v6=lab.OLD6, timeout=60)
        finally:
            seen = cap.stop()
        assert got == ["TimeoutError"] * 6
        assert seen == [], seen
        # Back: the same client gets through, bob to new.
        g.start()
        mark = lab.log_mark("DOVECOT_LOG_NEW")
        assert imap_login(lab, "bob") == "OK"
        assert new_logins(lab, mark, "imap", "bob") == [lab.CLIENT4]
        assert g.stop() == 0
    finally:
        g.teardown()


def test_daemon_stopped_fail_open_reaches_old_directly(blab, tmp_path):
    """fail = open: with no daemon the flows the bridge takes up are forwarded
    to old untouched (the SYN gate bypasses, tproxy finds no listener)."""
    lab = blab
    g = Gateway(lab, str(tmp_path), intercept=dict(BRIDGE, fail="open"), **FRONTS)
    try:
        g.install_rules()
        fwd = forwarded(lab)
        mark = lab.log_mark("DOVECOT_LOG_OLD")
        for v6 in (False, True):
            assert imap_login(lab, "carol", v6) == "OK"
        assert old_logins(lab, mark, "imap", "carol") == [lab.CLIENT4, lab.CLIENT6]
        assert all(a > b for a, b in zip(forwarded(lab), fwd))
    finally:
        g.teardown()


# --- br0 without an address ------------------------------------------------------

def test_bridge_without_address_intercepts_but_cannot_probe(tmp_path):
    """br0 with only routes to the subnet (no address in it): diverted flows
    and their upstream legs from the client's address work in both families
    (ARP asks with another address of the box, IPv6 uses br0's link-local),
    but the gateway's own connections to the source (the greeting probe, the
    copy) come from an address old cannot answer."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces)")
    with Lab.up(bridge=True, bridge_addr=False, net_only=False) as lab:
        addrs = lab.run("router", ["ip", "-brief", "addr", "show", "br0"], capture_output=True,
                        text=True).stdout
        assert "198.18.1." not in addrs and "2001:db8:1:" not in addrs, addrs
        g = Gateway(lab, str(tmp_path), intercept=BRIDGE, **FRONTS)
        try:
            g.install_rules()
            g.start(timeout=30)
            g.wait_log(r"banners probed=\d+ answered=0")
            mark = lab.log_mark("DOVECOT_LOG_OLD")
            for v6 in (False, True):
                assert imap_login(lab, "alice", v6) == "OK"
            assert old_logins(lab, mark, "imap", "alice") == [lab.CLIENT4, lab.CLIENT6]
            assert len(conns(g, "alice")) == 2
            assert g.stop() == 0
        finally:
            g.teardown()
