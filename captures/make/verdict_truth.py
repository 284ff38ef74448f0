#!/usr/bin/env python3
"""Write captures/STEM.truth.json for a capture made by make_verdict_samples.sh.

    verdict_truth.py STEM CAPTURE OUT.json SYNCDIR KERNEL

The verdicts come from how each sample was made (PLAN below) and from what the kernels showed
during the run (ss, nstat, iptables counters, the endpoints' own records in SYNCDIR); nothing
here reads teardown's output. The capture gives the numbers (ports, ISNs, sequence numbers) and
is first checked against the plan: a run that did not go as planned is refused, not written.
Flows are listed as truth.py lists them (one entry per incarnation, in the order of their first
SYN, or first packet when there is none; incarnations counted from 1 per 4-tuple).
"""
import json
import os
import sys

from scapy.all import IP, TCP, rdpcap  # type: ignore

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import truth  # noqa: E402  (incarnations, truth_flows, observations: the same listing as make_samples.sh's)

M32 = 0xFFFFFFFF
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
TW_REUSE_ISN_STEP = 65537  # tcp_timewait_state_process: isn = tw_snd_nxt + 65535 + 2
DIRECT = ("client netns tdvd-cli (veth tdvd-c0, 198.18.0.1) <-> server netns tdvd-srv (veth tdvd-s0, "
          "198.18.0.2), server port 8080, endpoints captures/make/verdict_peer.py")

BASE = dict(handshake="complete", close_kind="fin", active_closer="client", first_fin_by="client",
            first_rst_by="none", time_wait_on="client", half_close=False, fin_retransmissions_client=0,
            fin_retransmissions_server=0, rst_class=None, data_after_fin="none", tw_assassination=False,
            reuses_tuple_in_time_wait=False, reuse_verdict=None)
CF = BASE
SF = dict(BASE, active_closer="server", first_fin_by="server", time_wait_on="server")


def after(a, b):
    """a is after b in 32-bit serial arithmetic (RFC 1982)."""
    return 0 < (a - b) & M32 < 1 << 31


def flag_names(f):
    return "".join(n for b, n in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (ACK, ".")) if f & b)


def read_segments(path):
    """Every TCP segment, numbered by frame from 1, with the side that sent it."""
    out = []
    for n, p in enumerate(rdpcap(path), 1):
        if IP not in p or TCP not in p:
            continue
        ip, t = p[IP], p[TCP]
        side = "client" if t.dport == truth.SERVER_PORT else "server"
        opts = [o[0] for o in t.options]
        out.append(dict(frame=n, ts=float(p.time), side=side, flags=int(t.flags), seq=t.seq, ack=t.ack,
                        win=t.window, len=ip.len - ip.ihl * 4 - t.dataofs * 4,
                        tsopt="Timestamp" in opts, wscale=dict((o[0], o[1]) for o in t.options).get("WScale"),
                        key=frozenset([(ip.src, t.sport), (ip.dst, t.dport)])))
    return out


def split_incarnations(segs, incs):
    """The segments of each incarnation of truth.incarnations (a pure SYN with a new ISN opens
    the next one on its 4-tuple)."""
    groups, current = [], {}
    for s in segs:
        cur = current.get(s["key"])
        if s["flags"] & (SYN | ACK) == SYN and (cur is None or cur["isn"] != s["seq"]):
            cur = dict(isn=s["seq"], segs=[])
            groups.append(cur)
            current[s["key"]] = cur
        elif cur is None:
            cur = dict(isn=None, segs=[])
            groups.append(cur)
            current[s["key"]] = cur
        cur["segs"].append(s)
    if [g["isn"] for g in groups] != [i["isn"] for i in incs]:
        raise SystemExit("incarnations differ from truth.incarnations: %s" % groups)
    return [g["segs"] for g in groups]


def describe(segs):
    return ["%d %s %s seq=%d ack=%d%s" % (s["frame"], s["side"], flag_names(s["flags"]), s["seq"], s["ack"],
                                          " len=%d" % s["len"] if s["len"] else "") for s in segs]


