#!/usr/bin/env bash
# bench/relay/run.sh — relay benchmark: plain forwarding vs mailferryd vs HAProxy
# (and nginx's stream proxy when it is installed), all in the same run, on a lab of
# network namespaces that this script brings up and always tears down.
#
#   bench/relay/run.sh            (as root; ~4 minutes; `make bench` runs it)
#
# Rows: forward (port not intercepted), mailferryd workers=1, mailferryd workers=0
# (one per core), haproxy (2.6, TPROXY + splice, nbthread 1), nginx (stream, optional).
# Only one proxy listens on the TPROXY port at a time.
# Per row: iperf3 1 and 8 streams, both directions; short connections (connect, 100 bytes
# there and back, close) with p50/p99; 8,000 idle sessions: proxy RSS and kernel slab per
# session, pipe fds the proxy holds while they idle.
# Prints a table and ratios; raw results go to bench/results/relay-<date>.txt.
#
# Knobs (env): BENCH_SECONDS=5 (per iperf3 run)  BENCH_CONNS=20000  BENCH_CONC=8
#   BENCH_RATE_REPS=3 (short-connection runs per row; the median is reported)
#   BENCH_IDLE=8000  BENCH_ROWS="forward mf1 mfall haproxy nginx"  BENCH_NGINX=auto|no
#   BENCH_MAX_SECONDS=420 (rows left when this is exceeded are skipped)
#   BENCH_LAB=auto|inline (auto: tests/lab/lab.sh when it works)
#   BENCH_RULES=auto|inline (auto: `build/mailferry rules install` when it works)
#
# Safety: only namespaces named mflB<pid>-*, linked to each other by veth and never to the
# root namespace; addresses from 198.18.0.0/15; every load is bounded in count and time;
# every process is started and killed by PID; cleanup runs on any exit.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
P=mflB$$-
T_IPERF=${BENCH_SECONDS:-5}
N_CONNS=${BENCH_CONNS:-20000}
N_CONC=${BENCH_CONC:-8}
N_REPS=${BENCH_RATE_REPS:-3}
N_IDLE=${BENCH_IDLE:-8000}
ROWS=${BENCH_ROWS:-forward mf1 mfall haproxy nginx}
WANT_NGINX=${BENCH_NGINX:-auto}
MAX_S=${BENCH_MAX_SECONDS:-420}
WANT_LAB=${BENCH_LAB:-auto}
WANT_RULES=${BENCH_RULES:-auto}
TPROXY_PORT=10143
# Intercepted ports (in the nft set) and their plain twins (forwarded untouched).
IPERF_X=5001 IPERF_F=5002 ECHO_X=9000 ECHO_F=9001

T0=$SECONDS
WORK=
LAB_MODE=
RULES_MODE=
declare -a PIDS=()          # every long-lived process we started
declare -A PID_NAME=()
MFD=$ROOT/build/mailferryd
MFCLI=$ROOT/build/mailferry
BIN=$ROOT/build/bench
PY=/usr/bin/python3

