#!/usr/bin/env bash
# Samples for verdict values no other sample produces (issue "nothing lost, nothing broken",
# item 3): close kind fin_then_rst, handshake synack_only, RST classes out_of_window and
# unverifiable, reuse verdicts accepted_isn and after_time_wait, data after FIN.
#
#   sudo PYTHON=/path/to/python-with-scapy captures/make/make_verdict_samples.sh [STEM...]
#
# STEMs: fin_then_rst synack_only rst_out_of_window rst_unverifiable reuse_accepted_isn
# reuse_after_time_wait data_after_fin_retransmission data_after_fin_new_data.
# Needs root, iproute2, iptables, tcpdump and scapy ($PYTHON). Fresh namespaces tdvd-cli (veth
# tdvd-c0, 198.18.0.1) and tdvd-srv (tdvd-s0, 198.18.0.2) for each sample, removed on exit;
# server port 8080; capture with tcpdump -s 0 on tdvd-c0 (the client's side).
# Endpoints: verdict_peer.py (plain sockets). Everything is the real kernels' except two segments,
# crafted with scapy (verdict_craft.py) where no kernel sends them: the out-of-window RST of
# rst_out_of_window (an injected RST, from the server netns) and the data after the client's own
# FIN of data_after_fin_new_data. Truth: verdict_truth.py (from the construction and what
# ss/nstat/iptables showed; the capture only gives the numbers and is checked against the plan).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$(cd "$HERE/.." && pwd)}
NS=tdvd
LOG_TAG=make_verdict_samples
# shellcheck source=netns.sh
. "$HERE/netns.sh"

CLI=$NS-cli SRV=$NS-srv
CADDR=198.18.0.1 SADDR=198.18.0.2

topo() {
    ns_del_all
    ns_new $CLI; ns_new $SRV
    ip link add $NS-c0 netns $CLI type veth peer name $NS-s0 netns $SRV
    nsx $CLI ip addr add $CADDR/24 dev $NS-c0
    nsx $SRV ip addr add $SADDR/24 dev $NS-s0
    nsx $CLI ip link set $NS-c0 up
    nsx $SRV ip link set $NS-s0 up
}

# netns.sh's capture_start and endpoints stop after 45-60 s; reuse_after_time_wait runs ~62 s
cap_long() {   # cap_long OUTFILE TCPDUMP-ARGS... on tdvd-c0 in the client netns; sets CAPPID
    local out=$1 err="$WORK/cap.$RANDOM.err" i; shift
    ip netns exec $CLI timeout 150 tcpdump --immediate-mode -U -w "$out" -i $NS-c0 -s 0 "$@" 2>"$err" &
    CAPPID=$!; BGPIDS+=($CAPPID)
    for ((i = 0; i < 250; i++)); do grep -qs 'listening on' "$err" && break; sleep 0.02; done
    grep -q 'listening on' "$err" || { cat "$err" >&2; return 1; }
    sleep 0.1
}
vserver() {   # vserver SCENARIO [COUNT]
    rm -f "$SYNC/ready"
    ip netns exec $SRV timeout 150 "$PYTHON" "$HERE/verdict_peer.py" server "$1" $SADDR $PORT "$SYNC" "${2:-1}" &
    SRVPID=$!; BGPIDS+=($SRVPID)
    wait_for "$SYNC/ready" 10
}
CLIPID=
vclient() {   # vclient SCENARIO : in the background, CLIPID
    ip netns exec $CLI timeout 150 "$PYTHON" "$HERE/verdict_peer.py" client "$1" $SADDR $PORT "$SYNC" &
    CLIPID=$!; BGPIDS+=($CLIPID)
}
client_port() { awk 'NR==1{print $2}' "$SYNC/client.log"; }
both_nstat() { obs client_nstat $CLI nstat -as; obs server_nstat $SRV nstat -as; }
both_ss() { obs client_sockets $CLI ss -tanoH; obs server_sockets $SRV ss -tanoH; }
finish() {   # finish : truth for $STEM from $OUT/$STEM.pcap
    "$PYTHON" "$HERE/verdict_truth.py" "$STEM" "$OUT/$STEM.pcap" "$OUT/$STEM.truth.json" "$SYNC" "$KERNEL"
    publish "$OUT/$STEM.pcap" "$OUT/$STEM.truth.json"
}

