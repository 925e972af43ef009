#!/usr/bin/env bash
# bench/login/run.sh — IMAP login benchmark: whole short sessions (connect, LOGIN,
# SELECT INBOX, LOGOUT) direct to the old server's Dovecot, through mailferryd (TPROXY,
# IMAP front end, login replay, relay) and through nginx's mail proxy, at the same
# concurrency, in one run, on a lab of network namespaces that this script brings up
# and always tears down. Then the round trip of NOOP in logged-in sessions, one per row,
# all open at once, NOOPs taking turns. Then FETCH throughput: one session per row reads a
# generated mailbox of a few thousand messages (2 KiB to 4 MiB, ~240 MB) on old, in one
# `UID FETCH 1:* (BODY.PEEK[])`, in one `UID FETCH <uid>` per message, 16 in flight, and the
# same for the messages of at most 16 KiB only (one relay buffer), five times over.
#
#   bench/login/run.sh            (as root; ~1.5 minutes; `make bench-login` runs it)
#
# Rows:  direct  client -> OLD:143 with the client subnet switched off
#                (`mailferry subnet del`): the router only forwards;
#        mf      client -> OLD:143, TPROXY-diverted to mailferryd's IMAP front end
#                (`mailferry subnet add`), which replays the login on OLD from the
#                client's address and relays;
#        nginx   client -> ROUTER:143 (nginx's mail proxy is not transparent), auth_http
#                to an http{} location of the same nginx that answers Auth-Status OK,
#                Auth-Server OLD, Auth-Port 143; nginx logs in on OLD from the router.
# mailferryd and nginx run side by side the whole time; each row checks that its
# sessions went where they should (mailferryd's conn lines, Dovecot's rip=).
# Prints a table and ratios; results (JSON, every raw run) go to
# bench/results/login-<date>.json and .txt (git-ignored).
#
# Knobs (env): BENCH_SESSIONS=1500 (per run)  BENCH_CONCS="16 64"  BENCH_REPS=5
#   (runs per row and concurrency, rows interleaved: direct, mf, nginx, direct, ...; the
#   median run is reported, and the median of the ratios of runs next to each other)
#   BENCH_ROWS="direct mf nginx" (the first is the baseline of the NOOP comparison)
#   BENCH_NOOPS=2000 (NOOP round trips per row and round, after 200 warm-up)
#   BENCH_NOOP_ROUNDS=5 (medians over the rounds are reported)
#   BENCH_NOOP_GAP_US=0 (pause before each NOOP)
#   BENCH_NOOP_PIN=CPU (diagnostic: pin every process on the NOOP path to that CPU)
#   BENCH_USERS=64 (lab users; logins go round robin over them)
#   BENCH_MF_WORKERS=1 (mailferryd workers)  BENCH_NGINX_WORKERS=1
#   BENCH_DOVECOT=fast|lab (fast, the default: a bench-only drop-in appended to this
#   run's copy of the old server's dovecot.conf that keeps imap-login and imap processes
#   alive, see README; lab: tests/lab's Dovecot as it is, one fork per login and one
#   fork+exec of imap per session, ~10x slower and the bottleneck of every row)
#   BENCH_RUN_SECONDS=30 (hard deadline of each load run)
#   BENCH_PERF=no|yes (yes: perf record -g of mailferryd during its first measured run;
#   flat and inclusive profiles go to the results, perf.data to bench/results/)
#   BENCH_SCHED=no|yes (yes: perf sched record -a during each row's first run at the
#   highest concurrency; wake-up-to-run delays per process go to the raw results)
#   BENCH_ONLY="sessions noop fetch" (the sections to run, in this order)
#   BENCH_FETCH_MSGS=3000 (messages in the FETCH mailbox; sizes log-uniform in three
#   bands: 90 % 2-64 KiB, 8.5 % 64 KiB-1 MiB, 1.5 % 1-4 MiB; fixed seed; ~240 MB)
#   BENCH_FETCH_VARIANTS="whole each small"  BENCH_FETCH_IN_FLIGHT=16 (commands in flight
#   in each and small)  BENCH_FETCH_SMALL_MAX=16384 (small: messages up to this size)
#   BENCH_FETCH_SMALL_PASSES=5 (small: read them this many times per run)
#   BENCH_FETCH_REPS=$BENCH_REPS  BENCH_FETCH_SECONDS=120 (hard deadline of each run)
#   BENCH_NGINX_PROXY_BUFFER= (nginx mail's proxy_buffer; empty: nginx's default, one page)
#   BENCH_LAB_PREFIX=mflL (namespaces are <prefix><pid>-*; letters only)
#   BENCH_MF_BIN_DIR=build (where mailferryd and mailferry are; another build, e.g. of an
#   older commit, to compare; it is not rebuilt)
#
# Safety: only namespaces named <BENCH_LAB_PREFIX><pid>-* (mflL by default), linked to each other by veth and never to
# the root namespace; addresses from 198.18.0.0/15; every load is bounded in count and
# time; every process is started and killed by PID; cleanup runs on any exit.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_BASE=${BENCH_LAB_PREFIX:-mflL}
[[ $LAB_BASE =~ ^[A-Za-z]{1,6}$ ]] || { echo "BENCH_LAB_PREFIX: 1-6 letters" >&2; exit 2; }
P=$LAB_BASE$$-
N_SESS=${BENCH_SESSIONS:-1500}
CONCS=${BENCH_CONCS:-16 64}
N_REPS=${BENCH_REPS:-5}
ROWS=${BENCH_ROWS:-direct mf nginx}
N_NOOPS=${BENCH_NOOPS:-2000}
N_NOOP_ROUNDS=${BENCH_NOOP_ROUNDS:-5}
NOOP_GAP_US=${BENCH_NOOP_GAP_US:-0}
NOOP_PIN=${BENCH_NOOP_PIN:-}
N_USERS=${BENCH_USERS:-64}
MF_WORKERS=${BENCH_MF_WORKERS:-1}
NGINX_WORKERS=${BENCH_NGINX_WORKERS:-1}
DOVECOT_MODE=${BENCH_DOVECOT:-fast}
RUN_S=${BENCH_RUN_SECONDS:-30}
WANT_PERF=${BENCH_PERF:-no}
WANT_SCHED=${BENCH_SCHED:-no}
ONLY=${BENCH_ONLY:-sessions noop fetch}
F_MSGS=${BENCH_FETCH_MSGS:-3000}
F_VARIANTS=${BENCH_FETCH_VARIANTS:-whole each small}
F_SMALL_MAX=${BENCH_FETCH_SMALL_MAX:-16384}
F_SMALL_PASSES=${BENCH_FETCH_SMALL_PASSES:-5}
F_INFLIGHT=${BENCH_FETCH_IN_FLIGHT:-16}
F_REPS=${BENCH_FETCH_REPS:-$N_REPS}
F_RUN_S=${BENCH_FETCH_SECONDS:-120}
NGINX_PROXY_BUFFER=${BENCH_NGINX_PROXY_BUFFER:-}
TPROXY_PORT=10143
NGINX_AUTH_PORT=8143
NGINX_MOD=/usr/lib/nginx/modules/ngx_mail_module.so

T0=$SECONDS
WORK=
LAB_UP=0
RULES_UP=0
declare -a PIDS=()
declare -A PID_NAME=()
MF_BIN_DIR=${BENCH_MF_BIN_DIR:-$ROOT/build}
MFD=$MF_BIN_DIR/mailferryd
MFCLI=$MF_BIN_DIR/mailferry
BIN=$ROOT/build/bench
PY=/usr/bin/python3

