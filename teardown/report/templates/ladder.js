/* teardown report, 2 of 3: a flow's ladder diagram as SVG: the two endpoints as lifelines,
   one arrow per segment, each side's state where it changes, the TIME_WAIT band. The same
   geometry as teardown/report/ladder_svg.py (LAYOUT), which draws the page's first ladders. */
teardownReport.drawLadder = (function (T) {
  "use strict";

  var DATA = T.DATA, VALUES = T.VALUES, el = T.el, svg = T.svg, thousands = T.thousands;
  var endpoint = T.endpoint, clockText = T.clockText, secondsText = T.secondsText;
  var FLAG_NAMES = ["SYN", "FIN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
  var FLAG_BITS = [0x02, 0x01, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80];

  var L = { width: 880, top: 74, row: 36, slope: 12, client: 300, server: 660, timeX: 4, noteH: 14, bandTextH: 16 };

  // Relative to the side's ISN; below it (a segment of an older connection on the same
  // addresses, or an RST answering one) the relative number means nothing: show the real one.
  function number(relative, isn) {
    if (relative >= 0 || isn === null) { return String(relative); }
    return String(((isn + relative) % 4294967296 + 4294967296) % 4294967296) + " (absolute)";
  }

  function flagText(flags) {
    var out = [];
    FLAG_BITS.forEach(function (bit, i) { if (flags & bit) { out.push(FLAG_NAMES[i]); } });
    return out.join(", ") || "none";
  }

  // teardown/report/reuse.py, `joined` step by step: a flow that reused its 4-tuple during
  // TIME_WAIT is drawn after the end of the incarnation whose TIME_WAIT it met (its flow list in
  // DATA.ladders ends with that incarnation's position). Times are VALUES' microseconds.
  var OLD_TAIL_MIN = 4;
  var VERDICT_TEXT = {
    accepted_timestamps: "reuse accepted: newer timestamps (RFC 6191)",
    accepted_isn: "reuse accepted: ISN above the old connection's (RFC 1122)",
    rejected: "reuse rejected: TIME_WAIT answers with an ACK of the old connection"
  };

  function running(steps, from) {
    var out = [], v = from;
    steps.forEach(function (step) { v += step; out.push(v); });
    return out;
  }

  function steps(values, from) {
    return values.map(function (v, k) { return v - (k ? values[k - 1] : from); });
  }

  function joined(flow, oldFlow, r, p) {   // both as `pack` writes them; the joined shape and flow list
    var o = DATA.ladders.shapes[oldFlow[0]], n = DATA.ladders.shapes[flow[0]];
    var fins = [];
    o.flags.forEach(function (f, k) { if (f & 0x01) { fins.push(k); } });
    var start = fins.length ? fins[0] : Math.max(0, o.dir.length - OLD_TAIL_MIN);
    var count = o.dir.length - start;
    var newFirst = VALUES.first_ts[r];
    var times = running(oldFlow[3], VALUES.first_ts[p]).slice(start).concat(running(flow[3], newFirst));
    var frames = running(oldFlow[4], 0).slice(start).concat(running(flow[4], 0));
    var ended = VALUES.time_wait_end_ts[p], endAt = null;
    for (var k = 0; ended !== null && k < times.length; k++) {
      if (times[k] >= ended - 1) { endAt = k; break; }
    }
    var flags = o.flags.slice(start).concat(n.flags);
    var how = endAt === null ? "still held when the capture ends" : flags[endAt] & 0x04 ? "ended by an RST (assassinated)" :
      endAt === count ? "taken over by the reusing SYN" : "ended";
    var verdict = VALUES.reuse_verdict[r];
    var note = Object.prototype.hasOwnProperty.call(VERDICT_TEXT, verdict) ? VERDICT_TEXT[verdict] : null;
    function shifted(list, by, keep) {   // [at, ...rest] entries moved by `by`, those `keep` accepts
      return list.filter(function (e) { return keep(e[0]); }).map(function (e) { return [e[0] + by].concat(e.slice(1)); });
    }
    function any() { return true; }
    var shape = {
      dir: o.dir.slice(start).concat(n.dir), flags: flags, seq: o.seq.slice(start).concat(n.seq),
      ack: o.ack.slice(start).concat(n.ack), len: o.len.slice(start).concat(n.len), retr: o.retr.slice(start).concat(n.retr),
      gap: shifted(o.gap, -start, function (at) { return at > start; }).concat(shifted(n.gap, count, any)),
      lab: shifted(o.lab, -start, function (at) { return at >= start; })
        .concat(note && n.dir.length ? [[count, n.dir[0], note, 1]] : []).concat(shifted(n.lab, count, any)),
      tw: o.tw.filter(function (t) { return t[1] >= start; })
        .map(function (t) { return [t[0], t[1] - start, endAt, "old connection's TIME_WAIT, " + how]; })
        .concat(n.tw.map(function (t) { return [t[0], t[1] + count].concat(t.slice(2)); })),
      n: count + n.n, old: count, old_isn: [oldFlow[1], oldFlow[2]]
    };
    return { shape: shape, flow: [null, flow[1], flow[2], steps(times, newFirst), steps(frames, 0)] };
  }

  function ladderOf(r) {   // teardown/report/ladder.py `pack`: shapes shared, times and frames per flow
    var flow = DATA.ladders.flows[String(r)];
    if (!flow) { return null; }
    var shape = DATA.ladders.shapes[flow[0]], segs = [], t = 0, frame = 0;
    var previous = flow.length > 5 ? DATA.ladders.flows[String(flow[5])] : undefined;
    if (previous) {
      var both = joined(flow, previous, r, flow[5]);
      shape = both.shape;
      flow = both.flow;
    }
    for (var k = 0; k < shape.dir.length; k++) {
      t += flow[3][k]; frame += flow[4][k];
      segs.push({ t: t, dir: shape.dir[k], flags: shape.flags[k], seq: shape.seq[k], ack: shape.ack[k],
                  len: shape.len[k], frame: frame, retransmission: shape.retr[k] === 1 });
    }
    return { segs: segs, gap: shape.gap, lab: shape.lab, tw: shape.tw, n: shape.n, isn: [flow[1], flow[2]],
             old: shape.old || 0, oldIsn: shape.old_isn || null };
  }

  function missingLadder(r, box) {
    var p = el("p", { "class": "callout" });
    p.textContent = "The segments of this flow are not in this report: it keeps the ladders of " +
      thousands(Object.keys(DATA.ladders.flows).length) + " flows (those with findings first). For this one, cut the flow out of " +
      "the capture and run teardown on it: tcpdump -r CAPTURE -w one.pcap 'host " + VALUES.client_ip[r] +
      " and port " + VALUES.client_port[r] + " and host " + VALUES.server_ip[r] + " and port " + VALUES.server_port[r] + "'";
    box.appendChild(p);
  }

  function drawLadder(r, box) {
    box.textContent = "";
    var ladder = ladderOf(r);
    if (!ladder) { missingLadder(r, box); return; }
    var segs = ladder.segs;
    var gapBefore = {};
    ladder.gap.forEach(function (g) { gapBefore[g[0]] = g[1]; });
    var notes = {};  // segment -> notes written under its arrow
    ladder.lab.forEach(function (lab) { if (lab[3] === 1) { (notes[lab[0]] = notes[lab[0]] || []).push(lab); } });
    var y = L.top, ys = [];
    for (var i = 0; i <= segs.length; i++) {
      if (gapBefore[i] || (ladder.old && i === ladder.old)) { y += L.row; }
      if (i < segs.length) { ys.push(y); y += L.row + (notes[i] ? L.noteH * notes[i].length : 0); }
    }
    var bottom = y + 8 + L.bandTextH * ladder.tw.length;
    var root = svg("svg", { "class": "ladder", viewBox: "0 0 " + L.width + " " + bottom, width: L.width, height: bottom,
                            role: "img", "data-row": String(r) });
    var sideX = [L.client, L.server];
    var summary = "Ladder diagram of flow " + VALUES.flow_id[r] + ": " + ladder.n + " segments" +
      (ladder.n > segs.length ? ", " + segs.length + " drawn" : "") + ".";
    root.appendChild(svg("title", {}, summary));

    // Endpoints and lifelines.
    var names = [endpoint(VALUES.client_ip[r], VALUES.client_port[r]), endpoint(VALUES.server_ip[r], VALUES.server_port[r])];
    var roles = VALUES.roles_inferred[r] ? ["client (inferred)", "server (inferred)"] : ["client", "server"];
    [0, 1].forEach(function (side) {
      root.appendChild(svg("text", { "class": "endpoint", x: sideX[side], y: 18, "text-anchor": "middle" }, names[side]));
      var isn = ladder.isn[side];
      root.appendChild(svg("text", { "class": "endpoint-sub", x: sideX[side], y: 34, "text-anchor": "middle" },
        roles[side] + (isn === null ? "" : " · ISN " + isn)));
      root.appendChild(svg("line", { "class": "lifeline", x1: sideX[side], x2: sideX[side], y1: 46, y2: bottom - 4 }));
    });
    root.appendChild(svg("text", { "class": "time", x: L.timeX, y: 34 }, "time · frame"));

    // TIME_WAIT bands behind the arrows, each one's text on a line of its own at the bottom.
    function arrives(k, side) { return ys[k] + (segs[k].dir === side ? 0 : L.slope); }
    ladder.tw.forEach(function (t, j) {
      var side = t[0], start = arrives(t[1], side);
      var end = y, endText;
      var assassinated = VALUES.tw_assassination[r];
      if (t.length > 2) {   // the old incarnation's band (teardown/report/reuse.py): its end and text
        if (t[2] !== null) { end = arrives(t[2], side); }
        endText = t[3];
      } else if (assassinated) {
        ladder.lab.forEach(function (lab) {
          if (lab[1] === side && lab[3] === 1 && lab[2].indexOf("assassinated") >= 0) { end = ys[lab[0]] + L.slope; }
        });
        endText = "TIME_WAIT ended early by RST at " + clockText(DATA.t0_us + VALUES.tw_assassination_ts[r], false);
      } else {
        var until = VALUES.time_wait_end_ts[r], began = VALUES.time_wait_start_ts[r];
        endText = until === null ? "TIME_WAIT" : "TIME_WAIT until " + clockText(DATA.t0_us + until, false) + " UTC (" +
          secondsText(until - began) + ")" + (DATA.capture_last_ts !== null && (DATA.t0_us + until) / 1e6 > DATA.capture_last_ts
          ? ", after the capture ended" : "");
        var restarts = VALUES.time_wait_restarts[r];
        if (restarts) { endText += " · restarted " + restarts + "×"; }
      }
      var band = svg("g", { "class": "tw", "data-side": side ? "server" : "client" });
      band.appendChild(svg("rect", { "class": "tw-band", x: sideX[side] - 6, y: start, width: 12, height: Math.max(4, end - start), rx: 3 }));
      band.appendChild(svg("text", { "class": "tw-text", x: sideX[side] + (side ? -10 : 10), y: y + 16 + L.bandTextH * j,
        "text-anchor": side ? "end" : "start" }, endText));
      root.appendChild(band);
    });

    // Gaps, arrows, times.
    Object.keys(gapBefore).forEach(function (k) {
      var at = Number(k), gy = (at < ys.length ? ys[at] : y) - L.row / 2 - 4;
      root.appendChild(svg("line", { "class": "gap-line", x1: L.client, x2: L.server, y1: gy, y2: gy }));
      var label = svg("text", { "class": "gap", x: (L.client + L.server) / 2, y: gy - 5, "text-anchor": "middle" },
        "⋯ " + thousands(gapBefore[k]) + " segments not drawn ⋯");
      root.appendChild(label);
    });
    if (ladder.old) {
      var oy = ys[ladder.old] - L.row / 2 - 4;
      root.appendChild(svg("line", { "class": "gap-line reuse-line", x1: L.timeX, x2: L.server, y1: oy, y2: oy }));
      root.appendChild(svg("text", { "class": "gap", x: (L.client + L.server) / 2, y: oy - 5, "text-anchor": "middle" },
        "the same 4-tuple again: a new connection"));
    }
    segs.forEach(function (s, k) {
      var from = sideX[s.dir], to = sideX[1 - s.dir], y0 = ys[k], y1 = y0 + L.slope;
      var cls = "seg" + (s.flags & 0x04 ? " rst" : s.flags & 0x01 ? " fin" : s.flags & 0x02 ? " syn" : "") +
        (s.retransmission ? " retransmission" : "") + (k < ladder.old ? " old" : "");
      var g = svg("g", { "class": cls, "data-flags": flagText(s.flags), "data-dir": s.dir ? "s2c" : "c2s",
                         "data-frame": String(s.frame) });
      var dx = to > from ? -9 : 9;
      g.appendChild(svg("line", { x1: from, y1: y0, x2: to + dx * 0.6, y2: y1 }));
      g.appendChild(svg("polygon", { points: [to, y1, to + dx, y1 - 4.5, to + dx, y1 + 4.5].join(" ") }));
      var isn = k < ladder.old ? ladder.oldIsn : ladder.isn;
      var text = flagText(s.flags) + "  seq " + number(s.seq, isn[s.dir]) +
        (s.ack === null ? "" : "  ack " + number(s.ack, isn[1 - s.dir])) + (s.len ? "  len " + s.len : "") +
        (s.retransmission ? "  retransmission" : "");
      g.appendChild(svg("text", { "class": "seg-text", x: (L.client + L.server) / 2, y: y0 - 4, "text-anchor": "middle" }, text));
      root.appendChild(g);
      root.appendChild(svg("text", { "class": "time", x: L.timeX, y: y0 + 4 }, (s.t < 0 ? "" : "+") + (s.t / 1e6).toFixed(6) + " s"));
      root.appendChild(svg("text", { "class": "frame", x: L.timeX, y: y0 + 17 }, "#" + s.frame));
    });

    // States where they change, beside each side's lifeline; notes (what became of an RST or a
    // repeated FIN) under the segment's arrow.
    ladder.lab.forEach(function (lab) {
      var k = lab[0], side = lab[1], text = lab[2];
      var ly = ys[k] + (segs[k].dir === side ? 0 : L.slope);
      var data = { "data-side": side ? "server" : "client" };
      if (lab[3] === 1) {
        var below = ys[k] + L.slope + 16 + L.noteH * notes[k].indexOf(lab);
        root.appendChild(svg("text", Object.assign({ "class": "note", x: (L.client + L.server) / 2, y: below,
                                                     "text-anchor": "middle" }, data), text));
        return;
      }
      root.appendChild(svg("circle", { cx: sideX[side], cy: ly, r: 3, "class": "state-dot" }));
      root.appendChild(svg("text", Object.assign({ "class": "state", x: side ? sideX[side] + 12 : sideX[side] - 12,
                                                   y: ly + 4, "text-anchor": side ? "start" : "end" }, data), text));
    });
    box.appendChild(root);
  }

  return drawLadder;
})(teardownReport);