def nstat(obs, name):
    """Absolute counters of a fresh netns (so: this run), 0 when absent."""
    got = {}
    for ln in obs.get(name, []):
        parts = ln.split()
        if len(parts) >= 2 and parts[1].isdigit():
            got[parts[0]] = int(parts[1])
    return got


def expect(cond, what):
    if not cond:
        raise SystemExit("%s: the run did not go as planned: %s" % (STEM, what))


def one(segs, pred, what):
    found = [s for s in segs if pred(s)]
    expect(len(found) == 1, "%d segments are %s" % (len(found), what))
    return found[0]


def sockets(obs, name):
    """The socket lines of an `ss -H` record (its first line is the command)."""
    return [ln for ln in obs.get(name, [])[1:] if ln.strip() and not ln.startswith(("\t", " "))]


def last_line(sync, name):
    with open(os.path.join(sync, name)) as fh:
        return fh.read().strip()


# ---------------------------------------------------------------- one function per sample
def fin_then_rst(incs, groups, obs, sync):
    (segs,) = groups
    cfin = one(segs, lambda s: s["side"] == "client" and s["flags"] & FIN, "client FINs")
    rst = one(segs, lambda s: s["flags"] & RST, "RSTs")
    late = [s for s in segs if s["side"] == "server" and s["len"] and s["frame"] > cfin["frame"]]
    unread = int(last_line(sync, "client.log").split()[-1])
    expect(rst["side"] == "client" and rst is segs[-1], "the client's RST ends the capture")
    expect(rst["seq"] == (cfin["seq"] + 1) & M32, "RST seq = the client's FIN + 1")
    expect(not any(s["side"] == "server" and s["flags"] & FIN for s in segs), "no server FIN")
    expect(late and sum(s["len"] for s in late) == unread, "the server's data after the FIN is what stayed unread")
    cn, sn = nstat(obs, "client_nstat"), nstat(obs, "server_nstat")
    expect(cn.get("TcpExtTCPAbortOnClose") == 1 and cn.get("TcpOutRsts") == 1, "client nstat %s" % cn)
    expect(sn.get("TcpEstabResets") == 1, "server nstat %s" % sn)
    expect(last_line(sync, "server_saw").startswith("SO_ERROR 32"), "server socket error")
    expect(not sockets(obs, "client_sockets") and not sockets(obs, "server_sockets"), "no socket left (ss)")
    how = ("make_verdict_samples.sh s_fin_then_rst, verdict_peer.py 'fin_then_rst': " + DIRECT + ". The client "
           "sends a request and shutdown(SHUT_WR)s (its FIN); the server reads to EOF, then sends 3 lines of "
           "32 bytes the client never reads; 0.2 s later the client close()s with %d bytes unread (SIOCINQ, "
           "client.log): Linux's tcp_close() then sends an RST instead of waiting for the peer's FIN "
           "(RFC 2525 §2.17, RFC 1122 4.2.2.13; client nstat TcpExtTCPAbortOnClose 1, TcpOutRsts 1). The "
           "server, in CLOSE_WAIT, accepts the RST: its socket's pending error is EPIPE (what tcp_reset() "
           "sets in CLOSE_WAIT; server_saw), nstat TcpEstabResets 1, and it never sent its FIN. No socket "
           "is left on either side (ss: no TIME_WAIT). tcpdump -s 0 on tdvd-c0." % unread)
    verdict = dict(BASE, close_kind="fin_then_rst", first_rst_by="client", time_wait_on="none", half_close=True,
                   rst_class="exact", segments=describe(segs),
                   note="client FIN, then %d bytes of server data after it (half_close), then the client's "
                        "RST at FIN + 1 (exactly the server's rcv_nxt: the server reset its socket, where an "
                        "in-window RST would only have drawn a challenge ACK, RFC 5961 §3.2) before any "
                        "server FIN: fin_then_rst, no TIME_WAIT" % unread)
    return [verdict], how, None


