#!/usr/bin/env python3
"""Write captures/diff/diff.truth.json for the before/after pair of make_points_samples.sh.

    diff_truth.py BEFORE.pcap SYNC_BEFORE AFTER.pcap SYNC_AFTER OUT.json KERNEL

Who closes first comes from how each run was made (diff_peer.py: "Connection: close" requests
make the server close first; keep-alive connections are closed by the client), the TIME_WAIT
counts from the kernels (ss in both namespaces right after each run, and every ~0.1 s during
it), the connection counts from the client's log; nothing here reads teardown's output. The
capture (read with tshark) gives ports, ISNs and frame numbers, and is checked against the
plan first: one SYN per connection, the first FIN from the planned side, the requests counted
in the client's segments, ss's TIME_WAIT sockets being exactly the planned ones. A run that did
not go as planned is refused, not written.
"""
import json
import os
import sys
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diff_peer  # noqa: E402  (REQUESTS)
import truth  # noqa: E402  (observations: the obs_*.txt files)

CLIENT, SERVER, PORT = "198.18.0.1", "198.18.0.2", 8080
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
FIELDS = ["frame.number", "frame.time_epoch", "ip.src", "tcp.srcport", "tcp.dstport", "tcp.flags",
          "tcp.seq_raw", "tcp.len"]

HOW = (
    "captures/make/make_points_samples.sh s_diff: the same workload of 200 HTTP/1.1 requests "
    "(GET /item/0 ... GET /item/199, sent one after the other) run twice against one server "
    "program (captures/make/diff_peer.py server: honours 'Connection: close' by answering with "
    "'Connection: close' and close()ing at once, otherwise keeps the connection for the next "
    "request until the client's EOF). Each run in fresh network namespaces: client tdpt-cli "
    "(veth tdpt-c0, 198.18.0.1) <-> server tdpt-srv (veth tdpt-s0, 198.18.0.2:8080), "
    "tcpdump --immediate-mode -U -s 256 tcp on tdpt-c0 in the client netns, started before the "
    "first SYN and stopped after every connection was closed or in TIME_WAIT. before.pcap: "
    "diff_peer.py client close: one connection per request, each with 'Connection: close', the "
    "client reads to EOF: the server closes first 200 times and holds 200 TIME_WAITs. "
    "after.pcap: diff_peer.py client keepalive:10: 20 connections of 10 requests each, then the "
    "client close()s first: 20 client TIME_WAITs, none on the server. ss counted the "
    "TIME_WAITs in both namespaces every ~0.1 s during each run (ss_time_wait_samples: wall time "
    "before, after, client count, server count) and right after it; the runs last far less than "
    "Linux's 60 s TIME_WAIT, so none expired and the peak is the count after the run.")


def tshark(path):
    segs = []
    for v in truth.tshark_fields(path, FIELDS):
        segs.append(dict(frame=int(v[0]), ts=Decimal(v[1]), src=v[2], sport=int(v[3]), dport=int(v[4]),
                         flags=int(v[5], 16), seq=int(v[6]), len=int(v[7])))
    return segs


def ss_ports(lines, local):
    ports = []
    for ln in lines:
        if ln.startswith("#"):
            continue
        f = ln.split()
        ports.append(int(f[2 if local else 3].rsplit(":", 1)[1]))
    return ports


def count(lines):
    return int([ln for ln in lines if not ln.startswith("#")][0])


