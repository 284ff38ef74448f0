#!/usr/bin/env bash
# Samples for comparing captures (issue 19 part 3), from the REAL Linux TCP stack:
#
#   bash captures/make/make_points_samples.sh [points] [diff]      (as root, from anywhere)
#
# points -> captures/points/: one path seen at two capture points. Namespaces tdpt-cli
#   (tdpt-c0 198.18.1.1) -- tdpt-rtr (tdpt-r1 198.18.1.254 | tdpt-r2 198.18.2.254, forwarding)
#   -- tdpt-srv (tdpt-s0 198.18.2.1:8080). tcpdump -s 256 on tdpt-c0 in the client netns
#   (client_side.pcap) and on tdpt-s0 in the server netns (server_side.pcap), both started
#   before and stopped after the traffic. 34 connections (points_peer.py); the router's FORWARD
#   chain drops ten chosen segments once each (points_peer.py DROPS / `rules`), so the kernels
#   retransmit. The server-side file's clock is then shifted by +3.2 s with `editcap -t 3.2`
#   (the namespaces share one kernel clock). Truth: points_truth.py -> points.truth.json.
# diff -> captures/diff/: the same 200 requests to one server twice (diff_peer.py), fresh
#   namespaces tdpt-cli (198.18.0.1) / tdpt-srv (198.18.0.2:8080) for each run, tcpdump -s 256
#   on tdpt-c0: before.pcap (200 connections, Connection: close, server closes first) and
#   after.pcap (20 keep-alive connections x 10 requests, client closes first); ss counts the
#   TIME_WAITs in both namespaces every ~0.1 s and right after each run. Truth: diff_truth.py.
#
# Needs root, iproute2, iptables, tcpdump, tshark and editcap (Wireshark), ss, nstat; the truth
# scripts import captures/make/truth.py (scapy): $PYTHON, default the project's .venv python.
# Every namespace is removed on exit (netns.sh's trap), every step bounded by a timeout.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$(cd "$HERE/.." && pwd)}
ROOT=$(cd "$HERE/../.." && pwd)
if [ -z "${PYTHON:-}" ] && [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; fi
NS=tdpt
LOG_TAG=make_points_samples
# shellcheck source=netns.sh
. "$HERE/netns.sh"

CLI=$NS-cli SRV=$NS-srv RTR=$NS-rtr
POINTS=$OUT/points DIFF=$OUT/diff
CLOCK_OFFSET=3.2
mkdir -p "$POINTS" "$DIFF"
chown --reference="$OUT" "$POINTS" "$DIFF"

topo_router() {   # client 198.18.1.1 <-> router (198.18.1.254 | 198.18.2.254) <-> server 198.18.2.1
    ns_del_all
    ns_new $CLI; ns_new $SRV; ns_new $RTR
    ip link add $NS-c0 netns $CLI type veth peer name $NS-r1 netns $RTR
    ip link add $NS-s0 netns $SRV type veth peer name $NS-r2 netns $RTR
    nsx $CLI ip addr add 198.18.1.1/24 dev $NS-c0
    nsx $RTR ip addr add 198.18.1.254/24 dev $NS-r1
    nsx $RTR ip addr add 198.18.2.254/24 dev $NS-r2
    nsx $SRV ip addr add 198.18.2.1/24 dev $NS-s0
    nsx $CLI ip link set $NS-c0 up; nsx $SRV ip link set $NS-s0 up
    nsx $RTR ip link set $NS-r1 up; nsx $RTR ip link set $NS-r2 up
    nsx $CLI ip route add default via 198.18.1.254
    nsx $SRV ip route add default via 198.18.2.254
    nsx $RTR sysctl -qw net.ipv4.ip_forward=1
}

topo_direct() {   # client 198.18.0.1 <-> server 198.18.0.2
    ns_del_all
    ns_new $CLI; ns_new $SRV
    ip link add $NS-c0 netns $CLI type veth peer name $NS-s0 netns $SRV
    nsx $CLI ip addr add 198.18.0.1/24 dev $NS-c0
    nsx $SRV ip addr add 198.18.0.2/24 dev $NS-s0
    nsx $CLI ip link set $NS-c0 up; nsx $SRV ip link set $NS-s0 up
    nsx $SRV sysctl -qw net.core.somaxconn=1024
}

busy() {   # busy NS : TCP sockets neither listening nor in TIME_WAIT
    nsx "$1" ss -tanH state syn-sent state syn-recv state established state fin-wait-1 \
        state fin-wait-2 state close-wait state last-ack state closing | wc -l
}

wait_settled() {   # wait_settled SECONDS NS... : until every connection is closed or in TIME_WAIT
    local i ns n
    for ((i = 0; i < $1 * 20; i++)); do
        n=0
        for ns in "${@:2}"; do n=$((n + $(busy "$ns"))); done
        [ "$n" = 0 ] && return 0
        sleep 0.05
    done
    log "connections still open after $1 s"; return 1
}

tcpdump_stats() {   # tcpdump_stats : each capture's interface and its captured/dropped counts
    obs tcpdump_stats $CLI bash -c 'cd "$1" && grep -h "listening on\|captured\|dropped" cap.*.err' _ "$WORK"
    rm -f "$WORK"/cap.*.err
}

peer_server() {   # peer_server SCRIPT ARGS... : start a server in $SRV, wait for SYNC/ready
    rm -f "$SYNC/ready"
    ip netns exec $SRV timeout 60 "$PYTHON" "$HERE/$1" server "${@:2}" &
    SRVPID=$!; BGPIDS+=($SRVPID)
    wait_for "$SYNC/ready" 10
}

s_points() {
    begin points; topo_router; rm -f "$WORK"/cap.*.err
    local orig=$SYNC/server_side_unshifted.pcap cpc cps line
    "$PYTHON" "$HERE/points_peer.py" rules 198.18.1.1 198.18.2.1 $PORT >"$SYNC/rules.txt"
    while IFS= read -r line; do eval "nsx $RTR iptables -A FORWARD $line"; done <"$SYNC/rules.txt"
    obs iptables_rules $RTR iptables -S FORWARD
    cap_start $CLI "$SYNC/client_side.pcap" -i $NS-c0 -s 256 tcp; cpc=$CAPPID
    cap_start $SRV "$orig" -i $NS-s0 -s 256 tcp; cps=$CAPPID
    peer_server points_peer.py 198.18.2.1 $PORT "$SYNC"
    nsx $CLI timeout 60 "$PYTHON" "$HERE/points_peer.py" client 198.18.2.1 $PORT "$SYNC" 198.18.1.1
    server_wait
    wait_settled 10 $CLI $SRV
    sleep 0.3
    cap_stop "$cpc" "$cps"; tcpdump_stats
    obs client_time_wait $CLI "${SS_TW[@]}"; obs server_time_wait $SRV "${SS_TW[@]}"
    obs client_time_wait_count $CLI bash -c 'ss -tanH state time-wait | wc -l'
    obs server_time_wait_count $SRV bash -c 'ss -tanH state time-wait | wc -l'
    obs client_nstat $CLI nstat -as; obs server_nstat $SRV nstat -as
    obs iptables_counters $RTR iptables -vnxL FORWARD
    editcap -F pcap -t "$CLOCK_OFFSET" "$orig" "$SYNC/server_side.pcap"
    "$PYTHON" "$HERE/points_truth.py" "$SYNC/client_side.pcap" "$orig" "$SYNC/server_side.pcap" \
        "$CLOCK_OFFSET" "$SYNC/points.truth.json" "$SYNC" "$KERNEL"
    # the outputs replace the old ones only once the truth accepted the run
    local f
    for f in client_side.pcap server_side.pcap points.truth.json; do
        cp "$SYNC/$f" "$POINTS/$f"; publish "$POINTS/$f"
    done
}

diff_run() {   # diff_run STEM CLIENT-MODE
    local stem=$1 mode=$2 sampler
    begin "diff_$stem"; topo_direct; rm -f "$WORK"/cap.*.err
    cap_start $CLI "$SYNC/$stem.pcap" -i $NS-c0 -s 256 tcp
    peer_server diff_peer.py 198.18.0.2 $PORT "$SYNC"
    # ss in both namespaces every ~0.1 s: wall time before, after, client count, server count
    bash -c 'while [ ! -e "$1" ]; do
            t0=$(date +%s.%N)
            c=$(ip netns exec "$2" ss -tanH state time-wait | wc -l)
            s=$(ip netns exec "$3" ss -tanH state time-wait | wc -l)
            echo "$t0 $(date +%s.%N) $c $s"; sleep 0.1; done' _ "$SYNC/stop_ss" $CLI $SRV \
        >"$SYNC/ss_samples.txt" &
    sampler=$!; BGPIDS+=($sampler)
    nsx $CLI timeout 60 "$PYTHON" "$HERE/diff_peer.py" client "$mode" 198.18.0.2 $PORT "$SYNC"
    wait_settled 10 $CLI $SRV
    sleep 0.3
    touch "$SYNC/stop_ss"; wait "$sampler" || true
    obs client_time_wait $CLI "${SS_TW[@]}"; obs server_time_wait $SRV "${SS_TW[@]}"
    obs client_time_wait_count $CLI bash -c 'ss -tanH state time-wait | wc -l'
    obs server_time_wait_count $SRV bash -c 'ss -tanH state time-wait | wc -l'
    obs client_nstat $CLI nstat -as TcpActiveOpens TcpPassiveOpens TcpRetransSegs TcpOutRsts TcpEstabResets TcpExtTW
    obs server_nstat $SRV nstat -as TcpActiveOpens TcpPassiveOpens TcpRetransSegs TcpOutRsts TcpEstabResets TcpExtTW
    touch "$SYNC/stop"; server_wait
    cap_stop "$CAPPID"; tcpdump_stats
}

s_diff() {
    diff_run before close
    diff_run after keepalive:10
    local b=$WORK/diff_before a=$WORK/diff_after
    "$PYTHON" "$HERE/diff_truth.py" "$b/before.pcap" "$b" "$a/after.pcap" "$a" "$WORK/diff.truth.json" "$KERNEL"
    cp "$b/before.pcap" "$a/after.pcap" "$WORK/diff.truth.json" "$DIFF/"
    publish "$DIFF/before.pcap"; publish "$DIFF/after.pcap"; publish "$DIFF/diff.truth.json"
}

ALL=(points diff)
run_samples "$@"
ns_del_all
log "done; kernel $KERNEL"
