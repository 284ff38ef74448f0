#!/usr/bin/env python3
"""Write captures/STEM.truth.json for a capture made by make_samples.sh.

    truth.py STEM CAPTURE OUT.json SYNCDIR KERNEL

The verdicts come from how each sample was constructed (SPEC below); the
addresses and ports come from the capture itself (one entry per incarnation,
in the order of their first SYN, or first packet when there is no SYN).
SYNCDIR/obs_*.txt (ss, nstat, iptables counters recorded during the run) go
to "kernel_observations".  Uses scapy to read the capture.
"""
import glob
import json
import os
import subprocess
import sys

from scapy.all import IP, TCP, IPv6, rdpcap  # type: ignore

SERVER_PORT = 8080

CF = dict(handshake="complete", close_kind="fin", active_closer="client", first_fin_by="client",
          first_rst_by="none", time_wait_on="client", half_close=False,
          fin_retransmissions_client=0, fin_retransmissions_server=0,
          tw_assassination=False, reuses_tuple_in_time_wait=False, reuse_verdict=None)
SF = dict(CF, active_closer="server", first_fin_by="server", time_wait_on="server")
RST = dict(handshake="complete", close_kind="rst", active_closer="client", first_fin_by="none",
           first_rst_by="client", time_wait_on="none", half_close=False, fin_retransmissions_client=0,
           fin_retransmissions_server=0, tw_assassination=False,
           reuses_tuple_in_time_wait=False, reuse_verdict=None)

DIRECT = ("client netns tdcap-cli (veth tdcap-c0, 198.18.0.1) <-> server netns tdcap-srv "
          "(veth tdcap-s0, 198.18.0.2), server port 8080")

