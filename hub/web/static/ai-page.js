/* The AI assist page (hub/web/templates/ai.html), under the CSP (no inline script):
   - charts drawn with the vendored uPlot from the numbers in each element's data-ai-chart
     attribute: precision and coverage per threshold, and verdicts per week; the same numbers
     are in a table beside each chart, for screen readers and without JavaScript;
   - the sentence saying what the high threshold means follows the threshold input as it is
     typed, read from the held-out table in data-ai-meaning, per task (data-for: its input;
     data-unit: what it counts), by the same rule as
     hub/web/ai_view.py `meaning`; the saved page says it again from the server). */
(function () {
  "use strict";

  function pct(v) { return v === null || v === undefined ? "—" : Math.round(v * 100) + "%"; }

  function color(tone) {
    var style = getComputedStyle(document.documentElement);
    var fallback = { ok: "#1a7f37", busy: "#0b5cad", bad: "#b42318" }[tone] || "#5b6472";
    return style.getPropertyValue("--hub-" + tone).trim() || fallback;
  }

  var COUNTS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

  function spaced(values, gap) {  // threshold ticks, none closer than `gap` to the previous one
    var out = [];
    values.forEach(function (v) { if (!out.length || v - out[out.length - 1] >= gap - 1e-9) out.push(v); });
    return out;
  }

  function draw(el) {
    if (el.dataset.drawn || typeof uPlot === "undefined") return;
    el.dataset.drawn = "1";
    var data = JSON.parse(el.dataset.aiChart);
    var weeks = data.kind === "weeks";
    // weeks are categories (one point per week that had verdicts), placed at 0..n-1
    var xs = weeks ? data.x.map(function (d, i) { return i; }) : data.x;
    var series = [{ label: weeks ? "Week" : "Threshold",
                    value: function (u, v) { return v === null ? "" : weeks ? data.x[v] : v.toFixed(2); } }];
    data.series.forEach(function (s) {
      var c = color(s.tone);
      series.push({ label: s.label, stroke: c, width: 2, points: { show: true, size: 6, fill: c },
                    value: weeks ? undefined : function (u, v) { return pct(v); } });
    });
    var opts = {
      width: Math.max(320, el.clientWidth || 640),
      height: 220,
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: weeks
        ? { x: { time: false, range: [-0.5, Math.max(xs.length - 0.5, 0.5)] },
            y: { range: function (u, min, max) { return [0, Math.max(2, Math.ceil(max * 1.1))]; } } }
        : { x: { time: false }, y: { range: [0, 1] } },
      series: series,
      axes: weeks
        ? [{ splits: function () { return xs; }, values: function (u, vals) { return vals.map(function (v) { return data.x[v] || ""; }); } },
           { size: 48, incrs: COUNTS, values: function (u, vals) { return vals.map(function (v) { return String(v); }); } }]
        : [{ splits: function () { return spaced(data.x, 0.04); }, values: function (u, vals) { return vals.map(function (v) { return v.toFixed(2); }); } },
           { size: 52, values: function (u, vals) { return vals.map(pct); } }]
    };
    var plot = new uPlot(opts, [xs].concat(data.series.map(function (s) { return s.values; })), el);
    window.addEventListener("resize", function () {
      plot.setSize({ width: Math.max(320, el.clientWidth || 640), height: 220 });
    });
  }

  function meaning(table, threshold, unit) {
    var rows = table.filter(function (r) { return r.count; });
    if (!rows.length || isNaN(threshold)) return null;
    var below = rows.filter(function (r) { return r.threshold <= threshold + 1e-9; });
    var row = below.length ? below[below.length - 1] : rows[0];
    var exact = Math.abs(row.threshold - threshold) < 1e-9;
    return "at " + threshold.toFixed(2) + (exact ? "" : " (measured at " + row.threshold.toFixed(2) + ")") +
      ": " + pct(row.precision) + " correct, covers " + pct(row.coverage) + " of " + (unit || "lines");
  }

  function follow(out) {
    var input = document.getElementById(out.dataset.for);
    if (!input || input.disabled) return;
    var table = JSON.parse(out.dataset.aiMeaning).sort(function (a, b) { return a.threshold - b.threshold; });
    input.addEventListener("input", function () {
      var text = meaning(table, parseFloat(input.value), out.dataset.unit);
      if (text) out.textContent = text;
    });
  }

  function start() {
    document.querySelectorAll("[data-ai-chart]").forEach(draw);
    document.querySelectorAll("[data-ai-meaning]").forEach(follow);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
