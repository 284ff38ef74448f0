#!/usr/bin/env python3
"""Frame removal and truth files for make_edge_samples.sh (scapy to read captures; editcap to cut).

    edge_truth.py modes s2c|c2s
        print the connection modes (edge_peer.py) of a loss sample, in order
    edge_truth.py loss s2c|c2s ORIGINAL.pcap OUT.pcap OUT.truth.json SYNCDIR KERNEL
        pick the frames to remove from the REAL kernel capture ORIGINAL (one case per
        connection, below), check that they make a clean hole (no copy of those bytes elsewhere
        in the capture, the receiver acknowledges past them), delete them with
        `editcap -F pcap ORIGINAL OUT FRAME...`, check the result and write the truth
    edge_truth.py handshake_gave_up|handshake_reset CAPTURE OUT.truth.json SYNCDIR KERNEL

Nothing here reads teardown's output: the verdicts come from how each connection was made,
the numbers (ports, ISNs, sequence numbers, frames) from the captures themselves.
"""
import glob
import hashlib
import json
import os
import subprocess
import sys

from scapy.all import IP, TCP, rdpcap  # type: ignore

SERVER_PORT = 8080
M32 = 0xFFFFFFFF

# one connection per case, in this order; the 'end' case must be last (the capture stops while
# it is open).  (case, edge_peer.py mode)
CASES = {
    "s2c": [("middle", "stream"), ("before_fin", "issue_fin"), ("before_rst", "abort"),
            ("start", "stream"), ("retransmission_only", "retrans"), ("end", "hold")],
    "c2s": [("middle", "stream"), ("before_fin", "stream"), ("before_rst", "abort"),
            ("start", "stream"), ("retransmission_only", "retrans"), ("end", "hold")],
}
DIRNAME = {"s2c": "server->client", "c2s": "client->server"}
SENDER = {"s2c": "server", "c2s": "client"}

CASE_TEXT = {
    "middle": "a hole in the middle of the transfer: the sender's 5th and 6th data segments "
              "removed; later segments and the receiver's ACKs past the hole are kept",
    "before_fin": "a hole just before the sender's FIN: its last data segments removed, so the "
                  "next segment the capture shows from it is its FIN, whose sequence number lies "
                  "past the hole; the peer acknowledges the FIN",
    "before_rst": "a hole just before the sender's RST (SO_LINGER {1,0} abort 0.1 s after its last "
                  "write): its last 3 data segments removed; the receiver had acknowledged them "
                  "all, the RST's sequence number lies past the hole",
    "start": "a hole at the start: the sender's first 2 data segments after the handshake removed, "
             "so its first data segment in the capture lies past ISN + 1",
    "retransmission_only": "nothing removed: one segment (the 150-byte one) was dropped once by "
                           "iptables in the receiver's netns AFTER the tap, so the capture holds "
                           "it and the sender's retransmission of it; a retransmission of data "
                           "the capture saw, not a capture loss",
    "end": "a hole at the end: the sender's last 3 data segments removed; the capture was stopped "
           "0.2 s after the receiver's ACKs of them, with the connection still open (it closed "
           "after the capture)",
}

BASE = dict(handshake="complete", half_close=False, tw_assassination=False,
            reuses_tuple_in_time_wait=False, reuse_verdict=None)
CF = dict(BASE, close_kind="fin", active_closer="client", first_fin_by="client",
          first_rst_by="none", time_wait_on="client")
SF = dict(CF, active_closer="server", first_fin_by="server", time_wait_on="server")
OPEN = dict(BASE, close_kind="open", active_closer="none", first_fin_by="none",
            first_rst_by="none", time_wait_on="none")


def rst_by(side):
    return dict(BASE, close_kind="rst", active_closer=side, first_fin_by="none", first_rst_by=side,
                time_wait_on="none")


def verdicts(d, mode):
    if mode == "issue_fin":
        return SF
    if mode == "abort":
        return rst_by(SENDER[d])
    if mode == "hold":
        return OPEN
    return CF


