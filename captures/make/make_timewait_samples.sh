#!/usr/bin/env bash
# Produce the host-level (TIME_WAIT as a resource) sample captures from the REAL Linux stack.
#
#   sudo PYTHON=/work/venv/bin/python captures/make/make_timewait_samples.sh [STEM...]
#
# Needs root, iproute2, tcpdump, ss, nstat.  Fresh network namespaces tdtw-cli (client, veth
# tdtw-c0, 198.18.0.1) and tdtw-srv (server, veth tdtw-s0, 198.18.0.2-.4), removed on exit.
# The endpoints are captures/make/tw_peer.py.  For each STEM it writes captures/STEM.pcap.gz
# (tcpdump -s 128, gzipped) and captures/STEM.truth.json (tw_truth.py), with what ss, nstat
# and sysctl showed during the run.  With no argument: all samples.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$(cd "$HERE/.." && pwd)}
PYTHON=${PYTHON:-python3}
KERNEL=$(uname -r)
WORK=$(mktemp -d /tmp/tdtw.XXXXXX)
BGPIDS=()

log() { printf '[make_timewait_samples] %s\n' "$*" >&2; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

cleanup() {
    local p ns
    for p in "${BGPIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    for ns in tdtw-cli tdtw-srv; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

topo() {   # client tdtw-cli 198.18.0.1 <-veth-> server tdtw-srv 198.18.0.2, .3, .4
    local ns
    for ns in tdtw-cli tdtw-srv; do ip netns del "$ns" 2>/dev/null || true; done
    for ns in tdtw-cli tdtw-srv; do
        ip netns add "$ns"
        nsx "$ns" ip link set lo up
        nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    ip link add tdtw-c0 netns tdtw-cli type veth peer name tdtw-s0 netns tdtw-srv
    nsx tdtw-cli ip addr add 198.18.0.1/24 dev tdtw-c0
    for a in 2 3 4; do nsx tdtw-srv ip addr add 198.18.0.$a/24 dev tdtw-s0; done
    nsx tdtw-cli ip link set tdtw-c0 up
    nsx tdtw-srv ip link set tdtw-s0 up
    nsx tdtw-srv sysctl -qw net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096
}

wait_for() {   # wait_for FILE SECONDS
    local i n=$(( ${2:-10} * 50 ))
    for ((i = 0; i < n; i++)); do [ -e "$1" ] && return 0; sleep 0.02; done
    echo "timeout waiting for $1" >&2; return 1
}

CAPPID=
cap_start() {   # cap_start NS IFACE OUTFILE
    local err="$WORK/cap.err"
    ip netns exec "$1" timeout 120 tcpdump --immediate-mode -U -B 16384 -s 128 -i "$2" -w "$3" tcp 2>"$err" &
    CAPPID=$!; BGPIDS+=($CAPPID)
    local i
    for ((i = 0; i < 250; i++)); do grep -qs 'listening on' "$err" && break; sleep 0.02; done
    grep -q 'listening on' "$err" || { cat "$err" >&2; return 1; }
    sleep 0.1
}

cap_stop() {   # cap_stop : and keep tcpdump's drop counts for the truth file
    sleep 0.3
    kill -TERM "$CAPPID" 2>/dev/null || true; wait "$CAPPID" 2>/dev/null || true
    grep -E 'captured|dropped' "$WORK/cap.err" >"$SYNC/obs_tcpdump.txt" || true
}

server_start() {   # server_start MODE ADDR PORT
    local ready="$WORK/ready.$2.$3"
    rm -f "$ready"
    ip netns exec tdtw-srv "$PYTHON" "$HERE/tw_peer.py" server "$1" "$2" "$3" "$ready" &
    BGPIDS+=($!)
    wait_for "$ready" 10
}

client_run() {   # client_run MODE ADDR PORT COUNT THREADS RATE
    nsx tdtw-cli "$PYTHON" "$HERE/tw_peer.py" client "$@" "$SYNC/client.log"
}

begin() { STEM=$1; SYNC="$WORK/$STEM"; mkdir -p "$SYNC"; log "== $STEM"; topo; }

obs() {   # obs NAME NS CMD... : record a kernel observation for the truth file
    local name=$1 ns=$2; shift 2
    { echo "# ip netns exec $ns $*"; nsx "$ns" "$@"; } >"$SYNC/obs_$name.txt" 2>&1 || true
}

ss_count() {   # ss_count NAME NS : "# cmd" then the number of sockets in TIME_WAIT
    { echo "# ip netns exec $2 ss -tanH state time-wait | wc -l"
      nsx "$2" ss -tanH state time-wait | wc -l; } >"$SYNC/obs_$1.txt"
}

finish() {   # finish STEM PCAP : truth file, then gzip the capture
    "$PYTHON" "$HERE/tw_truth.py" "$1" "$2" "$OUT/$1.truth.json" "$SYNC" "$KERNEL"
    gzip -9 -n -f "$2"
    chown --reference="$OUT" "$2.gz" "$OUT/$1.truth.json"; chmod 644 "$2.gz" "$OUT/$1.truth.json"
    log "   -> $(basename "$2").gz $(stat -c %s "$2.gz") bytes"
}

s_tw_server_burst() {
    # 2,000 HTTP/1.1 "Connection: close" requests at ~800/s over 4 threads: the server closes
    # first every time and holds every TIME_WAIT for 60 s, longer than the capture lasts.
    # ss counts the server's TIME_WAITs every ~0.1 s during the burst, with the wall-clock
    # time just before and just after each count (same clock as tcpdump's timestamps).
    begin tw_server_burst
    local f="$OUT/$STEM.pcap"
    cap_start tdtw-srv tdtw-s0 "$f"
    server_start close 198.18.0.2 8080
    ip netns exec tdtw-srv bash -c 'while [ ! -e "$1" ]; do
            t0=$(date +%s.%N); n=$(ss -tanH state time-wait | wc -l); t1=$(date +%s.%N)
            echo "$t0 $t1 $n"; sleep 0.1; done' _ "$SYNC/stop_ss" >"$SYNC/ss_samples.txt" &
    local sspid=$!; BGPIDS+=($sspid)
    client_run close 198.18.0.2 8080 2000 4 800
    sleep 0.5
    touch "$SYNC/stop_ss"; wait "$sspid" || true
    ss_count server_time_wait_after tdtw-srv
    ss_count client_time_wait_after tdtw-cli
    obs server_nstat tdtw-srv nstat -as TcpActiveOpens TcpPassiveOpens TcpExtTW TcpExtTWRecycled
    cap_stop; finish "$STEM" "$f"
}

s_tw_narrow_port_range() {
    # A client whose ephemeral range is 50 ports (40000-40049), tcp_tw_reuse=1: it opens
    # 400 short connections as fast as it can, closing first each time (client TIME_WAIT).
    # Once every port holds a TIME_WAIT, connect() takes over TIME_WAITs older than
    # tcp_tw_reuse_delay (1 s): 4-tuples are reused, ~50 new connections per second at most.
    begin tw_narrow_port_range
    nsx tdtw-cli sysctl -qw net.ipv4.ip_local_port_range="40000 40049" net.ipv4.tcp_tw_reuse=1
    obs sysctl tdtw-cli sysctl net.ipv4.ip_local_port_range net.ipv4.tcp_tw_reuse net.ipv4.tcp_tw_reuse_delay
    local f="$OUT/$STEM.pcap"
    cap_start tdtw-cli tdtw-c0 "$f"
    server_start keepalive 198.18.0.2 8080
    client_run keepalive:1 198.18.0.2 8080 400 2 0
    sleep 0.3
    ss_count client_time_wait_after tdtw-cli
    obs client_nstat tdtw-cli nstat -as TcpActiveOpens TcpExtTW TcpExtTWRecycled
    cap_stop; finish "$STEM" "$f"
}

s_tw_keepalive() {
    # The healthy pattern: 4 persistent HTTP/1.1 connections, 500 requests each, then the
    # client closes: 2,000 requests, 4 TIME_WAITs on the client, none on the server.
    begin tw_keepalive
    local f="$OUT/$STEM.pcap"
    cap_start tdtw-cli tdtw-c0 "$f"
    server_start keepalive 198.18.0.2 8080
    client_run keepalive:500 198.18.0.2 8080 4 4 0
    sleep 0.3
    ss_count client_time_wait_after tdtw-cli
    ss_count server_time_wait_after tdtw-srv
    cap_stop; finish "$STEM" "$f"
}

s_tw_mixed_servers() {
    # One client, four servers: only 198.18.0.3:8080 (HTTP/1.0 responses) closes first in bulk;
    # 198.18.0.4:8080 closes first because the client's requests are HTTP/1.0; 198.18.0.2:8080
    # is keep-alive (the client closes); 198.18.0.4:9000 aborts every connection (SO_LINGER 0).
    begin tw_mixed_servers
    local f="$OUT/$STEM.pcap"
    cap_start tdtw-srv tdtw-s0 "$f"
    server_start keepalive 198.18.0.2 8080
    server_start http10 198.18.0.3 8080
    server_start http10 198.18.0.4 8080
    server_start linger 198.18.0.4 9000
    client_run keepalive:20 198.18.0.2 8080 50 2 100 &
    local k1=$!
    client_run plain 198.18.0.3 8080 600 2 300 &
    local k2=$!
    client_run http10 198.18.0.4 8080 100 1 50 &
    local k3=$!
    client_run close 198.18.0.4 9000 60 1 30
    wait "$k1" "$k2" "$k3"
    sleep 0.3
    obs server_time_wait_by_local tdtw-srv bash -c "ss -tanH state time-wait | awk '{print \$3}' | sort | uniq -c"
    ss_count client_time_wait_after tdtw-cli
    cap_stop; finish "$STEM" "$f"
}

ALL=(tw_server_burst tw_narrow_port_range tw_keepalive tw_mixed_servers)
if [ $# -gt 0 ]; then SEL=("$@"); else SEL=("${ALL[@]}"); fi
for s in "${SEL[@]}"; do "s_$s"; done
log "done; kernel $KERNEL"
