/**
 * The HTML report's page code (./html.ts inlines it): plain browser JavaScript (ES2017, no
 * modules, no network) that reads the data island `#report-data` and draws the report with
 * uPlot. Kept as text: it runs in the browser, not in Node. Every chart registers itself in
 * `window.trtReport.charts` and carries `data-points` (its x values), so tests and users can
 * check what was drawn.
 */

export const REPORT_CSS = `
:root { --fail: #c62828; --pass: #2e7d32; --warn: #ef6c00; --muted: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { background: #263238; color: #fff; padding: 10px 20px; }
header h1 { font-size: 17px; margin: 0; font-weight: 600; word-break: break-all; }
main { padding: 12px 20px 40px; max-width: 1400px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; margin: 12px 0; }
h2 { font-size: 15px; margin: 0 0 8px; }
h3 { font-size: 13px; margin: 4px 0; word-break: break-all; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; font-weight: 600; }
.verdict.pass { background: var(--pass); } .verdict.fail { background: var(--fail); } .verdict.warn { background: var(--warn); }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0; }
.kv dt { color: var(--muted); } .kv dd { margin: 0; word-break: break-all; }
.note { color: var(--muted); margin: 4px 0; }
.notice { background: #fff8e1; border: 1px solid #ffe082; padding: 8px 12px; border-radius: 4px; margin: 8px 0; }
.first-failing { background: #ffebee; border-left: 4px solid var(--fail); padding: 6px 10px; margin: 8px 0; }
table.data { border-collapse: collapse; width: 100%; font-size: 12.5px; }
table.data th, table.data td { border-bottom: 1px solid #eee; padding: 3px 6px; text-align: left; vertical-align: top; }
table.data th { position: sticky; top: 0; background: #f5f5f5; cursor: pointer; user-select: none; white-space: nowrap; }
table.data th.sorted-asc::after { content: " \\25B2"; } table.data th.sorted-desc::after { content: " \\25BC"; }
table.data td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.data tr.failed td { background: #fff5f5; }
table.data tr.first-failing-row td { background: #ffcdd2; font-weight: 600; }
table.data tr.plan-row td { background: #c8e6c9; font-weight: 600; }
table.data tr.clickable { cursor: pointer; } table.data tr.selected td { outline: 1px solid #1565c0; }
.table-wrap { max-height: 480px; overflow: auto; border: 1px solid #eee; }
.filter-bar { display: flex; gap: 10px; align-items: center; margin: 6px 0; }
.filter-bar input { padding: 4px 8px; width: 320px; font: inherit; }
.count { color: var(--muted); }
.badge { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 3px; margin: 1px 2px 1px 0; background: #eceff1; }
.badge.harmful { background: #ffcdd2; color: #b71c1c; } .badge.warning { background: #ffe0b2; color: #e65100; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 12px; }
.card { border: 1px solid #eee; border-radius: 4px; padding: 8px; }
.tooltip { position: absolute; pointer-events: none; background: rgba(33,33,33,.92); color: #fff; font-size: 12px; padding: 4px 8px; border-radius: 3px; white-space: nowrap; z-index: 10; display: none; }
.chart { position: relative; }
pre.config { background: #263238; color: #eceff1; padding: 8px 10px; border-radius: 4px; overflow: auto; max-height: 260px; white-space: pre-wrap; word-break: break-all; margin: 4px 0 10px; }
button.copy { font: inherit; font-size: 12px; padding: 2px 10px; cursor: pointer; }
.legend-list { font-size: 12px; color: #444; margin: 4px 0; }
.legend-list span { margin-right: 10px; white-space: nowrap; }
.swatch { display: inline-block; width: 12px; height: 3px; vertical-align: middle; margin-right: 3px; }
`;