log() { printf '[bench %3ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# ------------------------------------------------------------------ processes
track() { PIDS+=("$1"); PID_NAME[$1]=$2; }

stop_pid() { # pid [seconds]: TERM, wait, KILL; only a pid we started
    local pid=$1 t lim=$(( ${2:-5} * 10 ))
    [[ -n ${PID_NAME[$pid]:-} ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for ((t = 0; t < lim; t++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "${PID_NAME[$pid]} (pid $pid) ignored TERM: KILL"
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    wait "$pid" 2>/dev/null
    unset "PID_NAME[$pid]"
    return 0
}

cleanup() {
    local rc=$? pid ns
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do stop_pid "$pid" 3; done
    if [[ $RULES_MODE == "mailferry rules install" ]]; then
        timeout 10 ip netns exec "$NS_ROUTER" "$MFCLI" -c "$WORK/mf-rules.conf" rules remove >/dev/null 2>&1 ||
            log "mailferry rules remove failed (the namespace goes anyway)"
    fi
    if [[ $LAB_MODE == lab.sh ]]; then
        LAB_PREFIX=$P LAB_DIR=$WORK/lab "$ROOT/tests/lab/lab.sh" down >/dev/null 2>&1 || true
    fi
    # Inline lab, or anything lab.sh left: only our own prefix.
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^${P}" || true); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null || true
    done
    [[ -n $WORK && -d $WORK && $WORK == /tmp/${P}* ]] && rm -rf --one-file-system "$WORK"
    if (( rc != 0 )); then log "exit status $rc; lab torn down"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_listen() { # ns port seconds -> 0 when something listens on port
    local t
    for ((t = 0; t < $3 * 10; t++)); do
        [[ -n $(nsx "$1" ss -Hltn "sport = :$2" 2>/dev/null) ]] && return 0
        sleep 0.1
    done
    return 1
}

n_established() { nsx "$1" ss -Htn state established 2>/dev/null | wc -l; }

# ------------------------------------------------------------------ checks, build
[[ $(id -u) == 0 ]] || die "run as root (network namespaces, TPROXY)"
for c in ip nft iperf3 ss cc timeout; do
    command -v "$c" >/dev/null || die "missing $c (make deps)"
done
[[ -x $PY ]] || die "missing $PY"
WORK=$(mktemp -d "/tmp/${P}bench.XXXXXX")
RES=$WORK/results.tsv
RAW=$WORK/raw.txt
: >"$RES"
: >"$RAW"
raw() { printf '%s\n' "$*" >>"$RAW"; }
put() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RES"; } # row key value

if [[ ! -x $MFD ]]; then
    log "building mailferryd"
    make -C "$ROOT" --no-print-directory build/mailferryd >&2 || die "mailferryd does not build"
fi
mkdir -p "$BIN"
for t in connrate echosrv; do
    cc -O2 -Wall -Wextra -o "$BIN/$t" "$ROOT/bench/relay/$t.c" || die "cannot build $t"
done

# ------------------------------------------------------------------ lab
lab_inline() { # the same topology and names as tests/lab/lab.sh --net-only, v4 only
    NS_CLIENT=${P}client NS_ROUTER=${P}router NS_OLD=${P}old
    CLIENT4=198.18.1.2 OLD4=198.18.11.2 CLIENT_NET4=198.18.1.0/24
    local ns
    for ns in "$NS_CLIENT" "$NS_ROUTER" "$NS_OLD"; do
        ip netns add "$ns" || return 1
        ip -n "$ns" link set lo up
    done
    ip -n "$NS_ROUTER" link add rcl type veth peer name eth0 netns "$NS_CLIENT" || return 1
    ip -n "$NS_ROUTER" link add rold type veth peer name eth0 netns "$NS_OLD" || return 1
    ip -n "$NS_ROUTER" addr add 198.18.1.1/24 dev rcl
    ip -n "$NS_ROUTER" addr add 198.18.11.1/24 dev rold
    ip -n "$NS_ROUTER" link set rcl up
    ip -n "$NS_ROUTER" link set rold up
    ip -n "$NS_CLIENT" addr add "$CLIENT4/24" dev eth0
    ip -n "$NS_CLIENT" link set eth0 up
    ip -n "$NS_CLIENT" route add default via 198.18.1.1
    ip -n "$NS_OLD" addr add "$OLD4/24" dev eth0
    ip -n "$NS_OLD" link set eth0 up
    ip -n "$NS_OLD" route add default via 198.18.11.1
    nsx "$NS_ROUTER" sysctl -qw net.ipv4.ip_forward=1
}

# Labs of earlier runs that were killed before their cleanup: mflB<pid>- with <pid> gone.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    [[ $ns =~ ^mflB([0-9]+)- ]] || continue
    [[ -e /proc/${BASH_REMATCH[1]} ]] && continue
    log "removing stale namespace $ns"
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
done

if [[ $WANT_LAB != inline && -x $ROOT/tests/lab/lab.sh ]] &&
    LAB_PREFIX=$P LAB_DIR=$WORK/lab "$ROOT/tests/lab/lab.sh" up --net-only 2>"$WORK/lab.log"; then
    LAB_MODE=lab.sh
    # shellcheck disable=SC1091
    . "$WORK/lab/lab.env"
else
    [[ $WANT_LAB != inline && -x $ROOT/tests/lab/lab.sh ]] && { log "tests/lab/lab.sh up failed, inline lab:"; tail -5 "$WORK/lab.log" >&2; }
    LAB_MODE=inline
    lab_inline || die "inline lab set-up failed"
fi
log "lab up ($LAB_MODE): client $CLIENT4 -> router -> old $OLD4"

# Per-namespace TCP knobs (never the root namespace's): ~60k source ports and reuse of
# TIME_WAIT ports, so 20,000-connection runs back to back do not run out of ports.
for ns in "$NS_CLIENT" "$NS_ROUTER"; do
    nsx "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1
done

# Configuration shared by the rules installer and mailferryd.
write_mf_conf() { # file workers
    cat >"$1" <<EOF
[gateway]
workers = $2
listen_port = $TPROXY_PORT
listen6 = none
connect_timeout = 5000
drain_timeout = 2000
max_sessions = 16000
log = stderr
# protocol-blind relay only: no front end on the bench ports
imap_ports = none
pop3_ports = none
smtp_ports = none

[intercept]
sources = $OLD4
ports = $IPERF_X, $ECHO_X
clients = $CLIENT_NET4

[ledger]
path = $WORK/ledger.db
EOF
}
write_mf_conf "$WORK/mf-rules.conf" 1

rules_inline() {
    nsx "$NS_ROUTER" nft -f - <<EOF || return 1
table inet mailferry {
  set sources4 { type ipv4_addr; elements = { $OLD4 } }
  set clients4 { type ipv4_addr; flags interval; elements = { $CLIENT_NET4 } }
  set ports { type inet_service; elements = { $IPERF_X, $ECHO_X } }
  chain prerouting {
    type filter hook prerouting priority mangle; policy accept;
    meta l4proto tcp socket transparent 1 socket wildcard 0 meta mark set 0x4d46 accept
    meta l4proto tcp ip daddr @sources4 ip saddr @clients4 tcp dport @ports tproxy ip to :$TPROXY_PORT meta mark set 0x4d46 accept
  }
}
EOF
    ip -n "$NS_ROUTER" rule add fwmark 0x4d46 lookup 1846 pref 1846 || return 1
    ip -n "$NS_ROUTER" route add local 0.0.0.0/0 dev lo table 1846 || return 1
}

if [[ $WANT_RULES != inline && -x $MFCLI ]] &&
    ip netns exec "$NS_ROUTER" "$MFCLI" -c "$WORK/mf-rules.conf" rules install >"$WORK/rules.log" 2>&1 &&
    nsx "$NS_ROUTER" nft list ruleset 2>/dev/null | grep tproxy >/dev/null; then
    RULES_MODE="mailferry rules install"
else
    [[ $WANT_RULES != inline && -x $MFCLI ]] && { log "mailferry rules install failed, inline nft:"; tail -5 "$WORK/rules.log" >&2; }
    nsx "$NS_ROUTER" nft delete table inet mailferry 2>/dev/null
    RULES_MODE="inline nft"
    rules_inline || die "cannot install the TPROXY rules"
fi
log "rules: $RULES_MODE (ports $IPERF_X,$ECHO_X -> :$TPROXY_PORT; $IPERF_F,$ECHO_F forwarded)"

# ------------------------------------------------------------------ servers on old
ip netns exec "$NS_OLD" "$BIN/echosrv" -a "$OLD4" -p "$ECHO_X" -p "$ECHO_F" -t 900 >"$WORK/echosrv.log" 2>&1 </dev/null &
track $! echosrv
for p in "$IPERF_X" "$IPERF_F"; do
    ip netns exec "$NS_OLD" timeout 900 iperf3 -s -B "$OLD4" -p "$p" >"$WORK/iperf3-s-$p.log" 2>&1 </dev/null &
    track $! "iperf3-s-$p"
done
for p in "$ECHO_X" "$ECHO_F" "$IPERF_X" "$IPERF_F"; do
    wait_listen "$NS_OLD" "$p" 5 || die "server on old:$p did not start"
done

# ------------------------------------------------------------------ proxies
PROXY_PID=
PROXY_NAME=

mf_start() { # workers
    write_mf_conf "$WORK/mf-w$1.conf" "$1"
    ip netns exec "$NS_ROUTER" "$MFD" -c "$WORK/mf-w$1.conf" >"$WORK/mailferryd-w$1.log" 2>&1 </dev/null &
    PROXY_PID=$!
    track "$PROXY_PID" "mailferryd-w$1"
}

haproxy_start() {
    # Debian's HAProxy 2.6 as a transparent splice relay: original destination
    # (server 0.0.0.0:0) from the client's own address (usesrc clientip).
    # maxconn x2 + maxpipes x2 must stay under the 20,000-file hard limit.
    cat >"$WORK/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 9500
    maxpipes 256
defaults
    mode tcp
    maxconn 9500
    option splice-auto
    timeout connect 5s
    timeout client 5m
    timeout server 5m
frontend tproxy
    bind :$TPROXY_PORT transparent
    default_backend orig_dst
backend orig_dst
    source 0.0.0.0 usesrc clientip
    server s 0.0.0.0:0
EOF
    haproxy -c -q -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 || return 1
    ip netns exec "$NS_ROUTER" haproxy -db -f "$WORK/haproxy.cfg" >>"$WORK/haproxy.log" 2>&1 </dev/null &
    PROXY_PID=$!
    track "$PROXY_PID" haproxy
}

NGINX_SHIM=$BIN/nginx-transparent.so
nginx_available() {
    [[ $WANT_NGINX != no ]] || return 1
    command -v nginx >/dev/null || return 1
    ls /usr/lib/nginx/modules/ngx_stream_module.so >/dev/null 2>&1 || return 1
    cc -O2 -shared -fPIC -o "$NGINX_SHIM" "$ROOT/bench/relay/nginx_transparent.c" -ldl 2>"$WORK/shim.log"
}

nginx_start() {
    mkdir -p "$WORK/nginx"
    # nginx's stream "listen" has no transparent flag; TPROXY only delivers to a socket
    # with IP_TRANSPARENT, so a tiny LD_PRELOAD shim sets it on the listening socket.
    cat >"$WORK/nginx/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 19000;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 18000; }
stream {
    server {
        listen $TPROXY_PORT;
        proxy_bind \$remote_addr transparent;
        proxy_pass \$server_addr:\$server_port;
        proxy_connect_timeout 5s;
        proxy_timeout 5m;
    }
}
EOF
    ip netns exec "$NS_ROUTER" env NGINX_TRANSPARENT_PORT=$TPROXY_PORT LD_PRELOAD="$NGINX_SHIM" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" \
        >"$WORK/nginx.log" 2>&1 </dev/null &
    PROXY_PID=$!
    track "$PROXY_PID" nginx
}

proxy_stop() {
    local t wait_free=0
    [[ -n $PROXY_PID ]] || return 0
    stop_pid "$PROXY_PID" 8
    PROXY_PID=
    for ((t = 0; t < 50; t++)); do
        [[ -z $(nsx "$NS_ROUTER" ss -Hltn "sport = :$TPROXY_PORT") ]] && { wait_free=1; break; }
        sleep 0.1
    done
    (( wait_free )) || log "port $TPROXY_PORT still in use after stopping $PROXY_NAME"
}

# ------------------------------------------------------------------ measurements
kb_status() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null; }
slab_kb() { awk '$1 == "Slab:" {print $2}' /proc/meminfo; }
# Bytes in use per slab cache (machine-wide, like Slab: other labs add noise).
slab_snap() { awk 'NR > 2 {print $1, $2 * $4}' /proc/slabinfo 2>/dev/null >"$1"; }
slab_top() { # before after sessions -> the caches that grew most, bytes per session
    awk -v n="$3" 'NR == FNR {a[$1] = $2; next} {d = $2 - a[$1]; if (d > 0) printf "%s %.0f\n", $1, d / n}' \
        "$1" "$2" | sort -k2,2nr | head -8 | awk '{printf "%s%s=%sB", (NR > 1 ? " " : ""), $1, $2}'
}
# Pipe fds beyond 0-2 (stdio may be a pipe from whoever started the benchmark).
pipe_fds() { find "/proc/$1/fd" -mindepth 1 -lname 'pipe:*' -printf '%f\n' 2>/dev/null | awk '$1 > 2' | wc -l; }
all_fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
HZ=$(getconf CLK_TCK)
# utime + stime of the whole process (all threads, io_uring's io-wq workers included), ms.
# CPU ms of the live threads, summed by thread name (io_uring's io-wq workers are iou-wrk-*).
thread_cpu() {
    local f
    for f in /proc/"$1"/task/*/stat; do cat "$f" 2>/dev/null; echo; done |
        awk -v hz="$HZ" 'NF { c = $0; sub(/^[0-9]+ \(/, "", c); sub(/\) .*/, "", c); sub(/-[0-9]+$/, "", c)
            r = $0; sub(/^.*\) /, "", r); split(r, f, " "); ms[c] += (f[12] + f[13]) * 1000 / hz; n[c]++ }
            END { for (c in ms) printf "%s%s x%d=%dms", (k++ ? " " : ""), c, n[c], ms[c] }'
}
cpu_ms() { awk -v hz="$HZ" '{ sub(/^.*\) /, ""); printf "%d", ($12 + $13) * 1000 / hz }' "/proc/$1/stat" 2>/dev/null; }

measure_idle() { # row port pid|-
    local row=$1 port=$2 pid=$3 hpid t ready="" rss0=0 rss1=0 slab0 slab1 ok est pf0=0
    local out=$WORK/hold-$row.txt
    [[ $pid != - ]] && rss0=$(kb_status "$pid" VmRSS) && pf0=$(pipe_fds "$pid")
    [[ $pid != - ]] && raw "$row idle before: VmRSS=${rss0}kB fds=$(all_fds "$pid") pipe_fds=$(pipe_fds "$pid")"
    sleep 0.5
    slab_snap "$WORK/slab0"
    slab0=$(slab_kb)
    ip netns exec "$NS_CLIENT" "$BIN/connrate" hold -d "$OLD4" -p "$port" -n "$N_IDLE" -c 64 -t 60 -H 90 >"$out" 2>&1 </dev/null &
    hpid=$!
    track "$hpid" "connrate-hold-$row"
    for ((t = 0; t < 700; t++)); do
        ready=$(grep -m1 '^READY' "$out" 2>/dev/null)
        [[ -n $ready ]] && break
        kill -0 "$hpid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z $ready ]]; then
        log "$row: idle sessions never became ready"
        raw "$row idle: not ready: $(tr '\n' ' ' <"$out")"
        stop_pid "$hpid" 3
        return 1
    fi
    sleep 2 # let timers run (mailferryd trims its pipe pool every 500 ms)
    slab1=$(slab_kb)
    slab_snap "$WORK/slab1"
    ok=$(sed -n 's/.*ok=\([0-9]*\).*/\1/p' <<<"$ready")
    est=$(n_established "$NS_ROUTER")
    raw "$row idle: $ready"
    raw "$row idle: Slab ${slab0}kB -> ${slab1}kB; router established sockets=$est"
    (( ok > 0 )) && raw "$row idle: slab caches grown most, per session: $(slab_top "$WORK/slab0" "$WORK/slab1" "$ok")"
    put "$row" idle_ok "$ok"
    (( ok > 0 )) && put "$row" slab_kb "$(awk -v a="$slab0" -v b="$slab1" -v n="$ok" 'BEGIN {printf "%.2f", (b - a) / n}')"
    if [[ $pid != - ]]; then
        rss1=$(kb_status "$pid" VmRSS)
        local pf fds
        pf=$(pipe_fds "$pid")
        fds=$(all_fds "$pid")
        raw "$row idle during: VmRSS=${rss1}kB fds=$fds pipe_fds=$pf"
        (( ok > 0 )) && put "$row" rss_kb "$(awk -v a="$rss0" -v b="$rss1" -v n="$ok" 'BEGIN {printf "%.2f", (b - a) / n}')"
        put "$row" pipe_fds "$((pf - pf0))"
        # A transparent proxy holds two sockets per session on the router.
        (( est < 2 * ok )) && log "$row: only $est established sockets on the router for $ok sessions: not intercepted?"
    fi
    put "$row" router_est "$est"
    stop_pid "$hpid" 5
    raw "$row idle: $(grep '^CLOSED' "$out")"
    # Every session must close once the clients have gone.
    for ((t = 0; t < 150; t++)); do
        est=$(n_established "$NS_ROUTER")
        (( est == 0 )) && break
        sleep 0.1
    done
    raw "$row idle: router established after close=$est (after $((t / 10)).$((t % 10)) s)"
    put "$row" left_open "$est"
    if [[ $pid != - ]]; then
        raw "$row idle after close: VmRSS=$(kb_status "$pid" VmRSS)kB fds=$(all_fds "$pid") pipe_fds=$(pipe_fds "$pid")"
    fi
    (( est == 0 )) || log "$row: $est sockets still established on the router 15 s after the clients closed"
    return 0
}

iperf_run() { # row port streams dir(up|down)
    local row=$1 port=$2 n=$3 dir=$4 rev="" json=$WORK/iperf-$1-$3-$4.json v
    [[ $dir == down ]] && rev=-R
    # Not through nsx: a function's redirections would also catch the cleanup's messages
    # if a signal's trap ran meanwhile.
    ip netns exec "$NS_CLIENT" timeout $((T_IPERF + 20)) iperf3 -c "$OLD4" -p "$port" -t "$T_IPERF" -P "$n" $rev \
        --connect-timeout 3000 -J >"$json" 2>&1
    v=$("$PY" - "$json" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    if "error" in d:
        print("ERR:" + d["error"].replace(" ", "_")[:60]); sys.exit()
    e = d["end"]
    bps = e["sum_received"]["bits_per_second"]
    retr = e.get("sum_sent", {}).get("retransmits", "")
    print("%.2f %s" % (bps / 1e9, retr))
except Exception as ex:
    print("ERR:unparsable")
EOF
)
    raw "$row iperf3 -P $n $dir: Gbit/s retransmits: $v"
    put "$row" "tp${n}_$dir" "${v%% *}"
}

rate_run() { # row port: BENCH_RATE_REPS runs; the one with the median conn/s is reported
    local row=$1 port=$2 out i best
    local -a lines=()
    for ((i = 0; i < N_REPS; i++)); do
        out=$(nsx "$NS_CLIENT" timeout 90 "$BIN/connrate" rate -d "$OLD4" -p "$port" -n "$N_CONNS" \
            -c "$N_CONC" -t 60 2>&1)
        raw "$row connrate #$((i + 1)): $out"
        lines+=("$(sed -n 's/.*conn_per_s=\([0-9.]*\).*/\1/p' <<<"$out") $out")
        # Let TIME_WAIT and closing sessions settle between runs.
        sleep 1
    done
    best=$(printf '%s\n' "${lines[@]}" | sort -n -k1,1 | sed -n "$(( (N_REPS + 1) / 2 ))p")
    put "$row" cps "$(sed -n 's/.*conn_per_s=\([0-9.]*\).*/\1/p' <<<"$best")"
    put "$row" p50 "$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$best")"
    put "$row" p99 "$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$best")"
    put "$row" failed "$(printf '%s\n' "${lines[@]}" | sed -n 's/.* failed=\([0-9]*\).*/\1/p' | awk '{n += $1} END {print n + 0}')"
}