log() { printf '[bench-login %3ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }
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
    if (( RULES_UP )); then
        timeout 10 ip netns exec "$NS_ROUTER" "$MFCLI" -c "$WORK/mf.conf" rules remove >/dev/null 2>&1 ||
            log "mailferry rules remove failed (the namespace goes anyway)"
    fi
    if (( LAB_UP )); then
        LAB_PREFIX=$P LAB_DIR=$WORK/lab "$ROOT/tests/lab/lab.sh" down >/dev/null 2>&1 || true
    fi
    # Anything lab.sh left: only our own prefix.
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

wait_listen() { # ns addr:port seconds -> 0 when something listens there
    local t
    for ((t = 0; t < $3 * 10; t++)); do
        nsx "$1" ss -Hltn 2>/dev/null | awk '{print $4}' | grep -qxF "$2" && return 0
        sleep 0.1
    done
    return 1
}

HZ=$(getconf CLK_TCK)
cpu_ms() { awk -v hz="$HZ" '{ sub(/^.*\) /, ""); printf "%d", ($12 + $13) * 1000 / hz }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# CPU of every process in a namespace, reaped children included (Dovecot on old), ms.
ns_cpu_ms() {
    local p f s=0
    for p in $(ip netns pids "$1" 2>/dev/null); do
        f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        s=$((s + $(awk -v hz="$HZ" '{ sub(/^.*\) /, ""); printf "%d", ($12 + $13 + $14 + $15) * 1000 / hz }' <<<"$f")))
    done
    echo "$s"
}
# Machine-wide CPU: "busy idle" jiffies from /proc/stat (other work on the box included).
machine_cpu() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat; }
# CPU of a process and its live children (nginx master + workers).
tree_cpu_ms() {
    local p s=0
    for p in $1 $(pgrep -P "$1" 2>/dev/null); do s=$((s + $(cpu_ms "$p"))); done
    echo "$s"
}

# ------------------------------------------------------------------ checks, build
[[ $(id -u) == 0 ]] || die "run as root (network namespaces, TPROXY)"
for c in ip nft ss cc timeout nginx dovecot doveadm; do
    command -v "$c" >/dev/null || die "missing $c (make deps)"
done
[[ -r $NGINX_MOD ]] || die "missing $NGINX_MOD (libnginx-mod-mail; make deps)"
[[ -x $PY ]] || die "missing $PY"
num() { [[ $2 =~ ^[0-9]+$ ]] && (( $2 >= $3 && $2 <= $4 )) || die "$1 must be $3..$4"; }
num BENCH_USERS "$N_USERS" 3 2000
num BENCH_SESSIONS "$N_SESS" 1 200000
num BENCH_RUN_SECONDS "$RUN_S" 1 120
num BENCH_REPS "$N_REPS" 1 20
num BENCH_NOOPS "$N_NOOPS" 0 100000
num BENCH_NOOP_ROUNDS "$N_NOOP_ROUNDS" 1 20
num BENCH_NOOP_GAP_US "$NOOP_GAP_US" 0 100000
num BENCH_MF_WORKERS "$MF_WORKERS" 0 64
num BENCH_NGINX_WORKERS "$NGINX_WORKERS" 1 64
[[ -z $NOOP_PIN ]] || num BENCH_NOOP_PIN "$NOOP_PIN" 0 $(( $(nproc) - 1 ))
num BENCH_FETCH_MSGS "$F_MSGS" 1 20000
num BENCH_FETCH_IN_FLIGHT "$F_INFLIGHT" 1 1000
num BENCH_FETCH_REPS "$F_REPS" 1 20
num BENCH_FETCH_SECONDS "$F_RUN_S" 5 600
num BENCH_FETCH_SMALL_MAX "$F_SMALL_MAX" 1 100000000
num BENCH_FETCH_SMALL_PASSES "$F_SMALL_PASSES" 1 100
for v in $F_VARIANTS; do case $v in whole|each|small) ;; *) die "unknown FETCH variant $v (whole each small)" ;; esac; done
for x in $ONLY; do case $x in sessions|noop|fetch) ;; *) die "unknown section $x in BENCH_ONLY (sessions noop fetch)" ;; esac; done
[[ -z $NGINX_PROXY_BUFFER || $NGINX_PROXY_BUFFER =~ ^[0-9]+[km]?$ ]] || die "BENCH_NGINX_PROXY_BUFFER: a size (64k)"
want() { [[ " $ONLY " == *" $1 "* ]]; }
for r in $ROWS; do case $r in direct|mf|nginx) ;; *) die "unknown row $r (direct mf nginx)" ;; esac; done
case $DOVECOT_MODE in lab|fast) ;; *) die "BENCH_DOVECOT must be lab or fast" ;; esac
for c in $CONCS; do num "concurrency in BENCH_CONCS" "$c" 1 1000; done
if [[ ! -x $MFD || ! -x $MFCLI ]] && [[ $MF_BIN_DIR == "$ROOT/build" ]]; then
    log "building mailferryd and mailferry"
    make -C "$ROOT" --no-print-directory -j2 all >&2 || die "mailferry does not build"
fi
[[ -x $MFD && -x $MFCLI ]] || die "no mailferryd and mailferry in $MF_BIN_DIR"
mkdir -p "$BIN"
cc -O2 -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Werror -o "$BIN/imapload" "$ROOT/bench/login/imapload.c" || die "cannot build imapload"

WORK=$(mktemp -d "/tmp/${P}bench.XXXXXX")
chmod 0755 "$WORK"
RUNS=$WORK/runs.jsonl   # one JSON object per load run, tagged with row and conc
RAW=$WORK/raw.txt
: >"$RUNS"
: >"$RAW"
raw() { printf '%s\n' "$*" >>"$RAW"; }

# Labs of earlier runs that were killed before their cleanup: <base><pid>- with <pid> gone.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    [[ $ns =~ ^${LAB_BASE}([0-9]+)- ]] || continue
    [[ -e /proc/${BASH_REMATCH[1]} ]] && continue
    log "removing stale namespace $ns"
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
done

# ------------------------------------------------------------------ lab
log "lab up (Dovecot + Postfix on old and new, $N_USERS users)"
LAB_UP=1
LAB_PREFIX=$P LAB_DIR=$WORK/lab LAB_USERS=$((N_USERS - 3)) "$ROOT/tests/lab/lab.sh" up \
    >"$WORK/lab.log" 2>&1 || { tail -20 "$WORK/lab.log" >&2; die "tests/lab/lab.sh up failed"; }
# shellcheck disable=SC1091
. "$WORK/lab/lab.env"
log "lab up: client $CLIENT4 -> router ($ROUTER_CLIENT4) -> old $OLD4"

# Per-namespace TCP knobs (never the root namespace's): wide source-port range and
# reuse of TIME_WAIT ports, so runs of thousands of sessions back to back do not run
# out of ports (mailferryd's upstream leg reuses the client's port on the router).
for ns in "$NS_CLIENT" "$NS_ROUTER"; do
    nsx "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1
done

# The users (and passwords) lab.sh made, for imapload.
USERFILE=$WORK/users.txt
tr ',' '\n' <<<"$USERS" | awk 'NF {print $1 ":" $1 "-Pw-lab"}' >"$USERFILE"
(( $(wc -l <"$USERFILE") == N_USERS )) || die "lab has $(wc -l <"$USERFILE") users, wanted $N_USERS"

# Optional bench-only Dovecot tuning: appended to this run's own copy of the old
# server's dovecot.conf (in $WORK, made by lab.sh) and applied with a reload; the
# defaults in tests/lab are untouched.
if [[ $DOVECOT_MODE == fast ]]; then
    cat >>"$DOVECOT_CONF_OLD" <<'EOF'