SPEC = {
    "client_first_close": dict(
        how=("make_samples.sh s_client_first_close, peer.py scenario 'basic': " + DIRECT +
             ". Client sends 'PING 1\\n', server answers 'PONG 1\\n', client close()s first, the server "
             "close()s when it reads EOF. tcpdump -s 0 on tdcap-c0 in the client netns (client side)."),
        flows=[CF]),
    "server_first_close": dict(
        how=("make_samples.sh s_server_first_close, peer.py scenario 'http_close': " + DIRECT +
             ". Client sends an HTTP/1.1 GET with 'Connection: close'; the server sends a 200 response "
             "with Content-Length and 'Connection: close' and close()s at once (server FIN first); "
             "the client reads to EOF and closes. tcpdump -s 0 on tdcap-c0 (client side)."),
        flows=[SF]),
    "linger_abort": dict(
        how=("make_samples.sh s_linger_abort, peer.py scenario 'linger': " + DIRECT +
             ". Request/response, then the client sets SO_LINGER {1,0} and close()s: the kernel sends "
             "an RST (no FIN); the server's recv() gets ECONNRESET and its close() sends nothing. "
             "tcpdump -s 0 on tdcap-c0 (client side)."),
        flows=[RST]),
    "linger_abort_server": dict(
        how=("make_samples.sh s_linger_abort_server, peer.py scenario 'linger_srv': " + DIRECT +
             ". The client sends 'PING 1\\n', the server answers 'PONG 1\\n', waits 0.1 s (the "
             "client's ACK of the answer goes by), sets SO_LINGER {1,0} and close()s: the server's "
             "kernel sends an RST (no FIN); the client's recv() gets ECONNRESET (client.log) and its "
             "close() sends nothing. ss shows no TIME_WAIT on either side. tcpdump -s 0 on tdcap-c0 "
             "(client side)."),
        flows=[dict(RST, first_rst_by="server", active_closer="server")]),
    "simultaneous_close": dict(
        how=("make_samples.sh s_simultaneous_close, peer.py scenario 'simul'. This kernel has no "
             "sch_netem, so the 20 ms one-way delay comes from wire.py (AF_PACKET forwarder in netns "
             "tdcap-mid between tdcap-m0 and tdcap-m1, every frame delayed 20 ms each way; TX checksum "
             "offload off on the endpoint veths). After one request/response both sides sleep until "
             "the same wall-clock instant (barrier file written by the client) and call "
             "shutdown(SHUT_WR), so the FINs cross on the wire: neither FIN acknowledges the other "
             "(verified with tcpdump), both sides pass through CLOSING and both end in TIME_WAIT "
             "(ss in both netns). tcpdump -s 0 on tdcap-c0 (client side, so the client's FIN is "
             "seen ~20 ms before the server's FIN arrives, and each FIN's ACK ~20 ms later)."),
        flows=[dict(CF, close_kind="simultaneous", active_closer="both", first_fin_by="client",
                    time_wait_on="both")]),
    "half_close": dict(
        how=("make_samples.sh s_half_close, peer.py scenario 'half': " + DIRECT +
             ". The client sends a request and shutdown(SHUT_WR) (FIN), keeps reading; the server "
             "reads to EOF, then sends 7 lines 50 ms apart (~0.3 s of data after the client's FIN) "
             "and close()s; the client reads to EOF and close()s. tcpdump -s 0 on tdcap-c0."),
        flows=[dict(CF, half_close=True)]),
    "lost_final_ack": dict(
        how=("make_samples.sh s_lost_final_ack, peer.py scenario 'lost_ack' (client closes first): "
             + DIRECT + ". In the client netns: iptables -A OUTPUT -p tcp --dport 8080 --tcp-flags "
             "FIN FIN -m recent --name tdfin --set; iptables -A OUTPUT -p tcp --dport 8080 "
             "--tcp-flags ALL ACK -m length --length 0:80 -m recent --name tdfin --remove -j DROP "
             "(drops the first pure ACK after the client's FIN, i.e. the final ACK of the server's "
             "FIN, once). The server (LAST_ACK) retransmits its FIN after its RTO; the client, in "
             "TIME_WAIT, answers with a duplicate final ACK (restarting its TIME_WAIT). Captured with "
             "tcpdump -s 0 on tdcap-s0 in the server netns: the dropped ACK never reached the wire, "
             "so it is absent; the capture shows FIN(server), FIN(server) again, then one ACK."),
        flows=[dict(CF, fin_retransmissions_server=1)]),
    "lost_final_ack_client_side": dict(
        how=("Same run as lost_final_ack (make_samples.sh s_lost_final_ack, same iptables rules in "
             "the client netns OUTPUT), captured at the same time with tcpdump -s 0 on tdcap-c0 in "
             "the client netns. A packet tap on the sending interface sees packets only after "
             "netfilter OUTPUT/POSTROUTING, so the ACK dropped in OUTPUT does not appear here "
             "either: the capture looks like lost_final_ack (the loss happened before the capture "
             "point)."),
        flows=[dict(CF, fin_retransmissions_server=1)]),
    "lost_final_ack_after_capture": dict(
        how=("make_samples.sh s_lost_final_ack (second part), peer.py 'lost_ack': " + DIRECT +
             ". The final ACK is dropped once in the SERVER netns INPUT (iptables -A INPUT -p tcp "
             "--dport 8080 --tcp-flags FIN FIN -m recent --name tdfin --set; iptables -A INPUT -p "
             "tcp --dport 8080 --tcp-flags ALL ACK -m length --length 0:80 -m recent --name tdfin "
             "--remove -j DROP). tcpdump -s 0 on tdcap-s0 in the server netns: the tap sees received "
             "frames before netfilter, so the capture shows the final ACK, then the server's "
             "retransmitted FIN and the client's second ACK (the ACK was lost after the capture "
             "point)."),
        flows=[dict(CF, fin_retransmissions_server=1)]),
    "tw_assassination": dict(
        how=("make_samples.sh s_tw_assassination, peer.py 'tw_kill' (two sequential client-first "
             "connections): " + DIRECT + ". With both client sockets in TIME_WAIT (ss before), "
             "rst_inject.py (scapy, L3 raw socket in the server netns) sends to the first "
             "connection an RST+ACK from 198.18.0.2:8080 with seq = server FIN seq + 1 (exactly "
             "what the client's TIME_WAIT expects): Linux (net.ipv4.tcp_rfc1337=0) kills the "
             "TIME_WAIT. To the second connection it sends an RST+ACK with seq = server FIN seq + "
             "1 + 1000: ignored, the TIME_WAIT survives (ss after). tcpdump -s 0 on tdcap-c0."),
        flows=[dict(CF, first_rst_by="server", tw_assassination=True,
                    note="RST (crafted, after the orderly close) seq == server FIN+1: TIME_WAIT "
                         "killed (ss before/after); close_kind stays fin"),
               dict(CF, first_rst_by="server", tw_assassination=False,
                    note="RST seq == server FIN+1+1000: ignored, TIME_WAIT still listed by ss")]),
    "reuse_in_time_wait": dict(
        how=("make_samples.sh s_reuse_in_time_wait, peer.py 'reuse': " + DIRECT +
             ". Two HTTP/1.1 'Connection: close' exchanges, server closes first each time (server "
             "TIME_WAIT). 0.5 s after the first, the client binds the same local port "
             "(SO_REUSEADDR) and connects again: the server's TIME_WAIT takes the SYN (its TSval is "
             "newer, and its ISN is also above the old incarnation's next sequence) and answers with "
             "a SYN-ACK whose ISN is the old incarnation's server next sequence + 65537 (Linux "
             "tcp_timewait_state_process). net.ipv4.tcp_timestamps=1 everywhere. tcpdump -s 0 on "
             "tdcap-c0."),
        flows=[SF, dict(SF, reuses_tuple_in_time_wait=True, reuse_verdict="accepted_timestamps",
                        note="new ISN of the server = old server next seq + 65537; ISN of the "
                             "client is also above the old one (both RFC 6191 and RFC 1122 "
                             "criteria hold; Linux accepts on either)")]),
    "reuse_in_time_wait_rejected": dict(
        how=("make_samples.sh s_reuse_in_time_wait (second part), peer.py 'reuse paws A B': " +
             DIRECT + ". Like reuse_in_time_wait, but the client netns switches "
             "net.ipv4.tcp_timestamps between the connections (A for the first, B for the second; "
             "1 = random per-address-pair TSval offset, 2 = no offset; see ts_order) so that the "
             "second SYN carries a TSval OLDER than the ts_recent of the server's TIME_WAIT (what "
             "clients behind one NAT with different offsets do). The TIME_WAIT rejects it by PAWS "
             "and answers with a bare ACK of the old incarnation; the client (SYN_SENT) answers that "
             "with an RST whose seq equals that ACK number, which is exactly what the TIME_WAIT "
             "expects, so that RST assassinates the server's TIME_WAIT (tcp_rfc1337=0); the client's "
             "SYN retransmission (same ISN; only ~10 ms later here, not after the 1 s SYN RTO: Linux resends the SYN at once after resetting a bad ACK) reaches the listener and the connection "
             "proceeds (server closes first again). Note: with timestamps simply disabled "
             "(tcp_timestamps=0) Linux does NOT reject: the new ISN is above the old sequence "
             "(clock-driven ISN) and the SYN is accepted (accepted_isn). tcpdump -s 0 on tdcap-c0."),
        flows=[dict({k: v for k, v in SF.items() if k != "first_rst_by"}, tw_assassination=True,
                    note="its server TIME_WAIT is killed by the client's RST answering the bare ACK "
                         "(that RST is sent after incarnation 2's SYN, but its seq is in this "
                         "incarnation's sequence space: exactly the TIME_WAIT's rcv_nxt)"),
               dict({k: v for k, v in SF.items() if k != "first_rst_by"},
                    reuses_tuple_in_time_wait=True, reuse_verdict="rejected",
                    note="SYN answered by a bare ACK (PAWS), client RST (seq = that ACK number), SYN retransmitted "
                         "with the same ISN ~10 ms later is accepted by the listener. The new ISN "
                         "is above the old incarnation's last sequence: PAWS (older TSval) "
                         "rejects it anyway")]),
    "refused": dict(
        how=("make_samples.sh s_refused, peer.py 'refused': " + DIRECT + ", nothing listens on "
             "198.18.0.2:8080; connect() gets RST+ACK (ECONNREFUSED). tcpdump -s 0 on tdcap-c0."),
        flows=[dict(handshake="syn_only", close_kind="refused", first_fin_by="none",
                    first_rst_by="server", time_wait_on="none", tw_assassination=False,
                    reuses_tuple_in_time_wait=False, reuse_verdict=None)]),
    "ipv6_client_first": dict(
        how=("make_samples.sh s_ipv6_client_first, peer.py 'basic' over IPv6: client fd00::1 "
             "(tdcap-c0 in tdcap-cli) <-> server fd00::2 (tdcap-s0 in tdcap-srv), port 8080, "
             "addresses added with nodad. Client closes first. tcpdump -s 0 on tdcap-c0."),
        flows=[CF]),
    "two_interfaces": dict(
        how=("make_samples.sh s_two_interfaces: client netns tdcap-cli (198.18.1.1) <-> router "
             "netns tdcap-rtr (tdcap-r1 198.18.1.254, tdcap-r2 198.18.2.254, ip_forward=1) <-> "
             "server netns tdcap-srv (198.18.2.1:8080). dumpcap -f tcp -i tdcap-r1 -i tdcap-r2 in "
             "the router netns writes one pcapng with two interface description blocks. Every "
             "packet is therefore seen twice, once per interface (same TCP header and IPv4 id, "
             "TTL one lower and other MACs on the second interface): one connection seen twice, "
             "not two. Three sequential connections: peer.py 'basic' (client closes first), "
             "'http_close' (server closes first), 'linger' (client SO_LINGER {1,0} RST)."),
        flows=[CF, SF, RST]),
    "vlan": dict(
        how=("make_samples.sh s_vlan: this kernel has no 8021q module, so the tags are pushed and "
             "popped by wire.py in netns tdcap-mid: client tdcap-c0 <-> tdcap-m0 --[wire.py pushes "
             "VLAN 100]--> trunk veth pair tdcap-t0/tdcap-t1 --[wire.py pops]--> tdcap-m1 <-> "
             "server tdcap-s0 (and the same back). The TCP/IP packets are the real Linux stacks' "
             "(peer.py 'basic', client closes first, 198.18.0.1 -> 198.18.0.2:8080). tcpdump -s 0 "
             "'vlan' on the trunk veth tdcap-t0: every frame (ARP too) carries an 802.1Q tag, "
             "VID 100, in both directions."),
        flows=[dict(CF, vlan=100)]),
    "cooked_sll": dict(
        how=("make_samples.sh s_cooked_sll: peer.py 'basic' (client closes first), " + DIRECT +
             ". tcpdump -i any -s 0 tcp in the client netns: link type LINUX_SLL2 (the interfaces "
             "are lo and tdcap-c0; only tdcap-c0 carries the flow)."),
        flows=[CF]),
    "cooked_sll1": dict(
        how=("Same run as cooked_sll, captured at the same time with tcpdump -i any -y LINUX_SLL "
             "-s 0 tcp in the client netns: link type LINUX_SLL (v1)."),
        flows=[CF]),
    "midstream": dict(
        how=("make_samples.sh s_midstream, peer.py 'midstream': " + DIRECT + ". The client "
             "connects and exchanges 3 lines; only then tcpdump -s 0 on tdcap-c0 is started (the "
             "script waits for the client's 'established' file and for tcpdump's 'listening on'); "
             "then 7 more line exchanges, the client close()s first, the server close()s on EOF. "
             "No handshake in the capture."),
        flows=[dict(CF, handshake="none")]),
    "unanswered": dict(
        how=("make_samples.sh s_unanswered: " + DIRECT + ". A listener on 198.18.0.2:8080 exists "
             "but the server netns has iptables -A INPUT -p tcp --dport 8080 -j DROP; the client's "
             "connect() has a 3 s timeout, so the capture shows the SYN and its retransmissions "
             "(about 1 s apart each: this kernel uses linear SYN timeouts for the first retransmissions, net.ipv4.tcp_syn_linear_timeouts) and nothing else. tcpdump -s 0 on tdcap-c0."),
        flows=[dict(handshake="syn_only", close_kind="unanswered", first_fin_by="none",
                    first_rst_by="none", time_wait_on="none", tw_assassination=False,
                    reuses_tuple_in_time_wait=False, reuse_verdict=None)]),
    "truncated_snaplen": dict(
        how=("make_samples.sh s_truncated_snaplen: the half_close scenario (peer.py 'half') "
             "captured with tcpdump -s 60 on tdcap-c0, so every segment carrying data is cut "
             "(payload length must come from the IP header). " + DIRECT + "."),
        flows=[dict(CF, half_close=True)]),
}


