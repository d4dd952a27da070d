/* Shared helpers for the interview screens. Loaded as files (CSP: script-src 'self'); text goes in with
 * textContent only, never as HTML. */
(function () {
  "use strict";
  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }
  function request(method, url, body) {
    var options = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRFToken"] = csrf();
      options.body = JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var message = data.detail || Object.keys(data).map(function (k) { return k + ": " + [].concat(data[k]).join(" "); }).join("; ");
          throw new Error(message || ("HTTP " + response.status));
        }
        return data;
      });
    });
  }
  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }
  function clock(seconds) {
    if (seconds === null || seconds === undefined) return "--:--";
    var sign = seconds < 0 ? "-" : "";
    var s = Math.abs(seconds);
    var m = Math.floor(s / 60), r = s % 60;
    return sign + String(m).padStart(2, "0") + ":" + String(r).padStart(2, "0");
  }
  /* A countdown driven by the server's remaining seconds, ticking locally between polls. */
  function Countdown(node) { this.node = node; this.remaining = null; this.at = 0; this.paused = false; }
  Countdown.prototype.set = function (remaining, paused) { this.remaining = remaining; this.paused = paused; this.at = Date.now(); this.draw(); };
  Countdown.prototype.draw = function () {
    if (this.remaining === null) { this.node.textContent = "--:--"; return; }
    var left = this.paused ? this.remaining : this.remaining - Math.floor((Date.now() - this.at) / 1000);
    this.node.textContent = clock(left);
    this.node.classList.toggle("text-danger", left < 0);
  };
  function showError(node, error) {
    if (!node) return;
    node.textContent = error ? String(error.message || error) : "";
    node.classList.toggle("d-none", !error);
  }
  window.Interviews = { request: request, el: el, clock: clock, Countdown: Countdown, showError: showError };
})();