# ---------------------------------------------------------------- reading a capture
def segments(path):
    """Every TCP segment: its frame number (from 1), time and header fields."""
    pkts = rdpcap(path)
    rows = []
    for n, p in enumerate(pkts, 1):
        if IP not in p or TCP not in p:
            continue
        ip, t = p[IP], p[TCP]
        plen = ip.len - ip.ihl * 4 - t.dataofs * 4
        rows.append(dict(frame=n, ts=float(p.time), src=ip.src, sport=t.sport, dst=ip.dst,
                         dport=t.dport, flags=int(t.flags), seq=t.seq, ack=t.ack, len=plen,
                         iplen=ip.len))
    return len(pkts), rows


def connections(rows):
    """Group by 4-tuple in the order of first SYN; the side on port 8080 is the server."""
    conns = []
    by_key = {}
    for r in rows:
        if r["dport"] == SERVER_PORT:
            cli, srv, frm = (r["src"], r["sport"]), (r["dst"], r["dport"]), "client"
        else:
            cli, srv, frm = (r["dst"], r["dport"]), (r["src"], r["sport"]), "server"
        key = (cli, srv)
        c = by_key.get(key)
        if c is None:
            c = dict(client=cli, server=srv, segs=[], isn={})
            by_key[key] = c
            conns.append(c)
        r = dict(r, side=frm)
        c["segs"].append(r)
        if r["flags"] & 0x02:
            c["isn"].setdefault(frm, r["seq"])
    return conns


def rel(seq, isn):
    return (seq - isn) & M32


def flag_names(f):
    return "".join(n for b, n in ((0x02, "S"), (0x01, "F"), (0x04, "R"), (0x08, "P"), (0x10, "."))
                   if f & b)


# ---------------------------------------------------------------- loss samples
def pick(case, data, segs, side):
    """The sender's data segments (first transmissions, in sequence order) to remove."""
    if case == "middle":
        return data[4:6]
    if case == "before_fin":
        return list(data) if len(data) <= 3 else data[-3:]
    if case in ("before_rst", "end"):
        return data[-3:]
    if case == "start":
        return data[:2]
    return []