s_fin_then_rst() {
    # client: request, shutdown(SHUT_WR) (FIN); the server sends 3 lines; the client close()s
    # without reading them: unread data, so tcp_close sends an RST (RFC 2525 §2.17; RFC 1122
    # 4.2.2.13), before the server's FIN
    begin fin_then_rst; topo
    cap_long "$OUT/$STEM.pcap" tcp
    vserver fin_then_rst
    vclient fin_then_rst; wait "$CLIPID"; server_wait
    sleep 0.2
    both_ss; both_nstat
    cap_stop "$CAPPID"; finish
}

s_synack_only() {
    # the capture point misses the client's SYN: a capture FILTER that excludes pure SYNs. A
    # second, unfiltered capture (kept in $WORK only) shows the SYN was sent
    begin synack_only; topo
    local p1 p2
    cap_long "$OUT/$STEM.pcap" 'tcp and not tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn'; p1=$CAPPID
    cap_start $SRV "$SYNC/unfiltered.pcap" -i $NS-s0 -s 0 tcp; p2=$CAPPID
    vserver basic
    vclient basic; wait "$CLIPID"; server_wait
    sleep 0.2
    both_ss; both_nstat
    cap_stop "$p1" "$p2"
    { echo "# tcpdump -nn -r unfiltered.pcap (tdvd-s0, no filter)"
      tcpdump -nn -r "$SYNC/unfiltered.pcap" 2>/dev/null | cut -d' ' -f2-; } >"$SYNC/obs_unfiltered_capture.txt"
    finish
}

s_rst_out_of_window() {
    # an RST injected (scapy, from the server netns) into the established connection, seq =
    # server's next + 2**30: outside the client's window, the client kernel drops it; the
    # connection goes on (PING 2 / PONG 2) and the client closes first
    begin rst_out_of_window; topo
    cap_long "$OUT/$STEM.pcap" tcp
    vserver oow
    vclient oow
    wait_for "$SYNC/established" 10
    sleep 0.3   # the client's (delayed) ACK of PONG 1 has gone by
    obs client_established_before_rst $CLI ss -tanoiH state established
    obs client_nstat_before_rst $CLI nstat -as
    nsx $SRV "$PYTHON" "$HERE/verdict_craft.py" rst_oow "$OUT/$STEM.pcap" $SADDR $PORT $CADDR "$(client_port)" \
        >"$SYNC/obs_crafted_rst.txt"
    sleep 0.3
    obs client_established_after_rst $CLI ss -tanoiH state established
    obs client_nstat_after_rst $CLI nstat -as
    touch "$SYNC/go"
    wait "$CLIPID"; server_wait
    sleep 0.2
    both_ss; both_nstat
    cap_stop "$CAPPID"; finish
}

s_rst_unverifiable() {
    # the capture starts midstream, on an idle established connection; the client's SO_LINGER
    # {1,0} close then sends an RST: the only segment of the connection in the capture
    begin rst_unverifiable; topo
    vserver idle_abort
    vclient idle_abort
    wait_for "$SYNC/established" 10
    sleep 0.3   # the client's (delayed) ACK of PONG 1 has gone by, before the capture
    obs established_before_capture $CLI ss -tanoH state established
    cap_long "$OUT/$STEM.pcap" tcp
    touch "$SYNC/go"
    wait "$CLIPID"; server_wait
    sleep 0.2
    both_ss; both_nstat
    cap_stop "$CAPPID"; finish
}