def synack_only(incs, groups, obs, sync):
    (segs,) = groups
    first = segs[0]
    expect(first["side"] == "server" and first["flags"] & (SYN | ACK) == SYN | ACK, "the capture starts with the SYN-ACK")
    expect(not any(s["flags"] & (SYN | ACK) == SYN for s in segs), "no pure SYN in the capture")
    unfiltered = obs.get("unfiltered_capture", [])
    expect(any(" > 198.18.0.2.8080: Flags [S]," in ln for ln in unfiltered), "the unfiltered capture has the SYN")
    fins = [s for s in segs if s["flags"] & FIN]
    expect([s["side"] for s in fins] == ["client", "server"], "client FIN, then server FIN")
    expect(len(sockets(obs, "client_sockets")) == 1 and "TIME-WAIT" in sockets(obs, "client_sockets")[0],
           "client TIME_WAIT (ss)")
    how = ("make_verdict_samples.sh s_synack_only, verdict_peer.py 'basic' (PING 1 / PONG 1, the client closes "
           "first): " + DIRECT + ". The capture point MISSES the client's SYN because of its capture FILTER: "
           "tcpdump -s 0 -i tdvd-c0 'tcp and not tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn' (every "
           "segment but a pure SYN). A second, unfiltered capture on tdvd-s0 during the run (not kept; its "
           "lines are in kernel_observations.unfiltered_capture) shows the SYN was sent. ss: the client in "
           "TIME_WAIT.")
    verdict = dict(CF, handshake="synack_only", server_isn=first["seq"], segments=describe(segs),
                   note="the SYN-ACK and the client's ACK are in the capture, the SYN is not (filtered out at "
                        "the capture point): the SYN-ACK's receiver is the client")
    return [verdict], how, None


def rst_out_of_window(incs, groups, obs, sync):
    (segs,) = groups
    rst = one(segs, lambda s: s["flags"] & RST, "RSTs")
    crafted = dict(kv.split("=", 1) for kv in obs["crafted_rst"][0].split() if "=" in kv)
    expect(rst["side"] == "server" and rst["seq"] == int(crafted["rst_seq"]), "the crafted RST is in the capture")
    before = [s for s in segs if s["frame"] < rst["frame"] and s["side"] == "client" and s["flags"] & ACK]
    syn_c = one(segs, lambda s: s["side"] == "client" and s["flags"] & (SYN | ACK) == SYN, "client SYNs")
    syn_s = one(segs, lambda s: s["side"] == "server" and s["flags"] & (SYN | ACK) == SYN | ACK, "SYN-ACKs")
    wnd = before[-1]["win"] << syn_c["wscale"]
    ahead = (rst["seq"] - before[-1]["ack"]) & M32
    expect(syn_s["wscale"] is not None and ahead < 1 << 31 and ahead > wnd,
           "RST beyond the client's window (%d ahead, window %d)" % (ahead, wnd))
    later = [s for s in segs if s["frame"] > rst["frame"]]
    expect(any(s["side"] == "client" and s["len"] for s in later) and any(s["side"] == "server" and s["len"] for s in later),
           "data both ways after the RST")
    fins = [s for s in segs if s["flags"] & FIN]
    expect([s["side"] for s in fins] == ["client", "server"] and fins[0]["frame"] > rst["frame"], "client FIN first, after the RST")
    est_before, est_after = sockets(obs, "client_established_before_rst"), sockets(obs, "client_established_after_rst")
    expect(len(est_before) == 1 and est_before == est_after, "ss: the same connection established before and after")
    seg_in = [int(ln.split("segs_in:")[1].split()[0]) for name in ("client_established_before_rst",
              "client_established_after_rst") for ln in obs[name] if "segs_in:" in ln]
    nb, na = nstat(obs, "client_nstat_before_rst"), nstat(obs, "client_nstat_after_rst")
    expect(seg_in[1] == seg_in[0] + 1 and na.get("TcpInSegs") == nb.get("TcpInSegs", 0) + 1, "the RST reached the socket")
    expect(na.get("TcpOutSegs") == nb.get("TcpOutSegs") and "TcpEstabResets" not in na and
           "TcpExtTCPChallengeACK" not in na, "no reset, no challenge ACK, nothing sent")
    expect("TIME-WAIT" in sockets(obs, "client_sockets")[0], "client TIME_WAIT (ss)")
    how = ("make_verdict_samples.sh s_rst_out_of_window, verdict_peer.py 'oow': " + DIRECT + ". PING 1 / PONG 1, "
           "then, 0.3 s later, verdict_craft.py rst_oow (scapy, L3 raw socket in the SERVER netns) injects an "
           "RST+ACK from 198.18.0.2:8080 with seq = the server's next sequence number + 2**30 (beyond any "
           "window the client can advertise: at most 2**30, RFC 7323 §2.3). CRAFTED: an injected RST is by "
           "definition not the kernel's. The client kernel ignores it (RFC 9293 §3.10.7.4, RFC 5961 §3.2: "
           "out of window, dropped without an answer): ss shows the connection ESTABLISHED before and after, "
           "its segs_in %d -> %d (the RST reached the socket); client nstat TcpInSegs +1 and nothing else: no "
           "TcpEstabResets, no TcpExtTCPChallengeACK, TcpOutSegs unchanged. The connection goes on: PING 2 / "
           "PONG 2 (client.log), then the client close()s first, the server close()s on EOF; ss: the client "
           "in TIME_WAIT. The RST is the only one after the handshake: the one rst_class describes "
           "(docs/rules.md \"Close verdicts\" 4). tcpdump -s 0 on tdvd-c0." % (seg_in[0], seg_in[1]))
    verdict = dict(CF, first_rst_by="server", rst_class="out_of_window", crafted=["RST"], rst_seq=rst["seq"],
                   segments=describe(segs),
                   note="an out-of-window RST from the server's address (%d ahead of the client's last ACK, its "
                        "window %d bytes), ignored by the client kernel; the connection then closes in order, "
                        "client first: close_kind fin (no RST ended it), TIME_WAIT on the client (ss)"
                        % (ahead, wnd))
    return [verdict], how, "the RST (verdict_craft.py rst_oow); every other segment is the kernels'"


