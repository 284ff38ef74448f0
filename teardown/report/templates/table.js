/* teardown report, 3 of 3: the flows table, drawing only the rows in view so 100,000 flows
   stay responsive; sorting, filters, CSV download; the chosen flow and the featured ladders. */
(function (T) {
  "use strict";

  var DATA = T.DATA, N = T.N, COLUMNS = T.COLUMNS, VALUES = T.VALUES, FLAGS = T.FLAGS, KIND = T.KIND;
  var el = T.el, thousands = T.thousands, cellText = T.cellText, csvText = T.csvText, flagLabels = T.flagLabels;
  var drawLadder = T.drawLadder, evidenceFilter = T.evidenceFilter;

  var ALL_COLUMNS = COLUMNS.map(function (c) { return c.name; });
  ALL_COLUMNS.splice(ALL_COLUMNS.indexOf("notes"), 0, "findings");
  var HELP = { findings: "findings: Findings of this flow (the Finding filter's choices)." };
  var LABEL = { findings: "Findings" };
  COLUMNS.forEach(function (c) { HELP[c.name] = c.name + ": " + c.help; LABEL[c.name] = c.label; });
  var NUMERIC = { int: true, ts: true, dur: true };
  var WIDTH = { flow_id: 300, notes: 380, evidence_frames: 420, findings: 260, client_ip: 150, server_ip: 150,
                display_filter: 520 };
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
      var th = el("th", { scope: "col", style: "width:" + (WIDTH[name] || (KIND[name] === "ts" ? 215 : 140)) + "px", "data-column": name });
      if (state.sortBy === name) { th.setAttribute("aria-sort", state.descending ? "descending" : "ascending"); }
      var button = el("button", { type: "button", title: HELP[name] || name }, LABEL[name] || name);
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
      if (name === "display_filter") { td.className = "mono"; }
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
      ? thousands(N) + " flows" + (state.sortBy ? ", sorted by " + LABEL[state.sortBy] + (state.descending ? " (descending)" : "") : "")
      : thousands(total) + " of " + thousands(N) + " flows match";
    document.getElementById("csv-download").textContent = "Download CSV (" + thousands(total) + " rows)";
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
    label.appendChild(document.createTextNode(LABEL[name] || name));
    picker.appendChild(label);
  });
  // The popover opens below its button, shifted left as far as it must to stay in the viewport.
  var pickerBox = picker.parentNode;
  pickerBox.addEventListener("toggle", function () {
    picker.style.left = "0px";
    if (!pickerBox.open) { return; }
    var box = picker.getBoundingClientRect(), room = document.documentElement.clientWidth - 8;
    if (box.right > room) { picker.style.left = Math.round(Math.max(8 - box.left, room - box.right)) + "px"; }
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

  /* ---------- a flow's Wireshark filters, each with a copy button ---------- */

  function copy(text, code, button) {
    function said(done) {
      button.textContent = done ? "Copied" : "Selected: press Ctrl+C";
      window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
    }
    function selectAndCopy() {   // without the clipboard API (an old browser, a page it distrusts)
      var range = document.createRange();
      range.selectNodeContents(code);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      try { return document.execCommand("copy"); } catch (e) { return false; }
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { said(true); }, function () { said(selectAndCopy()); });
    } else {
      said(selectAndCopy());
    }
  }

  function filterLine(label, text, help, more) {
    var pair = el("div");
    pair.appendChild(el("dt", { title: help }, label));
    var dd = el("dd");
    var code = el("code", { "class": "filter" }, text);
    var button = el("button", { type: "button", "class": "copy", title: "Copy to paste into Wireshark's display filter bar" }, "Copy");
    button.addEventListener("click", function () { copy(text, code, button); });
    dd.appendChild(code);
    dd.appendChild(button);
    if (more) { dd.appendChild(el("span", { "class": "muted" }, more)); }
    pair.appendChild(dd);
    return pair;
  }

  function filterBlock(r) {   // as filters.html.j2 writes it for a page without this script
    var block = el("dl", { "class": "filters" });
    if (VALUES.display_filter[r]) {
      block.appendChild(filterLine("Display filter", VALUES.display_filter[r], HELP.display_filter));
    }
    var evidence = evidenceFilter(r);
    if (evidence && evidence.text) {
      var more = evidence.beyond ? " and " + thousands(evidence.beyond) + " in the next file" + (evidence.beyond === 1 ? "" : "s") : "";
      block.appendChild(filterLine("Evidence frames", evidence.text, "The frames evidence_frames names, numbered as " +
        VALUES.capture_file[r] + " numbers them", more));
    }
    return block;
  }

  /* ---------- a chosen flow, and the featured ladders ---------- */

  function select(r) {
    state.selected = r;
    renderRows();
    var panel = document.getElementById("flow-detail");
    panel.hidden = false;
    document.getElementById("flow-detail-id").textContent = VALUES.flow_id[r];
    var filters = document.getElementById("flow-detail-filters");
    filters.textContent = "";
    filters.appendChild(filterBlock(r));
    var facts = document.getElementById("flow-detail-facts");
    facts.textContent = "";
    ALL_COLUMNS.forEach(function (name) {
      var text = name === "findings" ? flagLabels(r).join(", ") : cellText(name, r);
      if (text === "" || name === "flow_id" || name === "display_filter") { return; }
      var pair = el("div");
      pair.appendChild(el("dt", { title: HELP[name] || name }, LABEL[name] || name));
      pair.appendChild(el("dd", {}, text));
      facts.appendChild(pair);
    });
    drawLadder(r, document.getElementById("flow-detail-ladder"));
    panel.scrollIntoView({ block: "nearest" });
  }

  function featured() {   // the page holds the first ladder of some findings already (ladder_svg.py)
    var holder = document.getElementById("featured-ladders");
    // Each ladder drawn into the page gets its filters' copy buttons, paged through or not.
    holder.querySelectorAll("section[data-row]").forEach(function (section) {
      section.replaceChild(filterBlock(Number(section.dataset.row)), section.querySelector("dl.filters"));
    });
    if (!DATA.featured.length) { return; }
    DATA.featured.forEach(function (group) {
      group.rows = [];
      for (var r = 0; r < N; r++) { if (FLAGS[r] & (1 << group.bit)) { group.rows.push(r); } }
      var section = holder.querySelector("section[data-flag='" + group.flag + "']");
      var drawn = section !== null;
      if (!drawn) {
        if (!holder.querySelector("section")) { holder.textContent = ""; }
        section = el("section", { "class": "ladder-group", "data-flag": group.flag });
        var h = el("header");
        h.appendChild(el("h3", {}, group.label + " — " + thousands(group.rows.length) + (group.rows.length === 1 ? " flow" : " flows")));
        section.appendChild(h);
        section.appendChild(el("p", { "class": "ladder-title" }));
        section.appendChild(el("dl", { "class": "filters" }));
        section.appendChild(el("div", { "class": "ladder-box" }));
        holder.appendChild(section);
      }
      var header = section.querySelector("header");
      var title = section.querySelector(".ladder-title"), box = section.querySelector(".ladder-box");
      var pager = el("span", { "class": "pager" });
      var prev = el("button", { type: "button", "aria-label": "Previous flow" }, "◀");
      var where = el("span", { "aria-live": "polite" });
      var next = el("button", { type: "button", "aria-label": "Next flow" }, "▶");
      pager.appendChild(prev); pager.appendChild(where); pager.appendChild(next);
      if (group.rows.length > 1) { header.appendChild(pager); }
      var at = drawn ? Math.max(0, group.rows.indexOf(Number(section.dataset.row))) : 0;
      function show(draw) {
        var r = group.rows[at];
        where.textContent = thousands(at + 1) + " of " + thousands(group.rows.length);
        title.textContent = VALUES.flow_id[r] + " · " + VALUES.close_kind[r] + " · closed first by " + VALUES.active_closer[r] +
          " · TIME_WAIT on " + VALUES.time_wait_on[r];
        section.replaceChild(filterBlock(r), section.querySelector("dl.filters"));
        if (draw) { drawLadder(r, box); }
      }
      prev.addEventListener("click", function () { at = (at + group.rows.length - 1) % group.rows.length; show(true); });
      next.addEventListener("click", function () { at = (at + 1) % group.rows.length; show(true); });
      show(!drawn);
    });
  }

  applyView();
  featured();
})(teardownReport);
