#!/usr/bin/env python3
"""Write captures/points/points.truth.json for the two-point sample of make_points_samples.sh.

    points_truth.py CLIENT_SIDE SERVER_SIDE_UNSHIFTED SERVER_SIDE OFFSET OUT.json SYNCDIR KERNEL

The verdicts come from how the run was made (points_peer.py: who closes first, which segments
the router drops) and from the kernels (ss, nstat, the iptables counters recorded in SYNCDIR);
nothing here reads teardown's output. The captures, read with tshark, give the numbers (ports,
ISNs, sequence numbers, frame numbers) and are first checked against the plan: the segments one
capture holds and the other lacks must be exactly the planned drops, each counted once by its
DROP rule; every TIME_WAIT the plan implies must be listed by ss; the server-side file must be
the unshifted capture record for record with every timestamp exactly OFFSET later. A run that
did not go as planned is refused, not written.
"""
import hashlib
import json
import os
import re
import struct
import sys
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import points_peer as plan  # noqa: E402  (CONNECTIONS, DROPS, closer, port, drop_comment)
import truth  # noqa: E402  (observations: the obs_*.txt files, as every truth file lists them)

CLIENT, SERVER, SPORT = "198.18.1.1", "198.18.2.1", 8080
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
M32 = 0xFFFFFFFF
FIELDS = ["frame.number", "frame.time_epoch", "ip.src", "ip.dst", "ip.id", "ip.ttl",
          "tcp.srcport", "tcp.dstport", "tcp.flags", "tcp.seq_raw", "tcp.ack_raw", "tcp.len",
          "tcp.options.timestamp.tsval"]

HOW = (
    "captures/make/make_points_samples.sh s_points: three network namespaces on one kernel, "
    "client tdpt-cli (veth tdpt-c0, 198.18.1.1, default route via 198.18.1.254) -- router "
    "tdpt-rtr (tdpt-r1 198.18.1.254 | tdpt-r2 198.18.2.254, net.ipv4.ip_forward=1) -- server "
    "tdpt-srv (tdpt-s0, 198.18.2.1:8080). tcpdump --immediate-mode -U -s 256 tcp on tdpt-c0 in "
    "the client netns (client_side.pcap) and on tdpt-s0 in the server netns (server_side.pcap), "
    "both started before the first SYN and stopped after every connection was closed or in "
    "TIME_WAIT (ss). Endpoints captures/make/points_peer.py: 34 connections in a row, "
    "connection i from client port 41000+i, each with two requests (300 and 400 bytes) answered "
    "by 500 bytes each; even i: the client close()s first (client TIME_WAIT), odd i: the server "
    "close()s first 20 ms after its 2nd answer (server TIME_WAIT). The router's FORWARD chain "
    "drops ten segments once each (iptables rules printed by points_peer.py rules, -m recent so "
    "that only the first copy is dropped; their counters are in kernel_observations."
    "iptables_counters): the client's final ACK of 4 connections (the server, in LAST_ACK, sends "
    "its FIN again and the client answers from TIME_WAIT), 3 FINs, 3 request segments; the "
    "senders retransmit. A segment the client sent and the router dropped is in client_side.pcap "
    "and not in server_side.pcap; one the server sent, the other way round. Afterwards the "
    "server-side file's clock was shifted with `editcap -t 3.2` (the namespaces share one "
    "kernel clock, so the offset between the two points is made in the file, not in a clock): "
    "server_side.pcap times are the kernel's + 3.2 s, every record otherwise unchanged.")


def tshark(path):
    segs = []
    for v in truth.tshark_fields(path, FIELDS):
        segs.append(dict(frame=int(v[0]), ts=Decimal(v[1]), src=v[2], dst=v[3], ipid=int(v[4], 16),
                         ttl=int(v[5]), sport=int(v[6]), dport=int(v[7]), flags=int(v[8], 16),
                         seq=int(v[9]), ack=int(v[10]), len=int(v[11]),
                         tsval=int(v[12]) if v[12] else None))
    return segs


def key(s):
    """A segment's identity at both points: all the router leaves unchanged (TTL and the IP
    checksum change; the IPv4 id, TCP header fields and length do not)."""
    return (s["src"], s["sport"], s["dst"], s["dport"], s["flags"], s["seq"], s["ack"], s["len"],
            s["ipid"], s["tsval"])