run_row() { # row
    local row=$1 iport=$IPERF_X eport=$ECHO_X pid=-
    PROXY_PID=""
    PROXY_NAME=$row
    case $row in
        forward) iport=$IPERF_F eport=$ECHO_F ;;
        mf1) mf_start 1 ;;
        mfall) mf_start 0 ;;
        haproxy) haproxy_start || { log "haproxy config rejected: $(tail -3 "$WORK/haproxy.log")"; return 1; } ;;
        nginx) nginx_start ;;
        *) log "unknown row $row"; return 1 ;;
    esac
    if [[ -n $PROXY_PID ]]; then
        if ! wait_listen "$NS_ROUTER" "$TPROXY_PORT" 5; then
            log "$row: nothing listens on :$TPROXY_PORT"
            proxy_stop
            return 1
        fi
        pid=$PROXY_PID
        raw "$row: pid $pid threads=$(kb_status "$pid" Threads)"
    fi
    log "$row: idle sessions ($N_IDLE)"
    measure_idle "$row" "$eport" "$pid"
    local c0 c1 c2
    [[ $pid != - ]] && c0=$(cpu_ms "$pid")
    for dir in up down; do
        for n in 1 8; do
            log "$row: iperf3 -P $n $dir (${T_IPERF} s)"
            iperf_run "$row" "$iport" "$n" "$dir"
        done
    done
    if [[ $pid != - ]]; then
        c1=$(cpu_ms "$pid")
        put "$row" cpu_iperf_s "$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.1f", (b - a) / 1000}')"
        put "$row" threads_iperf "$(kb_status "$pid" Threads)"
        raw "$row iperf3 (4 runs): proxy CPU $((c1 - c0)) ms; threads now $(kb_status "$pid" Threads) (io-wq workers linger ~5 s)"
        raw "$row CPU by live thread so far: $(thread_cpu "$pid")"
    fi
    log "$row: $N_REPS x $N_CONNS short connections, $N_CONC at a time"
    rate_run "$row" "$eport"
    if [[ $pid != - ]]; then
        c2=$(cpu_ms "$pid")
        put "$row" cpu_conn_ms "$(awk -v a="$c1" -v b="$c2" -v n="$((N_CONNS * N_REPS))" 'BEGIN {printf "%.1f", (b - a) * 1000 / n}')"
        put "$row" threads_conn "$(kb_status "$pid" Threads)"
        raw "$row connrate: proxy CPU $((c2 - c1)) ms; threads now $(kb_status "$pid" Threads)"
        raw "$row CPU by live thread so far: $(thread_cpu "$pid")"
    fi
    if [[ -n $PROXY_PID ]]; then
        raw "$row end: VmRSS=$(kb_status "$pid" VmRSS)kB fds=$(all_fds "$pid") pipe_fds=$(pipe_fds "$pid")"
        proxy_stop
    fi
    return 0
}

