#!/usr/bin/env bash
# Produce the sample captures in captures/ from the REAL Linux TCP stack.
#
#   sudo PYTHON=/work/venv/bin/python captures/make/make_samples.sh [STEM...]
#
# Needs root, iproute2, iptables (nft backend), tcpdump, dumpcap, and a Python
# ($PYTHON, default python3) with scapy (only rst_inject.py, syn_scan.py and truth.py use it).
# Every sample runs in fresh network namespaces named tdcap-*, joined by veth
# pairs, addresses from 198.18.0.0/15 and fd00::/8 only; everything is removed
# on exit (trap).  This kernel has no sch_netem and no 8021q, so the delay for
# crossing FINs and the 802.1Q tags come from wire.py, a userspace AF_PACKET
# forwarder in a middle namespace.  For each STEM it writes captures/STEM.pcap
# (or .pcapng) and captures/STEM.truth.json.  With no argument: all samples.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$(cd "$HERE/.." && pwd)}
NS=tdcap
LOG_TAG=make_samples
# shellcheck source=netns.sh
. "$HERE/netns.sh"

# ------------------------------------------------------------------ topology
WIREPID=
reset_topo() {
    if [ -n "$WIREPID" ]; then kill "$WIREPID" 2>/dev/null || true; wait "$WIREPID" 2>/dev/null || true; WIREPID=; fi
    ns_del_all
}

# client ns tdcap-cli (tdcap-c0, 198.18.0.1 / fd00::1) <-> server ns tdcap-srv (tdcap-s0, .2 / fd00::2)
topo_direct() {   # topo_direct [v6] [client-ip]
    reset_topo
    local v6=${1:-} cip=${2:-198.18.0.1}
    ns_new tdcap-cli "$v6"; ns_new tdcap-srv "$v6"
    ip link add tdcap-c0 netns tdcap-cli type veth peer name tdcap-s0 netns tdcap-srv
    nsx tdcap-cli ip addr add "$cip/24" dev tdcap-c0
    nsx tdcap-srv ip addr add 198.18.0.2/24 dev tdcap-s0
    if [ "$v6" = v6 ]; then
        nsx tdcap-cli ip -6 addr add fd00::1/64 dev tdcap-c0 nodad
        nsx tdcap-srv ip -6 addr add fd00::2/64 dev tdcap-s0 nodad
    fi
    nsx tdcap-cli ip link set tdcap-c0 up
    nsx tdcap-srv ip link set tdcap-s0 up
}

# client <-> [tdcap-mid: wire.py] <-> server
topo_wire() {   # topo_wire delay MS | topo_wire vlan VID
    reset_topo
    ns_new tdcap-cli; ns_new tdcap-srv; ns_new tdcap-mid
    ip link add tdcap-c0 netns tdcap-cli type veth peer name tdcap-m0 netns tdcap-mid
    ip link add tdcap-s0 netns tdcap-srv type veth peer name tdcap-m1 netns tdcap-mid
    nsx tdcap-cli ip addr add 198.18.0.1/24 dev tdcap-c0
    nsx tdcap-srv ip addr add 198.18.0.2/24 dev tdcap-s0
    nsx tdcap-cli "$PYTHON" "$HERE/txcsum_off.py" tdcap-c0
    nsx tdcap-srv "$PYTHON" "$HERE/txcsum_off.py" tdcap-s0
    nsx tdcap-cli ip link set tdcap-c0 up
    nsx tdcap-srv ip link set tdcap-s0 up
    nsx tdcap-mid ip link set tdcap-m0 up
    nsx tdcap-mid ip link set tdcap-m1 up
    rm -f "$WORK/wire.ready"
    if [ "$1" = delay ]; then
        WIRE_READY=$WORK/wire.ready ip netns exec tdcap-mid "$PYTHON" "$HERE/wire.py" delay tdcap-m0 tdcap-m1 "$2" 30 &
    else
        ip link add tdcap-t0 netns tdcap-mid type veth peer name tdcap-t1 netns tdcap-mid
        nsx tdcap-mid ip link set tdcap-t0 up
        nsx tdcap-mid ip link set tdcap-t1 up
        WIRE_READY=$WORK/wire.ready ip netns exec tdcap-mid "$PYTHON" "$HERE/wire.py" vlan tdcap-m0 tdcap-t0 tdcap-t1 tdcap-m1 "$2" 30 &
    fi
    WIREPID=$!
    BGPIDS+=($WIREPID)
    wait_for "$WORK/wire.ready" 10
}

