/* The candidate's screen: brief, countdown, the facts revealed so far (worded exactly as revealed),
 * notepad, problems citing facts and ranked solutions. Polls the candidate API; no account needed. */
(function () {
  "use strict";
  var I = window.Interviews;
  var root = document.getElementById("iv-candidate");
  if (!root) return;
  var api = root.getAttribute("data-api");
  var errorBox = document.getElementById("c-error");
  var countdown = new I.Countdown(document.getElementById("c-countdown"));
  var lastVersion = null;
  var notepadDirty = false;

  function fail(error) { I.showError(errorBox, error); }

  function draw(v) {
    I.showError(errorBox, null);
    document.getElementById("c-phase").textContent = v.phase;
    countdown.set(v.clock.remaining_seconds, v.clock.paused);
    document.getElementById("c-countdown").classList.toggle("text-warning", !!v.clock.warning);
    var paused = document.getElementById("c-paused");
    paused.textContent = v.state === "paused" ? "Paused: " + v.pause_reason : "";
    paused.classList.toggle("d-none", v.state !== "paused");
    if (v.version === lastVersion) return;
    lastVersion = v.version;
    if (v.case.title) document.getElementById("c-title").textContent = v.case.title;
    document.getElementById("c-presentation").textContent = v.case.presentation || "The interview has not started yet.";
    document.getElementById("c-brief").textContent = v.case.brief;
    var image = document.getElementById("c-image");
    if (v.case.image && image.getAttribute("src") !== v.case.image) image.setAttribute("src", v.case.image);
    image.classList.toggle("d-none", !v.case.image);
    var reveals = document.getElementById("c-reveals");
    var cite = document.getElementById("c-cite");
    reveals.textContent = "";
    cite.textContent = "";
    v.reveals.forEach(function (r, index) {
      var item = I.el("li", r.text);
      item.setAttribute("data-reveal", r.id);
      reveals.appendChild(item);
      var label = I.el("label", null, "form-check small");
      var box = I.el("input", null, "form-check-input");
      box.type = "checkbox"; box.name = "cite"; box.value = r.id;
      label.appendChild(box);
      label.appendChild(I.el("span", " Fact " + (index + 1), "form-check-label"));
      cite.appendChild(label);
    });
    var answers = document.getElementById("c-answers");
    answers.textContent = "";
    v.answers.filter(function (a) { return a.answer !== "revealed"; }).forEach(function (a) {
      answers.appendChild(I.el("li", a.question + " — " + (a.answer === "not_available" ? "not available" : a.text)));
    });
    var problems = document.getElementById("c-problems");
    problems.textContent = "";
    v.problems.forEach(function (p) { problems.appendChild(I.el("li", p.statement)); });
    var solutions = document.getElementById("c-solutions");
    solutions.textContent = "";
    v.solutions.forEach(function (s) { solutions.appendChild(I.el("li", s.action + (s.reason ? " — " + s.reason : ""))); });
    var notepad = document.getElementById("c-notepad");
    if (!notepadDirty && document.activeElement !== notepad) notepad.value = v.notepad;
    document.getElementById("c-outcome").textContent = v.outcome;
    document.getElementById("c-outcome-card").classList.toggle("d-none", !v.outcome);
  }

  function refresh() { return I.request("GET", api).then(draw, fail); }

  document.getElementById("c-problem-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    var cited = Array.prototype.map.call(form.querySelectorAll("input[name=cite]:checked"), function (b) { return Number(b.value); });
    I.request("POST", api + "problems/", { statement: form.statement.value, cited_reveals: cited })
      .then(function (v) { form.reset(); lastVersion = null; draw(v); }, fail);
  });
  document.getElementById("c-solution-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    // form.action is the form's own action attribute: read the fields by name.
    var fields = form.elements;
    I.request("POST", api + "solutions/", { action: fields.namedItem("action").value, reason: fields.namedItem("reason").value })
      .then(function (v) { form.reset(); lastVersion = null; draw(v); }, fail);
  });
  var notepad = document.getElementById("c-notepad");
  var saveTimer = null;
  notepad.addEventListener("input", function () {
    notepadDirty = true;
    clearTimeout(saveTimer);
    saveTimer = setTimeout(function () {
      I.request("PUT", api + "notepad/", { text: notepad.value }).then(function () {
        notepadDirty = false;
        document.getElementById("c-notepad-status").textContent = "Saved";
      }, fail);
    }, 600);
  });

  refresh();
  setInterval(function () { countdown.draw(); }, 1000);
  setInterval(refresh, 2000);
})();