# --- bench/login BENCH_DOVECOT=fast ---
# imap-login in "high-performance mode": a few long-lived login processes each
# serving many clients, instead of one new process per connection.
service imap-login {
  service_count = 0
  process_min_avail = 2
  client_limit = 1000
}
# Reuse imap (post-login) processes: one per session at a time, but no fork+exec
# per session (all lab users share one uid, which is what makes reuse possible).
service imap {
  service_count = 0
  process_min_avail = 8
}
EOF
    nsx "$NS_OLD" doveadm -c "$DOVECOT_CONF_OLD" reload >>"$WORK/lab.log" 2>&1 || die "doveadm reload failed"
    sleep 1
fi
raw "dovecot: $(dovecot --version 2>/dev/null) mode=$DOVECOT_MODE"
nsx "$NS_OLD" doveconf -c "$DOVECOT_CONF_OLD" -n 2>/dev/null | sed -n '/^service imap/,/^}/p' | sed 's/^/dovecot-conf: /' >>"$RAW"

# ------------------------------------------------------------------ mailferryd
cat >"$WORK/mf.conf" <<EOF
[gateway]
workers = $MF_WORKERS
listen_port = $TPROXY_PORT
listen6 = none
connect_timeout = 5000
drain_timeout = 2000
max_sessions = 8192
log = stderr
imap_ports = 143
pop3_ports = none
# One client address opens every session of the benchmark: no per-client cap.
preauth_per_client = 0

[intercept]
sources = $OLD4
ports = 143
clients = $CLIENT_NET4
destination = $NEW4

[ledger]
path = $WORK/ledger.db
EOF
nsx "$NS_ROUTER" "$MFCLI" -c "$WORK/mf.conf" rules install >"$WORK/rules.log" 2>&1 ||
    { cat "$WORK/rules.log" >&2; die "mailferry rules install failed"; }
RULES_UP=1
ip netns exec "$NS_ROUTER" "$MFD" -c "$WORK/mf.conf" >"$WORK/mailferryd.log" 2>&1 </dev/null &
MF_PID=$!
track "$MF_PID" mailferryd
wait_listen "$NS_ROUTER" "0.0.0.0:$TPROXY_PORT" 5 || { tail "$WORK/mailferryd.log" >&2; die "mailferryd does not listen"; }
log "mailferryd pid $MF_PID, workers=$MF_WORKERS, IMAP front end on intercepted :143"

# ------------------------------------------------------------------ nginx mail proxy
NGX=$WORK/nginx
mkdir -p "$NGX/tmp"
cat >"$NGX/nginx.conf" <<EOF
load_module $NGINX_MOD;
worker_processes $NGINX_WORKERS;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
    # auth_http endpoint: every login is accepted and sent to the old server
    # (Dovecot checks the password). 204 with headers: no body to build.
    server {
        listen 127.0.0.1:$NGINX_AUTH_PORT;
        location = /auth {
            add_header Auth-Status OK;
            add_header Auth-Server $OLD4;
            add_header Auth-Port 143;
            return 204;
        }
    }
}
mail {
    server_name mail.$MAIL_DOMAIN;
    auth_http 127.0.0.1:$NGINX_AUTH_PORT/auth;
    proxy on;
    imap_auth login plain;
${NGINX_PROXY_BUFFER:+    proxy_buffer $NGINX_PROXY_BUFFER;
}    server {
        listen $ROUTER_CLIENT4:143;
        protocol imap;
    }
}
EOF
ip netns exec "$NS_ROUTER" nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" -g 'daemon off;' \
    >"$WORK/nginx.log" 2>&1 </dev/null &
NGX_PID=$!
track "$NGX_PID" nginx
wait_listen "$NS_ROUTER" "$ROUTER_CLIENT4:143" 5 || { cat "$WORK/nginx.log" "$NGX/error.log" >&2; die "nginx does not listen"; }
log "nginx pid $NGX_PID ($(nginx -v 2>&1 | sed 's/.*: //'), mail module), workers=$NGINX_WORKERS, on $ROUTER_CLIENT4:143"
raw "nginx: $(nginx -v 2>&1)"

# ------------------------------------------------------------------ rows
row_dst() { # row -> "addr port"
    case $1 in
        direct|mf) echo "$OLD4 143" ;;
        nginx) echo "$ROUTER_CLIENT4 143" ;;
    esac
}
row_mode() { # row: switch interception for the client subnet
    case $1 in
        mf) nsx "$NS_ROUTER" "$MFCLI" -c "$WORK/mf.conf" subnet add "$CLIENT_NET4" >/dev/null 2>>"$RAW" ;;
        *) nsx "$NS_ROUTER" "$MFCLI" -c "$WORK/mf.conf" subnet del "$CLIENT_NET4" >/dev/null 2>>"$RAW" ;;
    esac
}
mf_conns() { grep -c ' conn client=' "$WORK/mailferryd.log" 2>/dev/null; }
row_pid() { case $1 in mf) echo "$MF_PID" ;; nginx) echo "$NGX_PID" ;; *) echo - ;; esac; }
# Dovecot logins on old by remote address: the client's (direct, mf) or the router's (nginx).
dove_logins() { grep -c "imap-login: .*Login: user=<.*rip=$1," "$DOVECOT_LOG_OLD" 2>/dev/null; }

settle() { # quiet both ends between runs: TIME_WAIT sockets of the last run go
    local ns
    for ns in "$NS_CLIENT" "$NS_ROUTER"; do nsx "$ns" ss -K state time-wait >/dev/null 2>&1 || true; done
    sleep 0.5
}

