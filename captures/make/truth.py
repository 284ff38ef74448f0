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
import sys

from scapy.all import IP, TCP, IPv6, rdpcap  # type: ignore

SERVER_PORT = 8080

CF = dict(handshake="complete", close_kind="fin", active_closer="client", first_fin_by="client",
          first_rst_by="none", time_wait_on="client", half_close=False,
          fin_retransmissions_client=0, fin_retransmissions_server=0,
          tw_assassination=False, reuses_tuple_in_time_wait=False, reuse_verdict=None)
SF = dict(CF, active_closer="server", first_fin_by="server", time_wait_on="server")
RST = dict(handshake="complete", close_kind="rst", first_fin_by="none", first_rst_by="client",
           time_wait_on="none", half_close=False, fin_retransmissions_client=0,
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
    for extra in ("client.log", "ts_order.txt"):
        path = os.path.join(syncdir, extra)
        if os.path.exists(path):
            with open(path) as fh:
                obs[extra.split(".")[0]] = [ln.rstrip() for ln in fh if ln.strip()]
    doc = dict(capture=os.path.basename(cap),
               how=how + " Kernel " + kernel + ". Script: captures/make/make_samples.sh.",
               kernel=kernel, flows=flows, kernel_observations=obs)
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")


if __name__ == "__main__":
    main()