export const REPORT_CLIENT_JS = String.raw`(function () {
"use strict";
var D = JSON.parse(document.getElementById("report-data").textContent);
var R = D.result;
var MAXV = 1.7976931348623157e308;
var app = document.getElementById("app");
var state = { kind: D.kind, charts: {}, tables: {} };
window.trtReport = state;

function el(tag, attrs, kids) {
  var e = document.createElement(tag);
  if (attrs) for (var k in attrs) {
    if (attrs[k] === undefined || attrs[k] === null) continue;
    if (k === "text") e.textContent = attrs[k];
    else if (k === "cls") e.className = attrs[k];
    else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), attrs[k]);
    else e.setAttribute(k, attrs[k]);
  }
  if (kids) kids.forEach(function (c) { if (c !== null && c !== undefined) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
  return e;
}
var INT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000];
function isInf(x) { return typeof x === "number" && Math.abs(x) >= MAXV; }
function fin(x) { return typeof x === "number" && isFinite(x) && !isInf(x) ? x : null; }
function fmt(x, digits) {
  if (x === null || x === undefined) return "-";
  if (typeof x !== "number") return String(x);
  if (isInf(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return "0";
  var a = Math.abs(x);
  if (a >= 1e4 || a < 1e-3) return x.toExponential(digits || 2);
  return String(Number(x.toPrecision(digits ? digits + 1 : 3)));
}
function pct(x) { return x === null || x === undefined ? "-" : (100 * x).toPrecision(3) + "%"; }
function db(x) { return x === null || x === undefined ? "-" : isInf(x) ? (x > 0 ? "inf" : "-inf") : x.toFixed(1); }
function section(title, id) { var s = el("section", { id: id }, [el("h2", { text: title })]); app.appendChild(s); return s; }
function kv(pairs) {
  var d = el("dl", { cls: "kv" });
  pairs.forEach(function (p) { if (p[1] === undefined) return; d.appendChild(el("dt", { text: p[0] })); d.appendChild(el("dd", null, [typeof p[1] === "string" ? p[1] : p[1] === null ? "-" : p[1]])); });
  return d;
}
function verdictBadge(ok, text, warn) { return el("span", { cls: "verdict " + (warn ? "warn" : ok ? "pass" : "fail"), text: text }); }
function width(box) { return Math.max(320, Math.floor((box.clientWidth || 900) - 4)); }

// A sortable, filterable table. cols: {key, label, num, get(row) -> sort value, show(row) -> text|node}
function dataTable(id, cols, rows, opts) {
  opts = opts || {};
  var wrap = el("div");
  var input = el("input", { type: "search", placeholder: "filter (name, op, reason ...)", cls: "filter", "data-table": id, "aria-label": "filter rows" });
  var count = el("span", { cls: "count" });
  wrap.appendChild(el("div", { cls: "filter-bar" }, [input, count]));
  var table = el("table", { cls: "data", id: id });
  var thead = el("thead"), tbody = el("tbody");
  var htr = el("tr");
  var sort = { col: -1, dir: 1 };
  var trs = rows.map(function (r, i) {
    var tr = el("tr", { "data-row": String(i) });
    if (opts.rowClass) { var c = opts.rowClass(r, i); if (c) tr.className = c; }
    cols.forEach(function (c) {
      var v = c.show ? c.show(r) : c.get(r);
      tr.appendChild(el("td", { cls: c.num ? "num" : null }, [v === null || v === undefined ? "-" : typeof v === "object" ? v : String(v)]));
    });
    if (opts.onClick) { tr.classList.add("clickable"); tr.addEventListener("click", function () { opts.onClick(r, tr); }); }
    tr._text = cols.map(function (c) { var t = c.text ? c.text(r) : c.show ? c.show(r) : c.get(r); return t && typeof t === "object" ? t.textContent : String(t); }).join(" ").toLowerCase();
    tr._row = r;
    return tr;
  });
  cols.forEach(function (c, ci) {
    var th = el("th", { text: c.label, title: "sort" });
    th.addEventListener("click", function () {
      sort.dir = sort.col === ci ? -sort.dir : 1; sort.col = ci;
      Array.prototype.forEach.call(htr.children, function (h) { h.className = ""; });
      th.className = sort.dir > 0 ? "sorted-asc" : "sorted-desc";
      var key = function (tr) { var v = c.get(tr._row); return v === null || v === undefined ? (c.num ? Infinity : "") : v; };
      trs.slice().sort(function (a, b) { var x = key(a), y = key(b); return (x < y ? -1 : x > y ? 1 : 0) * sort.dir || Number(a.dataset.row) - Number(b.dataset.row); }).forEach(function (tr) { tbody.appendChild(tr); });
    });
    htr.appendChild(th);
  });
  thead.appendChild(htr);
  trs.forEach(function (tr) { tbody.appendChild(tr); });
  table.appendChild(thead); table.appendChild(tbody);
  function apply() {
    var q = input.value.trim().toLowerCase(), n = 0;
    trs.forEach(function (tr) { var ok = !q || tr._text.indexOf(q) >= 0; tr.style.display = ok ? "" : "none"; if (ok) n++; });
    count.textContent = n + " of " + rows.length + " rows";
    table.setAttribute("data-visible-rows", String(n));
  }
  input.addEventListener("input", apply);
  apply();
  wrap.appendChild(el("div", { cls: "table-wrap" }, [table]));
  state.tables[id] = { rows: rows.length };
  return wrap;
}

function tooltipFor(box) { var t = el("div", { cls: "tooltip" }); box.appendChild(t); return t; }
function chart(id, box, opts, data) {
  var holder = el("div", { cls: "chart", id: id });
  box.appendChild(holder);
  opts.width = width(box);
  var u = new uPlot(opts, data, holder);
  holder.setAttribute("data-points", String(data[0].length));
  state.charts[id] = u;
  return { u: u, holder: holder };
}
function vline(u, x, color, dash, widthPx) {
  if (x === null || x === undefined || !isFinite(x)) return;
  var ctx = u.ctx, px = u.valToPos(x, "x", true);
  if (px < u.bbox.left - 1 || px > u.bbox.left + u.bbox.width + 1) return;
  ctx.save(); ctx.strokeStyle = color; ctx.lineWidth = (widthPx || 1.5) * (window.devicePixelRatio || 1);
  ctx.setLineDash(dash || []);
  ctx.beginPath(); ctx.moveTo(px, u.bbox.top); ctx.lineTo(px, u.bbox.top + u.bbox.height); ctx.stroke(); ctx.restore();
}
function copyButton(text) {
  var b = el("button", { cls: "copy", type: "button", text: "copy" });
  b.addEventListener("click", function () {
    var done = function () { b.textContent = "copied"; setTimeout(function () { b.textContent = "copy"; }, 1200); };
    var fallback = function () {
      var ta = el("textarea"); ta.value = text; document.body.appendChild(ta); ta.select();
      try { document.execCommand("copy"); done(); } catch (e) { b.textContent = "select and copy"; }
      document.body.removeChild(ta);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(done, fallback); else fallback();
  });
  return b;
}
function config(box, label, text, id) {
  if (!text) return;
  box.appendChild(el("div", null, [el("strong", { text: label + " " }), copyButton(text)]));
  box.appendChild(el("pre", { cls: "config", id: id, text: text }));
}
function notes(list) {
  if (!list || !list.length) return;
  var s = section("Notes", "notes");
  list.forEach(function (n) { s.appendChild(el("p", { cls: "note", text: n })); });
}

// ---------------------------------------------------------------- compare
function thresholdOf(row) {
  var m = /rel L2 \S+ (?:>|<=) (\S+)$/.exec(row.reason || "");
  return m ? Number(m[1]) : null;
}
// --metric sqnr --threshold X: "SQNR 12.3 dB < 20"
function sqnrThresholdOf(row) {
  var m = /SQNR \S+ dB (?:>=|<) (\S+)$/.exec(row.reason || "");
  return m ? Number(m[1]) : null;
}
function sameOrNull(xs) {
  var known = xs.filter(function (x) { return x !== null; });
  return known.length && known.every(function (x) { return x === known[0]; }) ? known[0] : null;
}
function renderCompare() {
  var rows = (R.layers || []).slice().sort(function (a, b) { return (a.order - b.order) || ((a.iteration || 0) - (b.iteration || 0)); });
  var ffIdx = -1;
  rows.forEach(function (r, i) { if (ffIdx < 0 && R.first_failing_layer !== null && r.layer === R.first_failing_layer && r.tensor === R.first_failing_tensor && !r.passed) ffIdx = i; });
  var ff = ffIdx >= 0 ? rows[ffIdx] : null;
  var s = section("Summary", "summary");
  var v = R.verdict || (R.passed ? "passed" : "failed");
  s.appendChild(el("p", null, [verdictBadge(v === "passed", v === "passed" ? "PASSED" : v === "degenerate" ? "NO VERDICT (degenerate reference)" : "FAILED", v === "degenerate")]));
  s.appendChild(kv([["reference", R.reference], ["candidate", R.candidate], ["tensors compared", String(rows.length)], ["failing tensors", String(rows.filter(function (r) { return !r.passed; }).length)], ["input sets", R.iterations ? String(R.iterations.length) : undefined], ["first failing iteration", R.first_failing_iteration === undefined || R.first_failing_iteration === null ? undefined : String(R.first_failing_iteration)]]));
  var ffBox = el("div", { cls: ff ? "first-failing" : "note", id: "first-failing", "data-index": String(ffIdx), "data-layer": ff ? ff.layer : "" });
  if (ff) {
    ffBox.appendChild(el("strong", { text: "First failing layer: " }));
    ffBox.appendChild(document.createTextNode(ff.layer + " (" + ff.op_type + ", #" + ff.order + ", tensor " + ff.tensor + "): " + ff.reason + (ff.evidence && ff.evidence.length ? "; " + ff.evidence.join("; ") : "")));
  } else ffBox.textContent = R.verdict === "degenerate" ? "No first failing layer: a reference output is degenerate under these inputs." : "First failing layer: none";
  s.appendChild(ffBox);
  if (R.iterations && R.iterations.length) {
    s.appendChild(el("h3", { text: "Input sets" }));
    s.appendChild(dataTable("iterations-table", [
      { label: "iteration", num: true, get: function (it) { return it.iteration; } },
      { label: "verdict", get: function (it) { return it.passed ? "PASS" : "FAIL"; } },
      { label: "first failing layer", get: function (it) { return it.first_failing_layer; } },
      { label: "tensor", get: function (it) { return it.first_failing_tensor; } },
    ], R.iterations, { rowClass: function (it) { return it.passed ? "" : "failed"; } }));
  }

  // per-output verdicts
  var outs = rows.filter(function (r) { return r.is_graph_output; });
  var so = section("Graph outputs", "outputs");
  if (R.degenerate_outputs) R.degenerate_outputs.forEach(function (d) { so.appendChild(el("p", { cls: "notice", text: d.message })); });
  so.appendChild(dataTable("outputs-table", [
    { label: "output", get: function (r) { return r.tensor; } },
    { label: "iteration", get: function (r) { return r.iteration === undefined ? null : r.iteration; }, num: true },
    { label: "verdict", get: function (r) { return r.degenerate ? "no verdict (" + r.degenerate + ")" : r.passed ? "PASS" : "FAIL"; } },
    { label: "reason", get: function (r) { return r.reason; } },
    { label: "rel L2", num: true, get: function (r) { return r.metrics.rel_l2; }, show: function (r) { return fmt(r.metrics.rel_l2); } },
    { label: "SQNR dB", num: true, get: function (r) { return r.metrics.sqnr_db; }, show: function (r) { return db(r.metrics.sqnr_db); } },
    { label: "max abs", num: true, get: function (r) { return r.metrics.max_abs; }, show: function (r) { return fmt(r.metrics.max_abs); } },
    { label: "cosine", num: true, get: function (r) { return r.metrics.cosine; }, show: function (r) { return r.metrics.cosine === null ? "-" : r.metrics.cosine.toFixed(6); } },
  ], outs, { rowClass: function (r) { return r.passed ? "" : "failed"; } }));

  // error along execution order
  var sc = section("Error along the execution order", "error-chart-section");
  if (!rows.length) sc.appendChild(el("p", { cls: "notice", text: "This result holds no per-layer rows." }));
  else {
    var FLOOR = 1e-10;
    var xs = rows.map(function (_, i) { return i; });
    var rl2 = rows.map(function (r) { var x = r.metrics.rel_l2; return x === null || isInf(x) ? null : Math.max(x, FLOOR); });
    var top = Math.max.apply(null, rl2.filter(function (x) { return x !== null; }).concat([1]));
    // The threshold of rows whose reason names none (NaN/Inf, Polygraphy checks): the run's one threshold, when all rows that name one agree.
    var thr = rows.map(thresholdOf);
    var one = sameOrNull(thr);
    thr = thr.map(function (x) { return x === null ? one : x; });
    var sqThr = sameOrNull(rows.map(sqnrThresholdOf));
    var sq = rows.map(function (r) { return fin(r.metrics.sqnr_db); });
    var bad = rows.map(function (r) { var m = r.metrics; return (m.new_nonfinite > 0 || m.cand_nan > m.ref_nan || m.cand_inf > m.ref_inf || isInf(m.rel_l2) || (m.rel_l2 === null && !r.passed)) ? top * 3 : null; });
    var fails = rows.map(function (r, i) { return r.passed ? null : rl2[i] === null ? top * 3 : rl2[i]; });
    var nBad = bad.filter(function (x) { return x !== null; }).length;
    var thrText = thr.some(function (x) { return x !== null; }) ? "the dashed red line is the precision's rel L2 threshold" : sqThr !== null ? "the dashed green line is the SQNR threshold (--metric sqnr)" : "no threshold line (the verdict is not a rel L2 or SQNR threshold)";
    sc.appendChild(el("p", { cls: "note", text: "x: the " + rows.length + " compared tensors in execution order; rel L2 on a log axis (0 drawn at 1e-10), SQNR in dB on the right; " + thrText + "; red dots fail; circles at the top mark new NaN/Inf (" + nBad + "); the vertical red line is the first failing layer." }));
    var tip;
    var c = chart("error-chart", sc, {
      height: 340,
      scales: { x: { time: false }, rl2: { distr: 3 }, db: {} },
      legend: { live: true },
      axes: [
        { label: "layer (execution order)", incrs: INT_INCRS },
        { scale: "rl2", label: "rel L2", size: 70, values: function (u, vals) { return vals.map(function (x) { return x === null ? "" : Number(x).toExponential(0); }); } },
        { scale: "db", side: 1, label: "SQNR (dB)", grid: { show: false } },
      ],
      series: [
        { label: "#", value: function (u, i) { return i === null ? "-" : rows[i] ? rows[i].layer : "-"; } },
        { label: "rel L2", scale: "rl2", stroke: "#1565c0", width: 1.2, spanGaps: false, value: function (u, x) { return fmt(x); } },
        { label: "threshold", scale: "rl2", stroke: "#c62828", width: 1, dash: [6, 4], points: { show: false }, value: function (u, x) { return fmt(x); } },
        { label: "SQNR dB", scale: "db", stroke: "#2e7d32", width: 1, value: function (u, x) { return db(x); } },
        { label: "failing", scale: "rl2", stroke: "#c62828", fill: "#c62828", paths: function () { return null; }, points: { show: true, size: 5, stroke: "#c62828", fill: "#c62828" }, value: function (u, x) { return x === null ? "-" : "yes"; } },
        { label: "new NaN/Inf", scale: "rl2", stroke: "#6a1b9a", paths: function () { return null; }, points: { show: true, size: 10, stroke: "#6a1b9a", fill: "#fff", width: 2 }, value: function (u, x) { return x === null ? "-" : "yes"; } },
        { label: "SQNR threshold", show: sqThr !== null, scale: "db", stroke: "#2e7d32", width: 1, dash: [6, 4], points: { show: false }, value: function (u, x) { return db(x); } },
      ],
      hooks: {
        draw: [function (u) { if (ffIdx >= 0) vline(u, ffIdx, "#c62828", [], 2); }],
        setCursor: [function (u) {
          var i = u.cursor.idx;
          if (!tip) return;
          if (i === null || i === undefined || !rows[i]) { tip.style.display = "none"; return; }
          var r = rows[i];
          tip.textContent = "#" + r.order + " " + r.layer + " (" + r.op_type + ") " + r.tensor + ": rel L2 " + fmt(r.metrics.rel_l2) + ", SQNR " + db(r.metrics.sqnr_db) + " dB, " + (r.passed ? "pass" : "FAIL");
          tip.style.display = "block";
          tip.style.left = (u.over.offsetLeft + Math.min(u.cursor.left + 12, u.over.clientWidth * 0.6)) + "px";
          tip.style.top = (u.over.offsetTop + u.cursor.top + 14) + "px";
        }],
      },
    }, [xs, rl2, thr, sq, fails, bad, rows.map(function () { return sqThr; })]);
    tip = tooltipFor(c.holder);
    c.holder.setAttribute("data-first-failing", String(ffIdx));
    c.holder.setAttribute("data-nonfinite", String(nBad));
  }

  // the table
  var st = section("Layers", "layers");
  st.appendChild(dataTable("layers-table", [
    { label: "#", num: true, get: function (r) { return r.order; } },
    { label: "layer", get: function (r) { return r.layer; } },
    { label: "op", get: function (r) { return r.op_type; } },
    { label: "tensor", get: function (r) { return r.tensor; } },
    { label: "prec", get: function (r) { return r.precision; } },
    { label: "rel L2", num: true, get: function (r) { return r.metrics.rel_l2; }, show: function (r) { return fmt(r.metrics.rel_l2); } },
    { label: "SQNR dB", num: true, get: function (r) { return r.metrics.sqnr_db; }, show: function (r) { return db(r.metrics.sqnr_db); } },
    { label: "max abs", num: true, get: function (r) { return r.metrics.max_abs; }, show: function (r) { return fmt(r.metrics.max_abs); } },
    { label: "cosine", num: true, get: function (r) { return r.metrics.cosine; }, show: function (r) { return r.metrics.cosine === null ? "-" : r.metrics.cosine.toFixed(6); } },
    { label: "NaN/Inf", num: true, get: function (r) { return r.metrics.new_nonfinite; } },
    { label: "verdict", get: function (r) { return r.passed ? "ok" : "FAIL"; } },
    { label: "reason", get: function (r) { return r.reason + (r.evidence && r.evidence.length ? "; " + r.evidence.join("; ") : ""); } },
  ], rows, { rowClass: function (r, i) { return i === ffIdx ? "failed first-failing-row" : r.passed ? "" : "failed"; } }));

  // worst layers
  var sw = section("Worst layers: error histogram and reference vs candidate", "worst");
  var samples = D.samples || [];
  if (!samples.length) {
    sw.appendChild(el("p", { cls: "notice", id: "no-samples", text: D.samples === null
      ? "No tensor values in this report: it was rendered from a saved --json result, which holds metrics only. The error histograms and reference-vs-candidate scatters of the worst layers need a live run: trt-debug compare ... --report FILE.html."
      : "No tensor samples were taken (no floating tensor was compared)." }));
    var worst = rows.slice().sort(function (a, b) { return (a.passed - b.passed) || ((b.metrics.rel_l2 === null ? Infinity : b.metrics.rel_l2) - (a.metrics.rel_l2 === null ? Infinity : a.metrics.rel_l2)); }).slice(0, 5);
    sw.appendChild(el("p", { cls: "note", text: "The worst tensors by rel L2: " + worst.map(function (r) { return r.layer + " (" + fmt(r.metrics.rel_l2) + ")"; }).join(", ") }));
  } else {
    sw.appendChild(el("p", { cls: "note", text: "Up to " + Math.max.apply(null, samples.map(function (x) { return x.index.length; })) + " evenly spaced elements per tensor, the " + samples.length + " worst tensors (failing first, then the largest rel L2)." }));
    var grid = el("div", { cls: "grid" });
    sw.appendChild(grid);
    samples.forEach(function (smp, k) { renderSample(grid, smp, k); });
  }
  notes(R.notes);
}

function renderSample(grid, smp, k) {
  var card = el("div", { cls: "card", id: "sample-" + k });
  grid.appendChild(card);
  card.appendChild(el("h3", { text: "#" + smp.order + " " + smp.layer + " (" + smp.op_type + ") " + smp.tensor + (smp.iteration === null ? "" : ", iteration " + smp.iteration) + ": rel L2 " + fmt(smp.rel_l2 === null ? MAXV : smp.rel_l2) + (smp.passed ? "" : " FAIL") }));
  var pairs = [], nonfinite = 0;
  for (var i = 0; i < smp.index.length; i++) {
    var r = smp.ref[i], c = smp.cand[i];
    if (r === null || c === null) { nonfinite++; continue; }
    pairs.push([r, c]);
  }
  card.appendChild(el("p", { cls: "note", text: smp.index.length + " of " + smp.numel + " elements" + (nonfinite ? "; " + nonfinite + " with NaN/Inf on either side (left out)" : "") }));
  if (!pairs.length) return;
  // error histogram
  var errs = pairs.map(function (p) { return p[1] - p[0]; });
  var lo = Math.min.apply(null, errs), hi = Math.max.apply(null, errs);
  var nb = 40;
  if (!(hi > lo)) { lo -= 0.5; hi = lo + 1; }
  var w = (hi - lo) / nb, centres = [], counts = [];
  for (var b = 0; b < nb; b++) { centres.push(lo + (b + 0.5) * w); counts.push(0); }
  errs.forEach(function (e) { counts[Math.min(nb - 1, Math.floor((e - lo) / w))]++; });
  chart("sample-hist-" + k, card, {
    height: 200, title: "error (candidate - reference)",
    scales: { x: { time: false } },
    legend: { show: false },
    axes: [{ values: function (u, v) { return v.map(function (x) { return fmt(x); }); } }, { label: "elements", size: 60 }],
    series: [{}, { label: "elements", stroke: "#1565c0", fill: "rgba(21,101,192,.35)", paths: uPlot.paths.bars({ size: [0.95, 100] }), points: { show: false } }],
  }, [centres, counts]);
  // scatter, sorted by the reference value (uPlot wants ascending x)
  pairs.sort(function (a, b) { return a[0] - b[0]; });
  chart("sample-scatter-" + k, card, {
    height: 220, title: "candidate vs reference",
    scales: { x: { time: false } },
    legend: { show: false },
    axes: [{ label: "reference", values: function (u, v) { return v.map(function (x) { return fmt(x); }); } }, { label: "candidate", size: 72, values: function (u, v) { return v.map(function (x) { return fmt(x); }); } }],
    series: [{}, { label: "candidate", stroke: "#c62828", paths: function () { return null; }, points: { show: true, size: 4, fill: "#c62828", stroke: "#c62828" } }, { label: "y = x", stroke: "#999", width: 1, dash: [4, 4], points: { show: false } }],
  }, [pairs.map(function (p) { return p[0]; }), pairs.map(function (p) { return p[1]; }), pairs.map(function (p) { return p[0]; })]);
}

// ---------------------------------------------------------------- bisect
function renderBisect() {
  var its = R.iterations || [];
  var s = section("Summary", "summary");
  var head = R.found ? "PLAN FOUND: " + R.pinned_layers.length + " layer" + (R.pinned_layers.length === 1 ? "" : "s") + " pinned to " + R.pin_precision : R.stopped ? "STOPPED: " + R.stopped : "NO PLAN: nothing passes";
  s.appendChild(el("p", null, [verdictBadge(R.found, head, !R.found && !!R.stopped)]));
  s.appendChild(kv([["model", R.model], ["mode", R.mode + (R.direction ? " (" + R.direction + ")" : "")], ["candidate precision", R.precision], ["pinned layers run in", R.pin_precision], ["criterion", R.criterion], ["layers", R.total_layers + " (" + R.searchable_layers + " searchable)"], ["evaluations", R.evaluations + " (+" + R.cached_evaluations + " cached), " + fmt(R.model_executions) + " model executions"], ["final verification", R.final_verification ? (R.final_verification.passed ? "passed: " : "failed: ") + R.final_verification.detail : "-"], ["k", R.k === null || R.k === undefined ? undefined : String(R.k)]]));

  var planIt = -1;
  its.forEach(function (it, i) { if (it.passed && it.size === R.pinned_layers.length && R.found) planIt = i; });
  var st = section("Search trajectory", "trajectory");
  st.appendChild(el("p", { cls: "note", text: "x: iteration; bars/steps: layers pinned in the candidate (left axis)" + (R.metric_name ? "; line: " + R.metric_name + " of the graph outputs (right axis)" : "") + "; green dots pass, red dots fail; the vertical line marks the plan's evaluation." }));
  if (its.length) {
    var xs = its.map(function (it) { return it.iteration; });
    var hasMetric = its.some(function (it) { return fin(it.metric) !== null; });
    var series = [
      { label: "iteration" },
      { label: "layers pinned", scale: "n", stroke: "#1565c0", width: 1.5, paths: uPlot.paths.stepped({ align: 1 }), points: { show: false } },
      { label: "passed", scale: "n", stroke: "#2e7d32", paths: function () { return null; }, points: { show: true, size: 8, fill: "#2e7d32", stroke: "#2e7d32" } },
      { label: "failed", scale: "n", stroke: "#c62828", paths: function () { return null; }, points: { show: true, size: 8, fill: "#c62828", stroke: "#c62828" } },
    ];
    var data = [xs, its.map(function (it) { return it.size; }), its.map(function (it) { return it.passed ? it.size : null; }), its.map(function (it) { return it.passed ? null : it.size; })];
    var axes = [{ label: "iteration", incrs: INT_INCRS }, { scale: "n", label: "layers pinned" }];
    if (hasMetric) {
      series.push({ label: R.metric_name || "metric", scale: "m", stroke: "#6a1b9a", width: 1, dash: [3, 3], value: function (u, x) { return fmt(x); } });
      data.push(its.map(function (it) { return fin(it.metric); }));
      axes.push({ scale: "m", side: 1, label: R.metric_name || "metric", grid: { show: false }, values: function (u, v) { return v.map(function (x) { return fmt(x); }); } });
    }
    var c = chart("trajectory-chart", st, {
      height: 300, scales: { x: { time: false }, n: { range: function (u, mn, mx) { return [0, Math.max(1, mx) * 1.1]; } }, m: {} }, axes: axes, series: series,
      hooks: { draw: [function (u) { if (planIt >= 0) vline(u, xs[planIt], "#2e7d32", [5, 3], 2); }] },
    }, data);
    c.holder.setAttribute("data-plan-iteration", planIt >= 0 ? String(its[planIt].iteration) : "");
  }
  st.appendChild(dataTable("iterations-table", [
    { label: "iteration", num: true, get: function (it) { return it.iteration; } },
    { label: "phase", get: function (it) { return it.phase; } },
    { label: "selection", get: function (it) { return it.selection; } },
    { label: "pinned", num: true, get: function (it) { return it.size; } },
    { label: "verdict", get: function (it) { return it.passed ? "pass" : "fail"; } },
    { label: R.metric_name || "metric", num: true, get: function (it) { return it.metric; }, show: function (it) { return fmt(it.metric); } },
    { label: "detail", get: function (it) { return it.detail + (it.cached ? " (cached)" : ""); } },
    { label: "layers", get: function (it) { return it.pinned ? it.pinned.join(", ") : "(" + it.size + ")"; } },
  ], its, { rowClass: function (it, i) { return i === planIt ? "plan-row" : it.passed ? "" : "failed"; } }));

  var sp = section("Pinned layers and their evidence", "pinned");
  if (!R.pinned.length) sp.appendChild(el("p", { cls: "note", text: "No layer pinned." }));
  else sp.appendChild(dataTable("pinned-table", [
    { label: "#", num: true, get: function (p) { return p.order; } },
    { label: "layer", get: function (p) { return p.name; } },
    { label: "op", get: function (p) { return p.op_type; } },
    { label: "runs in", get: function (p) { return p.precision; } },
    { label: "kind", get: function (p) { return p.kind; } },
    { label: "score", num: true, get: function (p) { return p.score; }, show: function (p) { return fmt(p.score); } },
    { label: "local rel L2", num: true, get: function (p) { return p.local_rel_l2; }, show: function (p) { return fmt(p.local_rel_l2); } },
    { label: "evidence", get: function (p) { return (p.evidence || []).join("; ") || "-"; } },
    { label: "unpinned alone", get: function (p) { return p.unpinned ? (p.unpinned.passed ? "passes: " : "fails: ") + p.unpinned.detail : "-"; } },
  ], R.pinned));
  if (R.sensitive_layers && R.sensitive_layers.length) {
    sp.appendChild(el("h3", { text: "Layers that fail on their own (local sensitivity)" }));
    sp.appendChild(dataTable("sensitive-table", [
      { label: "layer", get: function (p) { return p.name; } },
      { label: "op", get: function (p) { return p.op_type; } },
      { label: "kind", get: function (p) { return p.kind; } },
      { label: "score", num: true, get: function (p) { return p.score; }, show: function (p) { return fmt(p.score); } },
      { label: "evidence", get: function (p) { return (p.evidence || []).join("; ") || "-"; } },
    ], R.sensitive_layers));
  }

  var sc = section("Configs", "configs");
  if (!R.found) sc.appendChild(el("p", { cls: "notice", text: "No verified plan: nothing to copy." }));
  config(sc, "trtexec flags", R.trtexec_flags, "config-trtexec");
  config(sc, "Polygraphy arguments", R.polygraphy_args, "config-polygraphy");
  if (R.plan) config(sc, "precision plan (trt-debug --precision-plan)", JSON.stringify(R.plan, null, 2), "config-plan");
  if (R.saved_onnx) config(sc, "strongly typed model: trtexec", R.saved_onnx.trtexec, "config-saved-onnx");
  if (R.saved_qdq) config(sc, "Q/DQ model: trtexec", R.saved_qdq.trtexec, "config-saved-qdq");
  notes(R.notes);
}

// ---------------------------------------------------------------- calib check
var ALGO_COLORS = ["#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#558b2f", "#4e342e"];
function flagBadges(t) {
  var d = el("span");
  (t.flags || []).forEach(function (f) { d.appendChild(el("span", { cls: "badge " + f.severity, title: f.message, text: f.code })); });
  return d;
}
function renderHistogram(box, t, id) {
  var h = t.histogram;
  var card = el("div", { cls: "card", id: id + "-card", "data-tensor": t.tensor });
  box.appendChild(card);
  card.appendChild(el("h3", { text: t.tensor + (t.producer ? " (from " + t.producer + ")" : "") }));
  card.appendChild(flagBadges(t));
  (t.flags || []).forEach(function (f) { card.appendChild(el("p", { cls: "note", text: f.code + ": " + f.message })); });
  if (!h || !h.counts.length) { card.appendChild(el("p", { cls: "note", text: "No histogram (not observed, or saved by a version without histograms)." })); return; }
  var lines = [];
  if (t.cache_amax !== null && t.cache_amax !== undefined) lines.push({ label: "cache amax " + fmt(t.cache_amax, 3), x: t.cache_amax, color: "#000", w: 2.5, dash: [] });
  var algos = t.calibrators ? Object.keys(t.calibrators) : [];
  algos.forEach(function (a, i) { lines.push({ label: a + " " + fmt(t.calibrators[a].amax, 3), x: t.calibrators[a].amax, color: ALGO_COLORS[i % ALGO_COLORS.length], w: 1.5, dash: [5, 3] }); });
  if (t.observed) lines.push({ label: "p99.9 " + fmt(t.observed.p99_9, 3), x: t.observed.p99_9, color: "#9e9e9e", w: 1, dash: [2, 2] });
  var xs = h.counts.map(function (_, j) { return (j + 0.5) * h.bin_width; });
  var ys = h.counts.map(function (c) { return c > 0 ? c : null; });
  var xmax = Math.max.apply(null, [h.counts.length * h.bin_width].concat(lines.map(function (l) { return l.x; }).filter(function (x) { return x !== null && isFinite(x) && !isInf(x); }))) * 1.04;
  chart(id, card, {
    height: 220,
    scales: { x: { time: false, range: function () { return [0, xmax || 1]; } }, y: { distr: 3 } },
    legend: { show: false },
    axes: [{ label: "|x|", values: function (u, v) { return v.map(function (x) { return fmt(x); }); } }, { label: "values (log)", values: function (u, v) { return v.map(function (x) { return x === null ? "" : Number(x).toExponential(0); }); } }],
    series: [{}, { label: "values", stroke: "#546e7a", fill: "rgba(84,110,122,.45)", paths: uPlot.paths.bars({ size: [1, 100], align: 0 }), points: { show: false } }],
    hooks: { draw: [function (u) { lines.forEach(function (l) { vline(u, l.x, l.color, l.dash, l.w); }); }] },
  }, [xs, ys]);
  var lg = el("div", { cls: "legend-list" });
  lines.forEach(function (l) { lg.appendChild(el("span", null, [el("span", { cls: "swatch", style: "background:" + l.color }), l.label])); });
  card.appendChild(lg);
  var q = t.quality;
  if (q) card.appendChild(el("p", { cls: "note", text: "cache range: clipped " + pct(q.clipped_fraction) + ", quantized to 0 " + pct(q.zero_fraction) + ", bulk SQNR " + db(q.bulk_sqnr_db) + " dB, amax / p99.9 = " + fmt(q.range_ratio) + (t.best_algo ? "; best calibrator here: " + t.best_algo : "") }));
}
function renderCalib() {
  var ts = R.tensors || [];
  var s = section("Summary", "summary");
  s.appendChild(el("p", null, [verdictBadge(R.passed, R.passed ? "PASSED: no harmful flag" : "FAILED: " + R.harmful_tensors.length + " tensor" + (R.harmful_tensors.length === 1 ? "" : "s") + " flagged harmful")]));
  s.appendChild(kv([["model", R.model], ["cache", R.cache && R.cache.path ? R.cache.path + (R.cache.tensors !== undefined ? " (" + R.cache.tensors + " tensors" + (R.cache.source === "qdq" ? ", scales read from the Q/DQ model's QuantizeLinear nodes" : "") + ")" : "") : JSON.stringify(R.cache)], ["cache algorithm", R.cache_algo || "-"], ["data", R.data + (R.random_data ? " (random)" : "")], ["batches", R.batches + " (" + R.check_batches + " for the layer errors)"], ["int8 layers", R.int8 ? R.int8.int8_layers + " of " + R.int8.layers + " (fallback " + R.int8.fallback_precision + ", range " + R.int8.activation_range + ")" : "-"], ["thresholds", R.thresholds ? "clip > " + pct(R.thresholds.maxClipFraction) + ", bulk SQNR < " + R.thresholds.minSqnrDb + " dB, amax > " + R.thresholds.maxRangeRatio + "x p99.9" : "-"]]));
  (R.warnings || []).forEach(function (w) { s.appendChild(el("p", { cls: "notice", text: w })); });
  if (R.outputs && R.outputs.length) {
    s.appendChild(el("h3", { text: "Graph outputs, int8 run vs FP32" }));
    s.appendChild(dataTable("outputs-table", [
      { label: "output", get: function (o) { return o.tensor; } },
      { label: "verdict", get: function (o) { return o.passed ? "PASS" : "FAIL"; } },
      { label: "rel L2", num: true, get: function (o) { return o.rel_l2; }, show: function (o) { return fmt(o.rel_l2); } },
      { label: "threshold", num: true, get: function (o) { return o.threshold; } },
      { label: "SQNR dB", num: true, get: function (o) { return o.sqnr_db; }, show: function (o) { return db(o.sqnr_db); } },
    ], R.outputs, { rowClass: function (o) { return o.passed ? "" : "failed"; } }));
  }
  var harmful = function (t) { return (t.flags || []).some(function (f) { return f.severity === "harmful"; }); };
  var sel = section("Histograms", "histograms");
  sel.appendChild(el("p", { cls: "note", text: "|x| over the calibration data (log counts), with the cache's amax (solid black), each calibrator's choice (dashed) and the 99.9th percentile (grey). Flagged tensors first; click a row of the table below to show any tensor." }));
  var selected = el("div", { id: "selected-histogram" });
  sel.appendChild(selected);
  var grid = el("div", { cls: "grid" });
  sel.appendChild(grid);
  var order = ts.slice().sort(function (a, b) { return (harmful(b) - harmful(a)) || ((b.flags || []).length - (a.flags || []).length) || ((b.impact || 0) - (a.impact || 0)); });
  var shown = order.filter(function (t) { return t.histogram; }).slice(0, 12);
  shown.forEach(function (t, k) { renderHistogram(grid, t, "hist-" + k); });
  var st = section("Tensors", "tensors");
  st.appendChild(dataTable("tensors-table", [
    { label: "tensor", get: function (t) { return t.tensor; } },
    { label: "producer", get: function (t) { return t.producer; } },
    { label: "int8", get: function (t) { return t.quantized ? "yes" : "no"; } },
    { label: "cache amax", num: true, get: function (t) { return t.cache_amax; }, show: function (t) { return fmt(t.cache_amax); } },
    { label: "max |x|", num: true, get: function (t) { return t.observed ? t.observed.max : null; }, show: function (t) { return fmt(t.observed ? t.observed.max : null); } },
    { label: "p99.9", num: true, get: function (t) { return t.observed ? t.observed.p99_9 : null; }, show: function (t) { return fmt(t.observed ? t.observed.p99_9 : null); } },
    { label: "clipped", num: true, get: function (t) { return t.quality ? t.quality.clipped_fraction : null; }, show: function (t) { return pct(t.quality ? t.quality.clipped_fraction : null); } },
    { label: "amax/p99.9", num: true, get: function (t) { return t.quality ? t.quality.range_ratio : null; }, show: function (t) { return fmt(t.quality ? t.quality.range_ratio : null); } },
    { label: "bulk SQNR dB", num: true, get: function (t) { return t.quality ? t.quality.bulk_sqnr_db : null; }, show: function (t) { return db(t.quality ? t.quality.bulk_sqnr_db : null); } },
    { label: "best algo", get: function (t) { return t.best_algo; } },
    { label: "flags", get: function (t) { return (t.flags || []).map(function (f) { return f.code; }).join(" "); }, show: flagBadges, text: function (t) { return (t.flags || []).map(function (f) { return f.code; }).join(" "); } },
  ], ts, {
    rowClass: function (t) { return harmful(t) ? "failed" : ""; },
    onClick: function (t, tr) {
      Array.prototype.forEach.call(tr.parentNode.children, function (x) { x.classList.remove("selected"); });
      tr.classList.add("selected");
      if (state.charts["hist-selected"]) { state.charts["hist-selected"].destroy(); delete state.charts["hist-selected"]; }
      selected.innerHTML = "";
      renderHistogram(selected, t, "hist-selected");
      selected.scrollIntoView({ block: "nearest" });
    },
  }));
  if (R.worst && R.worst.length) {
    var sw = section("Worst tensors and suggestions", "worst");
    sw.appendChild(dataTable("worst-table", [
      { label: "rank", num: true, get: function (w) { return w.rank; } },
      { label: "tensor", get: function (w) { return w.tensor; } },
      { label: "flags", get: function (w) { return w.flags.join(" ") + (w.harmful ? " (harmful)" : ""); } },
      { label: "suggestion", get: function (w) { return w.suggestion; } },
    ], R.worst, { rowClass: function (w) { return w.harmful ? "failed" : ""; } }));
  }
}

try {
  if (D.kind === "compare") renderCompare();
  else if (D.kind === "bisect") renderBisect();
  else renderCalib();
  document.body.setAttribute("data-ready", "1");
} catch (e) {
  app.appendChild(el("p", { cls: "notice", text: "The report could not be drawn: " + (e && e.message ? e.message : String(e)) }));
  throw e;
}
})();
`;