# load row conc n tag: one imapload sessions run; appends its JSON (with row, conc, tag,
# proxy CPU, routing checks) to $RUNS.
load() {
    local row=$1 conc=$2 n=$3 tag=$4 dst port pid c0=0 c1=0 m0 m1 lc0 lc1 lr0 lr1 out rc perf_pid=
    local d0 d1 b0 i0 b1 i1
    read -r dst port <<<"$(row_dst "$row")"
    row_mode "$row"
    settle
    pid=$(row_pid "$row")
    [[ $pid != - ]] && c0=$(tree_cpu_ms "$pid")
    m0=$(mf_conns); lc0=$(dove_logins "$CLIENT4"); lr0=$(dove_logins "$ROUTER_SERVER4")
    d0=$(ns_cpu_ms "$NS_OLD"); read -r b0 i0 <<<"$(machine_cpu)"
    if [[ $WANT_PERF == yes && $row == mf && $tag == run1 && -z ${PERF_DONE:-} ]] && command -v perf >/dev/null; then
        perf record -q -g -p "$MF_PID" -o "$WORK/perf.data" >/dev/null 2>&1 &
        perf_pid=$!
        track "$perf_pid" perf
        PERF_DONE=1
    fi
    local sched_pid=
    if [[ $WANT_SCHED == yes && $tag == run1 && $conc == "${CONCS##* }" ]] && command -v perf >/dev/null; then
        perf sched record -a -o "$WORK/sched-$row.data" >/dev/null 2>&1 &
        sched_pid=$!
        track "$sched_pid" "perf-sched-$row"
        sleep 0.5
    fi
    out=$(ip netns exec "$NS_CLIENT" timeout $((RUN_S + 15)) "$BIN/imapload" sessions -d "$dst" -p "$port" \
        -f "$USERFILE" -n "$n" -c "$conc" -t "$RUN_S" -T 10 -l "$row" 2>>"$RAW")
    rc=$?
    [[ -n $perf_pid ]] && { kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null; unset "PID_NAME[$perf_pid]"; }
    if [[ -n $sched_pid ]]; then
        kill -INT "$sched_pid" 2>/dev/null; wait "$sched_pid" 2>/dev/null; unset "PID_NAME[$sched_pid]"
        # Wake-up to running delay of the processes on the session's path, by name.
        perf sched latency -i "$WORK/sched-$row.data" --sort max 2>/dev/null |
            grep -E '^ *(mailferryd|nginx|imap|imap-login|auth|imapload|dovecot)[:-]' | head -12 |
            sed "s/^/sched c=$conc $row: /" >>"$RAW"
        rm -f "$WORK/sched-$row.data"
    fi
    [[ $pid != - ]] && c1=$(tree_cpu_ms "$pid")
    d1=$(ns_cpu_ms "$NS_OLD"); read -r b1 i1 <<<"$(machine_cpu)"
    sleep 0.3 # mailferryd logs a session when both legs have closed
    m1=$(mf_conns); lc1=$(dove_logins "$CLIENT4"); lr1=$(dove_logins "$ROUTER_SERVER4")
    [[ -n $out ]] || out='{"mode": "sessions", "ok": 0, "failed": -1, "error": "imapload gave no output"}'
    raw "$row c=$conc $tag rc=$rc: $out"
    "$PY" - "$out" "$row" "$conc" "$tag" "$((c1 - c0))" "$((m1 - m0))" "$((lc1 - lc0))" "$((lr1 - lr0))" \
        "$((d1 - d0))" "$((b1 - b0))" "$((i1 - i0))" >>"$RUNS" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
d.update(row=sys.argv[2], conc=int(sys.argv[3]), tag=sys.argv[4], proxy_cpu_ms=int(sys.argv[5]),
         mf_conn_lines=int(sys.argv[6]), dovecot_logins_from_client=int(sys.argv[7]),
         dovecot_logins_from_router=int(sys.argv[8]), server_cpu_ms=int(sys.argv[9]))
busy, idle = int(sys.argv[10]), int(sys.argv[11])
d["machine_busy_pct"] = round(100.0 * busy / (busy + idle), 1) if busy + idle > 0 else None
print(json.dumps(d))
EOF
    "$PY" - "$out" "$row" "$conc" "$tag" "$((m1 - m0))" "$((lc1 - lc0))" "$((lr1 - lr0))" >&2 <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
print("[bench-login]      %-6s c=%-3s %-6s ok=%s failed=%s  %s sessions/s  p50 %s ms  p99 %s ms"
      "  (mailferryd conns +%s, Dovecot logins from client +%s, from router +%s)" % (
      sys.argv[2], sys.argv[3], sys.argv[4], d.get("ok"), d.get("failed"), d.get("sessions_per_s"),
      d.get("p50_ms"), d.get("p99_ms"), sys.argv[5], sys.argv[6], sys.argv[7]))
EOF
}

# noop_round round: one imapload holding a session per row at once: each row's session is
# opened after switching the route for it, then NOOPs go round robin over the sessions
# (each round starting with the next row), so every row's k-th sample is taken back to
# back with the others' under the same load.
# The intercepted session is opened first: switching a subnet's interception off leaves
# its established intercepted sessions alone, but switching it on diverts the next
# packet of an established forwarded session to mailferryd's listener, which resets it
# (the tproxy rule has no "new flows only" condition; see README).
noop_round() {
    local round=$1 row dst port t out pid fd ok=1 base
    local -a args=() order=()
    local fifo=$WORK/noop-in-$round file=$WORK/noop-out-$round
    for row in $ROWS; do [[ $row == mf ]] && order+=("$row"); done
    for row in $ROWS; do [[ $row != mf ]] && order+=("$row"); done
    for row in "${order[@]}"; do
        read -r dst port <<<"$(row_dst "$row")"
        args+=(-e "$row=$dst:$port")
    done
    base=${ROWS%% *}
    [[ " $ROWS " == *" direct "* ]] && base=direct
    args+=(-B "$base")
    mkfifo "$fifo"
    : >"$file"
    exec {fd}<>"$fifo"
    local b0 i0 b1 i1
    read -r b0 i0 <<<"$(machine_cpu)"
    ip netns exec "$NS_CLIENT" timeout 90 ${NOOP_PIN:+taskset -c "$NOOP_PIN"} "$BIN/imapload" noop -s "${args[@]}" -f "$USERFILE" \
        -k "$N_NOOPS" -w 200 -g "$NOOP_GAP_US" -t 60 <"$fifo" >"$file" 2>>"$RAW" &
    pid=$!
    track "$pid" "imapload-noop-$round"
    for row in "${order[@]}"; do
        row_mode "$row"
        echo go >&"$fd"
        for ((t = 0; t < 200; t++)); do
            grep -qx "ready $row" "$file" && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        grep -qx "ready $row" "$file" || { log "NOOP round $round: no session for $row"; ok=0; break; }
    done
    (( ok )) || kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "PID_NAME[$pid]"
    read -r b1 i1 <<<"$(machine_cpu)"
    exec {fd}>&-
    rm -f "$fifo"
    out=$(grep '^{' "$file" | tail -1)
    [[ -n $out ]] || out='{"mode": "noop", "ok": 0, "failed": 1, "sessions": [], "error": "imapload gave no output"}'
    raw "noop round $round: $out"
    "$PY" -c 'import json, sys; d = json.loads(sys.argv[1]); d["round"] = int(sys.argv[2])
b, i = int(sys.argv[3]), int(sys.argv[4]); d["machine_busy_pct"] = round(100.0 * b / (b + i), 1) if b + i > 0 else None
print(json.dumps(d))' "$out" "$round" "$((b1 - b0))" "$((i1 - i0))" >>"$RUNS"
    "$PY" - "$out" "$round" >&2 <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
parts = []
for x in d.get("sessions", []):
    p = "%s p50 %s min %s p99 %s" % (x["label"], x.get("p50_us"), x.get("min_us"), x.get("p99_us"))
    if "paired_diff_p50_us" in x:
        p += " (paired diff p50 %+.1f)" % x["paired_diff_p50_us"]
    parts.append(p)
print("[bench-login]      NOOP #%s x%s failed=%s  us: %s" % (sys.argv[2], d.get("ok"), d.get("failed"), ";  ".join(parts)))
EOF
}