def loss(d, orig, out, out_json, syncdir, kernel):
    nframes, rows = segments(orig)
    conns = connections(rows)
    cases = CASES[d]
    if len(conns) != len(cases):
        raise SystemExit("%d connections in %s, expected %d" % (len(conns), orig, len(cases)))
    sender = SENDER[d]
    receiver = "client" if sender == "server" else "server"
    removed_all = []
    flows = []
    for k, (c, (case, mode)) in enumerate(zip(conns, cases), 1):
        isn_s, isn_r = c["isn"][sender], c["isn"][receiver]
        segs = c["segs"]
        mine = [s for s in segs if s["side"] == sender]
        # first transmissions vs retransmissions of the sender's data (by sequence coverage)
        data, retx, high = [], [], None
        for s in mine:
            if s["len"] <= 0:
                continue
            start, end = rel(s["seq"], isn_s), rel(s["seq"], isn_s) + s["len"]
            if high is not None and end <= high:
                orig_seg = next(x for x in data if rel(x["seq"], isn_s) == start)
                retx.append(dict(frame=s["frame"], copy_of_frame=orig_seg["frame"],
                                 relative_seq=start, len=s["len"]))
            else:
                if high is not None and start != high:
                    raise SystemExit("conn %d: the original capture already has a hole at %d" % (k, high))
                data.append(s)
                high = end
        gone = pick(case, data, segs, sender)
        gone_frames = {s["frame"] for s in gone}
        hole = None
        if gone:
            h0 = rel(gone[0]["seq"], isn_s)
            h1 = rel(gone[-1]["seq"], isn_s) + gone[-1]["len"]
            if h1 - h0 != sum(s["len"] for s in gone):
                raise SystemExit("conn %d: removed segments not contiguous" % k)
            # no other sender segment carries any of those bytes (no retransmission of them)
            for s in mine:
                if s["frame"] in gone_frames or s["len"] <= 0:
                    continue
                a = rel(s["seq"], isn_s)
                if a < h1 and a + s["len"] > h0:
                    raise SystemExit("conn %d: frame %d carries bytes of the hole" % (k, s["frame"]))
            # the receiver acknowledges past the hole
            acks = [s for s in segs if s["side"] == receiver and s["flags"] & 0x10
                    and h1 <= rel(s["ack"], isn_s) < 0x80000000 and s["frame"] > gone[0]["frame"]]
            if not acks:
                raise SystemExit("conn %d: nobody acknowledges past the hole" % k)
            kept_before = [s for s in mine if s["frame"] < gone[0]["frame"] and s["frame"] not in gone_frames]
            kept_after = [s for s in mine if s["frame"] > gone[-1]["frame"] and s["frame"] not in gone_frames]
            nxt = kept_after[0] if kept_after else None
            if case == "before_fin" and not (nxt and nxt["flags"] & 0x01 and rel(nxt["seq"], isn_s) == h1):
                raise SystemExit("conn %d: the segment after the hole is not the FIN at its end" % k)
            if case == "before_rst" and not (nxt and nxt["flags"] & 0x04 and rel(nxt["seq"], isn_s) == h1
                                             and acks[0]["frame"] < nxt["frame"]):
                raise SystemExit("conn %d: not an RST at the hole's end after the peer's ACK of it" % k)
            if case == "start" and h0 != 1:
                raise SystemExit("conn %d: the first data segment is not at ISN + 1" % k)
            if case == "end" and any(s["len"] > 0 or s["flags"] & 0x05 for s in kept_after):
                raise SystemExit("conn %d: the sender sent more after the end hole" % k)
            hole = dict(direction=DIRNAME[d], relative_seq_first=h0, relative_seq_end=h1,
                        bytes=h1 - h0, original_frames_around=dict(
                            last_sender_segment_before=kept_before[-1]["frame"] if kept_before else None,
                            first_sender_segment_after=nxt["frame"] if nxt else None,
                            first_sender_segment_after_is=(flag_names(nxt["flags"]) + (" data" if nxt["len"] else ""))
                            if nxt else None,
                            first_ack_past_hole=acks[0]["frame"],
                            first_ack_past_hole_relative_ack=rel(acks[0]["ack"], isn_s)))
        lost = sum(s["len"] for s in gone)
        removed = [dict(original_frame=s["frame"], direction=DIRNAME[d], ts=round(s["ts"], 6),
                        seq=s["seq"], relative_seq=rel(s["seq"], isn_s), len=s["len"],
                        flags=flag_names(s["flags"])) for s in gone]
        removed_all.extend(removed)
        f = dict(incarnation=1, client_ip=c["client"][0], client_port=c["client"][1],
                 server_ip=c["server"][0], server_port=c["server"][1], client_isn=c["isn"]["client"])
        f.update(verdicts(d, mode))
        f.update(capture_loss=lost > 0, capture_loss_bytes=lost,
                 capture_loss_bytes_c2s=lost if d == "c2s" else 0,
                 capture_loss_bytes_s2c=lost if d == "s2c" else 0,
                 case=case, scenario="edge_peer.py %s %s" % (d, mode), server_isn=c["isn"]["server"],
                 sender_data_segments_in_original=len(data),
                 sender_payload_bytes_written=sum(s["len"] for s in data),
                 removed_frames=removed, hole=hole, retransmissions_in_original=retx,
                 note=CASE_TEXT[case])
        if mode == "hold":
            f["kernel_did"] = dict(note="after the capture stopped, the client closed first and "
                                        "the server on EOF (ss: the client holds this 4-tuple in "
                                        "TIME_WAIT); none of it is in the capture")
        flows.append(f)
    # cut with editcap (the listed records are deleted), then check the result
    frames = sorted(r["original_frame"] for r in removed_all)
    cmd = ["editcap", "-F", "pcap", orig, out] + [str(n) for n in frames]
    subprocess.run(cmd, check=True)
    n2, rows2 = segments(out)
    if n2 != nframes - len(frames):
        raise SystemExit("editcap left %d frames, expected %d" % (n2, nframes - len(frames)))
    kept = [r for r in rows if r["frame"] not in set(frames)]
    key = lambda r: (r["ts"], r["src"], r["sport"], r["seq"], r["ack"], r["flags"], r["len"])
    if [key(r) for r in kept] != [key(r) for r in rows2]:
        raise SystemExit("the cut capture is not the original minus the removed frames")

    def new_no(n):
        return None if n is None else n - sum(1 for x in frames if x < n)

    for f in flows:
        if f["hole"]:
            a = f["hole"]["original_frames_around"]
            f["hole"]["frames_around_in_this_capture"] = {
                k: new_no(v) for k, v in a.items() if k.endswith(("before", "after", "hole"))}
        for r in f["retransmissions_in_original"]:
            r["frame_in_this_capture"] = new_no(r["frame"])
            r["copy_of_frame_in_this_capture"] = new_no(r["copy_of_frame"])
    for f in flows:
        for r in f["retransmissions_in_original"]:
            r["note"] = ("same sequence number and length as copy_of_frame: the sender sent it "
                         "again (its nstat TcpRetransSegs counts it); bytes the capture already "
                         "saw, so no loss")
    obs = observations(syncdir)
    kc = dict(client=counters(obs, "client_nstat"), server=counters(obs, "server_nstat"))
    nretx = sum(len(f["retransmissions_in_original"]) for f in flows)
    if kc[sender]["TcpRetransSegs"] != nretx or kc[receiver]["TcpRetransSegs"] != 0:
        raise SystemExit("retransmissions: %d in the capture, nstat %s" % (nretx, kc))
    with open(orig, "rb") as fh:
        sha = hashlib.sha256(fh.read()).hexdigest()
    total = sum(f["capture_loss_bytes"] for f in flows)
    how = ("make_edge_samples.sh s_%s: client netns tdedge-cli (veth tdedge-c0, 198.18.0.1) <-> "
           "server netns tdedge-srv (veth tdedge-s0, 198.18.0.2), server port 8080. The REAL "
           "kernels made %d connections in a row (captures/make/edge_peer.py %s, modes %s: TCP_NODELAY, "
           "the %s writes 10 x 200 bytes 10 ms apart, one segment each, except the issue's example "
           "1000 + 1000 + 902), captured with tcpdump -s 0 on tdedge-c0; the capture was stopped "
           "while the last connection was still open. Then frames were REMOVED AFTER THE FACT: "
           "`editcap -F pcap original.pcap %s.pcap %s` (editcap deletes the listed records; frame "
           "numbers of the original). Each connection has one case (its 'case' and 'note'); "
           "'removed_frames' lists what was cut (original frame numbers, direction, relative "
           "sequence number, payload bytes); capture_loss_bytes is their payload summed per "
           "connection (per direction in capture_loss_bytes_c2s / _s2c, not yet columns). The "
           "removed segments reached the receiver (it acknowledged them; the sender's nstat "
           "TcpRetransSegs is %d, the retransmissions the capture shows); the one retransmission (case retransmission_only: iptables "
           "in the receiver's netns dropped the 150-byte segment once, after the tap) is a "
           "retransmission of data the capture saw, not a loss."
           % (os.path.basename(out)[:-5], len(conns), d, " ".join(m for _, m in cases), sender,
              os.path.basename(out)[:-5], " ".join(map(str, frames)), nretx))
    doc = dict(capture=os.path.basename(out), how=how + " Kernel " + kernel +
               ". Script: captures/make/make_edge_samples.sh.", kernel=kernel,
               removed_by="editcap -F pcap (frames deleted after the capture)",
               original_capture=dict(frames=nframes, sha256=sha, removed_frames=frames),
               capture_loss_bytes_total=total,
               capture_loss_bytes_by_direction={DIRNAME[d]: total,
                                                DIRNAME["c2s" if d == "s2c" else "s2c"]: 0},
               flows=flows, kernel_counters=kc, kernel_observations=obs)
    ws = wireshark_view(out)
    if ws:
        doc["wireshark_view"] = ws
    write(out_json, doc)