def rst_unverifiable(incs, groups, obs, sync):
    (segs,) = groups
    expect(len(segs) == 1 and segs[0]["side"] == "client" and segs[0]["flags"] & RST, "one segment: the client's RST")
    est = sockets(obs, "established_before_capture")
    expect(len(est) == 1 and ":%d " % incs[0]["client"][1] in est[0], "ss: established before the capture")
    cn, sn = nstat(obs, "client_nstat"), nstat(obs, "server_nstat")
    expect(cn.get("TcpOutRsts") == 1 and cn.get("TcpExtTCPAbortOnData") == 1, "client nstat %s" % cn)
    expect(sn.get("TcpEstabResets") == 1 and last_line(sync, "server_saw") == "ECONNRESET", "the server was reset")
    how = ("make_verdict_samples.sh s_rst_unverifiable, verdict_peer.py 'idle_abort': " + DIRECT + ". The client "
           "connects, PING 1 / PONG 1, and waits; 0.3 s later (ss: ESTABLISHED) tcpdump -s 0 on tdvd-c0 is "
           "started: the capture begins MIDSTREAM, on an idle connection. Then the client sets SO_LINGER {1,0} "
           "and close()s: the kernel sends an RST+ACK (client nstat TcpOutRsts 1, TcpExtTCPAbortOnData 1, "
           "what Linux counts for a SO_LINGER 0 close), the server's recv() gets ECONNRESET (server nstat "
           "TcpEstabResets 1). That RST is the only segment of the connection in the capture: nothing of "
           "either side's sequence numbers, acknowledgments or window before it, so the capture cannot judge "
           "it (rst_class unverifiable), and the roles are guessed (no SYN, no SYN-ACK; the RST's sender is "
           "the first sender).")
    verdict = dict(BASE, handshake="none", close_kind="rst", first_fin_by="none", first_rst_by="client",
                   time_wait_on="none", rst_class="unverifiable", roles_inferred=True, segments=describe(segs),
                   note="a lone RST+ACK from the client (SO_LINGER {1,0} abort) on a connection caught "
                        "midstream; the server accepted it (ECONNRESET), but the capture holds no state to "
                        "check that against")
    return [verdict], how, None