mf_log_summary() { # row workers
    local f=$WORK/mailferryd-w$2.log
    [[ -f $f ]] || return 0
    raw "$1 mailferryd log: lines=$(wc -l <"$f") sessions_ended=$(grep -c ' conn ' "$f")" \
        "eof=$(grep -c 'end=eof' "$f") not_eof=$(grep ' conn ' "$f" | grep -vc 'end=eof')" \
        "warn=$(grep -c 'level=warn' "$f") error=$(grep -c 'level=error' "$f")"
    grep ' conn ' "$f" | grep -v 'end=eof' | sed 's/.* end=/end=/' | sort | uniq -c | sort -rn | head -5 |
        while read -r line; do raw "$1   ends: $line"; done
    grep -E 'level=(warn|error)' "$f" | sed 's/^[^ ]* //' | sort | uniq -c | sort -rn | head -5 |
        while read -r line; do raw "$1   log: $line"; done
}

# ------------------------------------------------------------------ run
raw "mailferry relay benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ)"
raw "host: $(uname -r) cpus=$(nproc) git=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo +dirty)"
raw "lab: $LAB_MODE; rules: $RULES_MODE; iperf3 ${T_IPERF}s; conns=$N_REPS x $N_CONNS conc=$N_CONC size=100; idle=$N_IDLE"
raw "haproxy: $(haproxy -v 2>/dev/null | head -1)"
raw "iperf3: $(iperf3 --version 2>/dev/null | head -1)"