s_reuse() {   # s_reuse STEM TIMESTAMPS WAIT_FOR_TIME_WAIT_END(0|1)
    # two HTTP/1.1 'Connection: close' exchanges from one client port (server closes first: the
    # server holds the TIME_WAIT); the second SYN during (0) or after (1) that TIME_WAIT
    begin "$1"; topo
    local ts=$2 after=$3 i
    nsx $CLI sysctl -qw net.ipv4.tcp_timestamps="$ts"
    nsx $SRV sysctl -qw net.ipv4.tcp_timestamps="$ts"
    obs client_sysctl $CLI sysctl net.ipv4.tcp_timestamps net.ipv4.tcp_rfc1337
    obs server_sysctl $SRV sysctl net.ipv4.tcp_timestamps net.ipv4.tcp_rfc1337
    cap_long "$OUT/$STEM.pcap" tcp
    vserver reuse_after 2
    vclient reuse_after
    wait_for "$SYNC/first_done" 10
    sleep 0.3
    obs server_tw_after_first $SRV "${SS_TW[@]}"
    if [ "$after" = 1 ]; then
        for ((i = 0; i < 800; i++)); do   # up to 80 s
            [ -z "$(nsx $SRV "${SS_TW[@]}")" ] && break
            sleep 0.1
        done
        { date +%s.%N; } >"$SYNC/obs_time_wait_gone_at.txt"
        sleep 0.5
    fi
    obs server_tw_before_second $SRV "${SS_TW[@]}"
    date +%s.%N >"$SYNC/obs_second_connect_at.txt"
    touch "$SYNC/go"
    wait "$CLIPID"; server_wait
    sleep 0.2
    obs server_tw_after_second $SRV "${SS_TW[@]}"
    both_ss; both_nstat
    cap_stop "$CAPPID"; finish
}
s_reuse_accepted_isn() { s_reuse reuse_accepted_isn 0 0; }
s_reuse_after_time_wait() { s_reuse reuse_after_time_wait 1 1; }

s_data_after_fin_retransmission() {
    # the server's 300-byte answer (IPv4 total length 352) is dropped ONCE in the client netns
    # INPUT (after the tap on tdvd-c0, which sees it); the server's FIN follows 50 ms later, and
    # the kernel sends the answer again after its FIN
    begin data_after_fin_retransmission; topo
    nsx $CLI iptables -A INPUT -p tcp --sport $PORT -m length --length 352 -m recent --name tdvd --rcheck -j ACCEPT
    nsx $CLI iptables -A INPUT -p tcp --sport $PORT -m length --length 352 -m recent --name tdvd --set -j DROP
    cap_long "$OUT/$STEM.pcap" tcp
    vserver retrans
    vclient retrans; wait "$CLIPID"; server_wait
    sleep 0.3
    obs iptables_counters $CLI iptables -vnL INPUT
    both_ss; both_nstat
    cap_stop "$CAPPID"; finish
}

s_data_after_fin_new_data() {
    # the client's FIN (shutdown SHUT_WR), then a CRAFTED segment from the client carrying new
    # data at FIN + 1 (no kernel sends that); then the server closes and the client reads EOF
    begin data_after_fin_new_data; topo
    cap_long "$OUT/$STEM.pcap" tcp
    vserver new_data
    vclient new_data
    wait_for "$SYNC/fin_sent" 10
    sleep 0.2
    obs server_nstat_before_crafted $SRV nstat -as
    nsx $CLI "$PYTHON" "$HERE/verdict_craft.py" data_after_fin "$OUT/$STEM.pcap" $CADDR "$(client_port)" $SADDR $PORT \
        >"$SYNC/obs_crafted_data.txt"
    sleep 0.3
    obs server_nstat_after_crafted $SRV nstat -as
    obs server_close_wait_after_crafted $SRV ss -tanoiH state close-wait
    touch "$SYNC/go"
    wait "$CLIPID"; server_wait
    sleep 0.2
    both_ss; both_nstat
    cap_stop "$CAPPID"; finish
}

ALL=(fin_then_rst synack_only rst_out_of_window rst_unverifiable reuse_accepted_isn
     reuse_after_time_wait data_after_fin_retransmission data_after_fin_new_data)
run_samples "$@"
ns_del_all
log "done; kernel $KERNEL"
