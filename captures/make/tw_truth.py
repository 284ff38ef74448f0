#!/usr/bin/env python3
"""Write captures/STEM.truth.json for a sample made by make_timewait_samples.sh.

    tw_truth.py STEM CAPTURE OUT.json SYNCDIR KERNEL

Like truth.py, but for samples of thousands of connections: "flows" lists the first three
incarnations (from the capture's SYNs, read with tcpdump) with the verdicts the construction
guarantees; "host_views" holds what the construction guarantees for the host-level tables;
"kernel_observations" the ss/nstat/sysctl output recorded during the run, and for the burst
"ss_time_wait_samples": [wall time before, wall time after, TIME_WAIT count] per ss run.
"""
import glob
import json
import os
import re
import subprocess
import sys

CF = dict(handshake="complete", close_kind="fin", active_closer="client", time_wait_on="client")
SF = dict(CF, active_closer="server", time_wait_on="server")
ABORT = dict(handshake="complete", close_kind="rst", first_rst_by="server", time_wait_on="none")
TOPO = ("client netns tdtw-cli (veth tdtw-c0, 198.18.0.1) <-> server netns tdtw-srv (veth tdtw-s0, "
        "198.18.0.2, .3, .4); endpoints captures/make/tw_peer.py; tcpdump -s 128 ")

SPEC = {
    "tw_server_burst": dict(
        how=TOPO + "on tdtw-s0 (server side). 2,000 HTTP/1.1 GETs with 'Connection: close' from "
        "4 client threads at ~800 new connections/s; the server answers with 'Connection: close' "
        "and close()s first every time, so each connection leaves a server TIME_WAIT (60 s, longer "
        "than the capture). ss counted the server's TIME_WAITs about every 0.1 s during the burst.",
        flows=[SF, SF, SF],
        host_views=dict(server="198.18.0.2:8080", host="198.18.0.2", connections=2000,
                        server_closed_first=2000, cause="connection_close_request",
                        finding_kind="server-close")),
    "tw_narrow_port_range": dict(
        how=TOPO + "on tdtw-c0 (client side). Client netns: net.ipv4.ip_local_port_range="
        "'40000 40049' (50 ports), net.ipv4.tcp_tw_reuse=1. The client opens 400 connections from "
        "2 threads as fast as it can; each sends one HTTP/1.1 request and closes first (client "
        "TIME_WAIT). Once every port holds a TIME_WAIT, connect() takes over TIME_WAITs older than "
        "tcp_tw_reuse_delay: 4-tuples are reused, the new ISN is the old next sequence + 65537.",
        flows=[CF, CF, CF],
        host_views=dict(client="198.18.0.1", destination="198.18.0.1 -> 198.18.0.2:8080",
                        port_range=[40000, 40049], ports_in_use_peak=50, connections=400,
                        finding_kind="port-exhaustion")),
    "tw_keepalive": dict(
        how=TOPO + "on tdtw-c0 (client side). 4 persistent HTTP/1.1 connections (keep-alive), 500 "
        "requests each, then the client closes first: 2,000 requests, 4 client TIME_WAITs, no "
        "server TIME_WAIT, no port pressure.",
        flows=[CF, CF, CF],
        host_views=dict(connections=4, client_time_wait_peak=4, server_time_wait_peak=0,
                        no_finding_kinds=["server-close", "port-exhaustion", "port-pressure",
                                          "time-wait-pile-up", "abort-habit"])),
    "tw_mixed_servers": dict(
        how=TOPO + "on tdtw-s0 (server side). At the same time: 50 keep-alive connections of 20 "
        "requests each to 198.18.0.2:8080 (client closes first); 600 HTTP/1.1 GETs without a "
        "Connection header to 198.18.0.3:8080, which answers 'HTTP/1.0 200 OK' and closes first; "
        "100 HTTP/1.0 GETs to 198.18.0.4:8080, which answers HTTP/1.0 and closes first; 60 "
        "requests to 198.18.0.4:9000, which answers and aborts with SO_LINGER {1,0} (RST).",
        flows=[CF, SF, SF],  # only checked for the tuples listed below
        host_views=dict(servers={
            "198.18.0.2:8080": dict(connections=50, closer="client", cause=None),
            "198.18.0.3:8080": dict(connections=600, closer="server", cause="http10_response"),
            "198.18.0.4:8080": dict(connections=100, closer="server", cause="http10_request"),
            "198.18.0.4:9000": dict(connections=60, closer="abort", cause=None)},
            top_server_close="198.18.0.3:8080", abort_habit="198.18.0.4:9000")),
}

SYN = re.compile(r"IP (\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): Flags \[S\], seq (\d+)")


def first_syns(cap, n):
    """The first n distinct SYNs (client, server, ISN), in capture order."""
    text = subprocess.run(["tcpdump", "-nn", "-r", cap, "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn"],
                          capture_output=True, text=True, check=True).stdout
    out, seen = [], set()
    for m in SYN.finditer(text):
        key = (m[1], int(m[2]), m[3], int(m[4]), int(m[5]))
        if key not in seen:
            seen.add(key)
            out.append(key)
        if len(out) == n:
            break
    return out


def main():
    stem, cap, out, syncdir, kernel = sys.argv[1:6]
    spec = SPEC[stem]
    flows = []
    if stem == "tw_mixed_servers":
        # the first SYN to each server, with the verdict that server's behaviour guarantees
        wanted = {("198.18.0.2", 8080): CF, ("198.18.0.3", 8080): SF, ("198.18.0.4", 8080): SF,
                  ("198.18.0.4", 9000): ABORT}
        for c_ip, c_port, s_ip, s_port, isn in first_syns(cap, 100000):
            v = wanted.pop((s_ip, s_port), None)
            if v is not None:
                flows.append(dict(client_ip=c_ip, client_port=c_port, server_ip=s_ip, server_port=s_port,
                                  client_isn=isn, **v))
            if not wanted:
                break
    else:
        for (c_ip, c_port, s_ip, s_port, isn), v in zip(first_syns(cap, 3), spec["flows"]):
            flows.append(dict(client_ip=c_ip, client_port=c_port, server_ip=s_ip, server_port=s_port,
                              client_isn=isn, **v))
    obs = {}
    for path in sorted(glob.glob(os.path.join(syncdir, "obs_*.txt"))):
        with open(path) as fh:
            obs[os.path.basename(path)[4:-4]] = [ln.rstrip() for ln in fh if ln.strip()]
    with open(os.path.join(syncdir, "client.log")) as fh:
        obs["client_log"] = [ln.rstrip() for ln in fh if ln.strip()]
    doc = dict(capture=os.path.basename(cap) + ".gz",
               how=spec["how"] + " Kernel " + kernel + ". Script: captures/make/make_timewait_samples.sh.",
               kernel=kernel, flows=flows, host_views=spec["host_views"], kernel_observations=obs)
    samples = os.path.join(syncdir, "ss_samples.txt")
    if os.path.exists(samples):
        with open(samples) as fh:
            doc["ss_time_wait_samples"] = [[float(a), float(b), int(n)]
                                           for a, b, n in (ln.split() for ln in fh if ln.strip())]
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
