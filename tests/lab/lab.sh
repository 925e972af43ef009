#!/usr/bin/env bash
# mailferry test lab: four network namespaces (client, router, old, new) linked
# only to each other by veth, with real Dovecot + Postfix on old and new.
#
#   lab.sh up [--net-only] [--bridge]
#                            bring the lab up (calls reap first), writes $LAB_DIR/lab.env;
#                            --bridge: the bridge-mode topology (see net_up_bridge)
#   lab.sh down              stop daemons, delete namespaces, remove $LAB_DIR (unless LAB_KEEP=1)
#   lab.sh reap              remove stale labs (mfl<pid>-*) whose <pid> is dead
#
# Env: LAB_PREFIX (default mfl<pid of caller>-), LAB_DIR (default /tmp/${LAB_PREFIX}lab),
#      LAB_USERS (extra generated users user0001.., default 0), LAB_KEEP=1 (keep LAB_DIR on down),
#      LAB_GATEWAYS=2 (a second router namespace "router2" with its own client "client2",
#      both on the server network beside router: two gateways in front of one old server).
#
# Safety: nothing is ever created in, or changed in, the root namespace (no interface, route,
# rule, sysctl or nft ruleset). Addresses only from 198.18.0.0/15 and 2001:db8::/32.
set -euo pipefail

LAB_PREFIX=${LAB_PREFIX:-mfl${PPID}-}
LAB_DIR=${LAB_DIR:-/tmp/${LAB_PREFIX}lab}
LAB_USERS=${LAB_USERS:-0}
LAB_GATEWAYS=${LAB_GATEWAYS:-1}
P=$LAB_PREFIX

if ! [[ $P =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$ ]]; then
    echo "lab.sh: bad LAB_PREFIX '$P' (letters, digits, . _ - only)" >&2; exit 2
fi
if [[ $LAB_GATEWAYS != 1 && $LAB_GATEWAYS != 2 ]]; then
    echo "lab.sh: bad LAB_GATEWAYS '$LAB_GATEWAYS' (1 or 2)" >&2; exit 2
fi
if ! [[ $LAB_USERS =~ ^[0-9]+$ ]] || (( LAB_USERS > 9999 )); then
    echo "lab.sh: bad LAB_USERS '$LAB_USERS'" >&2; exit 2