declare -a DONE_ROWS=()
for row in $ROWS; do
    # Each row starts without the previous rows' TIME_WAIT sockets: a proxy
    # that lets the kernel pick upstream ports (HAProxy's usesrc clientip)
    # would otherwise pay for another row's leftovers in its port search.
    for ns in "$NS_CLIENT" "$NS_ROUTER"; do
        nsx "$ns" ss -K state time-wait >/dev/null 2>&1 || true
    done
    if (( SECONDS - T0 > MAX_S )); then
        log "time budget (${MAX_S}s) spent: skipping $row"
        raw "$row: skipped (time budget)"
        continue
    fi
    if [[ $row == nginx ]]; then
        if ! nginx_available; then
            log "nginx: not installed (nginx-light + libnginx-mod-stream): row skipped"
            raw "nginx: skipped (not installed)"
            continue
        fi
        raw "nginx: $(nginx -v 2>&1)"
    fi
    if run_row "$row"; then
        DONE_ROWS+=("$row")
    else
        raw "$row: failed"
        proxy_stop
    fi
    case $row in
        mf1) mf_log_summary "$row" 1 ;;
        mfall) mf_log_summary "$row" 0 ;;
    esac
done
log "measurements done"

# ------------------------------------------------------------------ report
REPORT=$WORK/report.txt
"$PY" - "$RES" "${DONE_ROWS[@]}" >"$REPORT" <<'EOF'
import sys
from collections import defaultdict
res = defaultdict(dict)
for line in open(sys.argv[1]):
    row, k, v = line.rstrip("\n").split("\t")
    res[row][k] = v
