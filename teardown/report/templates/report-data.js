/* teardown report, 1 of 3: the data embedded in the page (written by teardown/report/table.py
   and ladder.py), decoded into one array per column, and what the table and the ladders share:
   formatting, and building elements with text only, never markup. */
var teardownReport = (function () {
  "use strict";

  document.documentElement.classList.replace("no-js", "js");   // shows the controls that need this script
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var N = DATA.n;

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
    if (col.spelt) { return; }
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
  // flow_id not sent: each id is its row's columns spelt as present.flow_ids spells them, which
  // the writer checked id for id (report/table.py, page_spells_flow_ids); it saves a third of a
  // big report's bytes.
  if (COLUMNS[0].spelt) {
    VALUES.flow_id = VALUES.client_ip.map(function (ip, r) {
      var vlan = VALUES.vlan[r];
      return (vlan === null ? "" : "vlan" + vlan + "/") + endpoint(ip, VALUES.client_port[r]) + ">" +
        endpoint(VALUES.server_ip[r], VALUES.server_port[r]) + "/" + VALUES.incarnation[r];
    });
  }
  // display_filter not sent either, where the writer found every filter spelt so (report/table.py,
  // spelt_display_filters): the 4-tuple from the row's columns, as filters.display_filters
  // writes it, then the frame range and the carrier's clause, which are sent.
  function address(ip, version) { return version === 6 && ip.indexOf(":") < 0 ? "::ffff:" + ip : ip; }
  function source(ip, port) { return (ip.indexOf(":") >= 0 ? "ipv6" : "ip") + ".src==" + ip + " && tcp.srcport==" + port; }
  function destination(ip, port) { return (ip.indexOf(":") >= 0 ? "ipv6" : "ip") + ".dst==" + ip + " && tcp.dstport==" + port; }
  var FILTERS = COLUMNS.filter(function (c) { return c.name === "display_filter" && c.spelt; })[0];
  if (FILTERS) {
    var firsts = decodeValues(FILTERS.from, N), lengths = decodeValues(FILTERS.length, N);
    var carriers = decodeValues(FILTERS.carrier, N);
    VALUES.display_filter = VALUES.client_ip.map(function (ip, r) {
      var c = address(ip, VALUES.ip_version[r]), s = address(VALUES.server_ip[r], VALUES.ip_version[r]);
      var cp = VALUES.client_port[r], sp = VALUES.server_port[r];
      return "((" + source(c, cp) + " && " + destination(s, sp) + ") || (" + source(s, sp) + " && " +
        destination(c, cp) + ")) && frame.number in {" + firsts[r] + ".." + (firsts[r] + lengths[r]) + "}" + carriers[r];
    });
  }
  // The evidence frames as a filter on the row's file: numbered there from 1 (DATA.files: per
  // file name, the frames of its capture before it and the number of its last frame, null when
  // not known), sorted, each once; those past the file's end counted (filters.evidence_filter).
  function evidenceFilter(r) {
    var file = DATA.files[VALUES.capture_file[r]], text = VALUES.evidence_frames[r];
    if (!file || !text) { return null; }
    var seen = {}, inside = [], beyond = 0;
    (text.match(/[0-9]+/g) || []).forEach(function (n) {
      var k = Number(n) - file[0];
      if (seen[k]) { return; }
      seen[k] = true;
      if (k > 0 && (file[1] === null || k <= file[1] - file[0])) { inside.push(k); } else { beyond++; }
    });
    inside.sort(function (a, b) { return a - b; });
    return { text: inside.length ? "frame.number in {" + inside.join(",") + "}" : "", beyond: beyond };
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
    if (kind === "ts") { return clockText(DATA.t0_us + v, true); }
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

  return { DATA: DATA, N: N, COLUMNS: COLUMNS, VALUES: VALUES, FLAGS: FLAGS, KIND: KIND, endpoint: endpoint,
           clockText: clockText, secondsText: secondsText, cellText: cellText, csvText: csvText,
           flagLabels: flagLabels, el: el, svg: svg, thousands: thousands, evidenceFilter: evidenceFilter };
})();
