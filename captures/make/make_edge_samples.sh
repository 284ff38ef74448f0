#!/usr/bin/env bash
# Samples for the verdicts at the edges of a connection (issue 20): capture loss wherever it
# lies, and RSTs sent during the handshake.
#
#   sudo PYTHON=/path/to/python-with-scapy captures/make/make_edge_samples.sh [STEM...]
#
# STEMs: loss_server_to_client loss_client_to_server handshake_gave_up handshake_reset.
# Needs root, iproute2, iptables, tcpdump, editcap (Wireshark) and scapy ($PYTHON).
# Fresh namespaces tdedge-cli (veth tdedge-c0, 198.18.0.1) and tdedge-srv (tdedge-s0,
# 198.18.0.2) for each sample, removed on exit; server port 8080; capture on tdedge-c0.
#
# loss_*: a REAL kernel capture (endpoints edge_peer.py) is taken to $WORK, then chosen frames
# are deleted from it with `editcap -F pcap ORIGINAL OUT FRAME...` (edge_truth.py picks them from
# the original capture, checks them, runs editcap and writes the truth naming them).
# handshake_*: the SYNs (and the giving-up RST) are crafted with scapy (handshake_craft.py), the
# answers are the real kernels'.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$(cd "$HERE/.." && pwd)}
NS=tdedge
LOG_TAG=make_edge_samples
# shellcheck source=netns.sh
. "$HERE/netns.sh"

CLI=$NS-cli SRV=$NS-srv

topo() {
    ns_del_all
    ns_new $CLI; ns_new $SRV
    ip link add $NS-c0 netns $CLI type veth peer name $NS-s0 netns $SRV
    nsx $CLI ip addr add 198.18.0.1/24 dev $NS-c0
    nsx $SRV ip addr add 198.18.0.2/24 dev $NS-s0
    nsx $CLI ip link set $NS-c0 up
    nsx $SRV ip link set $NS-s0 up
}

both_nstat() { obs client_nstat $CLI nstat -as; obs server_nstat $SRV nstat -as; }

s_loss() {   # s_loss s2c|c2s STEM
    local dir=$1 stem=$2 rx match modes cpid orig
    begin "$stem"; topo
    modes=$("$PYTHON" "$HERE/edge_truth.py" modes "$dir")
    # the 'retrans' connection: its 150-byte segment (IP total length 20+32+150 = 202) is
    # dropped ONCE in the receiver's netns INPUT, after the tap (so the capture holds the
    # original and the sender's retransmission: a retransmission, not a capture loss)
    if [ "$dir" = s2c ]; then rx=$CLI match="--sport $PORT"; else rx=$SRV match="--dport $PORT"; fi
    nsx $rx iptables -A INPUT -p tcp $match -m length --length 202 -m recent --name tdrx --rcheck -j ACCEPT
    nsx $rx iptables -A INPUT -p tcp $match -m length --length 202 -m recent --name tdrx --set -j DROP
    orig=$SYNC/original.pcap
    cap_start $CLI "$orig" -i $NS-c0 -s 0 tcp
    rm -f "$SYNC/ready"
    ip netns exec $SRV timeout 45 "$PYTHON" "$HERE/edge_peer.py" server "$dir" 198.18.0.2 $PORT "$SYNC" $modes &
    SRVPID=$!; BGPIDS+=($SRVPID)
    wait_for "$SYNC/ready" 10
    ip netns exec $CLI timeout 45 "$PYTHON" "$HERE/edge_peer.py" client "$dir" 198.18.0.2 $PORT "$SYNC" $modes &
    cpid=$!; BGPIDS+=($cpid)
    wait_for "$SYNC/held" 30
    # the last connection ('hold') is still open: stop the capture now, then let it close
    obs established_at_capture_stop_client $CLI ss -tanoH state established
    cap_stop "$CAPPID"
    touch "$SYNC/go"
    wait "$cpid"; server_wait
    sleep 0.2
    obs iptables_counters $rx iptables -vnL INPUT
    obs client_tw $CLI "${SS_TW[@]}"; obs server_tw $SRV "${SS_TW[@]}"
    both_nstat
    "$PYTHON" "$HERE/edge_truth.py" loss "$dir" "$orig" "$OUT/$stem.pcap" "$OUT/$stem.truth.json" "$SYNC" "$KERNEL"
    publish "$OUT/$stem.pcap" "$OUT/$stem.truth.json"
}
s_loss_server_to_client() { s_loss s2c loss_server_to_client; }
s_loss_client_to_server() { s_loss c2s loss_client_to_server; }