def pcap_records(path):
    """(ts_sec, ts_usec, record bytes) of a little- or big-endian microsecond pcap."""
    with open(path, "rb") as fh:
        data = fh.read()
    magic = data[:4]
    end = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">"}.get(magic)
    if end is None:
        raise SystemExit("%s: not a microsecond pcap" % path)
    recs, off = [], 24
    while off < len(data):
        sec, usec, incl, orig = struct.unpack(end + "IIII", data[off:off + 16])
        recs.append((sec, usec, orig, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return data[:24], recs


def check_shift(unshifted, shifted, offset):
    h0, a = pcap_records(unshifted)
    h1, b = pcap_records(shifted)
    step = int(Decimal(offset) * 1000000)
    if h0 != h1 or len(a) != len(b):
        raise SystemExit("server side: editcap changed the file header or the record count")
    for x, y in zip(a, b):
        if x[2:] != y[2:] or (y[0] * 1000000 + y[1]) - (x[0] * 1000000 + x[1]) != step:
            raise SystemExit("server side: a record is not the unshifted one %s s later" % offset)
    return len(a)


def sha256(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def by_port(segs):
    conns = {}
    for s in segs:
        p = s["sport"] if s["src"] == CLIENT else s["dport"]
        conns.setdefault(p, []).append(s)
    return conns


def c2s(s):
    return s["src"] == CLIENT


def pure_ack(s):
    return s["flags"] == ACK and s["len"] == 0


def planned_segment(i, what, direction, cs, ss):
    """The segment each DROPS entry names, found in the sending side's capture."""
    p = plan.port(i)
    if what == "final_ack":   # the first pure ACK from the client after its own FIN
        segs = cs[p]
        k = next(n for n, s in enumerate(segs) if c2s(s) and s["flags"] & FIN)
        return next(s for s in segs[k + 1:] if c2s(s) and pure_ack(s))
    segs = cs[p] if direction == "c2s" else ss[p]
    mine = [s for s in segs if c2s(s) == (direction == "c2s")]
    if what == "fin":
        return next(s for s in mine if s["flags"] & FIN)
    size = {"request1": plan.REQUEST1_BYTES, "request2": plan.REQUEST2_BYTES}[what]
    return next(s for s in mine if s["len"] == size)


def later_copies(segs, seg, same_side):
    """Later segments from the same sender carrying the same sequence number and flags."""
    return [s for s in segs if s["ts"] > seg["ts"] and c2s(s) == same_side and s["seq"] == seg["seq"]
            and s["flags"] == seg["flags"] and s["len"] == seg["len"]]


def retransmissions(segs):
    """Frames re-sending sequence space (SYN, data or FIN) already sent, per sender."""
    out = dict(client=[], server=[])
    seen = set()
    for s in segs:
        if not (s["len"] or s["flags"] & (SYN | FIN)):
            continue
        k = (c2s(s), s["seq"], s["flags"] & (SYN | FIN), s["len"])
        if k in seen:
            out["client" if c2s(s) else "server"].append(s["frame"])
        seen.add(k)
    return out


def fins(segs, side_is_client):
    return [s for s in segs if s["flags"] & FIN and c2s(s) == side_is_client]


def view(segs):
    """What one capture shows of a connection (the fields of docs/rules.md that differ between
    the two points), read from the frames the plan says are there."""
    cf, sf = fins(segs, True), fins(segs, False)
    v = dict(frame_range=[segs[0]["frame"], segs[-1]["frame"]], packets=len(segs),
             packets_c2s=sum(1 for s in segs if c2s(s)), packets_s2c=sum(1 for s in segs if not c2s(s)),
             fin_retransmissions_client=len(cf) - 1, fin_retransmissions_server=len(sf) - 1,
             retransmitted_frames=retransmissions(segs))
    first = min(cf[0]["frame"], sf[0]["frame"])
    v["first_fin_by"] = "client" if cf[0]["frame"] == first else "server"
    v["first_fin_frame"] = first
    again = {}
    for side, fl in (("client", cf), ("server", sf)):
        if len(fl) > 1:   # is the peer's ACK of that FIN in this capture before the FIN's last copy?
            peer_acks = [s for s in segs if c2s(s) != (side == "client") and s["flags"] & ACK
                         and s["ack"] == (fl[0]["seq"] + 1) & M32 and s["frame"] < fl[-1]["frame"]]
            again[side] = dict(fin_frames=[s["frame"] for s in fl],
                               peer_ack_before_last_copy=bool(peer_acks),
                               peer_ack_frames=[s["frame"] for s in peer_acks])
    if again:
        v["fin_sent_again"] = again
    if len(again) == 1:   # the column speaks of one FIN sent again; with both it would be ambiguous
        v["final_ack_lost_after_capture"] = next(iter(again.values()))["peer_ack_before_last_copy"]
    return v


def describe(s, isn):
    what = "%d bytes" % s["len"] if s["len"] else ""
    if s["flags"] & FIN:
        what = (what + " + FIN") if what else "FIN"
    return "%s at relative seq %d" % (what, (s["seq"] - isn) & M32)


def notes(f, c, s):
    """Plain words on each drop, and on every retransmission the captures show that is not the
    resending of a dropped segment (each must be explained by a drop, or the run is refused)."""
    out, planned = [], dict(client=set(), server=set())
    for d in f["dropped"]:
        here = "client_side" if d["direction"] == "c2s" else "server_side"
        gone = "server_side" if here == "client_side" else "client_side"
        if d["what"] == "final_ack":
            planned["server"].add(d["fin_again_frames"]["server_side"])
            out.append("the client's final ACK (%s frame %d) was dropped by the router, so it is not in "
                       "%s; the server sent its FIN again (client_side frame %d, server_side %d) and "
                       "the client answered it from TIME_WAIT (client_side frame %d, server_side %d)"
                       % (here, d[here + "_frame"], gone, d["fin_again_frames"]["client_side"],
                          d["fin_again_frames"]["server_side"], d["second_ack_frames"]["client_side"],
                          d["second_ack_frames"]["server_side"]))
        else:
            planned[d["sent_by"]].add(d["retransmission_frames"][here])
            out.append("the %s's %s (%s frame %d) was dropped by the router, so it is not in %s; "
                       "the %s sent it again %s s later (client_side frame %d, server_side %d)"
                       % (d["sent_by"], "FIN" if d["what"] == "fin" else "%s (%d bytes)" % (
                           d["what"].replace("request", "request "), d["payload_bytes"]),
                          here, d[here + "_frame"], gone, d["sent_by"],
                          d["retransmission_after_s"], d["retransmission_frames"]["client_side"],
                          d["retransmission_frames"]["server_side"]))
    f["other_retransmissions"] = []
    for side, segs, peer_segs in (("client", c, s), ("server", s, c)):
        view_name = "client_side" if side == "client" else "server_side"
        isn = f["client_isn"] if side == "client" else f["server_isn"]
        for frame in f[view_name]["retransmitted_frames"][side]:
            if frame in planned[side]:
                continue
            r = next(x for x in segs if x["frame"] == frame)
            end = (r["seq"] + r["len"] + (1 if r["flags"] & FIN else 0)) & M32
            why = [d for d in f["dropped"] if d["sent_by"] != side and d["ack_raw"] == end]
            if not why:
                raise SystemExit("port %d: %s frame %d is a retransmission no drop explains"
                                 % (f["client_port"], view_name, frame))
            other = next((x["frame"] for x in peer_segs if key(x) == key(r)), None)
            f["other_retransmissions"].append(dict(
                sent_by=side, segment=describe(r, isn), client_side_frame=frame if side == "client" else other,
                server_side_frame=frame if side == "server" else other, because_dropped=why[0]["what"]))
            out.append("the dropped %s also carried the %s's ACK of the %s's %s, so the %s sent that "
                       "again too (client_side frame %s, server_side %s); in %s_side it repeats "
                       "a segment already delivered and acknowledged there"
                       % ("FIN" if why[0]["what"] == "fin" else why[0]["what"], why[0]["sent_by"], side,
                          describe(r, isn), side, frame if side == "client" else other,
                          frame if side == "server" else other, why[0]["sent_by"]))
    return out


def parse_counters(lines):
    """{comment: packets} from `iptables -vnxL FORWARD`."""
    out = {}
    for ln in lines:
        m = re.match(r"\s*(\d+)\s+\d+\s+\S+.*/\* (.*) \*/", ln)
        if m:
            out[m.group(2)] = int(m.group(1))
    return out


def nstat(lines):
    out = {}
    for ln in lines:
        f = ln.split()
        if len(f) >= 2 and f[1].isdigit():
            out[f[0]] = int(f[1])
    return out


def ss_ports(lines, local):
    """Ports of the TIME_WAIT sockets in `ss -tanoH state time-wait` lines (the client's local
    port, or on the server the peer's port)."""
    ports = set()
    for ln in lines:
        if ln.startswith("#"):
            continue
        f = ln.split()
        ports.add(int(f[2 if local else 3].rsplit(":", 1)[1]))
    return ports


def main():
    client_cap, unshifted, server_cap, offset, out, syncdir, kernel = sys.argv[1:8]
    records = check_shift(unshifted, server_cap, offset)
    cseg, sseg_raw, sseg = tshark(client_cap), tshark(unshifted), tshark(server_cap)
    step = Decimal(offset)
    if [s["ts"] + step for s in sseg_raw] != [s["ts"] for s in sseg]:
        raise SystemExit("server side: tshark's times are not the unshifted ones + %s" % offset)
    cs, ss = by_port(cseg), by_port(sseg)
    ports = [plan.port(i) for i in range(plan.CONNECTIONS)]
    if sorted(cs) != ports or sorted(ss) != ports:
        raise SystemExit("the captures do not hold exactly the planned client ports")
    obs = truth.observations(syncdir)

    # what one point holds and the other lacks: exactly the planned drops
    ckeys, skeys = {key(s) for s in cseg}, {key(s) for s in sseg}
    lost_c2s = [s for s in cseg if c2s(s) and key(s) not in skeys]
    lost_s2c = [s for s in sseg if not c2s(s) and key(s) not in ckeys]
    extra = [s for s in sseg if c2s(s) and key(s) not in ckeys] + \
            [s for s in cseg if not c2s(s) and key(s) not in skeys]
    if extra:
        raise SystemExit("segments received that the other point never saw sent: %s" % extra)
    counters = parse_counters(obs["iptables_counters"])
    planned = {}
    for i, drops in plan.DROPS.items():
        for what, direction in drops:
            seg = planned_segment(i, what, direction, cs, ss)
            planned[key(seg)] = (i, what, direction)
            if counters.get(plan.drop_comment(i, what, direction)) != 1:
                raise SystemExit("DROP rule %r counted %s, not 1"
                                 % (plan.drop_comment(i, what, direction),
                                    counters.get(plan.drop_comment(i, what, direction))))
    if {key(s) for s in lost_c2s + lost_s2c} != set(planned) or len(lost_c2s + lost_s2c) != 10:
        raise SystemExit("missing segments %s are not the planned drops"
                         % [(s["sport"], s["dport"], s["flags"], s["len"]) for s in lost_c2s + lost_s2c])

    tw_client = ss_ports(obs["client_time_wait"], True)
    tw_server = ss_ports(obs["server_time_wait"], False)
    cn, sn = nstat(obs["client_nstat"]), nstat(obs["server_nstat"])

    flows, dropped_all = [], []
    for i in range(plan.CONNECTIONS):
        p = plan.port(i)
        who = plan.closer(i)
        c, s = cs[p], ss[p]
        syn = [x for x in c if x["flags"] == SYN]
        synack = [x for x in c if x["flags"] == SYN | ACK]
        if len(syn) != 1 or len(synack) != 1:
            raise SystemExit("port %d: %d SYNs, %d SYN-ACKs at the client side" % (p, len(syn), len(synack)))
        tw_seen = {"client"} if p in tw_client else set()
        tw_seen |= {"server"} if p in tw_server else set()
        if tw_seen != {who}:
            raise SystemExit("port %d: ss lists TIME_WAIT on %s, the plan says %s" % (p, tw_seen, who))
        s_syn = next(x for x in s if x["flags"] == SYN)
        s_synack = next(x for x in s if x["flags"] == SYN | ACK)
        f = dict(index=i, client_ip=CLIENT, client_port=p, server_ip=SERVER, server_port=SPORT,
                 client_isn=syn[0]["seq"], server_isn=synack[0]["seq"],
                 requests=2, bytes_c2s=plan.REQUEST1_BYTES + plan.REQUEST2_BYTES,
                 bytes_s2c=2 * plan.RESPONSE_BYTES,
                 handshake="complete", close_kind="fin", active_closer=who, first_fin_by=who,
                 first_rst_by="none", time_wait_on=who, half_close=False, capture_loss=False,
                 ss_time_wait_on=sorted(tw_seen)[0],
                 syn_frames=dict(client_side=syn[0]["frame"], server_side=s_syn["frame"]),
                 syn_ts=dict(client_side=str(syn[0]["ts"]), server_side=str(s_syn["ts"])))
        if (s_syn["seq"], s_synack["seq"]) != (f["client_isn"], f["server_isn"]):
            raise SystemExit("port %d: the ISNs differ between the points" % p)
        drops = []
        for what, direction in plan.DROPS.get(i, []):
            seg = planned_segment(i, what, direction, cs, ss)
            sender_is_client = direction == "c2s"
            sent_in, other = (c, s) if sender_is_client else (s, c)
            isn = f["client_isn"] if sender_is_client else f["server_isn"]
            d = dict(what=what, direction=direction, sent_by="client" if sender_is_client else "server",
                     iptables_rule=plan.drop_comment(i, what, direction),
                     iptables_drop_count=counters[plan.drop_comment(i, what, direction)],
                     flags="0x%03x" % seg["flags"], seq_raw=seg["seq"], seq_rel=(seg["seq"] - isn) & M32,
                     ack_raw=seg["ack"], payload_bytes=seg["len"], ipv4_id=seg["ipid"], tsval=seg["tsval"],
                     client_side_frame=seg["frame"] if sender_is_client else None,
                     server_side_frame=None if sender_is_client else seg["frame"])
            if what == "final_ack":
                fin = next(x for x in s if not c2s(x) and x["flags"] & FIN)
                again = later_copies(s, fin, False)
                if not again:
                    raise SystemExit("port %d: the server's FIN was not sent again" % p)
                cfin = next(x for x in c if key(x) == key(again[0]))
                reack = [x for x in s if c2s(x) and pure_ack(x) and x["ts"] > again[0]["ts"]
                         and x["ack"] == fin["seq"] + 1]
                creack = next(x for x in c if key(x) == key(reack[0]))
                d["answer"] = ("the server (LAST_ACK) sent its FIN again; the client answered it "
                               "from TIME_WAIT with a second ACK")
                d["fin_again_frames"] = dict(client_side=cfin["frame"], server_side=again[0]["frame"])
                d["second_ack_frames"] = dict(client_side=creack["frame"], server_side=reack[0]["frame"])
                d["server_fin_frames"] = dict(
                    client_side=next(x for x in c if key(x) == key(fin))["frame"], server_side=fin["frame"])
            else:
                copies = later_copies(sent_in, seg, sender_is_client)
                if not copies:
                    raise SystemExit("port %d: %s was not retransmitted" % (p, what))
                d["answer"] = "the %s retransmitted it" % d["sent_by"]
                d["retransmission_frames"] = dict(
                    client_side=next(x for x in c if key(x) == key(copies[0]))["frame"],
                    server_side=next(x for x in s if key(x) == key(copies[0]))["frame"])
                d["retransmission_after_s"] = str(copies[0]["ts"] - seg["ts"])
            drops.append(d)
            dropped_all.append(dict(client_port=p, **{k: d[k] for k in (
                "what", "direction", "client_side_frame", "server_side_frame")}))
        f["dropped"] = drops
        f["time_wait_restarts"] = sum(1 for what, _ in plan.DROPS.get(i, []) if what == "final_ack")
        f["client_side"] = view(c)
        f["server_side"] = view(s)
        f["notes"] = notes(f, c, s)
        for side in ("client_side", "server_side"):
            if f[side]["first_fin_by"] != who:
                raise SystemExit("port %d: %s shows the first FIN from %s" % (p, side, f[side]["first_fin_by"]))
        flows.append(f)

    # the kernels' retransmission counts against what the captures show
    rc = sum(len(f["client_side"]["retransmitted_frames"]["client"]) for f in flows)
    rs = sum(len(f["server_side"]["retransmitted_frames"]["server"]) for f in flows)
    if (rc, rs) != (cn.get("TcpRetransSegs", 0), sn.get("TcpRetransSegs", 0)):
        raise SystemExit("retransmissions in the captures (client %d, server %d) differ from nstat (%s, %s)"
                         % (rc, rs, cn.get("TcpRetransSegs"), sn.get("TcpRetransSegs")))
    c_syn = [Decimal(f["syn_ts"]["client_side"]) for f in flows]
    s_syn = [Decimal(f["syn_ts"]["server_side"]) for f in flows]
    transit = [b - a - step for a, b in zip(c_syn, s_syn)]
    nstat_keys = ("TcpActiveOpens", "TcpPassiveOpens", "TcpOutSegs", "TcpRetransSegs",
                  "TcpExtTCPLossProbes", "TcpExtTCPTimeouts", "TcpExtTCPLostRetransmit",
                  "TcpExtTCPSpuriousRTOs", "TcpOutRsts", "TcpEstabResets")
    doc = dict(
        captures=dict(
            client_side=dict(file="client_side.pcap", point="tdpt-c0 in the client netns (client's link)",
                             frames=len(cseg), sha256=sha256(client_cap),
                             first_ts=str(cseg[0]["ts"]), last_ts=str(cseg[-1]["ts"])),
            server_side=dict(file="server_side.pcap", point="tdpt-s0 in the server netns (server's link)",
                             frames=len(sseg), sha256=sha256(server_cap),
                             unshifted_sha256=sha256(unshifted), records_checked_shifted=records,
                             first_ts=str(sseg[0]["ts"]), last_ts=str(sseg[-1]["ts"]))),
        clock_offset_s=float(offset),
        clock_offset=dict(
            applied_to="server_side.pcap", tool="editcap -t %s" % offset,
            meaning="server_side.pcap time = the kernel's time + %s s; subtract it to put both files "
                    "on one clock" % offset,
            exact=("every record of server_side.pcap is the unshifted capture's record with its "
                   "timestamp exactly %d us later (checked record by record)" % int(step * 1000000)),
            syn_server_minus_client_s=dict(min=str(min(b - a for a, b in zip(c_syn, s_syn))),
                                           max=str(max(b - a for a, b in zip(c_syn, s_syn)))),
            syn_transit_s=dict(min=str(min(transit)), max=str(max(transit)),
                               note="server_side SYN time - client_side SYN time - offset: "
                                    "the router's forwarding delay")),
        how=HOW + " Kernel " + kernel + ".",
        kernel=kernel,
        connections=len(flows),
        closers=dict(client=sum(1 for f in flows if f["active_closer"] == "client"),
                     server=sum(1 for f in flows if f["active_closer"] == "server")),
        dropped_segments=len(dropped_all),
        dropped=dropped_all,
        time_wait=dict(client_ss=len(tw_client), server_ss=len(tw_server),
                       client_ports=sorted(tw_client), server_peer_ports=sorted(tw_server)),
        retransmissions=dict(client_nstat_TcpRetransSegs=cn.get("TcpRetransSegs", 0),
                             server_nstat_TcpRetransSegs=sn.get("TcpRetransSegs", 0),
                             client_in_client_side=rc, server_in_server_side=rs,
                             client_nstat={k: cn.get(k, 0) for k in nstat_keys},
                             server_nstat={k: sn.get(k, 0) for k in nstat_keys}),
        flows=flows,
        kernel_observations=dict(obs, rules=[ln.rstrip() for ln in open(os.path.join(syncdir, "rules.txt"))],
                                 client_log=[ln.rstrip() for ln in open(os.path.join(syncdir, "client.log"))],
                                 server_log=[ln.rstrip() for ln in open(os.path.join(syncdir, "server.log"))]))
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
