/* The report dashboard's charts, drawn with Chart.js from the figures the page embeds with json_script.
 * Loaded as a file (CSP: script-src 'self'); every chart also has a table on the page. */
(function () {
  "use strict";

  var source = document.getElementById("report-data");
  if (!source || typeof window.Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  var Chart = window.Chart;
  var colours = { blue: "#0d6efd", teal: "#20c997", orange: "#fd7e14", purple: "#6f42c1", grey: "#6c757d" };

  function hours(seconds) { return seconds === null ? null : Math.round(seconds / 36) / 100; }
  function percent(rate) { return rate === null ? null : Math.round(rate * 1000) / 10; }
  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) return;
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options);
    canvas.chart = new Chart(canvas, config);
  }

  draw("chart-trend", {
    data: {
      labels: data.trend.map(function (p) { return p.date; }),
      datasets: [
        { type: "bar", label: "Received", data: data.trend.map(function (p) { return p.received; }),
          backgroundColor: colours.blue, yAxisID: "count" },
        { type: "line", label: "MTTR median (h)", data: data.trend.map(function (p) { return hours(p.mttr_median_seconds); }),
          borderColor: colours.orange, backgroundColor: colours.orange, spanGaps: true, yAxisID: "hours" }
      ]
    },
    options: { scales: {
      count: { type: "linear", position: "left", beginAtZero: true, title: { display: true, text: "incidents" } },
      hours: { type: "linear", position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
               title: { display: true, text: "hours" } }
    } }
  });

  draw("chart-sla", {
    type: "bar",
    data: {
      labels: data.sla.by_priority.map(function (row) { return "P" + row.priority; }),
      datasets: [
        { label: "Response %", data: data.sla.by_priority.map(function (r) { return percent(r.response.compliance); }),
          backgroundColor: colours.teal },
        { label: "Resolution %", data: data.sla.by_priority.map(function (r) { return percent(r.resolution.compliance); }),
          backgroundColor: colours.purple }
      ]
    },
    options: { scales: { y: { min: 0, max: 100, title: { display: true, text: "% met" } } } }
  });

  draw("chart-backlog", {
    type: "line",
    data: {
      labels: data.backlog.series.map(function (p) { return p.date; }),
      datasets: [{ label: "Open", data: data.backlog.series.map(function (p) { return p.open; }),
                   borderColor: colours.grey, backgroundColor: colours.grey, fill: false }]
    },
    options: { scales: { y: { beginAtZero: true } } }
  });

  draw("chart-categories", {
    type: "bar",
    data: {
      labels: data.top_categories.map(function (c) { return c.domain + ": " + c.category; }),
      datasets: [{ label: "Incidents", data: data.top_categories.map(function (c) { return c.count; }),
                   backgroundColor: colours.blue }]
    },
    options: { indexAxis: "y", scales: { x: { beginAtZero: true } } }
  });
})();