# ------------------------------------------------------------------ FETCH throughput
# fetch_fill: the FETCH user's INBOX on old gets F_MSGS generated messages (wiped first),
# appended straight to OLD:143 from the client namespace (interception off) with LITERAL+,
# 50 APPENDs in flight, as bench/migrate's generator does; sizes are log-uniform within
# three bands (90 % 2-64 KiB, 8.5 % 64 KiB-1 MiB, 1.5 % 1-4 MiB, fixed seed), so that
# literals of every size occur, from less than one relay buffer to many pipes' worth.
# Sets F_COUNT and F_BYTES (the mailbox as generated; every FETCH run must read exactly it).
fetch_fill() {
    local out
    row_mode direct
    out=$(ip netns exec "$NS_CLIENT" timeout 300 "$PY" - "$OLD4" "$F_USER" "$F_PASS" "$F_MSGS" 2>>"$RAW" <<'EOF'
import json, random, re, socket, sys
host, user, pw, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.create_connection((host, 143), timeout=120)
f = s.makefile("rb")
f.readline()
def cmd(line):
    s.sendall(b"t " + line + b"\r\n")
    out = []
    while True:
        l = f.readline()
        if not l:
            raise SystemExit("closed")
        m = re.search(rb"\{(\d+)\}\r\n$", l)
        if m:
            f.read(int(m.group(1)))
        if l.startswith(b"t "):
            assert l.startswith(b"t OK"), (line, l)
            return out
        out.append(l)
cmd(b"LOGIN %s %s" % (user.encode(), pw.encode()))
sel = b"".join(cmd(b"SELECT INBOX"))
if not re.search(rb"\* 0 EXISTS", sel):
    cmd(b"STORE 1:* +FLAGS.SILENT (\\Deleted)")
    cmd(b"EXPUNGE")
rnd = random.Random(20261208)
total = pending = 0
sizes = []
bands = ((0.90, 2 << 10, 64 << 10), (0.985, 64 << 10, 1 << 20), (1.0, 1 << 20, 4 << 20))
for i in range(n):
    u = rnd.random()
    lo, hi = next((lo, hi) for p, lo, hi in bands if u < p)
    size = int(lo * (hi / lo) ** rnd.random())
    hdr = (b"From: s%d@lab.test\r\nTo: %s@lab.test\r\nSubject: fetch bench %d\r\n"
           b"Message-ID: <fb%d@lab.test>\r\n\r\n" % (i, user.encode(), i, i))
    line = (b"fetch bench line %d " % i) * 4 + b"\r\n"
    body = (hdr + line * ((size - len(hdr)) // len(line) + 1))[:size]
    if body.endswith(b"\r"):  # Dovecot would drop a bare CR at the end: keep sizes exact
        body = body[:-1] + b"."
    s.sendall(b'g%d APPEND INBOX (\\Seen) "0%d-Jan-2022 10:00:00 +0000" {%d+}\r\n'
              % (i, 1 + i % 9, len(body)) + body + b"\r\n")
    total += len(body)
    sizes.append(len(body))
    pending += 1
    if pending == 50 or i == n - 1:
        while pending:
            l = f.readline()
            if not l:
                raise SystemExit("closed")
            if l.startswith(b"g"):
                assert b" OK" in l, l
                pending -= 1
st = b"".join(cmd(b"STATUS INBOX (MESSAGES)"))
count = int(re.search(rb"MESSAGES (\d+)", st).group(1))
cmd(b"LOGOUT")
edges = (16 << 10, 64 << 10, 1 << 20, 4 << 20)
hist = {"<=%dK" % (e >> 10): [sum(1 for x in sizes if lo < x <= e), sum(x for x in sizes if lo < x <= e)]
        for lo, e in zip((0,) + edges, edges)}
print(json.dumps({"count": count, "bytes": total, "generated": n, "min": min(sizes), "max": max(sizes),
                  "by_size_count_bytes": hist}))
EOF
)
    raw "fetch mailbox: $out"
    read -r F_COUNT F_BYTES < <("$PY" -c 'import json, sys; d = json.loads(sys.argv[1]); print(d["count"], d["bytes"])' "$out" 2>/dev/null)
    [[ -n ${F_COUNT:-} && $F_COUNT == "$F_MSGS" ]] || die "FETCH mailbox not made: ${out:-no output}"
}

# fetch_run row variant tag: one imapload fetch session; appends its JSON (with row, tag,
# the proxy's and Dovecot's CPU, the routing checks) to $RUNS.
fetch_run() {
    local row=$1 variant=$2 tag=$3 dst port pid c0=0 c1=0 m0 m1 lc0 lc1 lr0 lr1 d0 d1 b0 i0 b1 i1 out rc
    local -a vargs=(-m whole)
    case $variant in
        each) vargs=(-m each -c "$F_INFLIGHT") ;;
        small) vargs=(-m each -c "$F_INFLIGHT" -S "$F_SMALL_MAX" -P "$F_SMALL_PASSES") ;;
    esac
    read -r dst port <<<"$(row_dst "$row")"
    row_mode "$row"
    settle
    pid=$(row_pid "$row")
    [[ $pid != - ]] && c0=$(tree_cpu_ms "$pid")
    m0=$(mf_conns); lc0=$(dove_logins "$CLIENT4"); lr0=$(dove_logins "$ROUTER_SERVER4")
    d0=$(ns_cpu_ms "$NS_OLD"); read -r b0 i0 <<<"$(machine_cpu)"
    out=$(ip netns exec "$NS_CLIENT" timeout $((F_RUN_S + 15)) "$BIN/imapload" fetch -d "$dst" -p "$port" \
        -u "$F_USER:$F_PASS" "${vargs[@]}" -N "$F_COUNT" -E "$F_BYTES" -t "$F_RUN_S" \
        -l "$row" 2>>"$RAW")
    rc=$?
    [[ $pid != - ]] && c1=$(tree_cpu_ms "$pid")
    d1=$(ns_cpu_ms "$NS_OLD"); read -r b1 i1 <<<"$(machine_cpu)"
    sleep 0.3 # mailferryd logs a session when both legs have closed
    m1=$(mf_conns); lc1=$(dove_logins "$CLIENT4"); lr1=$(dove_logins "$ROUTER_SERVER4")
    [[ -n $out ]] || out='{"mode": "fetch", "failed": 1, "error": "imapload gave no output"}'
    raw "fetch $row $variant $tag rc=$rc: $out"
    "$PY" - "$out" "$row" "$tag" "$((c1 - c0))" "$((m1 - m0))" "$((lc1 - lc0))" "$((lr1 - lr0))" \
        "$((d1 - d0))" "$((b1 - b0))" "$((i1 - i0))" "$variant" >>"$RUNS" <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
d.update(mode="fetch", row=sys.argv[2], variant=sys.argv[11], tag=sys.argv[3], proxy_cpu_ms=int(sys.argv[4]),
         mf_conn_lines=int(sys.argv[5]), dovecot_logins_from_client=int(sys.argv[6]),
         dovecot_logins_from_router=int(sys.argv[7]), server_cpu_ms=int(sys.argv[8]))
busy, idle = int(sys.argv[9]), int(sys.argv[10])
d["machine_busy_pct"] = round(100.0 * busy / (busy + idle), 1) if busy + idle > 0 else None
print(json.dumps(d))
EOF
    "$PY" - "$out" "$row" "$variant" "$tag" "$((c1 - c0))" "$((m1 - m0))" >&2 <<'EOF'
import json, sys
d = json.loads(sys.argv[1])
gb = d.get("wire_bytes", 0) / 1e9
print("[bench-login]      %-6s %-5s %-6s failed=%s %s  %s MB/s  %s MB in %s s  proxy CPU %s  (mailferryd conns +%s)" % (
      sys.argv[2], sys.argv[3], sys.argv[4], d.get("failed"), d.get("error") or "", d.get("mb_per_s"),
      round(d.get("wire_bytes", 0) / 1e6, 1), d.get("seconds"),
      ("%.2f s/GB" % (int(sys.argv[5]) / 1000.0 / gb)) if gb and sys.argv[2] != "direct" else "-", sys.argv[6]))
EOF
}

# ------------------------------------------------------------------ run
raw "mailferry login benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ)"
raw "host: $(uname -r) cpus=$(nproc) git=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo +dirty) mailferryd=$MFD"
raw "sections=$ONLY sessions=$N_SESS concs=$CONCS reps=$N_REPS users=$N_USERS mf_workers=$MF_WORKERS nginx_workers=$NGINX_WORKERS dovecot=$DOVECOT_MODE"
raw "fetch: msgs=$F_MSGS variants=$F_VARIANTS in_flight=$F_INFLIGHT small<=$F_SMALL_MAX x$F_SMALL_PASSES reps=$F_REPS nginx proxy_buffer=${NGINX_PROXY_BUFFER:-default}"

# Warm-up: every user's Maildir is created, the ledger knows every account (UNSEEN ->
# SEEN happens here, not in the measured runs), Dovecot's processes are up.
log "warm-up: $((N_USERS * 2)) sessions per row"
for row in $ROWS; do load "$row" 8 $((N_USERS * 2)) warmup; done