GAVE_UP_PORTS=(47200 47201)
s_handshake_gave_up() {
    begin handshake_gave_up; topo
    cap_start $CLI "$OUT/$STEM.pcap" -i $NS-c0 -s 0 tcp
    # first a real connection between the same hosts (peer.py 'basic', client closes first), so
    # the capture shows the path back to the client works: a lone SYN with no answer would
    # otherwise be 'unknown' (docs/rules.md "Honesty about the capture point")
    server_start basic 198.18.0.2
    client_run basic 198.18.0.2; server_wait
    sleep 0.2
    # server: SYNs to 8080 dropped (nothing answers them); the RST goes through and the listener
    # discards it silently.  client: anything from 198.18.0.2:8080 dropped in INPUT (after the
    # tap), so the client kernel could never answer a stray segment for the crafted ports.
    nsx $SRV iptables -A INPUT -p tcp --dport $PORT --syn -j DROP
    nsx $CLI iptables -A INPUT -p tcp -s 198.18.0.2 --sport $PORT -j DROP
    server_start listen 198.18.0.2
    obs client_nstat_before_crafted $CLI nstat -as; obs server_nstat_before_crafted $SRV nstat -as
    nsx $CLI "$PYTHON" "$HERE/handshake_craft.py" gave_up 198.18.0.1 198.18.0.2 ${GAVE_UP_PORTS[0]} $PORT 0.5 \
        >"$SYNC/crafted.txt"
    sleep 0.2
    nsx $CLI "$PYTHON" "$HERE/handshake_craft.py" gave_up 198.18.0.1 198.18.0.2 ${GAVE_UP_PORTS[1]} $PORT 1.5 1.0 \
        >>"$SYNC/crafted.txt"
    sleep 0.3
    obs server_iptables_counters $SRV iptables -vnL INPUT
    obs client_iptables_counters $CLI iptables -vnL INPUT
    obs server_listen $SRV ss -tanoH state listening
    obs server_all $SRV ss -tanH
    both_nstat
    touch "$SYNC/stop"; server_wait
    cap_stop "$CAPPID"
    "$PYTHON" "$HERE/edge_truth.py" handshake_gave_up "$OUT/$STEM.pcap" "$OUT/$STEM.truth.json" "$SYNC" "$KERNEL"
    publish "$OUT/$STEM.pcap" "$OUT/$STEM.truth.json"
}

RESET_PORT=47100
s_handshake_reset() {
    begin handshake_reset; topo
    # no iptables rule at all: the client kernel must see the SYN-ACK and answer it
    server_start listen 198.18.0.2
    cap_start $CLI "$OUT/$STEM.pcap" -i $NS-c0 -s 0 tcp
    nsx $CLI "$PYTHON" "$HERE/handshake_craft.py" syn 198.18.0.1 198.18.0.2 $RESET_PORT $PORT >"$SYNC/crafted.txt"
    sleep 0.5
    obs server_listen $SRV ss -tanoH state listening
    obs server_all $SRV ss -tanH
    obs client_all $CLI ss -tanH
    both_nstat
    touch "$SYNC/stop"; server_wait
    cap_stop "$CAPPID"
    "$PYTHON" "$HERE/edge_truth.py" handshake_reset "$OUT/$STEM.pcap" "$OUT/$STEM.truth.json" "$SYNC" "$KERNEL"
    publish "$OUT/$STEM.pcap" "$OUT/$STEM.truth.json"
}

ALL=(loss_server_to_client loss_client_to_server handshake_gave_up handshake_reset)
run_samples "$@"
ns_del_all
log "done; kernel $KERNEL"