def one(name, cap, syncdir, closer, per):
    segs = tshark(cap)
    obs = truth.observations(syncdir)
    with open(os.path.join(syncdir, "client.log")) as fh:
        log = [ln.split() for ln in fh if not ln.startswith("#")]
    with open(os.path.join(syncdir, "ss_samples.txt")) as fh:
        samples = [[Decimal(a), Decimal(b), int(c), int(s)] for a, b, c, s in (ln.split() for ln in fh)]
    conns = {}
    for s in segs:
        p = s["sport"] if s["src"] == CLIENT else s["dport"]
        conns.setdefault(p, []).append(s)
    ports = [int(x[0]) for x in log]
    if len(ports) != diff_peer.REQUESTS // per or len(set(ports)) != len(ports) or sorted(conns) != sorted(ports):
        raise SystemExit("%s: the capture's client ports are not the %d the client logged"
                         % (name, diff_peer.REQUESTS // per))
    flows = []
    for (port, first_item, requests, who) in log:
        port, first_item, requests = int(port), int(first_item), int(requests)
        c = conns[port]
        syn = [s for s in c if s["flags"] == SYN]
        synack = [s for s in c if s["flags"] == SYN | ACK]
        fins = [s for s in c if s["flags"] & FIN]
        data_c2s = [s for s in c if s["src"] == CLIENT and s["len"]]
        if len(syn) != 1 or len(synack) != 1 or any(s["flags"] & RST for s in c):
            raise SystemExit("%s: port %d: %d SYNs, %d SYN-ACKs, or an RST" % (name, port, len(syn), len(synack)))
        first = "client" if fins[0]["src"] == CLIENT else "server"
        if who != closer or first != closer or len(fins) != 2 or len(data_c2s) != requests or requests != per:
            raise SystemExit("%s: port %d: first FIN by %s, %d FINs, %d request segments"
                             % (name, port, first, len(fins), len(data_c2s)))
        flows.append(dict(client_port=port, client_isn=syn[0]["seq"], server_isn=synack[0]["seq"],
                          requests=requests, items="%d-%d" % (first_item, first_item + requests - 1),
                          handshake="complete", close_kind="fin", active_closer=closer,
                          first_fin_by=closer, time_wait_on=closer,
                          frames="%d-%d" % (c[0]["frame"], c[-1]["frame"]),
                          first_fin_frame=fins[0]["frame"]))
    tw = dict(client=ss_ports(obs["client_time_wait"], True), server=ss_ports(obs["server_time_wait"], False))
    after = dict(client=count(obs["client_time_wait_count"]), server=count(obs["server_time_wait_count"]))
    planned = dict(client=sorted(ports) if closer == "client" else [],
                   server=sorted(ports) if closer == "server" else [])
    if {k: sorted(v) for k, v in tw.items()} != planned or after != {k: len(v) for k, v in planned.items()}:
        raise SystemExit("%s: ss's TIME_WAITs %s are not the planned ones" % (name, after))
    peak = dict(client=max(x[2] for x in samples), server=max(x[3] for x in samples))
    if max(peak.values()) > max(after.values()):
        raise SystemExit("%s: a sampled TIME_WAIT count above the count after the run" % name)
    syn_ts = [Decimal(s["ts"]) for s in segs if s["flags"] == SYN]
    hosts = {}
    for side, addr in (("client", CLIENT), ("server", SERVER)):
        hosts[addr] = dict(role=side, connections=len(flows),
                           closed_first=len(flows) if side == closer else 0,
                           time_wait_total=len(flows) if side == closer else 0,
                           time_wait_peak=after[side],
                           ss_time_wait_after=after[side], ss_time_wait_peak_sampled=peak[side])
    return dict(
        file=name, frames=len(segs), connections=len(flows), requests=sum(f["requests"] for f in flows),
        requests_per_connection=per, active_closer=closer, time_wait_on=closer,
        closed_first={CLIENT: hosts[CLIENT]["closed_first"], SERVER: hosts[SERVER]["closed_first"]},
        time_wait_peak={CLIENT: after["client"], SERVER: after["server"]},
        hosts=hosts,
        first_syn_ts=str(syn_ts[0]), last_syn_ts=str(syn_ts[-1]), last_frame_ts=str(segs[-1]["ts"]),
        duration_s=str(segs[-1]["ts"] - segs[0]["ts"]),
        ss_time_wait_samples=[[str(a), str(b), c, s] for a, b, c, s in samples],
        flows=flows,
        kernel_observations=dict(obs, client_log_summary=open(os.path.join(syncdir, "client.log")).read().splitlines()[-1]))


def main():
    before, sync_before, after, sync_after, out, kernel = sys.argv[1:7]
    doc = dict(how=HOW + " Kernel " + kernel + ".", kernel=kernel,
               client=CLIENT, server="%s:%d" % (SERVER, PORT), requests=diff_peer.REQUESTS,
               captures={"before.pcap": one("before.pcap", before, sync_before, "server", 1),
                         "after.pcap": one("after.pcap", after, sync_after, "client", 10)})
    # flows one per line: 220 of them stay readable
    flows = {k: v.pop("flows") for k, v in doc["captures"].items()}
    samples = {k: v.pop("ss_time_wait_samples") for k, v in doc["captures"].items()}
    text = json.dumps(doc, indent=1)
    for k in doc["captures"]:
        marker = '"file": "%s",' % k
        rows = ",\n".join("    " + json.dumps(f) for f in flows[k])
        srows = ",\n".join("    " + json.dumps(s) for s in samples[k])
        text = text.replace(marker, marker + '\n   "ss_time_wait_samples": [\n' + srows + "\n   ],"
                            + '\n   "flows": [\n' + rows + "\n   ],", 1)
    json.loads(text)
    with open(out, "w") as fh:
        fh.write(text + "\n")


if __name__ == "__main__":
    main()