# client 198.18.1.1 <-> router ns (198.18.1.254 | 198.18.2.254) <-> server 198.18.2.1
topo_router() {
    reset_topo
    ns_new tdcap-cli; ns_new tdcap-srv; ns_new tdcap-rtr
    ip link add tdcap-c0 netns tdcap-cli type veth peer name tdcap-r1 netns tdcap-rtr
    ip link add tdcap-s0 netns tdcap-srv type veth peer name tdcap-r2 netns tdcap-rtr
    nsx tdcap-cli ip addr add 198.18.1.1/24 dev tdcap-c0
    nsx tdcap-rtr ip addr add 198.18.1.254/24 dev tdcap-r1
    nsx tdcap-rtr ip addr add 198.18.2.254/24 dev tdcap-r2
    nsx tdcap-srv ip addr add 198.18.2.1/24 dev tdcap-s0
    for x in "tdcap-cli tdcap-c0" "tdcap-srv tdcap-s0" "tdcap-rtr tdcap-r1" "tdcap-rtr tdcap-r2"; do
        set -- $x; nsx "$1" ip link set "$2" up
    done
    nsx tdcap-cli ip route add default via 198.18.1.254
    nsx tdcap-srv ip route add default via 198.18.2.254
    nsx tdcap-rtr sysctl -qw net.ipv4.ip_forward=1
}

# ------------------------------------------------------------------ helpers
dumpcap_start() {   # dumpcap_start NS OUTFILE DUMPCAP-ARGS... ; sets CAPPID
    local ns=$1 out=$2; shift 2
    capture_start "$ns" 'Capturing on' 0.3 dumpcap -q -w "$out" "$@"
}

finish() {   # finish STEM FILE : write the truth file
    "$PYTHON" "$HERE/truth.py" "$1" "$2" "$OUT/$1.truth.json" "$SYNC" "$KERNEL"
    publish "$2" "$OUT/$1.truth.json"
}