fi
case $LAB_DIR in
    /*) ;;
    *) LAB_DIR=$PWD/$LAB_DIR ;;
esac
LAB_DIR=${LAB_DIR%/}
if [[ -z $LAB_DIR || $LAB_DIR == / || $LAB_DIR =~ [[:space:]] ]]; then
    echo "lab.sh: bad LAB_DIR '$LAB_DIR'" >&2; exit 2
fi

NS_CLIENT=${P}client
NS_ROUTER=${P}router
NS_OLD=${P}old
NS_NEW=${P}new
NS_ROUTER2=${P}router2
NS_CLIENT2=${P}client2
UP_NS=("$NS_CLIENT" "$NS_ROUTER" "$NS_OLD" "$NS_NEW")
if (( LAB_GATEWAYS == 2 )); then UP_NS+=("$NS_CLIENT2" "$NS_ROUTER2"); fi
# down removes whichever of them exist, whatever LAB_GATEWAYS says now
ALL_NS=("$NS_CLIENT" "$NS_ROUTER" "$NS_OLD" "$NS_NEW" "$NS_CLIENT2" "$NS_ROUTER2")

CLIENT4=198.18.1.2;        CLIENT6=2001:db8:1::2
ROUTER_CLIENT4=198.18.1.1; ROUTER_CLIENT6=2001:db8:1::1
ROUTER_SERVER4=198.18.11.1; ROUTER_SERVER6=2001:db8:11::1
OLD4=198.18.11.2;          OLD6=2001:db8:11::2
NEW4=198.18.11.3;          NEW6=2001:db8:11::3
CLIENT_NET4=198.18.1.0/24; CLIENT_NET6=2001:db8:1::/64
# the second gateway (LAB_GATEWAYS=2): its clients, and its leg on the server network
CLIENT2_4=198.18.2.2;       CLIENT2_6=2001:db8:2::2
ROUTER2_CLIENT4=198.18.2.1; ROUTER2_CLIENT6=2001:db8:2::1
ROUTER2_SERVER4=198.18.11.4; ROUTER2_SERVER6=2001:db8:11::4
CLIENT2_NET4=198.18.2.0/24; CLIENT2_NET6=2001:db8:2::/64
SERVER_NET4=198.18.11.0/24; SERVER_NET6=2001:db8:11::/64
MAIL_DOMAIN=lab.test
MAIL_UID=5000
MAIL_GID=5000
MASTER_USER=mfmaster
MASTER_PASS=mfmaster-Pw-lab
PY=/usr/bin/python3
PORTS=(25 110 143 587 993 995)

log() { printf '[lab %s] %s\n' "$(date +%T.%N | cut -c1-12)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
refuse() { log "REFUSED: $*"; exit 3; }  # nothing was created: exit 3, no teardown
UP_STARTED=0

ns_exists() { [[ -e /run/netns/$1 ]]; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# passwords are derived: <user>-Pw-lab (distinct per user; the same on old and new)

user_list() {
    local u i
    for u in alice bob carol; do echo "$u"; done
    for ((i = 1; i <= LAB_USERS; i++)); do printf 'user%04d\n' "$i"; done
}

# ---------------------------------------------------------------- process helpers
proc_start() { # pid -> start time (clock ticks since boot), empty if gone
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    s=${s##*) }            # drop "pid (comm) "
    # remaining fields start at field 3 (state); starttime is field 22 -> index 19
    local -a f
    read -r -a f <<<"$s"
    echo "${f[19]:-}"
}

kill_pids_wait() { # kill TERM, wait up to ~5 s, then KILL; args: pids
    local pid t alive
    (( $# )) || return 0
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for ((t = 0; t < 50; t++)); do
        alive=0
        for pid in "$@"; do
            if [[ -e /proc/$pid ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; then
                alive=1; break
            fi
        done
        (( alive )) || return 0
        sleep 0.1
    done
    for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
    sleep 0.1
}

kill_ns_procs() { # kill everything that still runs inside namespace $1
    local ns=$1 pids
    ns_exists "$ns" || return 0
    pids=$(ip netns pids "$ns" 2>/dev/null | grep -vx "$$" || true)
    # shellcheck disable=SC2086
    if [[ -n $pids ]]; then kill_pids_wait $pids; fi
    pids=$(ip netns pids "$ns" 2>/dev/null | grep -vx "$$" || true)
    if [[ -n $pids ]]; then
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        sleep 0.1
    fi
}

# ---------------------------------------------------------------- reap
do_reap() {
    local ns pid pre dir
    local -A dead_prefixes=()
    while read -r ns _; do
        [[ $ns =~ ^mfl([0-9]+)-(.*)$ ]] || continue
        pid=${BASH_REMATCH[1]}
        [[ ${BASH_REMATCH[2]} =~ (^|-)(client|router|old|new|client2|router2)$ ]] || continue
        # alive (including zombie): leave it alone
        [[ -e /proc/$pid ]] && continue
        log "reap: stale namespace $ns (pid $pid is gone)"
        kill_ns_procs "$ns"
        ip netns del "$ns" 2>/dev/null || true
        case $ns in
            *client2) pre=${ns%client2} ;;
            *router2) pre=${ns%router2} ;;
            *) pre=${ns%client}; pre=${pre%router}; pre=${pre%old}; pre=${pre%new} ;;
        esac
        dead_prefixes[$pre]=1
    done < <(ip netns list 2>/dev/null)
    for pre in "${!dead_prefixes[@]}"; do
        dir=/tmp/${pre}lab
        if [[ $pre =~ ^mfl[0-9]+-[A-Za-z0-9_.-]*$ && -d $dir && ! -L $dir ]]; then
            rm -rf --one-file-system "$dir" || true
        fi
    done
}

# ---------------------------------------------------------------- down
do_down() {
    local pid st ns pids_file=$LAB_DIR/pids cur
    local -a to_kill=()
    if [[ -f $pids_file ]]; then
        while read -r _ pid st _; do
            [[ $pid =~ ^[0-9]+$ ]] || continue
            cur=$(proc_start "$pid")
            # only kill the very process we started (guards against PID reuse)
            if [[ -n $cur && $cur == "$st" ]]; then
                to_kill+=("$pid")
            fi
        done <"$pids_file"
    fi
    # Everything inside the lab's namespaces goes at once: a Dovecot master that is
    # signalled alone waits ~1 s for its children; signalled together they exit in ms.
    for ns in "${ALL_NS[@]}"; do
        ns_exists "$ns" || continue
        while read -r pid; do
            if [[ $pid =~ ^[0-9]+$ && $pid != "$$" ]]; then to_kill+=("$pid"); fi
        done < <(ip netns pids "$ns" 2>/dev/null || true)
    done
    if (( ${#to_kill[@]} )); then kill_pids_wait "${to_kill[@]}"; fi
    for ns in "${ALL_NS[@]}"; do kill_ns_procs "$ns"; done
    for ns in "${ALL_NS[@]}"; do
        ns_exists "$ns" && { ip netns del "$ns" 2>/dev/null || true; }
    done
    if [[ ${LAB_KEEP:-0} != 1 && -d $LAB_DIR && ! -L $LAB_DIR ]]; then
        rm -rf --one-file-system "$LAB_DIR" 2>/dev/null || true
    fi
    return 0
}

# ---------------------------------------------------------------- network
# The four namespaces, forwarding on the router, and the veth pairs: created inside the
# router namespace with the peer directly in the other namespace, so that no interface
# ever exists in the root namespace.
ns_and_veths() {
    local ns
    for ns in "${UP_NS[@]}"; do
        ip netns add "$ns"
        # sysctls here are per-namespace (net.*): the root namespace is untouched
        nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 \
            net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
            net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 >/dev/null
        ip -n "$ns" link set lo up
    done
    nsx "$NS_ROUTER" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null
    ip -n "$NS_ROUTER" link add rcl type veth peer name eth0 netns "$NS_CLIENT"
    ip -n "$NS_ROUTER" link add rold type veth peer name eth0 netns "$NS_OLD"
    ip -n "$NS_ROUTER" link add rnew type veth peer name eth0 netns "$NS_NEW"
}

host_net() { # ns ip4 ip6 [gw4 gw6]: eth0 of a host namespace, its default routes
    ip -n "$1" -b - <<EOF
addr add $2/24 dev eth0
addr add $3/64 dev eth0 nodad
link set eth0 up
${4:+route add default via $4}
${5:+route add default via $5}
EOF
}

net_up() {
    ns_and_veths
    ip -n "$NS_ROUTER" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
    ip -n "$NS_ROUTER" link set rold master br0
    ip -n "$NS_ROUTER" link set rnew master br0

    ip -n "$NS_ROUTER" -b - <<EOF
addr add $ROUTER_CLIENT4/24 dev rcl
addr add $ROUTER_CLIENT6/64 dev rcl nodad
addr add $ROUTER_SERVER4/24 dev br0
addr add $ROUTER_SERVER6/64 dev br0 nodad
link set rcl up
link set rold up
link set rnew up
link set br0 up
EOF
    host_net "$NS_CLIENT" "$CLIENT4" "$CLIENT6" "$ROUTER_CLIENT4" "$ROUTER_CLIENT6"
    host_net "$NS_OLD" "$OLD4" "$OLD6" "$ROUTER_SERVER4" "$ROUTER_SERVER6"
    host_net "$NS_NEW" "$NEW4" "$NEW6" "$ROUTER_SERVER4" "$ROUTER_SERVER6"
    if (( LAB_GATEWAYS == 2 )); then net_up_second_gateway; fi
}

# router2 joins the server network as a peer of router (its leg "rsrv" is a port of
# router's bridge: a switch, not a route through router), with client2 behind it. old
# and new reach client2's network through router2, so its gateway's upstream legs from
# client2's own address get their replies.
net_up_second_gateway() {
    local h
    nsx "$NS_ROUTER2" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null
    ip -n "$NS_ROUTER2" link add rcl type veth peer name eth0 netns "$NS_CLIENT2"
    ip -n "$NS_ROUTER" link add r2 type veth peer name rsrv netns "$NS_ROUTER2"
    ip -n "$NS_ROUTER" link set r2 master br0
    ip -n "$NS_ROUTER" link set r2 up
    ip -n "$NS_ROUTER2" -b - <<EOF
addr add $ROUTER2_CLIENT4/24 dev rcl
addr add $ROUTER2_CLIENT6/64 dev rcl nodad
addr add $ROUTER2_SERVER4/24 dev rsrv
addr add $ROUTER2_SERVER6/64 dev rsrv nodad
link set rcl up
link set rsrv up
EOF
    host_net "$NS_CLIENT2" "$CLIENT2_4" "$CLIENT2_6" "$ROUTER2_CLIENT4" "$ROUTER2_CLIENT6"
    for h in "$NS_OLD" "$NS_NEW"; do
        ip -n "$h" -b - <<EOF
route add $CLIENT2_NET4 via $ROUTER2_SERVER4
route add $CLIENT2_NET6 via $ROUTER2_SERVER6
EOF
    done
}

# Bridge-mode topology (issue 7): the router namespace is a transparent L2 bridge br0
# between the client (port rcl) and the old server (port rold), which share one subnet;
# nobody routes through it. The new server sits behind it on a routed veth (rnew), as a
# site would reach it. br0 has an address in the shared subnet (BRIDGE_ADDR=none: only
# routes on br0, to see what works without one) and a fixed MAC, as deployments should
# give it (a bridge's own MAC otherwise follows its ports').
BRIDGE_MAC=02:6d:66:62:72:30
set_bridge_addrs() {
    OLD4=198.18.1.11;          OLD6=2001:db8:1::11
    SERVER_NET4=$CLIENT_NET4;  SERVER_NET6=$CLIENT_NET6
    NEW_NET4=198.18.11.0/24;   NEW_NET6=2001:db8:11::/64
}

net_up_bridge() {
    # Forwarding (ns_and_veths): the gateway routes to new, and (fail-open, subnet off
    # while a flow lives) forwards mail flows it took up from the bridge back onto it.
    ns_and_veths
    ip -n "$NS_ROUTER" link add br0 address "$BRIDGE_MAC" type bridge stp_state 0 \
        forward_delay 0 mcast_snooping 0
    ip -n "$NS_ROUTER" link set rcl master br0
    ip -n "$NS_ROUTER" link set rold master br0
    if [[ ${BRIDGE_ADDR:-yes} == none ]]; then
        ip -n "$NS_ROUTER" -b - <<EOF
link set rcl up
link set rold up
link set rnew up
link set br0 up
addr add $ROUTER_SERVER4/24 dev rnew
addr add $ROUTER_SERVER6/64 dev rnew nodad
route add $CLIENT_NET4 dev br0
route add $CLIENT_NET6 dev br0
EOF
    else
        ip -n "$NS_ROUTER" -b - <<EOF
addr add $ROUTER_CLIENT4/24 dev br0
addr add $ROUTER_CLIENT6/64 dev br0 nodad
addr add $ROUTER_SERVER4/24 dev rnew
addr add $ROUTER_SERVER6/64 dev rnew nodad
link set rcl up
link set rold up
link set rnew up
link set br0 up
EOF
    fi
    # Client and old: one subnet, no router between them. new answers the client
    # addresses the gateway connects from (MIGRATED accounts' upstream legs) through it.
    host_net "$NS_CLIENT" "$CLIENT4" "$CLIENT6"
    host_net "$NS_OLD" "$OLD4" "$OLD6"
    host_net "$NS_NEW" "$NEW4" "$NEW6" "$ROUTER_SERVER4" "$ROUTER_SERVER6"
}

net_check_bridge() { # client -> old across the bridge, router -> new (bounded: ~10 s)
    local t
    for ((t = 0; t < 50; t++)); do
        if nsx "$NS_CLIENT" ping -c1 -W1 -q "$OLD4" >/dev/null 2>&1 &&
           nsx "$NS_CLIENT" ping -c1 -W1 -q "$OLD6" >/dev/null 2>&1 &&
           nsx "$NS_ROUTER" ping -c1 -W1 -q "$NEW4" >/dev/null 2>&1 &&
           nsx "$NS_ROUTER" ping -c1 -W1 -q "$NEW6" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    log "bridge lab: no ICMP echo reply (client -> old or router -> new)"
    return 1
}

net_check() { # ICMP echo client -> old/new, v4 and v6 (there is no ping binary here)
    nsx "$NS_CLIENT" "$PY" - "$OLD4" "$OLD6" "$NEW4" "$NEW6" <<'EOF'
import os, socket, struct, sys, time
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF); s += s >> 16
    return ~s & 0xFFFF
def ping(addr, deadline):
    v6 = ":" in addr
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                      socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    ident, seq = os.getpid() & 0xFFFF, 0
    try:
        while time.monotonic() < deadline:
            seq += 1
            typ = 128 if v6 else 8
            hdr = struct.pack("!BBHHH", typ, 0, 0, ident, seq) + b"mflab"
            if not v6:
                hdr = hdr[:2] + struct.pack("!H", csum(hdr)) + hdr[4:]
            try:
                s.sendto(hdr, (addr, 0))
            except OSError:
                time.sleep(0.1); continue
            end = min(deadline, time.monotonic() + 0.3)
            while time.monotonic() < end:
                s.settimeout(max(0.01, end - time.monotonic()))
                try:
                    data, _ = s.recvfrom(2048)
                except (socket.timeout, OSError):
                    break
                if not v6:
                    data = data[(data[0] & 0x0F) * 4:]
                if len(data) >= 8:
                    t, _c, _ck, i, q = struct.unpack("!BBHHH", data[:8])
                    if t == (129 if v6 else 0) and i == ident:
                        return True
        return False
    finally:
        s.close()
bad = [a for a in sys.argv[1:] if not ping(a, time.monotonic() + 5)]
if bad:
    print("no ICMP echo reply from: " + " ".join(bad), file=sys.stderr); sys.exit(1)
EOF
}

# ---------------------------------------------------------------- PKI
make_pki() {
    local d=$LAB_DIR/pki h cn ip4 ip6
    mkdir -p "$d"
    (
        cd "$d"
        umask 077
        openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
        openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/O=mailferry lab/CN=mailferry lab CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -addext "subjectKeyIdentifier=hash" -out ca.crt 2>/dev/null
        for h in old new; do
            if [[ $h == old ]]; then ip4=$OLD4 ip6=$OLD6; else ip4=$NEW4 ip6=$NEW6; fi
            cn=$h.$MAIL_DOMAIN
            openssl ecparam -name prime256v1 -genkey -noout -out "$h.key" 2>/dev/null
            openssl req -new -key "$h.key" -subj "/O=mailferry lab/CN=$cn" -out "$h.csr" 2>/dev/null
            printf '%s\n' \
                "basicConstraints=critical,CA:FALSE" \
                "keyUsage=critical,digitalSignature,keyEncipherment" \
                "extendedKeyUsage=serverAuth" \
                "subjectKeyIdentifier=hash" \
                "authorityKeyIdentifier=keyid" \
                "subjectAltName=DNS:$cn,DNS:mail.$MAIL_DOMAIN,IP:$ip4,IP:$ip6" >"$h.ext"
            openssl x509 -req -in "$h.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 \
                -days 3650 -extfile "$h.ext" -out "$h.crt" 2>/dev/null
            rm -f "$h.csr" "$h.ext"
        done
        chmod 0644 ca.crt old.crt new.crt
        chmod 0600 ca.key old.key new.key
    )
}

# ---------------------------------------------------------------- mail servers
host_vars() { # sets H, HOST_NS, IP4, IP6, FQDN for host $1
    H=$LAB_DIR/$1
    FQDN=$1.$MAIL_DOMAIN
    if [[ $1 == old ]]; then HOST_NS=$NS_OLD IP4=$OLD4 IP6=$OLD6; else HOST_NS=$NS_NEW IP4=$NEW4 IP6=$NEW6; fi
}

write_users() { # passwd-file for Dovecot and the recipient map for Postfix
    local h=$1 u
    host_vars "$h"
    while read -r u; do
        printf '%s:{PLAIN}%s-Pw-lab:%s:%s::%s/mail/%s::\n' "$u" "$u" "$MAIL_UID" "$MAIL_GID" "$H" "$u" >&3
        printf '%s@%s OK\n' "$u" "$MAIL_DOMAIN" >&4
    done 3>"$H/users" 4>"$H/postfix/vmailbox" < <(user_list)
    printf '%s:{PLAIN}%s::::::\n' "$MASTER_USER" "$MASTER_PASS" >"$H/master-users"
    chgrp dovecot "$H/users" "$H/master-users"
    chmod 0640 "$H/users" "$H/master-users"
}

write_dovecot_conf() {
    local h=$1
    host_vars "$h"
    local dh="" quota=""
    [[ -r /usr/share/dovecot/dh.pem ]] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
    # new enforces quotas, none by default: a test gives one user a limit with
    # userdb extra fields in new's users file (userdb_quota_rule=*:storage=2M,
    # userdb_quota_max_mail_size=100k); passwd-file is re-read when it changes.
    [[ $h == new ]] && quota="mail_plugins = \$mail_plugins quota
plugin {
  quota = maildir:User quota
}"
    cat >"$H/dovecot.conf" <<EOF
# mailferry lab: Dovecot for $FQDN (self-contained, does not read /etc/dovecot)
instance_name = ${P}$h
base_dir = $H/run
state_dir = $H/state
listen = $IP4, $IP6
protocols = imap pop3 lmtp
hostname = $FQDN
login_greeting = Dovecot ready ($FQDN).
# the gateway may pass on the client address (IMAP ID, XCLIENT-like)
login_trusted_networks = $ROUTER_SERVER4/32 $ROUTER_SERVER6/128
log_path = $H/dovecot.log
auth_verbose = yes
verbose_proctitle = yes

ssl = yes
ssl_cert = <$LAB_DIR/pki/$h.crt
ssl_key = <$LAB_DIR/pki/$h.key
$dh
disable_plaintext_auth = no
auth_mechanisms = plain login
# alice@lab.test -> alice; master login: alice*mfmaster
auth_username_format = %Ln
auth_master_user_separator = *

mail_location = maildir:~/Maildir
first_valid_uid = $MAIL_UID
last_valid_uid = $MAIL_UID
first_valid_gid = $MAIL_GID
last_valid_gid = $MAIL_GID
mail_max_userip_connections = 1000
default_process_limit = 500
$quota

namespace inbox {
  inbox = yes
  mailbox Drafts {
    special_use = \Drafts
  }
  mailbox Junk {
    special_use = \Junk
  }
  mailbox Trash {
    special_use = \Trash
  }
  mailbox Sent {
    special_use = \Sent
  }
}

passdb {
  driver = passwd-file
  args = $H/master-users
  master = yes
  pass = yes
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN $H/users
}
userdb {
  driver = passwd-file
  args = $H/users
}

service imap-login {
  inet_listener imap {
    port = 143
  }
  inet_listener imaps {
    port = 993
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 110
  }
  inet_listener pop3s {
    port = 995
    ssl = yes
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0660
    user = postfix
    group = postfix
  }
}
service anvil {
  client_limit = 2000
}
service auth {
  client_limit = 4000
  unix_listener auth-postfix {
    mode = 0660
    user = postfix
    group = postfix
  }
}
protocol lmtp {
  postmaster_address = postmaster@$MAIL_DOMAIN
}
EOF
}

write_postfix_conf() {
    local h=$1
    host_vars "$h"
    cat >"$H/postfix/main.cf" <<EOF
# mailferry lab: Postfix for $FQDN (own config, queue and data directories)
compatibility_level = 3.6
queue_directory = $H/postfix-queue
data_directory = $H/postfix-data
mail_owner = postfix
setgid_group = postdrop
myhostname = $FQDN
mydomain = $MAIL_DOMAIN
myorigin = \$mydomain
mydestination =
inet_interfaces = $IP4, [$IP6]
inet_protocols = all
mynetworks = 198.18.0.0/15, [2001:db8::]/32
relayhost =
smtpd_banner = \$myhostname ESMTP Postfix (mailferry lab)
biff = no
append_dot_mydomain = no
readme_directory = no
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:no local delivery in the lab
maillog_file = $H/postfix.log
maillog_file_prefixes = $H
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtpd_peername_lookup = no
message_size_limit = 67108864
mailbox_size_limit = 0
virtual_mailbox_limit = 0
virtual_mailbox_domains = $MAIL_DOMAIN
virtual_mailbox_maps = texthash:$H/postfix/vmailbox
virtual_transport = lmtp:unix:$H/run/lmtp
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_tls_cert_file = $LAB_DIR/pki/$h.crt
smtpd_tls_key_file = $LAB_DIR/pki/$h.key
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_sasl_type = dovecot
smtpd_sasl_path = $H/run/auth-postfix
smtpd_sasl_auth_enable = no
smtpd_tls_auth_only = yes
EOF
    cat >"$H/postfix/master.cf" <<'EOF'
# service type  private unpriv  chroot  wakeup  maxproc command + args
25        inet  n       -       n       -       -       smtpd
587       inet  n       -       n       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_tls_auth_only=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

prepare_host() {
    local h=$1
    host_vars "$h"
    mkdir -p "$H/run" "$H/state" "$H/mail" "$H/postfix" "$H/postfix-queue" "$H/postfix-data"
    chmod 0755 "$H" "$H/run" "$H/postfix" "$H/postfix-queue"
    chown "$MAIL_UID:$MAIL_GID" "$H/mail"
    chmod 0770 "$H/mail"
    chown postfix:postfix "$H/postfix-data"
    write_users "$h"
    write_dovecot_conf "$h"
    write_postfix_conf "$h"
    : >"$H/dovecot.log"
    : >"$H/postfix.log"
    # Postfix refuses to read a main.cf younger than ~2 s ("file is being edited") and
    # polls every 300 ms: backdate the freshly written files so start-up does not wait.
    touch -d '-1 minute' "$H/postfix/main.cf" "$H/postfix/master.cf" "$H/postfix/vmailbox"
}

record_pid() { # label pid ns
    local st
    st=$(proc_start "$2")
    [[ -n $st ]] || die "$1 (pid $2) is not running"
    printf '%s %s %s %s\n' "$1" "$2" "$st" "$3" >>"$LAB_DIR/pids"
}

wait_file() { # path seconds
    local t
    for ((t = 0; t < $2 * 20; t++)); do
        [[ -s $1 || -S $1 ]] && return 0
        sleep 0.05
    done
    return 1
}

start_host() {
    local h=$1 pid
    host_vars "$h"
    # Postfix: create its queue directories as /etc/postfix/postfix-files prescribes
    # ("post-install create-missing" does the same but takes ~1.7 s), then skip the slow
    # integrity scans of "postfix start" with its documented quick-start marker.
    local q=$H/postfix-queue d
    install -d -o root -g root -m 0755 "$q" "$q/pid"
    for d in active bounce corrupt defer deferred flush hold incoming private saved trace; do
        install -d -o postfix -g root -m 0700 "$q/$d"
    done
    install -d -o postfix -g postdrop -m 0730 "$q/maildrop"
    install -d -o postfix -g postdrop -m 0710 "$q/public"
    install -d -o postfix -g root -m 0700 "$H/postfix-data"
    touch "$H/postfix-queue/quick-start"
    nsx "$HOST_NS" dovecot -c "$H/dovecot.conf" </dev/null >>"$H/dovecot.start.log" 2>&1 \
        || { cat "$H/dovecot.start.log" >&2; die "dovecot failed to start on $h"; }
    nsx "$HOST_NS" postfix -c "$H/postfix" start </dev/null >>"$H/postfix.start.log" 2>&1 \
        || { cat "$H/postfix.start.log" >&2; die "postfix failed to start on $h"; }
    wait_file "$H/run/master.pid" 10 || die "no dovecot master.pid on $h"
    pid=$(tr -dc 0-9 <"$H/run/master.pid")
    record_pid "dovecot-$h" "$pid" "$HOST_NS"
    wait_file "$H/postfix-queue/pid/master.pid" 10 || die "no postfix master.pid on $h"
    pid=$(tr -dc 0-9 <"$H/postfix-queue/pid/master.pid")
    record_pid "postfix-$h" "$pid" "$HOST_NS"
}

wait_ready() { # all ports listening on v4+v6 of both hosts, sockets present; <= 20 s
    local t h p missing listening
    for ((t = 0; t < 200; t++)); do
        missing=()
        for h in old new; do
            host_vars "$h"
            listening=$(nsx "$HOST_NS" ss -Hltn 2>/dev/null | awk '{print $4}')
            for p in "${PORTS[@]}"; do
                grep -qxF "$IP4:$p" <<<"$listening" || missing+=("$h:$IP4:$p")
                grep -qxF "[$IP6]:$p" <<<"$listening" || missing+=("$h:[$IP6]:$p")
            done
            [[ -S $H/run/lmtp ]] || missing+=("$h:lmtp-socket")
            [[ -S $H/run/auth-postfix ]] || missing+=("$h:auth-socket")
        done
        (( ${#missing[@]} == 0 )) && return 0
        sleep 0.1
    done
    log "not ready after 20 s: ${missing[*]}"
    return 1
}

dump_logs() {
    local h f
    for h in old new; do
        for f in dovecot.start.log dovecot.log postfix.start.log postfix.log; do
            [[ -s $LAB_DIR/$h/$f ]] || continue
            echo "----- $LAB_DIR/$h/$f (last 40 lines)" >&2
            tail -n 40 "$LAB_DIR/$h/$f" >&2 || true
        done
    done
}

kv() { # print KEY=value pairs: raw when shell-safe, else single-quoted
    local k v
    while (( $# >= 2 )); do
        k=$1 v=$2; shift 2
        if [[ $v =~ ^[A-Za-z0-9_./:,@+=%-]*$ ]]; then
            printf '%s=%s\n' "$k" "$v"
        else
            printf "%s='%s'\n" "$k" "${v//\'/\'\\\'\'}"
        fi
    done
}

write_env() {
    local net_only=$1 u f=$LAB_DIR/lab.env users topo=router srv_if=br0
    local -a extra=()
    if (( BRIDGE )); then
        topo=bridge srv_if=rnew
        extra=(BRIDGE_IF br0 BRIDGE_MAC "$BRIDGE_MAC" BRIDGE_PORTS rcl,rold
               BRIDGE_ADDR "${BRIDGE_ADDR:-yes}" NEW_NET4 "$NEW_NET4" NEW_NET6 "$NEW_NET6")
    fi
    users=$(user_list | paste -sd, -)
    {
        echo "# mailferry lab environment (shell KEY=value); generated by tests/lab/lab.sh"
        kv  LAB_PREFIX "$P" LAB_DIR "$LAB_DIR" NET_ONLY "$net_only" \
            NS_CLIENT "$NS_CLIENT" NS_ROUTER "$NS_ROUTER" NS_OLD "$NS_OLD" NS_NEW "$NS_NEW" \
            CLIENT4 "$CLIENT4" CLIENT6 "$CLIENT6" \
            ROUTER_CLIENT4 "$ROUTER_CLIENT4" ROUTER_CLIENT6 "$ROUTER_CLIENT6" \
            ROUTER_SERVER4 "$ROUTER_SERVER4" ROUTER_SERVER6 "$ROUTER_SERVER6" \
            OLD4 "$OLD4" OLD6 "$OLD6" NEW4 "$NEW4" NEW6 "$NEW6" \
            CLIENT_NET4 "$CLIENT_NET4" CLIENT_NET6 "$CLIENT_NET6" \
            SERVER_NET4 "$SERVER_NET4" SERVER_NET6 "$SERVER_NET6" \
            ROUTER_CLIENT_IF rcl ROUTER_SERVER_IF "$srv_if" TOPOLOGY "$topo" "${extra[@]}" \
            MAIL_DOMAIN "$MAIL_DOMAIN" OLD_NAME "old.$MAIL_DOMAIN" NEW_NAME "new.$MAIL_DOMAIN" \
            MAIL_UID "$MAIL_UID" MAIL_GID "$MAIL_GID" \
            CA_CERT "$LAB_DIR/pki/ca.crt" CA_KEY "$LAB_DIR/pki/ca.key" \
            OLD_CERT "$LAB_DIR/pki/old.crt" OLD_KEY "$LAB_DIR/pki/old.key" \
            NEW_CERT "$LAB_DIR/pki/new.crt" NEW_KEY "$LAB_DIR/pki/new.key" \
            MASTER_USER "$MASTER_USER" MASTER_PASS "$MASTER_PASS" \
            USERS "$users" GATEWAYS "$LAB_GATEWAYS"
        if (( LAB_GATEWAYS == 2 )); then
            kv NS_ROUTER2 "$NS_ROUTER2" NS_CLIENT2 "$NS_CLIENT2" \
               CLIENT2_4 "$CLIENT2_4" CLIENT2_6 "$CLIENT2_6" \
               ROUTER2_CLIENT4 "$ROUTER2_CLIENT4" ROUTER2_CLIENT6 "$ROUTER2_CLIENT6" \
               ROUTER2_SERVER4 "$ROUTER2_SERVER4" ROUTER2_SERVER6 "$ROUTER2_SERVER6" \
               CLIENT2_NET4 "$CLIENT2_NET4" CLIENT2_NET6 "$CLIENT2_NET6"
        fi
        while read -r u; do kv "PASS_$u" "$u-Pw-lab"; done < <(user_list)
        kv  DOVECOT_LOG_OLD "$LAB_DIR/old/dovecot.log" DOVECOT_LOG_NEW "$LAB_DIR/new/dovecot.log" \
            POSTFIX_LOG_OLD "$LAB_DIR/old/postfix.log" POSTFIX_LOG_NEW "$LAB_DIR/new/postfix.log" \
            MAILDIR_OLD "$LAB_DIR/old/mail" MAILDIR_NEW "$LAB_DIR/new/mail" \
            DOVECOT_CONF_OLD "$LAB_DIR/old/dovecot.conf" DOVECOT_CONF_NEW "$LAB_DIR/new/dovecot.conf" \
            POSTFIX_CONF_OLD "$LAB_DIR/old/postfix" POSTFIX_CONF_NEW "$LAB_DIR/new/postfix" \
            LMTP_SOCKET_OLD "$LAB_DIR/old/run/lmtp" LMTP_SOCKET_NEW "$LAB_DIR/new/run/lmtp"
    } >"$f.tmp"
    mv "$f.tmp" "$f"
}

do_up() {
    local net_only=0 arg h
    for arg in "$@"; do
        case $arg in
            --net-only) net_only=1 ;;
            --bridge) ;; # read before do_up (BRIDGE)
            *) die "unknown option for up: $arg" ;;
        esac
    done
    do_reap
    local ns
    for ns in "${UP_NS[@]}"; do
        ns_exists "$ns" && refuse "namespace $ns already exists (a lab with prefix $P is up?)"
    done
    [[ -e $LAB_DIR/pids ]] && refuse "$LAB_DIR already holds a lab (run 'lab.sh down' first)"
    # shellcheck disable=SC2034  # read by the EXIT trap
    UP_STARTED=1  # from here on, a failure tears down what was made
    mkdir -p "$LAB_DIR"
    chmod 0755 "$LAB_DIR"
    : >"$LAB_DIR/pids"

    if (( BRIDGE )); then net_up_bridge; else net_up; fi
    log "namespaces up"
    make_pki &
    local pki_pid=$!
    if (( BRIDGE )); then
        net_check_bridge || { wait "$pki_pid" || true; die "bridge lab: no reachability"; }
    else
        net_check || { wait "$pki_pid" || true; die "client cannot reach old/new"; }
    fi
    wait "$pki_pid" || die "certificate generation failed"
    log "network verified, certificates made"

    if (( ! net_only )); then
        local -a jobs=()
        for h in old new; do
            ( prepare_host "$h"; start_host "$h" ) &
            jobs+=($!)
        done
        local failed=0 j
        for j in "${jobs[@]}"; do wait "$j" || failed=1; done
        (( failed )) && die "mail server start failed"
        log "daemons started"
        wait_ready || die "mail servers not ready"
    fi
    write_env "$net_only"
    log "lab $P up in $LAB_DIR ($( ((net_only)) && echo net-only || echo full))"
}

# Sourced (tests/lab/vm.sh): the functions and addresses only.
if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
    return 0
fi

cmd=${1:-}
shift || true
# The topology changes addresses that everything below reads.
BRIDGE=0
for arg in "$@"; do [[ $arg == --bridge ]] && BRIDGE=1; done
if (( BRIDGE )); then set_bridge_addrs; fi
case $cmd in
    up)
        # shellcheck disable=SC2154,SC2046
        trap 'rc=$?; if (( rc != 0 && UP_STARTED )); then dump_logs; log "up failed (rc=$rc), tearing down"; kill $(jobs -p) 2>/dev/null; wait; do_down; fi' EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        do_up "$@"
        trap - EXIT INT TERM
        ;;
    down) do_down ;;
    reap) do_reap ;;
    *)
        echo "usage: $0 up [--net-only] [--bridge] | down | reap" >&2
        exit 2
        ;;
esac