def reuse(incs, groups, obs, sync, after_tw):
    expect(len(groups) == 2 and len({(i["client"], i["server"]) for i in incs}) == 1, "two incarnations, one 4-tuple")
    old, new = groups
    old_c_nxt = max(((s["seq"] + s["len"] + bool(s["flags"] & (SYN | FIN))) & M32 for s in old if s["side"] == "client"),
                    key=lambda x: (x - incs[0]["isn"]) & M32)
    old_s = [s for s in old if s["side"] == "server"]
    old_s_isn = old_s[0]["seq"]
    old_s_nxt = max(((s["seq"] + s["len"] + bool(s["flags"] & (SYN | FIN))) & M32 for s in old_s),
                    key=lambda x: (x - old_s_isn) & M32)
    for segs in groups:
        fins = [s["side"] for s in segs if s["flags"] & FIN]
        expect(fins == ["server", "client"], "server FIN first, each time")
    final_ack = [s for s in old if s["side"] == "server"][-1]   # the server's ACK of the client's FIN
    syn2 = new[0]
    synack2 = one(new, lambda s: s["flags"] & (SYN | ACK) == SYN | ACK, "SYN-ACKs of the 2nd")
    gap = syn2["ts"] - final_ack["ts"]
    tw_after_first = sockets(obs, "server_tw_after_first")
    tw_before_second = sockets(obs, "server_tw_before_second")
    expect(len(tw_after_first) == 1 and ":%d " % incs[0]["client"][1] in tw_after_first[0] + " ", "server TIME_WAIT (ss)")
    takeover = synack2["seq"] == (old_s_nxt + TW_REUSE_ISN_STEP) & M32
    if not after_tw:
        expect(not any(s["tsopt"] for g in groups for s in g), "no timestamps option anywhere")
        expect(tw_before_second == tw_after_first, "ss: the TIME_WAIT still there just before the 2nd SYN")
        expect(after(syn2["seq"], old_c_nxt), "the 2nd SYN's ISN above the old client next sequence")
        expect(takeover and gap < 60, "SYN-ACK ISN = old server next + 65537 (the TIME_WAIT took the SYN)")
        how = ("make_verdict_samples.sh s_reuse_accepted_isn, verdict_peer.py 'reuse_after': " + DIRECT + ". "
               "net.ipv4.tcp_timestamps=0 in BOTH netns (sysctl records), so no segment carries the timestamps "
               "option and RFC 6191 cannot apply. Two HTTP/1.1 'Connection: close' exchanges from one client "
               "port, the server closes first each time (server TIME_WAIT). After the first, ss in the server "
               "netns lists its TIME_WAIT for the 4-tuple (also just before the 2nd SYN); %.3f s after its final "
               "ACK the client binds the same port (SO_REUSEADDR) and connects again. The 2nd SYN's ISN (%d) lies "
               "beyond the old incarnation's client next sequence (%d): Linux's tcp_timewait_state_process "
               "accepts it for that (RFC 1122 4.2.2.13) and answers a SYN-ACK whose ISN is the old server next "
               "sequence + 65537 (%d + 65537 = %d), the mark of a TIME_WAIT taking over. tcpdump -s 0 on tdvd-c0."
               % (gap, syn2["seq"], old_c_nxt, old_s_nxt, synack2["seq"]))
        second = dict(SF, reuses_tuple_in_time_wait=True, reuse_verdict="accepted_isn", server_isn=synack2["seq"],
                      note="SYN %.3f s into the server's TIME_WAIT, no timestamps; its ISN above the old client "
                           "next sequence; SYN-ACK ISN = old server next + 65537" % gap)
    else:
        gone = float(obs["time_wait_gone_at"][0])
        connect = float(obs["second_connect_at"][0])
        expect(not tw_before_second and connect > gone, "ss: no TIME_WAIT before the 2nd connect")
        expect(gap >= 60 and not takeover, "the 2nd SYN 60 s or more after the first's final ACK, answered by the listener")
        how = ("make_verdict_samples.sh s_reuse_after_time_wait, verdict_peer.py 'reuse_after': " + DIRECT + ". "
               "Two HTTP/1.1 'Connection: close' exchanges from one client port (timestamps on, the default), "
               "the server closes first each time. After the first, ss in the server netns lists its TIME_WAIT "
               "for the 4-tuple; the script polls ss every 0.1 s until that TIME_WAIT is gone (Linux "
               "TCP_TIMEWAIT_LEN, 60 s), waits 0.5 s more, checks ss again (empty) and lets the client bind the "
               "same port (SO_REUSEADDR) and connect. ss first showed the TIME_WAIT gone %.3f s after the "
               "server's final ACK (the same clock as the capture's). The SYN comes %.3f s after that ACK, and "
               "the listener answers it (the SYN-ACK's ISN is a fresh one, not the old server next sequence + "
               "65537). tcpdump -s 0 on tdvd-c0." % (gone - final_ack["ts"], gap))
        second = dict(SF, reuses_tuple_in_time_wait=False, reuse_verdict="after_time_wait", server_isn=synack2["seq"],
                      note="SYN %.3f s after the first incarnation's final ACK; ss showed the server's TIME_WAIT "
                           "gone before it" % gap)
    first = dict(SF, server_isn=old_s_isn)
    for f, g in zip((first, second), groups):
        f["segments"] = describe(g)
    return [first, second], how, None