if want sessions; then
    for conc in $CONCS; do
        for ((i = 1; i <= N_REPS; i++)); do
            for row in $ROWS; do
                log "$row: $N_SESS sessions, $conc at a time (run $i of $N_REPS)"
                load "$row" "$conc" "$N_SESS" "run$i"
            done
        done
    done
fi
if want noop && (( N_NOOPS > 0 )); then
    if [[ -n $NOOP_PIN ]]; then
        # Diagnostic: every process on the NOOP path on one CPU, so that no wake-up has to
        # bring another (possibly idle, halted) CPU in; see README.
        log "NOOP: pinning mailferryd, nginx, Dovecot and imapload to CPU $NOOP_PIN"
        for p in "$MF_PID" "$NGX_PID" $(pgrep -P "$NGX_PID") $(ip netns pids "$NS_OLD"); do
            taskset -a -p -c "$NOOP_PIN" "$p" >/dev/null 2>&1
        done
        raw "noop: pinned to CPU $NOOP_PIN"
    fi
    log "NOOP round trips: $N_NOOP_ROUNDS rounds of $N_NOOPS (after 200 warm-up) on one session per row at once"
    for ((i = 1; i <= N_NOOP_ROUNDS; i++)); do noop_round "$i"; done
fi
if want fetch; then
    # The last lab user's INBOX (the session load went round robin over all of them; its
    # INBOX was empty until now).
    IFS=: read -r F_USER F_PASS < <(tail -1 "$USERFILE")
    log "FETCH: generating $F_MSGS messages for $F_USER on old"
    fetch_fill
    log "FETCH: mailbox of $F_COUNT messages, $F_BYTES bytes ($(grep '^fetch mailbox' "$RAW" | tail -1 | sed 's/.*"min"/min/; s/}$//; s/"//g')); one warm-up read per row"
    for row in $ROWS; do fetch_run "$row" whole warmup; done
    for variant in $F_VARIANTS; do
        for ((i = 1; i <= F_REPS; i++)); do
            for row in $ROWS; do
                log "$row: FETCH $variant (run $i of $F_REPS)"
                fetch_run "$row" "$variant" "run$i"
            done
        done
    done
fi
row_mode direct
log "measurements done"

# mailferryd's session ends and warnings, for the record.
raw "mailferryd log: lines=$(wc -l <"$WORK/mailferryd.log") conn=$(mf_conns)" \
    "warn=$(grep -c 'level=warn' "$WORK/mailferryd.log") error=$(grep -c 'level=error' "$WORK/mailferryd.log")"
grep ' conn client=' "$WORK/mailferryd.log" | sed 's/.* end=/end=/' | sort | uniq -c | sort -rn | head -5 |
    while read -r line; do raw "mailferryd ends: $line"; done
grep -E 'level=(warn|error)' "$WORK/mailferryd.log" | sed 's/^[^ ]* //' | sort | uniq -c | sort -rn | head -5 |
    while read -r line; do raw "mailferryd log: $line"; done
[[ -s $NGX/error.log ]] && tail -5 "$NGX/error.log" | sed 's/^/nginx error.log: /' >>"$RAW"
if [[ -s $WORK/perf.data ]]; then
    mkdir -p "$ROOT/bench/results"
    cp "$WORK/perf.data" "$ROOT/bench/results/login-$(date +%Y%m%d-%H%M%S).perf.data"
    for sort in comm dso "dso,symbol"; do
        perf report -i "$WORK/perf.data" --no-children -g none --sort "$sort" --stdio 2>/dev/null |
            grep -E '^ +[0-9]' | head -$([[ $sort == comm ]] && echo 5 || echo 30) |
            sed "s/ *\$//; s/^/perf mailferryd by $sort: /" >>"$RAW"
    done
    # User space only, and who calls the top user-space symbols.
    perf report -i "$WORK/perf.data" --no-children -g none --sort dso,symbol --stdio \
        --dsos mailferryd,libc.so.6,libsqlite3.so.0.8.6,liburing.so.2.3 2>/dev/null |
        grep -E '^ +[0-9]' | head -15 | sed "s/ *\$//; s/^/perf mailferryd user space: /" >>"$RAW"
    # Where the time goes, inclusive (children): io_uring operations, plain syscalls made
    # outside the ring (the ledger's SQLite: pwrite, fcntl locks, fdatasync; shutdown),
    # network softirqs (on veth they include delivering to the peer's socket).
    perf report -i "$WORK/perf.data" --children -g none --sort symbol --stdio 2>/dev/null |
        grep -E '\[k\] (__x64_sys_[a-z0-9_]+|__do_sys_io_uring_enter|io_(send|recv|connect|accept|close|shutdown|splice|cqring_wait|poll_task_func)|tcp_v4_connect|net_rx_action|schedule) ' |
        head -25 | sed "s/ *- *- *\$//; s/^/perf mailferryd inclusive: /" >>"$RAW"
    perf report -i "$WORK/perf.data" --children -g none --sort dso,symbol --stdio 2>/dev/null |
        grep -E 'libsqlite3' | head -3 | sed "s/ *- *- *\$//; s/^/perf mailferryd inclusive: /" >>"$RAW"
fi

