/* The sync history chart: records and failures per day, drawn with the vendored uPlot from
   the numbers in the element's data-chart attribute (the CSP allows no inline script). The
   same numbers are in a table beside it, for screen readers and without JavaScript. */
(function () {
  "use strict";

  function draw(el) {
    if (el.dataset.drawn || typeof uPlot === "undefined") return;
    el.dataset.drawn = "1";
    var data = JSON.parse(el.dataset.chart);
    var xs = data.days.map(function (day) { return Date.parse(day + "T00:00:00Z") / 1000; });
    var style = getComputedStyle(document.documentElement);
    var ok = style.getPropertyValue("--hub-busy").trim() || "#0b5cad";
    var bad = style.getPropertyValue("--hub-bad").trim() || "#b42318";
    var opts = {
      width: Math.max(320, el.clientWidth || 640),
      height: 220,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: { x: { time: true } },
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      series: [
        { label: "Day" },
        { label: "Records", stroke: ok, fill: ok + "33", width: 1, paths: uPlot.paths.bars({ size: [0.6, 24] }) },
        { label: "Failed", stroke: bad, width: 2, points: { show: true, size: 5 } }
      ],
      axes: [{}, { size: 56 }]
    };
    var plot = new uPlot(opts, [xs, data.records, data.failed], el);
    window.addEventListener("resize", function () {
      plot.setSize({ width: Math.max(320, el.clientWidth || 640), height: 220 });
    });
  }

  function drawAll() {
    document.querySelectorAll("[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
