#!/usr/bin/env python3
"""Write captures/encapsulated/STEM.truth.json for a capture made by make_kernel_encap_samples.sh.

    kernel_encap_truth.py STEM CAPTURE OUT.json SYNCDIR KERNEL

As truth.py does for make_samples.sh: the verdicts come from how the sample was constructed
(SPEC below), the addresses, ports and client ISN from the capture itself, here read through
the encapsulation (VXLAN: the innermost IPv4 packet; NFLOG: the NFULA_PAYLOAD attribute).
SYNCDIR/obs_*.txt go to "kernel_observations".  Uses scapy to read the capture.
"""
import json
import os
import struct
import sys

from scapy.all import IP, TCP, Ether, RawPcapReader  # type: ignore

from truth import CF, SF, observations, truth_flows

SERVER_PORT = 8080
NFULA_PAYLOAD = 9

SPEC = {
    "vxlan_kernel": dict(
        how=("Real kernel traffic, nothing crafted: make_kernel_encap_samples.sh s_vxlan_kernel. "
             "Client netns tdke-cli (veth tdke-c0, underlay 198.19.0.1) <-> server netns tdke-srv "
             "(veth tdke-s0, underlay 198.19.0.2); in each a kernel vxlan device 'ip link add vx0 "
             "type vxlan id 42 local A remote B dstport 4789 dev <veth>' carrying the inner addresses "
             "198.18.0.1 (client) and 198.18.0.2 (server, port 8080). peer.py scenario 'basic': the "
             "client sends 'PING 1\\n', the server answers 'PONG 1\\n', the client close()s first, the "
             "server close()s on EOF. tcpdump -s 0 'udp port 4789' on the underlay veth tdke-c0 in the "
             "client netns: every frame is Ethernet/IPv4/UDP 4789/VXLAN VNI 42/Ethernet/(ARP or IPv4), "
             "the inner ARP exchange included. The inner TCP checksums of the client's packets are "
             "not filled in (checksum offload passes through the tunnel): do not validate them."),
        flows=[CF]),
    "nflog": dict(
        how=("Real kernel traffic, nothing crafted: make_kernel_encap_samples.sh s_nflog. Client "
             "netns tdke-cli (veth tdke-c0, 198.18.0.1) <-> server netns tdke-srv (veth tdke-s0, "
             "198.18.0.2, port 8080). In the client netns: iptables -A OUTPUT -p tcp -d 198.18.0.2 "
             "--dport 8080 -j NFLOG --nflog-group 5 --nflog-threshold 1 and iptables -A INPUT -p tcp -s "
             "198.18.0.2 --sport 8080 -j NFLOG --nflog-group 5 --nflog-threshold 1, captured with "
             "tcpdump -i nflog:5 -s 0 (link "
             "type 239, NFLOG): every packet of the connection appears exactly once (OUTPUT logs the "
             "client's, INPUT the server's), as an IPv4 packet in the NFULA_PAYLOAD attribute. "
             "peer.py scenario 'http_close': HTTP/1.1 GET with 'Connection: close', the server sends "
             "its response and close()s at once (server FIN first), the client reads to EOF and "
             "closes. The record timestamps are when tcpdump read each message: the threshold of 1 "
             "makes nfnetlink_log send every packet at once (by default it batches them for up to 1 s, "
             "and a whole connection then gets timestamps microseconds apart); the server's packets "
             "also carry the kernel's NFULA_TIMESTAMP, the client's (OUTPUT) none. The client's packets "
             "are logged before the device fills in their TCP checksum: "
             "do not validate checksums."),
        flows=[SF]),
}


def nflog_payload(data):
    """The NFULA_PAYLOAD of an NFLOG record (4-byte header, then TLVs: host-endian length and
    type, each padded to 4 bytes), or None."""
    at = 4
    while at + 4 <= len(data):
        length, kind = struct.unpack_from("<HH", data, at)
        if length < 4:
            return None
        if kind & 0x7FFF == NFULA_PAYLOAD:
            return data[at + 4: at + length]
        at += (length + 3) & ~3
    return None


def tcp_packets(path, linktype):
    """(time, IP) of every IPv4 packet carrying TCP, the innermost one for tunnels."""
    for data, meta in RawPcapReader(path):
        t = meta.sec + meta.usec / 1e6
        if linktype == 239:
            payload = nflog_payload(bytes(data))
            ip = IP(payload) if payload else None
        else:
            ip, layer = None, Ether(bytes(data))
            while layer is not None and layer.name != "NoPayload":
                if isinstance(layer, IP) and isinstance(layer.payload, TCP):
                    ip = layer
                layer = layer.payload
        if ip is not None and TCP in ip:
            yield t, ip


def incarnations(path, linktype):
    incs, current = [], {}
    for t, ip in tcp_packets(path, linktype):
        tcp = ip[TCP]
        src, dst = (ip.src, tcp.sport), (ip.dst, tcp.dport)
        key = frozenset([src, dst])
        flags = int(tcp.flags)
        cur = current.get(key)
        if flags & 0x02 and not flags & 0x10:
            if cur is not None and cur["client"] == src and cur["isn"] == tcp.seq:
                continue
            cur = dict(client=src, server=dst, isn=tcp.seq, first=t)
            incs.append(cur)
            current[key] = cur
        elif cur is None:
            client, server = (src, dst) if tcp.dport == SERVER_PORT else (dst, src)
            cur = dict(client=client, server=server, isn=None, first=t)
            incs.append(cur)
            current[key] = cur
    return incs


def main():
    stem, cap, out, syncdir, kernel = sys.argv[1:6]
    with open(cap, "rb") as fh:
        head = fh.read(24)
    linktype = struct.unpack("<I" if head[:4] == b"\xd4\xc3\xb2\xa1" else ">I", head[20:24])[0] & 0x0FFFFFFF
    incs = incarnations(cap, linktype)
    spec = SPEC[stem]
    if len(incs) != len(spec["flows"]):
        raise SystemExit("%s: capture has %d incarnations, spec %d" % (stem, len(incs), len(spec["flows"])))
    flows = truth_flows(incs, spec["flows"])
    obs = observations(syncdir)
    log = os.path.join(syncdir, "client.log")
    if os.path.exists(log):
        with open(log) as fh:
            obs["client"] = [ln.rstrip() for ln in fh if ln.strip()]
    doc = dict(capture="encapsulated/" + os.path.basename(cap),
               how=spec["how"] + " Kernel " + kernel + ". Script: captures/make/make_kernel_encap_samples.sh.",
               kernel=kernel, sources=[], flows=flows, kernel_observations=obs)
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")


if __name__ == "__main__":
    main()