def tshark_fields(path, fields):
    """Each frame of `path` as tshark prints `fields` (first occurrence each), a list of str per frame."""
    cmd = ["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def endpoints(p):
    if TCP not in p:
        return None
    t = p[TCP]
    if IP in p:
        src, dst = p[IP].src, p[IP].dst
    elif IPv6 in p:
        src, dst = p[IPv6].src, p[IPv6].dst
    else:
        return None
    return src, t.sport, dst, t.dport, t


def incarnations(path):
    """One entry per incarnation: by SYN (client, ISN), else by first packet."""
    incs = []
    current = {}
    for p in rdpcap(path):
        e = endpoints(p)
        if e is None:
            continue
        src, sport, dst, dport, t = e
        key = frozenset([(src, sport), (dst, dport)])
        flags = int(t.flags)
        syn, ack = flags & 0x02, flags & 0x10
        cur = current.get(key)
        if syn and not ack:
            if cur is not None and cur["client"] == (src, sport) and cur["isn"] == t.seq:
                continue  # retransmitted SYN or a copy seen on another interface
            cur = dict(client=(src, sport), server=(dst, dport), isn=t.seq, first=float(p.time))
            incs.append(cur)
            current[key] = cur
        elif cur is None:
            if dport == SERVER_PORT:
                cur = dict(client=(src, sport), server=(dst, dport), isn=None, first=float(p.time))
            else:
                cur = dict(client=(dst, dport), server=(src, sport), isn=None, first=float(p.time))
            incs.append(cur)
            current[key] = cur
    return incs


def many_reuse_flows(incs):
    """Client closes first every time: every earlier incarnation on the same tuple left the
    client in TIME_WAIT (60 s on Linux; the whole run lasts seconds)."""
    flows, seen = [], {}
    for i in incs:
        tup = (i["client"], i["server"])
        f = dict(CF)
        if tup in seen:
            f.update(reuses_tuple_in_time_wait=True, reuse_verdict="accepted_timestamps",
                     note="client reused its own TIME_WAIT tuple (tcp_tw_reuse=1, needs "
                          "timestamps; incarnation %d on this tuple, previous SYN %.3f s earlier)"
                          % (len(seen[tup]) + 1, i["first"] - seen[tup][-1]))
        seen.setdefault(tup, []).append(i["first"])
        flows.append(f)
    return flows


def truth_flows(incs, verdicts):
    """One truth entry per incarnation: where the capture shows it, then the verdicts the
    construction guarantees. Incarnations are counted per 4-tuple, from 1, as the analyzer counts
    them (from 0)."""
    flows = []
    on_tuple = {}
    for i, v in zip(incs, verdicts):
        key = (tuple(i["client"]), tuple(i["server"]))
        on_tuple[key] = on_tuple.get(key, 0) + 1
        f = dict(incarnation=on_tuple[key], client_ip=i["client"][0], client_port=i["client"][1],
                 server_ip=i["server"][0], server_port=i["server"][1])
        if i["isn"] is not None:
            f["client_isn"] = i["isn"]
        f.update(v)
        flows.append(f)
    return flows


# ---- one_sided, repeated_syn, syn_scan: verdicts built from the run (client.log, parameters)

ONE_SIDED_HOW = (
    "make_samples.sh s_one_sided: " + DIRECT + ". Real traffic, five connections in a row, "
    "captured in ONE direction only: tcpdump -s 0 -i tdcap-c0 'tcp and src host 198.18.0.1' in "
    "the client netns, so only the client's segments are in the capture (as a SPAN of one "
    "direction or asymmetric routing leaves it). The connections (peer.py scenarios): 'basic' "
    "(request/response, the client closes first), 'http_close' (HTTP/1.1 Connection: close, the "
    "server closes first), 'linger' (the client aborts with SO_LINGER {1,0}: RST, no FIN), "
    "'refused' (SYN to 198.18.0.2:8080 while nothing listens: the server's kernel answered RST+ACK, "
    "which is NOT in the capture; connect() got ECONNREFUSED), 'bulk' (the client asks for 20,000 "
    "bytes, reads them in 4 KB recv()s so it sends many ACKs, then closes first). The fields "
    "compared with the analysis are what the construction determines AND the client's segments "
    "prove: the handshakes were answered (the client's ACKs acknowledge a SYN-ACK the capture "
    "never shows), who sent the first FIN (the client's FIN either acknowledges the server's FIN "
    "or not) or the RST; the refused SYN has no answer in the capture, but its close kind must "
    "not be 'unanswered' since the other direction is simply not captured (not_close_kind). What "
    "only the unseen direction shows is under 'kernel_did' (not compared): the real close kinds, "
    "TIME_WAIT holders (ss in both netns). Evidence of the other direction: a two-way capture on "
    "tdcap-s0 in the server netns during the same run (not kept), its control segments listed "
    "in kernel_observations.both_ways_control_segments.")

ONE_SIDED_BASE = dict(one_sided=True, first_rst_by="none", fin_retransmissions_client=0,
                      tw_assassination=False, reuses_tuple_in_time_wait=False)
ONE_SIDED = {
    "basic": dict(ONE_SIDED_BASE, handshake_answered=True, close_kind="fin",
                  active_closer="client", first_fin_by="client",
                  kernel_did=dict(close_kind="fin", time_wait_on="client", half_close=False,
                                  fin_retransmissions_server=0)),
    "http_close": dict(ONE_SIDED_BASE, handshake_answered=True, close_kind="fin",
                       active_closer="server", first_fin_by="server",
                       kernel_did=dict(close_kind="fin", time_wait_on="server", half_close=False,
                                       fin_retransmissions_server=0)),
    "linger": dict(ONE_SIDED_BASE, handshake_answered=True, close_kind="rst",
                   active_closer="client", first_fin_by="none", first_rst_by="client",
                   kernel_did=dict(close_kind="rst", time_wait_on="none")),
    "refused": dict(one_sided=True, not_close_kind="unanswered", active_closer="none",
                    first_fin_by="none", tw_assassination=False,
                    reuses_tuple_in_time_wait=False,
                    kernel_did=dict(close_kind="refused", first_rst_by="server",
                                    time_wait_on="none",
                                    note="the server's RST+ACK went by the direction that is "
                                         "not captured; connect() got ECONNREFUSED")),
    "bulk": dict(ONE_SIDED_BASE, handshake_answered=True, close_kind="fin",
                 active_closer="client", first_fin_by="client",
                 kernel_did=dict(close_kind="fin", time_wait_on="client", half_close=False,
                                 fin_retransmissions_server=0,
                                 bytes_server_to_client=20000)),
}


def one_sided_flows(incs, syncdir):
    """The scenarios ran in this order, one connection each (client.log lists them)."""
    order = ["basic", "http_close", "linger", "refused", "bulk"]
    if len(incs) != len(order):
        raise SystemExit("one_sided: %d incarnations, expected %d" % (len(incs), len(order)))
    return [dict(ONE_SIDED[k], scenario=k) for k in order]


UNANSWERED = dict(handshake="syn_only", close_kind="unanswered", active_closer="none",
                  first_fin_by="none", first_rst_by="none", time_wait_on="none",
                  tw_assassination=False, reuses_tuple_in_time_wait=False, reuse_verdict=None)


def repeated_syn_flows(incs, syncdir):
    with open(os.path.join(syncdir, "client.log")) as fh:
        attempts = sum(1 for ln in fh if ln.startswith("attempt ") and ln.strip().endswith("timeout"))
    if len(incs) != attempts + 1 or len({i["isn"] for i in incs}) != len(incs):
        raise SystemExit("repeated_syn: %d incarnations (distinct ISNs %d), %d timed-out attempts"
                         % (len(incs), len({i["isn"] for i in incs}), attempts))
    if len({(i["client"], i["server"]) for i in incs}) != 1:
        raise SystemExit("repeated_syn: more than one 4-tuple")
    flows = [dict(UNANSWERED, note="attempt %d of %d: connect() gave up after 0.2 s, the socket "
                                   "was closed (SYN_SENT closes silently)" % (k + 1, len(incs)))
             for k in range(attempts)]
    flows.append(dict(CF, note="attempt %d: the DROP rule removed, handshake completes, the "
                               "client closes first" % len(incs)))
    return flows


def scan_params(syncdir):
    with open(os.path.join(syncdir, "scan_params.txt")) as fh:
        return dict(kv.split("=", 1) for kv in fh.read().split())


def syn_scan_flows(incs, syncdir, cap):
    prm = scan_params(syncdir)
    closed = {int(x) for x in prm["closed"].split(",")}
    listener = int(prm["listener"])
    ports = list(range(int(prm["first"]), int(prm["last"]) + 1))
    if [i["server"][1] for i in incs] != ports:
        raise SystemExit("syn_scan: the capture's probes are not the scanned ports in order")
    flows = []
    for i in incs:
        port = i["server"][1]
        if port == listener:
            flows.append(dict(handshake_answered=True, first_fin_by="none", first_rst_by="client",
                              time_wait_on="none", not_close_kind=["unanswered", "refused"],
                              note="SYN, SYN-ACK from the listener, RST from the scanning host's "
                                   "kernel (no socket for it; seq = the SYN-ACK's ack). No final "
                                   "ACK: the handshake never completed, an RST during the "
                                   "handshake (docs/rules.md, close verdicts 4), so the close kind "
                                   "and who closed are not asserted here"))
        elif port in closed:
            flows.append(dict(handshake="syn_only", close_kind="refused", active_closer="none",
                              first_fin_by="none", first_rst_by="server", time_wait_on="none"))
        else:
            flows.append(dict(handshake="syn_only", close_kind="unanswered",
                              active_closer="none", first_fin_by="none", first_rst_by="none",
                              time_wait_on="none"))
    t = [i["first"] for i in incs]
    rate = (len(t) - 1) / (t[-1] - t[0])
    scan = dict(source=incs[0]["client"][0], source_port=incs[0]["client"][1],
                target=incs[0]["server"][0], ports="%d-%d" % (ports[0], ports[-1]),
                probes=len(incs), unanswered=len(ports) - len(closed) - 1, refused=len(closed),
                answered=1, refused_ports=sorted(closed), answered_ports=[listener],
                first_probe_ts=round(t[0], 6), last_probe_ts=round(t[-1], 6),
                duration_s=round(t[-1] - t[0], 3), rate_per_s=round(rate, 1),
                rate_asked_per_s=float(prm["rate"]), new_connections_in_one_second_max=max(
                    sum(1 for y in t if x <= y < x + 1.0) for x in t))
    return flows, scan


def observations(syncdir):
    """What the kernel showed during the run (obs_NAME.txt files written by `obs`), by NAME."""
    obs = {}
    for path in sorted(glob.glob(os.path.join(syncdir, "obs_*.txt"))):
        with open(path) as fh:
            obs[os.path.basename(path)[4:-4]] = [ln.rstrip() for ln in fh if ln.strip()]
    return obs


def main():
    stem, cap, out, syncdir, kernel = sys.argv[1:6]
    incs = incarnations(cap)
    if stem == "many_reuse":
        verdicts = many_reuse_flows(incs)
        how = ("make_samples.sh s_many_reuse, peer.py 'many': " + DIRECT + ". In the client netns "
               "net.ipv4.ip_local_port_range='40000 40003' and net.ipv4.tcp_tw_reuse=1; the client "
               "makes 20 short connections in a row, closing first each time (client TIME_WAIT); "
               "connect() fails with EADDRNOTAVAIL while every tuple is a TIME_WAIT younger than "
               "tcp_tw_reuse_delay (1 s), the client retries after 0.1 s; older TIME_WAITs are taken "
               "over (the new ISN is the old client next seq + 65537). tcpdump -s 0 on tdcap-c0.")
    elif stem == "one_sided":
        verdicts, how = one_sided_flows(incs, syncdir), ONE_SIDED_HOW
    elif stem == "repeated_syn":
        verdicts = repeated_syn_flows(incs, syncdir)
        how = ("make_samples.sh s_repeated_syn, peer.py 'repeated_syn': " + DIRECT + ". Real "
               "kernel, nothing crafted. A listener on 198.18.0.2:8080, but the server netns has "
               "iptables -A INPUT -p tcp --dport 8080 -j DROP. The client makes %d attempts from "
               "198.18.0.1:40500, each a NEW socket (SO_REUSEADDR, bind to port 40500, connect() "
               "with a 0.2 s timeout, then close(): a socket in SYN_SENT closes without sending "
               "anything), so each attempt is one SYN with a new ISN (the kernel's ISN is a keyed "
               "hash of the 4-tuple plus a clock, so it grows with time) and no retransmission "
               "(the first SYN retransmission would come after 1 s). Then the script removes the "
               "DROP rule and the client connects once more from the same port: handshake, "
               "'PING 1'/'PONG 1', the client closes first (client TIME_WAIT, ss). One 4-tuple, "
               "%d incarnations: the first %d unanswered. tcpdump -s 0 on tdcap-c0."
               % (len(incs) - 1, len(incs), len(incs) - 1))
    elif stem == "syn_scan":
        verdicts, scan = syn_scan_flows(incs, syncdir, cap)
        how = ("make_samples.sh s_syn_scan: " + DIRECT + ". A SYN scan: raw SYNs crafted with "
               "scapy (captures/make/syn_scan.py, L3 raw socket, so the kernel routes and resolves "
               "the neighbour) from the client netns, source 198.18.0.1:%s, random ISNs, to every "
               "port %s of the REAL server kernel at ~%s per second. In the server netns: a "
               "listener on 8080 (peer.py 'listen', never accepts), iptables ACCEPT for 8080 and "
               "for the closed ports %s (nothing listens there, so the kernel answers RST+ACK), "
               "and DROP for the rest of the range (no answer). The one SYN-ACK (port 8080) "
               "reaches the scanning host's kernel, which has no socket for it and answers with an "
               "RST: the half-open scan's signature. tcpdump -s 0 on tdcap-c0 (scanner side). "
               "Flows are listed one per line (client ISNs are the scanner's random ones); "
               "'scan' holds the counts, the measured rate and the endpoints."
               % (scan["source_port"], scan["ports"], scan["rate_asked_per_s"],
                  ",".join(map(str, scan["refused_ports"]))))
    else:
        spec = SPEC[stem]
        verdicts, how = spec["flows"], spec["how"]
    if len(verdicts) != len(incs):
        raise SystemExit("%s: capture has %d incarnations, spec %d" % (stem, len(incs), len(verdicts)))
    flows = truth_flows(incs, verdicts)
    obs = observations(syncdir)
    if stem == "many_reuse":
        per = {}
        for i in incs:
            per.setdefault("%s:%d" % i["client"], []).append(i["isn"])
        obs["reused_tuples_from_capture"] = [
            "%s -> 198.18.0.2:8080: %d incarnations, client ISNs %s" % (k, len(v), v)
            for k, v in sorted(per.items())]
    for extra in ("client.log", "ts_order.txt", "scan_params.txt"):
        path = os.path.join(syncdir, extra)
        if os.path.exists(path):
            with open(path) as fh:
                obs[extra.split(".")[0]] = [ln.rstrip() for ln in fh if ln.strip()]
    doc = dict(capture=os.path.basename(cap),
               how=how + " Kernel " + kernel + ". Script: captures/make/make_samples.sh.",
               kernel=kernel, flows=flows, kernel_observations=obs)
    if stem == "syn_scan":
        doc["scan"] = scan
    with open(out, "w") as fh:
        if stem == "syn_scan":   # 300 flows: one per line keeps the file small and readable
            text = json.dumps(dict(doc, flows=[]), indent=2)
            rows = ",\n".join("    " + json.dumps(f) for f in flows)
            text = text.replace('"flows": []', '"flows": [\n' + rows + "\n  ]", 1)
            fh.write(text)
        else:
            json.dump(doc, fh, indent=2)
        fh.write("\n")


if __name__ == "__main__":
    main()