def data_after_fin_retransmission(incs, groups, obs, sync):
    (segs,) = groups
    data = [s for s in segs if s["side"] == "server" and s["len"] == 300]
    sfin = one(segs, lambda s: s["side"] == "server" and s["flags"] & FIN, "server FINs")
    expect(len(data) == 2 and data[0]["seq"] == data[1]["seq"], "the 300-byte answer twice, same seq")
    expect(data[0]["frame"] < sfin["frame"] < data[1]["frame"], "answer, FIN, answer again")
    expect(sfin["seq"] == (data[0]["seq"] + 300) & M32, "the answer lies below the FIN")
    drops = [int(ln.split()[0]) for ln in obs["iptables_counters"] if ln.split() and ln.split()[0].isdigit()]
    sn = nstat(obs, "server_nstat")
    expect(drops == [1, 1] and sn.get("TcpRetransSegs") == 1, "one drop, one retransmission")
    expect("TIME-WAIT" in sockets(obs, "server_sockets")[0], "server TIME_WAIT (ss)")
    how = ("make_verdict_samples.sh s_data_after_fin_retransmission, verdict_peer.py 'retrans': " + DIRECT + ". The "
           "client sends a request; the server answers 300 bytes and close()s 50 ms later (its FIN). In the "
           "client netns: iptables -A INPUT -p tcp --sport 8080 -m length --length 352 -m recent --name tdvd "
           "--rcheck -j ACCEPT; iptables -A INPUT -p tcp --sport 8080 -m length --length 352 -m recent --name "
           "tdvd --set -j DROP: the answer (IPv4 total length 352) is dropped ONCE, after the tap on tdvd-c0 "
           "(which sees received frames before netfilter), so the capture holds it. The client gets the FIN "
           "out of order and SACKs it; the server's kernel sends the answer again AFTER its FIN (server nstat "
           "TcpRetransSegs 1, TcpExtTCPFastRetrans %d; iptables counted 1 DROP and 1 ACCEPT). The client reads "
           "to EOF and close()s; ss: the server in TIME_WAIT. tcpdump -s 0 on tdvd-c0."
           % sn.get("TcpExtTCPFastRetrans", 0))
    verdict = dict(SF, data_after_fin="retransmission", segments=describe(segs),
                   note="server data at seq %d..%d (below its FIN at %d) sent before the FIN and again after it: "
                        "a retransmission, legal; the FIN itself was sent once"
                        % (data[0]["seq"], data[0]["seq"] + 300, sfin["seq"]))
    return [verdict], how, None