rows = sys.argv[2:]
names = {"forward": "forward", "mf1": "mailferryd w=1", "mfall": "mailferryd w=all",
         "haproxy": "haproxy 2.6", "nginx": "nginx stream"}
def num(row, k):
    try:
        return float(res[row][k])
    except (KeyError, ValueError):
        return None
def cell(row, k, fmt="%.2f"):
    v = res[row].get(k)
    if v is None or v == "":
        return "-"
    x = num(row, k)
    return fmt % x if x is not None else v[:8]
cols = [("1s up", "tp1_up", "%.2f"), ("1s down", "tp1_down", "%.2f"),
        ("8s up", "tp8_up", "%.2f"), ("8s down", "tp8_down", "%.2f"),
        ("conn/s", "cps", "%.0f"), ("p50 ms", "p50", "%.3f"), ("p99 ms", "p99", "%.3f"),
        ("RSS KB/s", "rss_kb", "%.2f"), ("slab KB/s", "slab_kb", "%.2f"),
        ("pipe fds", "pipe_fds", "%.0f")]
w0 = 17
print("Throughput in Gbit/s (iperf3; 1 or 8 streams; up = client->server, down = -R).")
print("Short connections: connect, 100 B each way, close (conn/s, latency: median of the runs).")
print("Idle: %s sessions held open; proxy RSS and kernel slab per session; pipe fds the proxy" % res[rows[0]].get("idle_ok", "?") if rows else "")
print("holds while they idle (beyond its start-up fds).")
print("%-*s" % (w0, "") + "".join("%10s" % c[0] for c in cols))
for r in rows:
    print("%-*s" % (w0, names.get(r, r)) + "".join("%10s" % cell(r, k, f) for _, k, f in cols))