def wireshark_view(path):
    """A second opinion, not the truth: the frames of the cut capture tshark's TCP analysis flags."""
    filt = ("tcp.analysis.lost_segment or tcp.analysis.ack_lost_segment or "
            "tcp.analysis.retransmission or tcp.analysis.fast_retransmission or "
            "tcp.analysis.out_of_order")
    try:
        out = subprocess.run(["tshark", "-r", path, "-Y", filt, "-T", "fields", "-e", "frame.number",
                              "-e", "_ws.expert.message"], capture_output=True, text=True, check=True)
        ver = subprocess.run(["tshark", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    except (OSError, subprocess.CalledProcessError):
        return None
    rows = [ln.split("\t", 1) for ln in out.stdout.splitlines() if ln.strip()]
    return dict(tool=ver, display_filter=filt,
                frames=["%s: %s" % (r[0], r[1] if len(r) > 1 else "") for r in rows])


# ---------------------------------------------------------------- handshake samples
NSTAT_KEYS = ("TcpActiveOpens", "TcpPassiveOpens", "TcpAttemptFails", "TcpInSegs", "TcpOutSegs",
              "TcpOutRsts", "TcpExtEmbryonicRsts", "TcpRetransSegs")


def counters(obs, name):
    """Absolute nstat counters of a fresh netns (so: what happened in this run), 0 when absent."""
    got = {}
    for ln in obs.get(name, []):
        parts = ln.split()
        if len(parts) >= 2 and parts[0] in NSTAT_KEYS:
            got[parts[0]] = int(parts[1])
    return {k: got.get(k, 0) for k in NSTAT_KEYS}


def iptables_pkts(obs, name):
    return [int(ln.split()[0]) for ln in obs.get(name, []) if ln.split() and ln.split()[0].isdigit()]


def handshake(stem, cap, out_json, syncdir, kernel):
    _, rows = segments(cap)
    conns = connections(rows)
    obs = observations(syncdir)
    kc = dict(client=counters(obs, "client_nstat"), server=counters(obs, "server_nstat"))
    kc_before = dict(client=counters(obs, "client_nstat_before_crafted"),
                     server=counters(obs, "server_nstat_before_crafted"))
    if stem == "handshake_reset":
        if kc["client"]["TcpOutRsts"] != 1 or kc["server"]["TcpExtEmbryonicRsts"] != 1 \
                or kc["server"]["TcpPassiveOpens"] != 0:
            raise SystemExit("handshake_reset: unexpected counters %s" % kc)
    else:
        if iptables_pkts(obs, "client_iptables_counters") != [0] or \
                kc["client"]["TcpOutSegs"] != kc_before["client"]["TcpOutSegs"]:
            raise SystemExit("handshake_gave_up: the client kernel took part %s" % kc)
    flows = []
    for c in conns:
        segs = c["segs"]
        desc = ["%d %s %s seq=%d ack=%d" % (s["frame"], s["side"], flag_names(s["flags"]), s["seq"], s["ack"])
                for s in segs]
        isn = c["isn"].get("client")
        f = dict(incarnation=1, client_ip=c["client"][0], client_port=c["client"][1],
                 server_ip=c["server"][0], server_port=c["server"][1], client_isn=isn)
        if stem == "handshake_gave_up" and c["client"][1] not in GAVE_UP_PORTS:
            # the real connection made first (peer.py 'basic'): not crafted
            f.update(CF, fin_retransmissions_client=0, fin_retransmissions_server=0,
                     note="a real connection first (peer.py 'basic': 'PING 1', 'PONG 1', the "
                          "client closes first), before the DROP rule: the capture shows that the "
                          "server host's segments reach the client on this path")
        elif stem == "handshake_gave_up":
            syns = [s for s in segs if s["side"] == "client" and s["flags"] == 0x02]
            rsts = [s for s in segs if s["flags"] & 0x04]
            if (any(s["side"] == "server" for s in segs) or len(rsts) != 1 or rsts[0]["side"] != "client"
                    or rsts[0]["seq"] != (isn + 1) & M32 or rsts[0]["flags"] & 0x10 or segs[-1] is not rsts[0]):
                raise SystemExit("handshake_gave_up: unexpected segments %s" % desc)
            f.update(handshake="syn_only", close_kind="unanswered", active_closer="none",
                     first_fin_by="none", first_rst_by="client", time_wait_on="none",
                     tw_assassination=False, reuses_tuple_in_time_wait=False, reuse_verdict=None,
                     crafted=["SYN", "RST"],
                     syn_sent=len(syns), rst_relative_seq=1,
                     note="%d SYN(s) with the same ISN, then the client's RST (seq = ISN + 1, no ACK "
                          "flag) %.3f s after the first SYN; nothing from the server (its netns "
                          "dropped the SYNs). The SYN%s and the RST are CRAFTED (scapy raw socket in "
                          "the client netns): Linux sends no RST when it closes a socket in SYN-SENT."
                          " The client kernel sent no TCP segment during the crafted attempts (nstat "
                          "TcpOutSegs %d before them, %d after) and received none (its INPUT DROP "
                          "rule counted %d)"
                          % (len(syns), rsts[0]["ts"] - syns[0]["ts"], "s" if len(syns) > 1 else "",
                             kc_before["client"]["TcpOutSegs"], kc["client"]["TcpOutSegs"],
                             iptables_pkts(obs, "client_iptables_counters")[0]))
        else:
            kinds = [(s["side"], s["flags"]) for s in segs]
            if kinds != [("client", 0x02), ("server", 0x12), ("client", 0x04)]:
                raise SystemExit("handshake_reset: unexpected segments %s" % desc)
            syn, synack, rst = segs
            if synack["ack"] != (isn + 1) & M32 or rst["seq"] != synack["ack"]:
                raise SystemExit("handshake_reset: numbers do not chain %s" % desc)
            f.update(close_kind="handshake_reset", active_closer="none", first_fin_by="none",
                     first_rst_by="client", time_wait_on="none", not_handshake=["complete"],
                     tw_assassination=False, reuses_tuple_in_time_wait=False, reuse_verdict=None,
                     server_isn=c["isn"]["server"], crafted=["SYN"],
                     synack_frame=synack["frame"], rst_frame=rst["frame"],
                     rst_seq=rst["seq"], rst_flags="R (no ACK)",
                     note="the SYN is CRAFTED (scapy raw socket, random ISN, no local socket owns "
                          "it); the server's REAL kernel answered SYN-ACK; the client's REAL kernel "
                          "answered that SYN-ACK with an RST (seq = the SYN-ACK's ack number, no ACK "
                          "flag: RFC 9293 §3.10.7.1, no socket for the segment). No third segment: "
                          "the handshake never completed (client nstat TcpOutRsts %d; server nstat "
                          "TcpPassiveOpens %d, TcpExtEmbryonicRsts %d, TcpAttemptFails %d), so "
                          "'complete' is ruled out"
                          % (kc["client"]["TcpOutRsts"], kc["server"]["TcpPassiveOpens"],
                             kc["server"]["TcpExtEmbryonicRsts"], kc["server"]["TcpAttemptFails"]))
        f["segments"] = desc
        flows.append(f)
    if stem == "handshake_gave_up":
        how = ("make_edge_samples.sh s_handshake_gave_up: client netns tdedge-cli (veth tdedge-c0, "
               "198.18.0.1) <-> server netns tdedge-srv (tdedge-s0, 198.18.0.2), a listener on "
               "8080 (peer.py 'listen'). First a real connection (peer.py 'basic', the client "
               "closes first) so that the capture shows the path back to the client. Then a client "
               "that gives up on an unanswered SYN with an RST. "
               "The segments are CRAFTED with scapy (captures/make/handshake_craft.py gave_up, L3 "
               "raw socket in the client netns): the Linux kernel sends no RST when it closes a "
               "socket in SYN-SENT, other stacks and scanners do (Zeek's RSTOS0). Two attempts: "
               "from port %d a SYN then the RST 0.5 s later; from port %d a SYN, the same SYN again "
               "1.0 s later, the RST at 1.5 s. The RST has seq = ISN + 1 and no ACK flag. Rules: "
               "server netns `iptables -A INPUT -p tcp --dport 8080 --syn -j DROP` (the SYNs get no "
               "answer; the RSTs pass and the listener discards them silently); client netns "
               "`iptables -A INPUT -p tcp -s 198.18.0.2 --sport 8080 -j DROP` so that the client "
               "kernel, which owns no socket for the crafted port, could never answer a stray "
               "segment from the server (the counters show none came). tcpdump -s 0 on tdedge-c0."
               % tuple(GAVE_UP_PORTS))
    else:
        how = ("make_edge_samples.sh s_handshake_reset: client netns tdedge-cli (veth tdedge-c0, "
               "198.18.0.1) <-> server netns tdedge-srv (tdedge-s0, 198.18.0.2), a listener on 8080 "
               "(peer.py 'listen', never accepts). One SYN CRAFTED with scapy "
               "(captures/make/handshake_craft.py syn, L3 raw socket in the client netns, port %d, "
               "random ISN); no iptables rule anywhere. The server's real kernel answers SYN-ACK; "
               "the client's real kernel owns no socket for it and answers with an RST "
               "(seq = the SYN-ACK's ack); the server's kernel drops the embryonic connection. "
               "A SYN-ACK answered by an RST, no third segment. tcpdump -s 0 on tdedge-c0."
               % RESET_PORT)
    doc = dict(capture=os.path.basename(cap), how=how + " Kernel " + kernel +
               ". Script: captures/make/make_edge_samples.sh.", kernel=kernel, crafted=True,
               flows=flows, kernel_counters=kc, kernel_observations=obs)
    if stem == "handshake_gave_up":
        if kc["server"]["TcpOutSegs"] != kc_before["server"]["TcpOutSegs"]:
            raise SystemExit("handshake_gave_up: the server sent something %s %s" % (kc_before, kc))
        doc["kernel_counters_before_crafted"] = kc_before
        doc["kernel_counters_note"] = (
            "between the two readings the client kernel's TCP sent and received nothing (the SYNs "
            "and RSTs went by a raw socket); the server's TcpInSegs rose by %d: the %d crafted "
            "RSTs reached its TCP (the listener drops an RST silently, TcpOutSegs unchanged), "
            "the SYNs were dropped before it (iptables)"
            % (kc["server"]["TcpInSegs"] - kc_before["server"]["TcpInSegs"], len(GAVE_UP_PORTS)))
    write(out_json, doc)


GAVE_UP_PORTS = (47200, 47201)   # as in make_edge_samples.sh
RESET_PORT = 47100


# ---------------------------------------------------------------- common
def observations(syncdir):
    obs = {}
    for path in sorted(glob.glob(os.path.join(syncdir, "obs_*.txt"))):
        with open(path) as fh:
            lines = [ln.rstrip() for ln in fh if ln.strip()]
        name = os.path.basename(path)[4:-4]
        if "_nstat" in name:   # keep the TCP counters, not the whole MIB
            lines = [ln for ln in lines if ln.startswith(("#", "Tcp")) or "Rst" in ln or "Retrans" in ln]
        obs[name] = lines
    for extra in ("client.log", "crafted.txt"):
        path = os.path.join(syncdir, extra)
        if os.path.exists(path):
            with open(path) as fh:
                obs[extra.split(".")[0]] = [ln.rstrip() for ln in fh if ln.strip()]
    return obs


def write(path, doc):
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")


def main():
    what = sys.argv[1]
    if what == "modes":
        print(" ".join(m for _, m in CASES[sys.argv[2]]))
    elif what == "loss":
        loss(*sys.argv[2:8])
    elif what in ("handshake_gave_up", "handshake_reset"):
        handshake(what, *sys.argv[2:6])
    else:
        raise SystemExit("unknown " + what)


if __name__ == "__main__":
    main()