# ------------------------------------------------------------------ samples
s_client_first_close() {
    begin client_first_close; topo_direct
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 tcp
    server_start basic 198.18.0.2
    client_run basic 198.18.0.2; server_wait
    sleep 0.2
    obs client_tw tdcap-cli "${SS_TW[@]}"; obs server_tw tdcap-srv "${SS_TW[@]}"
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

s_server_first_close() {
    begin server_first_close; topo_direct
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 tcp
    server_start http_close 198.18.0.2
    client_run http_close 198.18.0.2; server_wait
    sleep 0.2
    obs client_tw tdcap-cli "${SS_TW[@]}"; obs server_tw tdcap-srv "${SS_TW[@]}"
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

s_linger_abort() {
    begin linger_abort; topo_direct
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 tcp
    server_start linger 198.18.0.2
    client_run linger 198.18.0.2; server_wait
    sleep 0.2
    obs client_tw tdcap-cli "${SS_TW[@]}"; obs server_tw tdcap-srv "${SS_TW[@]}"
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

s_simultaneous_close() {
    begin simultaneous_close; topo_wire delay 20
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 tcp
    server_start simul 198.18.0.2
    client_run simul 198.18.0.2; server_wait
    sleep 0.3
    obs client_tw tdcap-cli "${SS_TW[@]}"; obs server_tw tdcap-srv "${SS_TW[@]}"
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

s_half_close() {
    begin half_close; topo_direct
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 tcp
    server_start half 198.18.0.2
    client_run half 198.18.0.2; server_wait
    sleep 0.2
    obs client_tw tdcap-cli "${SS_TW[@]}"; obs server_tw tdcap-srv "${SS_TW[@]}"
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

s_lost_final_ack() {
    # drop the client's final ACK once, in the client namespace, OUTPUT
    begin lost_final_ack; topo_direct
    nsx tdcap-cli iptables -A OUTPUT -p tcp --dport $PORT --tcp-flags FIN FIN -m recent --name tdfin --set
    nsx tdcap-cli iptables -A OUTPUT -p tcp --dport $PORT --tcp-flags ALL ACK -m length --length 0:80 \
        -m recent --name tdfin --remove -j DROP
    local p1 p2
    cap_start tdcap-srv "$OUT/lost_final_ack.pcap" -i tdcap-s0 -s 0 tcp; p1=$CAPPID
    cap_start tdcap-cli "$OUT/lost_final_ack_client_side.pcap" -i tdcap-c0 -s 0 tcp; p2=$CAPPID
    server_start lost_ack 198.18.0.2
    client_run lost_ack 198.18.0.2; server_wait
    sleep 0.1
    obs client_tw_early tdcap-cli "${SS_TW[@]}"
    obs server_last_ack_early tdcap-srv ss -tanoH state last-ack
    sleep 1.2
    obs client_tw_after_retransmission tdcap-cli "${SS_TW[@]}"
    obs server_after tdcap-srv ss -tanH
    obs iptables_counters tdcap-cli iptables -vnL OUTPUT
    cap_stop "$p1" "$p2"
    finish lost_final_ack "$OUT/lost_final_ack.pcap"
    finish lost_final_ack_client_side "$OUT/lost_final_ack_client_side.pcap"

    # the same ACK lost *after* the capture point: dropped in the server's INPUT,
    # capture on the server's veth (taps see received frames before netfilter)
    begin lost_final_ack_after_capture; topo_direct
    nsx tdcap-srv iptables -A INPUT -p tcp --dport $PORT --tcp-flags FIN FIN -m recent --name tdfin --set
    nsx tdcap-srv iptables -A INPUT -p tcp --dport $PORT --tcp-flags ALL ACK -m length --length 0:80 \
        -m recent --name tdfin --remove -j DROP
    cap_start tdcap-srv "$OUT/$STEM.pcap" -i tdcap-s0 -s 0 tcp
    server_start lost_ack 198.18.0.2
    client_run lost_ack 198.18.0.2; server_wait
    sleep 1.3
    obs client_tw tdcap-cli "${SS_TW[@]}"
    obs iptables_counters tdcap-srv iptables -vnL INPUT
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

s_tw_assassination() {
    begin tw_assassination; topo_direct
    local f="$OUT/$STEM.pcap"
    cap_start tdcap-cli "$f" -i tdcap-c0 -s 0 tcp
    server_start tw_kill 198.18.0.2 2
    client_run tw_kill 198.18.0.2; server_wait
    sleep 0.3
    obs client_tw_before tdcap-cli "${SS_TW[@]}"
    local p1 p2
    p1=$(awk '$5=="exact_rst_target"{print $2}' "$SYNC/client.log")
    p2=$(awk '$5=="wrong_rst_target"{print $2}' "$SYNC/client.log")
    nsx tdcap-srv "$PYTHON" "$HERE/rst_inject.py" "$f" 198.18.0.2 $PORT 198.18.0.1 "$p1" 0 >"$SYNC/obs_rst_exact.txt"
    sleep 0.2
    nsx tdcap-srv "$PYTHON" "$HERE/rst_inject.py" "$f" 198.18.0.2 $PORT 198.18.0.1 "$p2" 1000 >"$SYNC/obs_rst_wrong.txt"
    sleep 0.3
    obs client_tw_after tdcap-cli "${SS_TW[@]}"
    cap_stop "$CAPPID"; finish "$STEM" "$f"
}

s_reuse_in_time_wait() {
    begin reuse_in_time_wait; topo_direct
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 tcp
    server_start reuse 198.18.0.2 2
    client_run reuse 198.18.0.2; server_wait
    sleep 0.2
    obs server_tw tdcap-srv "${SS_TW[@]}"
    obs server_nstat tdcap-srv nstat -as
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"

    # rejected: the 2nd SYN's TSval is older than the TIME_WAIT's ts_recent (PAWS).
    # Done by switching the client's net.ipv4.tcp_timestamps between 1 (random
    # per-address-pair offset) and 2 (no offset); which order makes the TSval go
    # backwards depends on the (per boot) offset, so try both orders.
    local order
    for order in "1 2" "2 1" "1 2" "2 1" "1 2" "2 1" "1 2" "2 1"; do
        begin reuse_in_time_wait_rejected; topo_direct
        echo "$order" >"$SYNC/ts_order.txt"
        cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 tcp
        server_start reuse 198.18.0.2 2
        client_run reuse 198.18.0.2 paws $order; server_wait
        sleep 0.2
        obs server_tw tdcap-srv "${SS_TW[@]}"
        obs server_nstat tdcap-srv nstat -as
        cap_stop "$CAPPID"
        if tcpdump -nn -r "$OUT/$STEM.pcap" 2>/dev/null | grep -q 'Flags \[R\]'; then
            finish "$STEM" "$OUT/$STEM.pcap"; return 0
        fi
        log "   order $order did not produce a rejection, trying the other order"
    done
    log "   could not produce a rejected reuse"; rm -f "$OUT/$STEM.pcap"
}

s_refused() {
    begin refused; topo_direct
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 tcp
    client_run refused 198.18.0.2
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

s_ipv6_client_first() {
    begin ipv6_client_first; topo_direct v6
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 tcp
    server_start basic fd00::2
    client_run basic fd00::2; server_wait
    sleep 0.2
    obs client_tw tdcap-cli "${SS_TW[@]}"
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

s_two_interfaces() {
    begin two_interfaces; topo_router
    local f="$OUT/$STEM.pcapng" scn
    rm -f "$f"
    dumpcap_start tdcap-rtr "$f" -f tcp -i tdcap-r1 -i tdcap-r2
    for scn in basic http_close linger; do
        server_start "$scn" 198.18.2.1
        client_run "$scn" 198.18.2.1; server_wait
        sleep 0.1
    done
    obs client_tw tdcap-cli "${SS_TW[@]}"; obs server_tw tdcap-srv "${SS_TW[@]}"
    sleep 1.2   # dumpcap has no immediate mode: let libpcap hand over the last block
    cap_stop "$CAPPID"; finish "$STEM" "$f"
}

s_vlan() {
    begin vlan; topo_wire vlan 100
    cap_start tdcap-mid "$OUT/$STEM.pcap" -i tdcap-t0 -s 0 vlan
    server_start basic 198.18.0.2
    client_run basic 198.18.0.2; server_wait
    sleep 0.2
    obs client_tw tdcap-cli "${SS_TW[@]}"
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

s_cooked_sll() {
    begin cooked_sll; topo_direct
    local p1 p2
    cap_start tdcap-cli "$OUT/cooked_sll.pcap" -i any -s 0 tcp; p1=$CAPPID
    if cap_start tdcap-cli "$OUT/cooked_sll1.pcap" -i any -y LINUX_SLL -s 0 tcp; then p2=$CAPPID; else p2=; fi
    server_start basic 198.18.0.2
    client_run basic 198.18.0.2; server_wait
    sleep 0.2
    obs client_tw tdcap-cli "${SS_TW[@]}"
    cap_stop "$p1" $p2
    finish cooked_sll "$OUT/cooked_sll.pcap"
    [ -n "$p2" ] && finish cooked_sll1 "$OUT/cooked_sll1.pcap"
}

s_truncated_snaplen() {
    begin truncated_snaplen; topo_direct
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 60 tcp
    server_start half 198.18.0.2
    client_run half 198.18.0.2; server_wait
    sleep 0.2
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

s_midstream() {
    begin midstream; topo_direct
    server_start midstream 198.18.0.2
    ip netns exec tdcap-cli timeout 45 "$PYTHON" "$HERE/peer.py" client midstream 198.18.0.2 $PORT "$SYNC" &
    local cpid=$!; BGPIDS+=($cpid)
    wait_for "$SYNC/established" 10
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 tcp
    touch "$SYNC/go"
    wait "$cpid"; server_wait
    sleep 0.2
    obs client_tw tdcap-cli "${SS_TW[@]}"
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

s_unanswered() {
    begin unanswered; topo_direct
    nsx tdcap-srv iptables -A INPUT -p tcp --dport $PORT -j DROP
    server_start basic 198.18.0.2
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 tcp
    client_run unanswered 198.18.0.2
    kill "$SRVPID" 2>/dev/null || true; server_wait
    obs iptables_counters tdcap-srv iptables -vnL INPUT
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

s_many_reuse() {
    begin many_reuse; topo_direct
    nsx tdcap-cli sysctl -qw net.ipv4.ip_local_port_range="40000 40003" net.ipv4.tcp_tw_reuse=1
    obs sysctl tdcap-cli sysctl net.ipv4.ip_local_port_range net.ipv4.tcp_tw_reuse net.ipv4.tcp_tw_reuse_delay
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 tcp
    server_start many 198.18.0.2 20
    client_run many 198.18.0.2 20; server_wait
    sleep 0.2
    obs client_tw tdcap-cli "${SS_TW[@]}"
    obs client_nstat tdcap-cli nstat -as
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

s_linger_abort_server() {
    begin linger_abort_server; topo_direct
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 tcp
    server_start linger_srv 198.18.0.2
    client_run linger_srv 198.18.0.2; server_wait
    sleep 0.2
    obs client_tw tdcap-cli "${SS_TW[@]}"; obs server_tw tdcap-srv "${SS_TW[@]}"
    obs client_nstat tdcap-cli nstat -as; obs server_nstat tdcap-srv nstat -as
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

s_one_sided() {
    # real traffic, captured in one direction only (BPF on the source address, as a SPAN of one
    # direction or asymmetric routing would leave it); a second, two-way capture on the server's
    # veth stays in $WORK and only its control segments go to the truth file, as evidence
    begin one_sided; topo_direct
    local p1 p2 scn
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 'tcp and src host 198.18.0.1'; p1=$CAPPID
    cap_start tdcap-srv "$SYNC/both_ways.pcap" -i tdcap-s0 -s 0 tcp; p2=$CAPPID
    for scn in basic http_close linger; do
        server_start "$scn" 198.18.0.2
        client_run "$scn" 198.18.0.2; server_wait
        sleep 0.1
    done
    client_run refused 198.18.0.2          # nothing listens now: RST+ACK from the server
    sleep 0.1
    server_start bulk 198.18.0.2
    client_run bulk 198.18.0.2; server_wait
    sleep 0.2
    obs client_tw tdcap-cli "${SS_TW[@]}"; obs server_tw tdcap-srv "${SS_TW[@]}"
    obs client_nstat tdcap-cli nstat -as; obs server_nstat tdcap-srv nstat -as
    cap_stop "$p1" "$p2"
    { echo "# tcpdump -nn -r both_ways.pcap 'tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0'  (tdcap-s0, both directions)"
      tcpdump -nn -r "$SYNC/both_ways.pcap" 'tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0' 2>/dev/null | cut -d' ' -f2-; } \
        >"$SYNC/obs_both_ways_control_segments.txt"
    finish "$STEM" "$OUT/$STEM.pcap"
}

REPEATED_SYN_ATTEMPTS=8
REPEATED_SYN_PORT=40500
s_repeated_syn() {
    # one client port, a new socket (so a new ISN) per attempt, each connect() given up after
    # 0.2 s while the server netns drops SYNs; then the rule goes and the last attempt completes
    begin repeated_syn; topo_direct
    nsx tdcap-srv iptables -A INPUT -p tcp --dport $PORT -j DROP
    server_start basic 198.18.0.2
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 tcp
    nsx tdcap-cli timeout 45 "$PYTHON" "$HERE/peer.py" client repeated_syn 198.18.0.2 $PORT "$SYNC" \
        $REPEATED_SYN_ATTEMPTS $REPEATED_SYN_PORT 198.18.0.1 &
    local cpid=$!; BGPIDS+=($cpid)
    wait_for "$SYNC/attempts_done" 20
    obs iptables_counters tdcap-srv iptables -vnL INPUT
    nsx tdcap-srv iptables -D INPUT -p tcp --dport $PORT -j DROP
    touch "$SYNC/go"
    wait "$cpid"; server_wait
    sleep 0.2
    obs client_tw tdcap-cli "${SS_TW[@]}"; obs client_nstat tdcap-cli nstat -as
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

SCAN_FIRST=7900 SCAN_LAST=8199 SCAN_SPORT=47011 SCAN_RATE=100
SCAN_CLOSED=7911,7979,8000,8081,8123   # closed ports NOT dropped: the kernel answers RST+ACK
s_syn_scan() {
    # raw SYNs (scapy, syn_scan.py) from the client netns to ports SCAN_FIRST..SCAN_LAST of the
    # real server kernel: a listener on 8080, SCAN_CLOSED closed and reachable, the rest dropped
    begin syn_scan; topo_direct
    nsx tdcap-srv iptables -A INPUT -p tcp --dport $PORT -j ACCEPT
    nsx tdcap-srv iptables -A INPUT -p tcp -m multiport --dports $SCAN_CLOSED -j ACCEPT
    nsx tdcap-srv iptables -A INPUT -p tcp --dport $SCAN_FIRST:$SCAN_LAST -j DROP
    server_start listen 198.18.0.2
    cap_start tdcap-cli "$OUT/$STEM.pcap" -i tdcap-c0 -s 0 tcp
    nsx tdcap-cli "$PYTHON" "$HERE/syn_scan.py" 198.18.0.1 198.18.0.2 $SCAN_SPORT $SCAN_FIRST $SCAN_LAST $SCAN_RATE \
        >"$SYNC/probes.txt"
    sleep 0.5
    obs server_listen tdcap-srv ss -tanoH state listening
    obs iptables_counters tdcap-srv iptables -vnL INPUT
    obs client_nstat tdcap-cli nstat -as; obs server_nstat tdcap-srv nstat -as
    touch "$SYNC/stop"; server_wait
    printf '%s\n' "first=$SCAN_FIRST last=$SCAN_LAST sport=$SCAN_SPORT rate=$SCAN_RATE closed=$SCAN_CLOSED listener=$PORT" \
        >"$SYNC/scan_params.txt"
    cap_stop "$CAPPID"; finish "$STEM" "$OUT/$STEM.pcap"
}

ALL=(client_first_close server_first_close linger_abort simultaneous_close half_close
     lost_final_ack tw_assassination reuse_in_time_wait refused ipv6_client_first
     two_interfaces vlan cooked_sll midstream unanswered many_reuse truncated_snaplen
     linger_abort_server one_sided repeated_syn syn_scan)
run_samples "$@"
reset_topo
log "done; kernel $KERNEL"
