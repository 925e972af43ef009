#!/usr/bin/env bash
# tests/lab/vm.sh — the Vagrant lab (Vagrantfile): provisions this machine as one
# of the lab's four hosts with the same functions, addresses and configs as the
# namespace lab of the tests (tests/lab/lab.sh), only without namespaces.
#
#   vm.sh pki DIR        make the lab CA and the old/new certificates in DIR
#                        (run once on the Vagrant host: every VM shares them)
#   vm.sh old|new        Dovecot + Postfix as the lab's old/new server
#   vm.sh router         build and install mailferry, rules, mailferryd (systemd)
#   vm.sh client         the test client (curl, swaks, Python)
#   vm.sh stop old|new   stop that host's Dovecot and Postfix
#
# Env: LAB_DIR (default /var/lib/mailferry-lab), LAB_PKI (the pki DIR, default
# /vagrant/tests/lab/.vagrant-pki), LAB_SKIP_APT=1 (packages are there already),
# SRC (the mailferry source tree, default /vagrant).
# The lab's addresses (198.18.0.0/15, 2001:db8::/32) come from the Vagrantfile's
# private networks; this script adds only the routes between them.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export LAB_PREFIX=vm
export LAB_DIR=${LAB_DIR:-/var/lib/mailferry-lab}
LAB_PKI=${LAB_PKI:-/vagrant/tests/lab/.vagrant-pki}
SRC=${SRC:-/vagrant}
# shellcheck source=tests/lab/lab.sh
source "$HERE/lab.sh"
nsx() { shift; "$@"; }  # this machine is the host: no namespace

apt_need() {
    [[ ${LAB_SKIP_APT:-0} == 1 ]] && return 0
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

route_to() { # net via: add the route unless it is there
    ip route replace "$1" via "$2"
}

mail_host() {
    local h=$1
    apt_need dovecot-imapd dovecot-pop3d dovecot-lmtpd postfix openssl
    # The packages' own instances would hold the mail ports on every address.
    if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
        systemctl disable --now dovecot.service postfix.service >/dev/null 2>&1 || true
    fi
    [[ -s $LAB_PKI/ca.crt ]] || die "no lab PKI in $LAB_PKI (vm.sh pki $LAB_PKI on the host)"
    mkdir -p "$LAB_DIR/pki"
    chmod 0755 "$LAB_DIR"
    install -m 0644 "$LAB_PKI/ca.crt" "$LAB_PKI/$h.crt" "$LAB_DIR/pki/"
    install -m 0600 "$LAB_PKI/$h.key" "$LAB_DIR/pki/"
    : >"$LAB_DIR/pids"
    prepare_host "$h"
    start_host "$h"
    wait_host "$h" || die "$h: mail servers not ready"
    route_to "$CLIENT_NET4" "$ROUTER_SERVER4"
    route_to "$CLIENT_NET6" "$ROUTER_SERVER6"
    write_env 0
    log "$h ready: Dovecot and Postfix on $IP4 and $IP6 (users: $(user_list | paste -sd' ' -))"
}

wait_host() { # host_vars set; every port on both addresses, <= 20 s
    local t p missing listening
    for ((t = 0; t < 200; t++)); do
        missing=()
        listening=$(ss -Hltn 2>/dev/null | awk '{print $4}')
        for p in "${PORTS[@]}"; do
            grep -qxF "$IP4:$p" <<<"$listening" || missing+=("$IP4:$p")
            grep -qxF "[$IP6]:$p" <<<"$listening" || missing+=("[$IP6]:$p")
        done
        (( ${#missing[@]} == 0 )) && return 0
        sleep 0.1
    done
    log "not listening after 20 s: ${missing[*]}"
    return 1
}

stop_host() {
    local h=$1 label pid st ns
    [[ -f $LAB_DIR/pids ]] || return 0
    while read -r label pid st ns; do
        [[ $label == *-$h && $(proc_start "$pid") == "$st" ]] && kill_pids_wait "$pid"
    done <"$LAB_DIR/pids"
    : >"$LAB_DIR/pids"
}

router() {
    apt_need make
    (cd "$SRC" && make deps >/dev/null && make all && make install PREFIX=/usr SYSCONFDIR=/etc)
    sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    mkdir -p /etc/mailferry
    cat >/etc/mailferry/mailferry.conf <<CONF
# mailferry on the Vagrant lab's router (tests/lab/vm.sh)
[intercept]
sources = $OLD4, $OLD6
ports = 25, 110, 143, 465, 587, 993, 995
clients = $CLIENT_NET4, $CLIENT_NET6
destination = $NEW4, $NEW6
[ledger]
path = /var/lib/mailferry/ledger.db
[migrate]
enabled = yes
state_dir = /var/lib/mailferry/migrate
CONF
    systemctl daemon-reload
    systemctl enable --now mailferryd.service
    mailferry -c /etc/mailferry/mailferry.conf rules status
}

client() {
    apt_need curl swaks python3 fetchmail
    route_to "$SERVER_NET4" "$ROUTER_CLIENT4"
    route_to "$SERVER_NET6" "$ROUTER_CLIENT6"
    log "client ready: try  curl -v imap://$OLD4/ -u alice:alice-Pw-lab"
}

case ${1:-} in
    pki)
        [[ -n ${2:-} ]] || die "usage: vm.sh pki DIR"
        [[ -s $2/ca.crt ]] && exit 0
        tmp=$(mktemp -d)
        LAB_DIR=$tmp make_pki
        mkdir -p "$2"
        cp -p "$tmp"/pki/* "$2"/
        rm -rf "$tmp"
        ;;
    old | new) mail_host "$1" ;;
    router) router ;;
    client) client ;;
    stop) [[ ${2:-} == old || ${2:-} == new ]] || die "usage: vm.sh stop old|new"; stop_host "$2" ;;
    *)
        echo "usage: $0 pki DIR | old | new | router | client | stop old|new" >&2
        exit 2
        ;;
esac