def ratio(a, b, k):
    x, y = num(a, k), num(b, k)
    if x is None or y is None or y == 0:
        return "-"
    return "%.2f" % (x / y)
rk = [("1s up", "tp1_up"), ("1s down", "tp1_down"), ("8s up", "tp8_up"),
      ("8s down", "tp8_down"), ("conn/s", "cps"), ("p50", "p50"), ("p99", "p99")]
print()
print("Ratios (higher is better for throughput and conn/s, lower for latency):")
wl = 34
print("%-*s" % (wl, "") + "".join("%9s" % c[0] for c in rk))
pairs = []
for m in ("mf1", "mfall"):
    for o in ("haproxy", "nginx"):
        if m in rows and o in rows:
            pairs.append((m, o))
for r in rows:
    if r != "forward" and "forward" in rows:
        pairs.append((r, "forward"))
for a, b in pairs:
    label = "%s / %s" % (names.get(a, a), names.get(b, b))
    print("%-*s" % (wl, label) + "".join("%9s" % ratio(a, b, k) for _, k in rk))
if "forward" in rows:
    base = num("forward", "slab_kb")
    extra = []
    for r in rows:
        if r == "forward":
            continue
        s = num(r, "slab_kb")
        if s is not None and base is not None:
            extra.append("%s %.2f" % (names.get(r, r), s - base))
    if extra:
        print()
        print("Kernel slab per idle session beyond plain forwarding (KB): " + "; ".join(extra))
