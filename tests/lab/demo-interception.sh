#!/usr/bin/env bash
# The interception demo (make demo MODE=bridge runs it with --bridge; make
# demo itself is demo.py): a real IMAP client on the lab's client host logs in to the old
# server; the router's nftables rules divert the flow into mailferryd, which
# relays it from the client's own address. Everything happens in network
# namespaces made for this run and removed at the end, also on failure.
#
#   demo-interception.sh            router mode (the default lab)
#   demo-interception.sh --bridge   bridge mode (make demo MODE=bridge): the gateway is a
#                      transparent bridge between the client and the old
#                      server, which share one subnet
set -euo pipefail
BRIDGE=0
case ${1:-} in
    --bridge) BRIDGE=1 ;;
    "") ;;
    *) echo "usage: $0 [--bridge]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/../.."
ROOT=$PWD
export LAB_PREFIX=mfl$$-
export LAB_DIR=/tmp/${LAB_PREFIX}lab
GW_PID=
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() {
    set +e
    [[ -n $GW_PID ]] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
    if [[ -f $LAB_DIR/lab.env ]]; then
        ip netns exec "${LAB_PREFIX}router" "$ROOT/build/mailferry" -c "$LAB_DIR/mailferry.conf" rules remove >/dev/null 2>&1
    fi
    tests/lab/lab.sh down >/dev/null 2>&1
}
trap cleanup EXIT

if (( BRIDGE )); then
    step "Lab: client 198.18.1.2 == bridge br0 (router namespace) == old 198.18.1.11, one subnet; new 198.18.11.3 routed behind it"
    tests/lab/lab.sh up --bridge 2>&1 | tail -1
else
    step "Lab: client 198.18.1.2 -- router -- old 198.18.11.2 / new 198.18.11.3 (Dovecot + Postfix)"
    tests/lab/lab.sh up 2>&1 | tail -1
fi
# shellcheck disable=SC1091
source "$LAB_DIR/lab.env"
R() { ip netns exec "$NS_ROUTER" "$@"; }
C() { ip netns exec "$NS_CLIENT" "$@"; }

cat > "$LAB_DIR/mailferry.conf" <<CONF
[gateway]
workers = 1
[intercept]
sources = $OLD4, $OLD6
ports = 25, 110, 143, 465, 587, 993, 995
clients = $CLIENT_NET4, $CLIENT_NET6
destination = $NEW4, $NEW6
$( ((BRIDGE)) && printf 'mode = bridge\nbridge = br0' )
[ledger]
path = $LAB_DIR/ledger.db
CONF

step "Install the interception rules on the router (netlink, one atomic batch)"
R build/mailferry -c "$LAB_DIR/mailferry.conf" rules install
R build/mailferry -c "$LAB_DIR/mailferry.conf" rules status
R nft list chain inet mailferry prerouting | sed 's/^/    /'
if (( BRIDGE )); then
    step "Bridge mode: mail frames between clients and the old server go up to the router's IP stack"
    R nft list chain bridge mailferry prerouting | sed 's/^/    /'
    R sysctl net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
fi

step "Start mailferryd on the router"
ip netns exec "$NS_ROUTER" build/mailferryd -c "$LAB_DIR/mailferry.conf" >"$LAB_DIR/mailferryd.log" 2>&1 </dev/null &
GW_PID=$!
for _ in $(seq 50); do grep -q "started" "$LAB_DIR/mailferryd.log" && break; sleep 0.1; done
cat "$LAB_DIR/mailferryd.log"

step "On the client: curl logs in to imap://$OLD4/ as alice and lists her folders"
mark=$(wc -c <"$DOVECOT_LOG_OLD")
C curl -sS --max-time 10 "imap://$OLD4/" --user "alice:$PASS_alice"
sleep 0.3

step "The gateway's log line for that flow (up= is the upstream leg's source: the client's own address)"
grep " conn " "$LAB_DIR/mailferryd.log" | tail -1

step "The old server's Dovecot log: it saw the client's real address (rip=)"
tail -c +"$((mark + 1))" "$DOVECOT_LOG_OLD" | grep "Login:" | tail -1

step "The ledger: alice's first login through the gateway made her SEEN"
R build/mailferry -c "$LAB_DIR/mailferry.conf" accounts list

step "Routing by account state: bob MIGRATED logs in on the new server, carol CUTOVER is asked to retry"
R build/mailferry -c "$LAB_DIR/mailferry.conf" accounts set-state bob MIGRATED --reason demo
R build/mailferry -c "$LAB_DIR/mailferry.conf" accounts set-state carol CUTOVER --reason demo
mark_new=$(wc -c <"$DOVECOT_LOG_NEW")
C curl -sS --max-time 10 "imap://$OLD4/" --user "bob:$PASS_bob" | head -1
sleep 0.3
echo "new server's Dovecot: $(tail -c +"$((mark_new + 1))" "$DOVECOT_LOG_NEW" | grep "Login:" | tail -1)"
C curl -sS --max-time 10 "imap://$OLD4/" --user "carol:$PASS_carol" 2>&1 | head -1 || true
grep " conn " "$LAB_DIR/mailferryd.log" | tail -2

if (( BRIDGE )); then
    step "Everything else crosses the bridge untouched: ping and ARP from the client to the old server"
    C ip neigh flush dev eth0
    C ping -c 1 -W 2 "$OLD4" | grep ttl= || true
    echo "client's ARP entry for $OLD4: $(C ip neigh show "$OLD4") (old's own MAC: $(ip netns exec "$NS_OLD" cat /sys/class/net/eth0/address); bridge's: $BRIDGE_MAC)"
fi

step "Interception off for the client subnet: the same login goes straight to the source"
R build/mailferry subnet del "$CLIENT_NET4"
n=$(grep -c " conn " "$LAB_DIR/mailferryd.log")
C curl -sS --max-time 10 "imap://$OLD4/" --user "alice:$PASS_alice" | head -1
sleep 0.3
echo "gateway flows before: $n, after: $(grep -c " conn " "$LAB_DIR/mailferryd.log") (unchanged)"
R build/mailferry subnet add "$CLIENT_NET4"
R build/mailferry subnet list

step "SIGTERM: mailferryd drains and exits; rules remove leaves no trace"
kill -TERM "$GW_PID"; rc=0; wait "$GW_PID" || rc=$?; GW_PID=
echo "mailferryd exit status: $rc"
tail -4 "$LAB_DIR/mailferryd.log"
R build/mailferry -c "$LAB_DIR/mailferry.conf" rules remove
echo "nft ruleset on the router now: '$(R nft list ruleset)'"
if (( BRIDGE )); then
    R sysctl net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
fi
step "Done; tearing the lab down"
