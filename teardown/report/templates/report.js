/* teardown report: reads the JSON embedded in the page, draws the flows table (only the rows
   in view, so 100,000 flows stay responsive), sorts, filters, exports CSV, and draws ladder
   diagrams as SVG. Text from the capture is only ever set with textContent, never as markup. */
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var N = DATA.n;
  var FLAG_NAMES = ["SYN", "FIN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
  var FLAG_BITS = [0x02, 0x01, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80];

  /* ---------- decoding the columns (teardown/report/table.py writes them) ---------- */

  function decodeValues(spec, n) {
    var out, i, k;
    if (spec.v) { out = spec.v.slice(); }
    else if (spec.u) { out = spec.c.map(function (c) { return spec.u[c]; }); }
    else if (spec.t) { out = untemplate(spec); }
    else {
      out = new Array(n).fill(spec.d);
      var rest = decodeValues(spec.x, spec.i.length);
      for (i = 0, k = 0; i < spec.i.length; i++) { k += spec.i[i]; out[k] = rest[i]; }
    }
    if (spec.delta) {
      for (i = 1; i < out.length; i++) { out[i] += out[i - 1]; }
    }
    return out;
  }

  function untemplate(spec) {
    var p = 0, previous = 0;
    return spec.c.map(function (code) {
      if (code === null) { return null; }
      var parts = spec.t[code], text = parts[0], first = 0;
      for (var k = 1; k < parts.length; k++) {
        var number;
        if (k === 1) { first = previous + spec.n[p++]; previous = first; number = first; }
        else { number = first + spec.n[p++]; }
        text += String(number) + parts[k];
      }
      return text;
    });
  }

  var COLUMNS = DATA.columns;
  var VALUES = {};
  COLUMNS.forEach(function (col) {
    if (col.derived) { return; }
    var values = decodeValues(col, N);
    var plus = col.plus || [], minus = col.minus || [];
    if (plus.length || minus.length) {
      values = values.map(function (v, r) {
        if (v === null) { return null; }
        plus.forEach(function (name) { v += VALUES[name][r]; });
        minus.forEach(function (name) { v -= VALUES[name][r]; });
        return v;
      });
    }
    VALUES[col.name] = values;
  });
  function endpoint(ip, port) { return (ip.indexOf(":") >= 0 ? "[" + ip + "]" : ip) + ":" + port; }
  if (COLUMNS[0].derived) {   // flow_id: exactly what its parts spell (checked when written)
    VALUES.flow_id = VALUES.client_ip.map(function (ip, r) {
      var vlan = VALUES.vlan[r];
      return (vlan === null ? "" : "vlan" + vlan + "/") + endpoint(ip, VALUES.client_port[r]) + ">" +
        endpoint(VALUES.server_ip[r], VALUES.server_port[r]) + "/" + VALUES.incarnation[r];
    });
  }
  var FLAGS = decodeValues(DATA.flags.bits, N);
  var KIND = {};
  COLUMNS.forEach(function (c) { KIND[c.name] = c.kind; });
  KIND.findings = "findings";

  /* ---------- formatting ---------- */

  function pad(n, width) { var s = String(n); while (s.length < width) { s = "0" + s; } return s; }
  function epochText(us) {   // exact seconds since the epoch, as the CSV and the schema give them
    var neg = us < 0, a = Math.abs(us);
    return (neg ? "-" : "") + Math.floor(a / 1e6) + "." + pad(a % 1e6, 6);
  }
  var MULTI_DAY = (function () {
    var first = VALUES.first_ts, last = VALUES.last_ts;
    if (!N) { return false; }
    var a = new Date((DATA.t0_us + first[0]) / 1000), b = new Date((DATA.t0_us + last[N - 1]) / 1000);
    return a.toISOString().slice(0, 10) !== b.toISOString().slice(0, 10);
  })();
  function clockText(absUs, withDate) {
    var ms = Math.floor(absUs / 1000), d = new Date(ms), iso = d.toISOString();
    var text = iso.slice(11, 19) + "." + pad(((absUs % 1e6) + 1e6) % 1e6, 6);
    return withDate ? iso.slice(0, 10) + " " + text : text;
  }
  function secondsText(us) {
    var s = us / 1e6, a = Math.abs(s);
    if (us % 1e6 === 0) { return s + " s"; }
    if (a >= 100) { return s.toFixed(1) + " s"; }
    if (a >= 1) { return s.toFixed(3) + " s"; }
    if (a >= 0.001) { return (s * 1e3).toFixed(3) + " ms"; }
    return (s * 1e6).toFixed(0) + " µs";
  }
  function cellText(name, r) {
    var v = VALUES[name] ? VALUES[name][r] : null, kind = KIND[name];
    if (v === null || v === undefined) { return ""; }
    if (kind === "ts") { return clockText(DATA.t0_us + v, MULTI_DAY); }
    if (kind === "dur") { return secondsText(v); }
    if (kind === "bool") { return v ? "yes" : "no"; }
    return String(v);
  }
  function csvText(name, r) {
    var v = VALUES[name][r], kind = KIND[name];
    if (v === null || v === undefined) { return ""; }
    if (kind === "ts") { return epochText(DATA.t0_us + v); }
    if (kind === "dur") { return epochText(v); }
    if (kind === "bool") { return v ? "True" : "False"; }
    var s = String(v);
    return /[",\n\r]/.test(s) ? "\"" + s.replace(/"/g, "\"\"") + "\"" : s;
  }
  function flagLabels(r) {
    var out = [];
    DATA.flags.names.forEach(function (name, i) { if (FLAGS[r] & (1 << i)) { out.push(DATA.flags.labels[i]); } });
    return out;
  }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }
  function thousands(n) { return n.toLocaleString("en-US"); }

  /* ---------- the flows table ---------- */

  var ALL_COLUMNS = COLUMNS.map(function (c) { return c.name; });
  ALL_COLUMNS.splice(ALL_COLUMNS.indexOf("notes"), 0, "findings");
  var HELP = { findings: "Findings of this flow (the Finding filter's choices)." };
  COLUMNS.forEach(function (c) { HELP[c.name] = c.help; });
  var NUMERIC = { int: true, ts: true, dur: true };
  var WIDTH = { flow_id: 300, notes: 380, evidence_frames: 420, findings: 260, client_ip: 150, server_ip: 150 };
  var state = { visible: DATA.visible.slice(), sortBy: null, descending: false, view: null, selected: null,
                text: "", closeKind: "", closer: "", finding: "" };
  var scroller = document.getElementById("flow-scroll");
  var body = document.getElementById("flow-body");
  var head = document.getElementById("flow-head");
  var status = document.getElementById("flow-status");
  var rowHeight = 31;
  var haystack = null;

  function buildHaystack() {
    var names = ["flow_id", "notes", "close_kind", "active_closer", "time_wait_on", "rst_class",
                 "reuse_verdict", "handshake", "data_after_fin", "evidence_frames"];
    haystack = new Array(N);
    for (var r = 0; r < N; r++) {
      var parts = names.map(function (n) { var v = VALUES[n][r]; return v === null ? "" : String(v); });
      haystack[r] = (parts.join(" ") + " " + flagLabels(r).join(" ")).toLowerCase();
    }
  }

  function applyView() {
    var rows = [], r;
    var needle = state.text.trim().toLowerCase();
    if (needle && !haystack) { buildHaystack(); }
    var bit = state.finding ? (1 << DATA.flags.names.indexOf(state.finding)) : 0;
    for (r = 0; r < N; r++) {
      if (state.closeKind && VALUES.close_kind[r] !== state.closeKind) { continue; }
      if (state.closer && VALUES.active_closer[r] !== state.closer) { continue; }
      if (bit && !(FLAGS[r] & bit)) { continue; }
      if (needle && haystack[r].indexOf(needle) < 0) { continue; }
      rows.push(r);
    }
    if (state.sortBy) {
      var name = state.sortBy, sign = state.descending ? -1 : 1;
      var key = name === "findings" ? FLAGS : VALUES[name];
      var numeric = NUMERIC[KIND[name]] || KIND[name] === "bool" || name === "findings";
      rows.sort(function (a, b) {
        var x = key[a], y = key[b];
        if (x === null || x === undefined) { return (y === null || y === undefined) ? a - b : 1; }
        if (y === null || y === undefined) { return -1; }
        if (x === y) { return a - b; }
        if (numeric) { return (x < y ? -1 : 1) * sign; }
        return String(x).localeCompare(String(y)) * sign || a - b;
      });
    }
    state.view = rows;
    scroller.scrollTop = 0;
    renderHead();
    renderRows();
  }

  function renderHead() {
    head.textContent = "";
    state.visible.forEach(function (name) {
      var th = el("th", { scope: "col", style: "width:" + (WIDTH[name] || 140) + "px", "data-column": name });
      if (state.sortBy === name) { th.setAttribute("aria-sort", state.descending ? "descending" : "ascending"); }
      var button = el("button", { type: "button", title: HELP[name] || "" }, name);
      button.addEventListener("click", function () {
        if (state.sortBy === name) { state.descending = !state.descending; }
        else { state.sortBy = name; state.descending = false; }
        applyView();
      });
      th.appendChild(button);
      head.appendChild(th);
    });
  }

  function cell(name, r) {
    var td = el("td");
    if (name === "flow_id") {
      td.className = "mono";
      var b = el("button", { type: "button", "class": "flow-link", title: "Show the ladder diagram of this flow" },
                 VALUES.flow_id[r]);
      b.addEventListener("click", function (event) { event.stopPropagation(); select(r); });
      td.appendChild(b);
    } else if (name === "findings") {
      flagLabels(r).forEach(function (label) { td.appendChild(el("span", { "class": "chip" }, label)); });
      td.title = flagLabels(r).join(", ");
    } else if (name === "close_kind") {
      td.appendChild(el("span", { "class": "chip kind sw-" + VALUES.close_kind[r] }, cellText(name, r)));
    } else {
      var text = cellText(name, r);
      td.textContent = text;
      if (text.length > 18) { td.title = text; }
      if (NUMERIC[KIND[name]]) { td.className = "num"; }
      if (KIND[name] === "ts" || name === "evidence_frames") { td.className = "num mono"; }
    }
    return td;
  }

  function spacer(height) {
    var tr = el("tr", { "class": "spacer", "aria-hidden": "true" });
    tr.appendChild(el("td", { colspan: String(state.visible.length), style: "height:" + height + "px" }));
    return tr;
  }

  function renderRows() {
    var view = state.view, total = view.length;
    var first = Math.max(0, Math.floor(scroller.scrollTop / rowHeight) - 10);
    var count = Math.ceil(scroller.clientHeight / rowHeight) + 20;
    var last = Math.min(total, first + count);
    body.textContent = "";
    if (first > 0) { body.appendChild(spacer(first * rowHeight)); }
    for (var i = first; i < last; i++) {
      var r = view[i];
      var tr = el("tr", { "data-row": String(r) });
      if (r === state.selected) { tr.className = "selected"; }
      state.visible.forEach(function (name) { tr.appendChild(cell(name, r)); });
      tr.addEventListener("click", select.bind(null, r));
      body.appendChild(tr);
    }
    if (last < total) { body.appendChild(spacer((total - last) * rowHeight)); }
    var measured = body.querySelector("tr[data-row]");
    if (measured && Math.abs(measured.getBoundingClientRect().height - rowHeight) > 0.5) {
      rowHeight = measured.getBoundingClientRect().height;
    }
    status.textContent = total === N
      ? thousands(N) + " flows" + (state.sortBy ? ", sorted by " + state.sortBy + (state.descending ? " (descending)" : "") : "")
      : thousands(total) + " of " + thousands(N) + " flows match";
    document.getElementById("flow-print-note").textContent = total > last - first
      ? "Printed: rows " + thousands(first + 1) + "–" + thousands(last) + " of " + thousands(total) +
        " flows. The full table is in the HTML file and its CSV download."
      : "";
  }

  var scheduled = false;
  scroller.addEventListener("scroll", function () {
    if (scheduled) { return; }
    scheduled = true;
    window.requestAnimationFrame(function () { scheduled = false; renderRows(); });
  });

  function fillSelect(id, values, labels) {
    var select = document.getElementById(id);
    values.forEach(function (v, i) { select.appendChild(el("option", { value: v }, labels ? labels[i] : v)); });
    return select;
  }
  function present(name) {
    var seen = {};
    VALUES[name].forEach(function (v) { if (v !== null) { seen[v] = (seen[v] || 0) + 1; } });
    return Object.keys(seen).sort(function (a, b) { return seen[b] - seen[a]; });
  }
  var kinds = present("close_kind"), closers = present("active_closer");
  var flagCounts = DATA.flags.names.map(function (_, i) {
    var c = 0; for (var r = 0; r < N; r++) { if (FLAGS[r] & (1 << i)) { c++; } } return c;
  });
  var shownFlags = DATA.flags.names.filter(function (_, i) { return flagCounts[i] > 0; });
  fillSelect("filter-close-kind", kinds).addEventListener("change", function (e) { state.closeKind = e.target.value; applyView(); });
  fillSelect("filter-closer", closers).addEventListener("change", function (e) { state.closer = e.target.value; applyView(); });
  fillSelect("filter-finding", shownFlags, shownFlags.map(function (name) {
    var i = DATA.flags.names.indexOf(name);
    return DATA.flags.labels[i] + " (" + thousands(flagCounts[i]) + ")";
  })).addEventListener("change", function (e) { state.finding = e.target.value; applyView(); });
  var typing = null;
  document.getElementById("flow-search").addEventListener("input", function (e) {
    window.clearTimeout(typing);
    typing = window.setTimeout(function () { state.text = e.target.value; applyView(); }, 150);
  });

  var picker = document.getElementById("column-picker");
  ALL_COLUMNS.forEach(function (name) {
    var label = el("label", { title: HELP[name] || "" });
    var box = el("input", { type: "checkbox", value: name });
    box.checked = state.visible.indexOf(name) >= 0;
    box.addEventListener("change", function () {
      state.visible = ALL_COLUMNS.filter(function (n) {
        return picker.querySelector("input[value='" + n + "']").checked;
      });
      renderHead();
      renderRows();
    });
    label.appendChild(box);
    label.appendChild(document.createTextNode(name));
    picker.appendChild(label);
  });

  document.getElementById("csv-download").addEventListener("click", function () {
    var names = COLUMNS.map(function (c) { return c.name; });
    var lines = [names.join(",")];
    state.view.forEach(function (r) {
      lines.push(names.map(function (name) { return csvText(name, r); }).join(","));
    });
    var blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
    var a = el("a", { href: URL.createObjectURL(blob), download: DATA.csv_name });
    document.body.appendChild(a);
    a.click();
    window.setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  });

  /* ---------- ladder diagrams ---------- */

  var L = { width: 880, top: 74, row: 36, slope: 12, client: 300, server: 660, timeX: 4 };

  function flagText(flags) {
    var out = [];
    FLAG_BITS.forEach(function (bit, i) { if (flags & bit) { out.push(FLAG_NAMES[i]); } });
    return out.join(", ") || "none";
  }

  function ladderOf(r) {   // teardown/report/ladder.py `pack`: shapes shared, times and frames per flow
    var flow = DATA.ladders.flows[String(r)];
    if (!flow) { return null; }
    var shape = DATA.ladders.shapes[flow[0]], segs = [], t = 0, frame = 0;
    for (var k = 0; k < shape.dir.length; k++) {
      t += flow[3][k]; frame += flow[4][k];
      segs.push({ t: t, dir: shape.dir[k], flags: shape.flags[k], seq: shape.seq[k], ack: shape.ack[k],
                  len: shape.len[k], frame: frame, retransmission: shape.retr[k] === 1 });
    }
    return { segs: segs, gap: shape.gap, lab: shape.lab, tw: shape.tw, n: shape.n, isn: [flow[1], flow[2]] };
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
    var y = L.top, ys = [];
    for (var i = 0; i <= segs.length; i++) {
      if (gapBefore[i]) { y += L.row; }
      if (i < segs.length) { ys.push(y); y += L.row; }
    }
    var holders = ladder.tw.map(function (t) { return t[0]; });
    var bottom = y + (holders.length ? 34 : 8);
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

    // TIME_WAIT bands behind the arrows.
    ladder.tw.forEach(function (t) {
      var side = t[0], start = ys[t[1]] + (segs[t[1]].dir === side ? 0 : L.slope);
      var end = bottom - 26, endText;
      var assassinated = VALUES.tw_assassination[r];
      if (assassinated) {
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
      band.appendChild(svg("text", { "class": "tw-text", x: sideX[side] + (side ? -10 : 10), y: end + 16,
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
    segs.forEach(function (s, k) {
      var from = sideX[s.dir], to = sideX[1 - s.dir], y0 = ys[k], y1 = y0 + L.slope;
      var cls = "seg" + (s.flags & 0x04 ? " rst" : s.flags & 0x01 ? " fin" : s.flags & 0x02 ? " syn" : "") +
        (s.retransmission ? " retransmission" : "");
      var g = svg("g", { "class": cls, "data-flags": flagText(s.flags), "data-dir": s.dir ? "s2c" : "c2s",
                         "data-frame": String(s.frame) });
      var dx = to > from ? -9 : 9;
      g.appendChild(svg("line", { x1: from, y1: y0, x2: to + dx * 0.6, y2: y1 }));
      g.appendChild(svg("polygon", { points: [to, y1, to + dx, y1 - 4.5, to + dx, y1 + 4.5].join(" ") }));
      var text = flagText(s.flags) + "  seq " + s.seq + (s.ack === null ? "" : "  ack " + s.ack) + (s.len ? "  len " + s.len : "") +
        (s.retransmission ? "  retransmission" : "");
      g.appendChild(svg("text", { "class": "seg-text", x: (L.client + L.server) / 2, y: y0 - 4, "text-anchor": "middle" }, text));
      root.appendChild(g);
      root.appendChild(svg("text", { "class": "time", x: L.timeX, y: y0 + 4 }, "+" + (s.t / 1e6).toFixed(6) + " s"));
      root.appendChild(svg("text", { "class": "frame", x: L.timeX, y: y0 + 17 }, "#" + s.frame));
    });

    // States where they change, beside each side's lifeline.
    var stacked = {};
    ladder.lab.forEach(function (lab) {
      var k = lab[0], side = lab[1], text = lab[2], note = lab[3] === 1;
      var ly = ys[k] + (segs[k].dir === side ? 0 : L.slope);
      var key = k + ":" + side;
      ly += (stacked[key] || 0) * 13;
      stacked[key] = (stacked[key] || 0) + 1;
      var x = side ? sideX[side] + 12 : sideX[side] - 12;
      var anchor = side ? "start" : "end";
      root.appendChild(svg("circle", { cx: sideX[side], cy: ly, r: 3, "class": note ? "note-dot" : "state-dot" }));
      root.appendChild(svg("text", { "class": note ? "note" : "state", x: x, y: ly + 4, "text-anchor": anchor,
                                    "data-side": side ? "server" : "client" }, text));
    });
    box.appendChild(root);
  }

  /* ---------- a chosen flow, and the featured ladders ---------- */

  function select(r) {
    state.selected = r;
    renderRows();
    var panel = document.getElementById("flow-detail");
    panel.hidden = false;
    document.getElementById("flow-detail-id").textContent = VALUES.flow_id[r];
    var facts = document.getElementById("flow-detail-facts");
    facts.textContent = "";
    ALL_COLUMNS.forEach(function (name) {
      var text = name === "findings" ? flagLabels(r).join(", ") : cellText(name, r);
      if (text === "" || name === "flow_id") { return; }
      var pair = el("div");
      pair.appendChild(el("dt", { title: HELP[name] || "" }, name));
      pair.appendChild(el("dd", {}, text));
      facts.appendChild(pair);
    });
    drawLadder(r, document.getElementById("flow-detail-ladder"));
    panel.scrollIntoView({ block: "nearest" });
  }

  function featured() {
    var holder = document.getElementById("featured-ladders");
    if (!DATA.featured.length) { return; }
    holder.textContent = "";
    DATA.featured.forEach(function (group) {
      group.rows = [];
      for (var r = 0; r < N; r++) { if (FLAGS[r] & (1 << group.bit)) { group.rows.push(r); } }
      var section = el("section", { "class": "ladder-group", "data-flag": group.flag });
      var header = el("header");
      header.appendChild(el("h3", {}, group.label + " — " + thousands(group.rows.length) + (group.rows.length === 1 ? " flow" : " flows")));
      var pager = el("span", { "class": "pager" });
      var prev = el("button", { type: "button", "aria-label": "Previous flow" }, "◀");
      var where = el("span", { "aria-live": "polite" });
      var next = el("button", { type: "button", "aria-label": "Next flow" }, "▶");
      pager.appendChild(prev); pager.appendChild(where); pager.appendChild(next);
      if (group.rows.length > 1) { header.appendChild(pager); }
      section.appendChild(header);
      var title = el("p", { "class": "ladder-title" });
      var box = el("div", { "class": "ladder-box" });
      section.appendChild(title);
      section.appendChild(box);
      var at = 0;
      function show() {
        var r = group.rows[at];
        where.textContent = thousands(at + 1) + " of " + thousands(group.rows.length);
        title.textContent = VALUES.flow_id[r] + " · " + VALUES.close_kind[r] + " · closed first by " + VALUES.active_closer[r] +
          " · TIME_WAIT on " + VALUES.time_wait_on[r];
        drawLadder(r, box);
      }
      prev.addEventListener("click", function () { at = (at + group.rows.length - 1) % group.rows.length; show(); });
      next.addEventListener("click", function () { at = (at + 1) % group.rows.length; show(); });
      show();
      holder.appendChild(section);
    });
  }

  applyView();
  featured();
})();