notes = []
for r in rows:
    if res[r].get("failed") not in (None, "", "0"):
        notes.append("%s: %s short connections failed" % (names.get(r, r), res[r]["failed"]))
    if res[r].get("left_open") not in (None, "", "0"):
        notes.append("%s: %s sockets still established 15 s after idle clients closed" %
                     (names.get(r, r), res[r]["left_open"]))
    try:
        if r != "forward" and int(res[r].get("router_est", 0)) < 2 * int(res[r].get("idle_ok", 0)):
            notes.append("%s: fewer router sockets than 2 per idle session: not intercepted?" % names.get(r, r))
    except ValueError:
        pass
print()
print("Proxy CPU (process total, io-wq workers included): s for the 4 iperf3 runs; ms per 1,000 short")
print("connections; threads seen right after each phase.")
for r in rows:
    if r == "forward":
        continue
    print("%-*s iperf3 %6s s, thr %3s   conns %7s ms/1k, thr %3s" % (w0, names.get(r, r),
          res[r].get("cpu_iperf_s", "-"), res[r].get("threads_iperf", "-"),
          res[r].get("cpu_conn_ms", "-"), res[r].get("threads_conn", "-")))
if notes:
    print()
    for n in notes:
        print("NOTE " + n)
EOF

mkdir -p "$ROOT/bench/results"
OUT=$ROOT/bench/results/relay-$(date +%Y%m%d-%H%M%S).txt
{
    cat "$REPORT"
    echo
    echo "---- raw"
    cat "$RAW"
    echo
    echo "---- results.tsv"
    cat "$RES"
} >"$OUT"
echo
cat "$REPORT"
echo
echo "raw results: ${OUT#"$ROOT"/} (total $((SECONDS - T0)) s)"