# ------------------------------------------------------------------ report
mkdir -p "$ROOT/bench/results"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT_JSON=$ROOT/bench/results/login-$STAMP.json
OUT_TXT=$ROOT/bench/results/login-$STAMP.txt
"$PY" - "$RUNS" "$OUT_JSON" "$DOVECOT_MODE" "$MF_WORKERS" "$NGINX_WORKERS" "$N_SESS" "$N_USERS" >"$WORK/report.txt" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out_json, dmode, mfw, ngw, nsess, nusers = sys.argv[2:8]
names = {"direct": "direct", "mf": "mailferryd", "nginx": "nginx mail"}
load = [r for r in runs if r.get("mode") == "sessions" and r.get("tag") != "warmup"]
rows = [r for r in ("direct", "mf", "nginx") if any(x["row"] == r for x in runs)]
concs = sorted({r["conc"] for r in load})
summary = {}
ratios = {}
if load:
    print("IMAP sessions (connect, greeting, LOGIN, SELECT INBOX, LOGOUT, close): %s per run;" % nsess)
    print("%s users round robin; Dovecot %s; mailferryd workers=%s; nginx workers=%s." % (nusers, dmode, mfw, ngw))
    print()
    hdr = "%-12s %5s %8s %8s %8s %9s %9s %6s %9s %9s %9s %5s" % ("", "conc", "sess/s", "p50 ms", "p99 ms",
          "login p50", "login p99", "failed", "proxy CPU", "Dovecot", "loadgen", "busy")
    print(hdr)
    print("%-12s %5s %8s %8s %8s %9s %9s %6s %9s %9s %9s %5s" % ("", "", "", "", "", "", "", "", "ms/1k", "ms/1k", "ms/1k", "%"))
    for c in concs:
        for r in rows:
            xs = [x for x in load if x["row"] == r and x["conc"] == c]
            if not xs:
                continue
            xs.sort(key=lambda x: x.get("sessions_per_s", 0))
            m = xs[(len(xs) - 1) // 2] if len(xs) % 2 else xs[len(xs) // 2]
            failed = sum(max(0, x.get("failed", 0)) for x in xs) + sum(1 for x in xs if x.get("failed", 0) < 0)
            cpu = "-"
            if r != "direct" and m.get("ok"):
                cpu = "%.0f" % (m["proxy_cpu_ms"] * 1000.0 / m["ok"])
            per1k = lambda k: (m.get(k, 0) * 1000.0 / m["ok"]) if m.get("ok") else None
            summary.setdefault(str(c), {})[r] = dict(sessions_per_s=m.get("sessions_per_s"), p50_ms=m.get("p50_ms"),
                p99_ms=m.get("p99_ms"), login_p50_ms=m.get("login_p50_ms"), login_p99_ms=m.get("login_p99_ms"),
                failed=failed, runs=len(xs), sessions_per_s_runs=[x.get("sessions_per_s") for x in xs],
                proxy_cpu_ms_per_1k=None if cpu == "-" else float(cpu),
                dovecot_cpu_ms_per_1k=per1k("server_cpu_ms"), loadgen_cpu_ms_per_1k=per1k("loadgen_cpu_ms"),
                machine_busy_pct=m.get("machine_busy_pct"))
            f = lambda v: "-" if v is None else "%.0f" % v
            print("%-12s %5d %8.0f %8.2f %8.2f %9.2f %9.2f %6d %9s %9s %9s %5s" % (names[r], c, m.get("sessions_per_s", 0),
                  m.get("p50_ms", 0), m.get("p99_ms", 0), m.get("login_p50_ms", 0), m.get("login_p99_ms", 0), failed, cpu,
                  f(per1k("server_cpu_ms")), f(per1k("loadgen_cpu_ms")), f(m.get("machine_busy_pct"))))
    print()
    print("Where a session's time goes, p50 of each step in ms (connect to greeting; greeting to LOGIN's")
    print("OK; LOGIN's OK to SELECT's; SELECT's to LOGOUT's), from the median run:")
    steps = ("greeting", "login", "select", "logout")
    print("%-12s %5s" % ("", "conc") + "".join("%10s" % x for x in steps))
    for c in concs:
        for r in rows:
            xs = sorted((x for x in load if x["row"] == r and x["conc"] == c), key=lambda x: x.get("sessions_per_s", 0))
            if not xs:
                continue
            m = xs[len(xs) // 2]
            summary[str(c)][r]["step_p50_ms"] = {k: m.get("step_" + k + "_p50_ms") for k in steps}
            print("%-12s %5d" % (names[r], c) + "".join("%10.2f" % (m.get("step_" + k + "_p50_ms") or 0) for k in steps))
    print()
    print("Ratios (sessions/s, higher is better; latency p50 and p99 as mailferryd's over the other's,")
    print("lower is better)")

    print("  (median run over median run; then the median and range of the ratios of the runs made")
    print("  next to each other, rep by rep)")
    for c in concs:
        s = summary.get(str(c), {})
        for other, target in (("direct", 0.8), ("nginx", 1.0)):
            if "mf" in s and other in s and s[other]["sessions_per_s"]:
                q = s["mf"]["sessions_per_s"] / s[other]["sessions_per_s"]
                l50 = s["mf"]["p50_ms"] / s[other]["p50_ms"] if s[other]["p50_ms"] else 0
                l99 = s["mf"]["p99_ms"] / s[other]["p99_ms"] if s[other]["p99_ms"] else 0
                by_tag = {}
                for x in load:
                    if x["conc"] == c and x["row"] in ("mf", other) and x.get("sessions_per_s"):
                        by_tag.setdefault(x["tag"], {})[x["row"]] = x["sessions_per_s"]
                pr = sorted(v["mf"] / v[other] for v in by_tag.values() if "mf" in v and other in v)
                pm = statistics.median(pr) if pr else 0
                # Both views must clear the target to call it met; one of two is "borderline".
                ok = {2: "meets", 1: "borderline", 0: "MISSES"}[(q >= target) + (pm >= target)]
                ratios["mf/%s c=%d" % (other, c)] = dict(sessions=round(q, 3), sessions_paired_median=round(pm, 3),
                                                      sessions_paired=[round(x, 3) for x in pr], p50=round(l50, 3),
                                                      p99=round(l99, 3), target=target, met=ok)
                print("  conc %-3d mailferryd / %-7s sessions/s %.2f; paired %.2f [%.2f..%.2f] (target >= %.1f: %s)"
                      "   p50 %.2f   p99 %.2f" % (c, other, q, pm, pr[0] if pr else 0, pr[-1] if pr else 0, target, ok,
                      l50, l99))
noop_runs = [r for r in runs if r.get("mode") == "noop"]
if noop_runs:
    med = statistics.median
    good = [x for x in noop_runs if not x.get("failed") and x.get("ok")]
    per = {}  # row -> list of that row's session dict, one per good round
    for x in good:
        for sx in x.get("sessions", []):
            per.setdefault(sx["label"], []).append(sx)
    print()
    print("NOOP round trip, microseconds: one session per row open at once, NOOPs round robin over them,")
    print("rotating who goes first (%s per session and round after 200 warm-up, %d rounds; medians over rounds):" % (
          noop_runs[0].get("requested"), len(noop_runs)))
    print("%-12s %7s %8s %8s %8s %8s   %s" % ("", "rounds", "min", "p50", "p90", "p99", "paired diff to direct p10/p50/p90"))
    noop_sum = {}
    for r in rows:
        xs = per.get(r, [])
        if not xs:
            continue
        m = {k: med([x[k] for x in xs]) for k in ("min_us", "p50_us", "p90_us", "p99_us")}
        pd = ""
        if "paired_diff_p50_us" in xs[0]:
            for k in ("paired_diff_p10_us", "paired_diff_p50_us", "paired_diff_p90_us"):
                m[k] = med([x[k] for x in xs])
            pd = "%+.1f / %+.1f / %+.1f" % (m["paired_diff_p10_us"], m["paired_diff_p50_us"], m["paired_diff_p90_us"])
        m["p50_us_rounds"] = [x["p50_us"] for x in xs]
        noop_sum[r] = m
        print("%-12s %7d %8.1f %8.1f %8.1f %8.1f   %s" % (names[r], len(xs), m["min_us"], m["p50_us"], m["p90_us"],
              m["p99_us"], pd))
    summary["noop"] = noop_sum
    busy = [x.get("machine_busy_pct") for x in noop_runs if x.get("machine_busy_pct") is not None]
    if busy:
        print("  (machine busy during the rounds: %s %%)" % " ".join("%.0f" % b for b in busy))
    failed_rounds = len(noop_runs) - len(good)
    base = "direct" if "direct" in rows else (rows[0] if rows else None)
    for r, label in (("mf", "mailferryd"), ("nginx", "nginx")):
        if r not in per or base not in per or r == base:
            continue
        d50 = med([a["p50_us"] - b["p50_us"] for a, b in zip(per[r], per[base])])
        d99 = med([a["p99_us"] - b["p99_us"] for a, b in zip(per[r], per[base])])
        dmin = med([a["min_us"] - b["min_us"] for a, b in zip(per[r], per[base])])
        ratios["noop_added_p50_us_%s" % r] = round(d50, 1)
        ratios["noop_added_p99_us_%s" % r] = round(d99, 1)
        ratios["noop_added_min_us_%s" % r] = round(dmin, 1)
        ratios["noop_paired_diff_p50_us_%s" % r] = round(noop_sum[r].get("paired_diff_p50_us", 0), 1)
        tgt = (" (target <= 20 us: %s)" % ("meets" if d50 <= 20 else "MISSES")) if r == "mf" else ""
        print("  added by %-11s p50 %+.1f us%s; p99 %+.1f us; min %+.1f us; paired p50 %+.1f us" % (
              label + ":", d50, tgt, d99, dmin, noop_sum[r].get("paired_diff_p50_us", 0)))
    if failed_rounds:
        print("  %d NOOP round(s) failed (see the raw results)" % failed_rounds)
fetch_runs = [r for r in runs if r.get("mode") == "fetch" and r.get("tag") != "warmup"]
if fetch_runs:
    med = statistics.median
    x0 = fetch_runs[0]
    print()
    print("FETCH throughput: one session per row reads the mailbox of %s messages, %.1f MB (literals of" % (
          x0.get("messages"), x0.get("size_sum", 0) / 1e6))
    print("2 KiB to 4 MiB); whole = one UID FETCH 1:* (BODY.PEEK[]); each = one UID FETCH <uid> per message,")
    xs_ = next((x for x in fetch_runs if x.get("variant") == "small"), {})
    print("%s in flight; small = the same for the %s messages of at most %s bytes (%.1f MB), %s times." % (
          next((x.get("in_flight") for x in fetch_runs if x.get("variant") in ("each", "small")), "-"),
          xs_.get("selected", "-"), xs_.get("max_size", "-"), xs_.get("selected_bytes", 0) / 1e6, xs_.get("passes", "-")))
    print("MB/s: 10^6 bytes received per second (median run); proxy CPU: s per GB relayed.")
    print("%-12s %-6s %5s %8s %8s %8s %10s %10s %10s %5s" % ("", "", "runs", "MB/s", "min", "max", "proxy s/GB",
          "Dovecot", "loadgen", "busy"))
    fsum = {}
    for v in ("whole", "each", "small"):
        for r in rows:
            xs = [x for x in fetch_runs if x["row"] == r and x.get("variant") == v and not x.get("failed")]
            if not xs:
                continue
            xs.sort(key=lambda x: x.get("mb_per_s", 0))
            m = xs[(len(xs) - 1) // 2]
            gb = lambda x: x.get("wire_bytes", 0) / 1e9
            pcpu = med([x["proxy_cpu_ms"] / 1000.0 / gb(x) for x in xs if gb(x)]) if r != "direct" else None
            dcpu = med([x["server_cpu_ms"] / 1000.0 / gb(x) for x in xs if gb(x)])
            lcpu = med([x.get("fetch_cpu_ms", 0) / 1000.0 / gb(x) for x in xs if gb(x)])
            mbs = [x.get("mb_per_s") for x in fetch_runs if x["row"] == r and x.get("variant") == v]
            fsum.setdefault(v, {})[r] = dict(mb_per_s=med([x["mb_per_s"] for x in xs]), mb_per_s_runs=mbs,
                                            runs=len(xs), failed=len(mbs) - len(xs),
                                            proxy_cpu_s_per_gb=None if pcpu is None else round(pcpu, 3),
                                            dovecot_cpu_s_per_gb=round(dcpu, 3), loadgen_cpu_s_per_gb=round(lcpu, 3),
                                            machine_busy_pct=m.get("machine_busy_pct"),
                                            wire_bytes=m.get("wire_bytes"), seconds=m.get("seconds"))
            print("%-12s %-6s %5d %8.1f %8.1f %8.1f %10s %10.2f %10.2f %5s" % (names[r], v, len(xs),
                  fsum[v][r]["mb_per_s"], xs[0]["mb_per_s"], xs[-1]["mb_per_s"],
                  "-" if pcpu is None else "%.2f" % pcpu, dcpu, lcpu,
                  "-" if m.get("machine_busy_pct") is None else "%.0f" % m["machine_busy_pct"]))
    summary["fetch"] = fsum
    print("  (Dovecot and loadgen: CPU s per GB too; busy: the whole machine during the median run, %)")
    print("Ratios (MB/s, mailferryd's over the other's; median run over median run, then the median")
    print("and range of the ratios of runs made next to each other, rep by rep):")
    for v in ("whole", "each", "small"):
        s = fsum.get(v, {})
        for other in ("direct", "nginx"):
            if "mf" not in s or other not in s or not s[other]["mb_per_s"]:
                continue
            q = s["mf"]["mb_per_s"] / s[other]["mb_per_s"]
            by_tag = {}
            for x in fetch_runs:
                if x.get("variant") == v and x["row"] in ("mf", other) and x.get("mb_per_s") and not x.get("failed"):
                    by_tag.setdefault(x["tag"], {})[x["row"]] = x["mb_per_s"]
            pr = sorted(t["mf"] / t[other] for t in by_tag.values() if "mf" in t and other in t)
            pm = statistics.median(pr) if pr else 0
            ratios["fetch_%s mf/%s" % (v, other)] = dict(mb_per_s=round(q, 3), paired_median=round(pm, 3),
                                                          paired=[round(x, 3) for x in pr])
            print("  %-5s mailferryd / %-7s %.2f; paired %.2f [%.2f..%.2f]" % (v, other, q, pm,
                  pr[0] if pr else 0, pr[-1] if pr else 0))
bad = []
for x in runs:
    if x.get("failed", 0):
        bad.append("%s %s c=%s: %s failed %s %s" % (x.get("row", "noop"), x.get("tag", "round %s" % x.get("round")), x.get("conc", "-"), x.get("failed"),
                   json.dumps(x.get("fail_kinds", {})), json.dumps(x.get("fail_first", x.get("error", "")))))
    if x.get("mode") == "fetch":
        t = "fetch %s %s %s" % (x["row"], x.get("variant"), x["tag"])
        if x["row"] == "mf" and x.get("mf_conn_lines", 0) != 1:
            bad.append("%s: %s mailferryd conn lines for 1 session" % (t, x.get("mf_conn_lines")))
        if x["row"] != "mf" and x.get("mf_conn_lines", 0) > 0:
            bad.append("%s: went through mailferryd" % t)
        if x["row"] in ("direct", "mf") and x.get("dovecot_logins_from_client", 0) != 1:
            bad.append("%s: %s Dovecot logins from the client's address" % (t, x.get("dovecot_logins_from_client")))
        if x["row"] == "nginx" and x.get("dovecot_logins_from_router", 0) != 1:
            bad.append("%s: %s Dovecot logins from the router" % (t, x.get("dovecot_logins_from_router")))
    if x.get("mode") == "sessions":
        n = x.get("ok", 0) + max(0, x.get("failed", 0))
        if x["row"] == "mf" and x.get("mf_conn_lines", 0) < x.get("ok", 0):
            bad.append("%s %s c=%s: only %s mailferryd conn lines for %s sessions: not intercepted?" % (
                       x["row"], x["tag"], x["conc"], x["mf_conn_lines"], x["ok"]))
        if x["row"] != "mf" and x.get("mf_conn_lines", 0) > 0:
            bad.append("%s %s c=%s: %s sessions went through mailferryd" % (x["row"], x["tag"], x["conc"], x["mf_conn_lines"]))
        if x["row"] in ("direct", "mf") and x.get("dovecot_logins_from_client", 0) < x.get("ok", 0):
            bad.append("%s %s c=%s: Dovecot saw %s logins from the client's address for %s sessions" % (
                       x["row"], x["tag"], x["conc"], x["dovecot_logins_from_client"], x["ok"]))
        if x["row"] == "nginx" and x.get("dovecot_logins_from_router", 0) < x.get("ok", 0):
            bad.append("nginx %s c=%s: Dovecot saw %s logins from the router for %s sessions" % (
                       x["tag"], x["conc"], x["dovecot_logins_from_router"], x["ok"]))
if bad:
    print()
    for b in bad:
        print("NOTE " + b)
json.dump(dict(summary=summary, ratios=ratios, runs=runs, notes=bad,
               settings=dict(dovecot=dmode, mf_workers=int(mfw), nginx_workers=int(ngw),
                             sessions=int(nsess), users=int(nusers))),
          open(out_json, "w"), indent=1)
EOF
{
    cat "$WORK/report.txt"
    echo
    echo "---- raw"
    cat "$RAW"
} >"$OUT_TXT"
echo
cat "$WORK/report.txt"
echo
echo "results: ${OUT_JSON#"$ROOT"/} and ${OUT_TXT#"$ROOT"/} (total $((SECONDS - T0)) s)"
