/* Draws the interview report charts. Each <canvas data-chart="ID"> takes its Chart.js configuration
 * (plain JSON, no functions) from the <script type="application/json" id="ID"> that json_script wrote:
 * the CSP allows no inline script, so the data travels as JSON and the code as this file. */
(function () {
  "use strict";
  function draw() {
    if (typeof window.Chart === "undefined") return;
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById(canvas.getAttribute("data-chart"));
      if (!source) return;
      var config = JSON.parse(source.textContent);
      config.options = Object.assign({ responsive: true, animation: false }, config.options || {});
      canvas.chart = new window.Chart(canvas, config);
      canvas.setAttribute("data-drawn", "true");
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