def data_after_fin_new_data(incs, groups, obs, sync):
    (segs,) = groups
    crafted = dict(kv.split("=", 1) for kv in obs["crafted_data"][0].split() if "=" in kv)
    cfin = one(segs, lambda s: s["side"] == "client" and s["flags"] & FIN, "client FINs")
    new = one(segs, lambda s: s["side"] == "client" and s["len"] and s["frame"] > cfin["frame"], "client data after its FIN")
    sfin = one(segs, lambda s: s["side"] == "server" and s["flags"] & FIN, "server FINs")
    expect(new["seq"] == (cfin["seq"] + 1) & M32 == int(crafted["data_seq"]), "crafted data at the client's FIN + 1")
    expect(cfin["frame"] < new["frame"] < sfin["frame"] and sfin["ack"] == (cfin["seq"] + 1) & M32,
           "the server's FIN acknowledges the client's FIN, not the data")
    nb, na = nstat(obs, "server_nstat_before_crafted"), nstat(obs, "server_nstat_after_crafted")
    expect(na.get("TcpInSegs") == nb.get("TcpInSegs", 0) + 1 and na.get("TcpOutSegs") == nb.get("TcpOutSegs"),
           "the server received it and sent nothing")
    expect(len(sockets(obs, "server_close_wait_after_crafted")) == 1, "the server still in CLOSE_WAIT (ss)")
    expect("TIME-WAIT" in sockets(obs, "client_sockets")[0], "client TIME_WAIT (ss)")
    how = ("make_verdict_samples.sh s_data_after_fin_new_data, verdict_peer.py 'new_data': " + DIRECT + ". PING 1 / "
           "PONG 1, then the client shutdown(SHUT_WR)s (its FIN; the server ACKs it and stays in CLOSE_WAIT). "
           "Then verdict_craft.py data_after_fin (scapy, L3 raw socket in the CLIENT netns) sends from the "
           "client's 4-tuple 19 bytes of data at seq = the client's FIN + 1: new data after the sender's own "
           "FIN. CRAFTED: no kernel sends that (RFC 9293 §3.10.2: a SEND after CLOSE is refused). The server "
           "kernel, in CLOSE_WAIT, drops it silently (server nstat TcpInSegs +1, TcpOutSegs unchanged; ss: still "
           "CLOSE_WAIT). Then the server close()s: its FIN acknowledges the client's FIN + 1 only; the client "
           "reads EOF, ACKs and close()s; ss: the client in TIME_WAIT. tcpdump -s 0 on tdvd-c0.")
    verdict = dict(CF, data_after_fin="new_data", crafted=["data after the client's FIN"], segments=describe(segs),
                   note="client FIN at seq %d, then (crafted) data at %d, beyond it: a protocol violation; the "
                        "close is otherwise orderly, client first" % (cfin["seq"], new["seq"]))
    return [verdict], how, "the data segment after the client's FIN (verdict_craft.py data_after_fin); every other segment is the kernels'"


PLAN = {
    "fin_then_rst": fin_then_rst,
    "synack_only": synack_only,
    "rst_out_of_window": rst_out_of_window,
    "rst_unverifiable": rst_unverifiable,
    "reuse_accepted_isn": lambda *a: reuse(*a, after_tw=False),
    "reuse_after_time_wait": lambda *a: reuse(*a, after_tw=True),
    "data_after_fin_retransmission": data_after_fin_retransmission,
    "data_after_fin_new_data": data_after_fin_new_data,
}


def main():
    global STEM
    STEM, cap, out, sync, kernel = sys.argv[1:6]
    incs = truth.incarnations(cap)
    groups = split_incarnations(read_segments(cap), incs)
    obs = truth.observations(sync)
    for extra in ("client.log", "server_saw"):
        path = os.path.join(sync, extra)
        if os.path.exists(path):
            with open(path) as fh:
                obs[extra.split(".")[0]] = [ln.rstrip() for ln in fh if ln.strip()]
    verdicts, how, crafted = PLAN[STEM](incs, groups, obs, sync)
    doc = dict(capture=os.path.basename(cap),
               how=how + " Kernel " + kernel + ". Script: captures/make/make_verdict_samples.sh.",
               kernel=kernel)
    if crafted:
        doc["crafted"] = crafted
    doc.update(flows=truth.truth_flows(incs, verdicts), kernel_observations=obs)
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")


STEM = ""
if __name__ == "__main__":
    main()
