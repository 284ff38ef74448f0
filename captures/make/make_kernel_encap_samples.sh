#!/usr/bin/env bash
# Encapsulation samples from the REAL Linux kernel: VXLAN and NFLOG.
#
#   sudo PYTHON=/work/venv/bin/python captures/make/make_kernel_encap_samples.sh [STEM...]
#
# STEM is vxlan_kernel or nflog (default: both).  Needs root, iproute2, iptables with the
# NFLOG target, tcpdump built with nflog support, and a Python ($PYTHON, default python3)
# with scapy (kernel_encap_truth.py reads the capture).  Unlike make_encap_samples.py, nothing
# here is crafted: the kernel's vxlan driver encapsulates, and nfnetlink_log hands tcpdump the
# packets.  Fresh network namespaces tdke-* joined by a veth pair, addresses from
# 198.18.0.0/15 only, all removed on exit.  Writes captures/encapsulated/STEM.pcap and
# STEM.truth.json.  The endpoints are peer.py's (the same as make_samples.sh's).
# KEEP_WORK=1 keeps the work directory (sync files, ss/iptables observations) for a look.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$(cd "$HERE/.." && pwd)/encapsulated}
NS=tdke
LOG_TAG=make_kernel_encap
# shellcheck source=netns.sh
. "$HERE/netns.sh"
mkdir -p "$OUT"

# client ns tdke-cli (veth tdke-c0) <-> server ns tdke-srv (veth tdke-s0)
topo_veth() {   # topo_veth CLIENT-IP SERVER-IP
    ns_del_all
    ns_new tdke-cli; ns_new tdke-srv
    ip link add tdke-c0 netns tdke-cli type veth peer name tdke-s0 netns tdke-srv
    nsx tdke-cli ip addr add "$1/24" dev tdke-c0
    nsx tdke-srv ip addr add "$2/24" dev tdke-s0
    nsx tdke-cli ip link set tdke-c0 up
    nsx tdke-srv ip link set tdke-s0 up
}

finish() {   # finish STEM : write the truth file
    "$PYTHON" "$HERE/kernel_encap_truth.py" "$1" "$OUT/$1.pcap" "$OUT/$1.truth.json" "$SYNC" "$KERNEL"
    publish "$OUT/$1.pcap" "$OUT/$1.truth.json"
}


# ------------------------------------------------------------------ samples
s_vxlan_kernel() {
    # underlay 198.19.0.1 <-> 198.19.0.2 on the veth pair; a real vxlan device (VNI 42) on
    # each side, inner 198.18.0.1 / 198.18.0.2 on vx0. peer.py 'basic': client closes first.
    begin vxlan_kernel; topo_veth 198.19.0.1 198.19.0.2
    nsx tdke-cli ip link add vx0 type vxlan id 42 local 198.19.0.1 remote 198.19.0.2 dstport 4789 dev tdke-c0
    nsx tdke-srv ip link add vx0 type vxlan id 42 local 198.19.0.2 remote 198.19.0.1 dstport 4789 dev tdke-s0
    nsx tdke-cli ip addr add 198.18.0.1/24 dev vx0
    nsx tdke-srv ip addr add 198.18.0.2/24 dev vx0
    nsx tdke-cli ip link set vx0 up
    nsx tdke-srv ip link set vx0 up
    obs vxlan_link tdke-cli ip -d link show vx0
    cap_start tdke-cli "$OUT/$STEM.pcap" -i tdke-c0 -s 0 udp port 4789
    server_start basic 198.18.0.2
    client_run basic 198.18.0.2; server_wait
    sleep 0.2
    obs client_tw tdke-cli "${SS_TW[@]}"; obs server_tw tdke-srv "${SS_TW[@]}"
    cap_stop "$CAPPID"; finish "$STEM"
}

s_nflog() {
    # NFLOG group 5 in the CLIENT namespace on OUTPUT (client -> server) and INPUT
    # (server -> client): every packet of the connection is logged exactly once.
    # peer.py 'http_close': the server answers and closes first. --nflog-threshold 1: the
    # kernel sends each message at once (tcpdump stamps records when it reads them; the default
    # batches for up to 1 s, which would squeeze the connection into microseconds).
    begin nflog; topo_veth 198.18.0.1 198.18.0.2
    nsx tdke-cli iptables -A OUTPUT -p tcp -d 198.18.0.2 --dport $PORT -j NFLOG --nflog-group 5 --nflog-threshold 1
    nsx tdke-cli iptables -A INPUT -p tcp -s 198.18.0.2 --sport $PORT -j NFLOG --nflog-group 5 --nflog-threshold 1
    cap_start tdke-cli "$OUT/$STEM.pcap" -i nflog:5 -s 0
    server_start http_close 198.18.0.2
    client_run http_close 198.18.0.2; server_wait
    sleep 0.2
    obs client_tw tdke-cli "${SS_TW[@]}"; obs server_tw tdke-srv "${SS_TW[@]}"
    obs iptables_counters tdke-cli iptables -vnL
    sleep 0.3
    cap_stop "$CAPPID"; finish "$STEM"
}

ALL=(vxlan_kernel nflog)
run_samples "$@"
ns_del_all
log "done; kernel $KERNEL"
