/* The interviewer's console: phase controls and countdown, fact board with one-click reveals, suggested
 * facts for the question just typed (always confirmed by a click), key-fact counter, flags and notes,
 * blind rating. Everything goes through the REST API. */
(function () {
  "use strict";
  var I = window.Interviews;
  var root = document.getElementById("iv-console");
  if (!root) return;
  var api = root.getAttribute("data-api");
  var role = root.getAttribute("data-role");
  var errorBox = document.getElementById("iv-error");
  var countdown = new I.Countdown(document.getElementById("iv-countdown"));
  var facts = [];
  var lastQuestion = null;
  var state = null;

  function fail(error) { I.showError(errorBox, error); }
  function ok() { I.showError(errorBox, null); }
  // Read the session back after every write: the phase controls act on the state shown.
  function post(path, body) {
    return I.request("POST", api + path, body || {}).then(
      function (d) { ok(); return refreshSession().then(function () { return d; }); },
      function (e) { fail(e); throw e; }
    );
  }

  function refreshSession() {
    return I.request("GET", api).then(function (s) {
      state = s.state;
      document.getElementById("iv-phase").textContent = s.state;
      countdown.set(s.clock.remaining_seconds, s.clock.paused);
      document.getElementById("iv-warning").classList.toggle("d-none", !s.clock.warning || s.clock.overrun_seconds > 0);
      document.getElementById("iv-overrun").classList.toggle("d-none", !(s.clock.overrun_seconds > 0));
      var link = document.getElementById("iv-candidate-link");
      if (link && s.candidate_url) link.textContent = location.origin + "/interviews/c/" + s.candidate_url.split("/").slice(-2, -1)[0] + "/";
      document.querySelectorAll("#iv-actions [data-action]").forEach(function (b) {
        b.disabled = s.allowed_actions.indexOf(b.getAttribute("data-action")) < 0;
      });
    });
  }

  function revealed(fact, level) { return fact.revealed.indexOf(level) >= 0; }

  function revealButtons(fact) {
    var group = I.el("span", null, "btn-group btn-group-sm ms-2");
    if (role !== "lead") return group;
    [["full", "Reveal"], ["partial", "Partial"]].forEach(function (pair) {
      if (pair[0] === "partial" && !fact.partial_text) return;
      var b = I.el("button", pair[1], "btn btn-outline-primary");
      b.type = "button";
      b.setAttribute("data-reveal", fact.key);
      b.setAttribute("data-level", pair[0]);
      b.disabled = revealed(fact, pair[0]);
      group.appendChild(b);
    });
    return group;
  }

  function drawFacts() {
    var list = document.getElementById("iv-facts");
    var q = (document.getElementById("iv-fact-search").value || "").toLowerCase();
    list.textContent = "";
    var keys = 0, found = 0;
    facts.forEach(function (f) {
      if (f.importance === "key") { keys++; if (f.revealed.length) found++; }
      if (q && (f.title + " " + f.text + " " + f.keywords.join(" ")).toLowerCase().indexOf(q) < 0) return;
      var item = I.el("li", null, "list-group-item" + (f.revealed.length ? " list-group-item-success" : ""));
      item.setAttribute("data-fact", f.key);
      var head = I.el("div", null, "d-flex align-items-center");
      head.appendChild(I.el("strong", f.title));
      head.appendChild(I.el("span", f.importance.replace("_", " "), "badge text-bg-light ms-2"));
      if (f.revealed.length) head.appendChild(I.el("span", "revealed: " + f.revealed.join(", "), "badge text-bg-success ms-2"));
      head.appendChild(revealButtons(f));
      item.appendChild(head);
      item.appendChild(I.el("div", f.text, "small"));
      if (f.partial_text) item.appendChild(I.el("div", "Partial: " + f.partial_text, "small text-secondary"));
      if (f.requires.length) item.appendChild(I.el("div", "Needs first: " + f.requires.join(", "), "small text-secondary"));
      list.appendChild(item);
    });
    document.getElementById("iv-key-counter").textContent = "key facts " + found + "/" + keys;
  }

  function refreshFacts() { return I.request("GET", api + "facts/").then(function (data) { facts = data; drawFacts(); }); }

  function refreshQuestions() {
    return I.request("GET", api + "questions/").then(function (page) {
      var list = document.getElementById("iv-questions");
      list.textContent = "";
      page.results.forEach(function (q) {
        var item = I.el("li", q.text + (q.late ? " (late)" : ""));
        item.appendChild(I.el("span", " — " + q.answer + (q.reveals.length ? " " + q.reveals.join(", ") : ""), "text-secondary"));
        list.appendChild(item);
      });
    });
  }

  // The answer key, for mapping the candidate's statements (raters and the lead only).
  var key = null;
  function loadKey() {
    if (key || (role !== "lead" && role !== "rater")) return Promise.resolve(key);
    return I.request("GET", root.getAttribute("data-case")).then(function (c) { key = c.document; return key; });
  }

  function mapper(kind, item, options) {
    var select = I.el("select", null, "form-select form-select-sm d-inline-block w-auto ms-2");
    select.setAttribute("aria-label", "Map " + kind + " " + item.id);
    select.setAttribute("data-map", kind + ":" + item.id);
    options.forEach(function (o) {
      var option = I.el("option", o[1]);
      option.value = o[0];
      select.appendChild(option);
    });
    return select;
  }

  function refreshProblems() {
    return Promise.all([I.request("GET", api + "problems/"), loadKey()]).then(function (results) {
      var list = document.getElementById("iv-problems");
      list.textContent = "";
      results[0].results.forEach(function (p) {
        var item = I.el("li", p.statement + (p.late ? " (late)" : ""));
        if (key) {
          var options = [["unmapped", "not mapped"], ["novel_valid", "valid, not expected"], ["invalid", "not valid"]];
          key.problems.forEach(function (e) { options.push(["matched:" + e.key, "= " + e.key + ": " + e.statement]); });
          var select = mapper("problem", p, options);
          select.value = p.verdict === "matched" ? "matched:" + p.matched_problem : p.verdict;
          item.appendChild(select);
        } else {
          item.appendChild(I.el("span", " [" + p.verdict + "]", "text-secondary"));
        }
        list.appendChild(item);
      });
    });
  }

  function refreshSolutions() {
    return Promise.all([I.request("GET", api + "solutions/"), loadKey()]).then(function (results) {
      var list = document.getElementById("iv-solutions");
      list.textContent = "";
      results[0].results.forEach(function (s) {
        var item = I.el("li", s.action + (s.reason ? " — " + s.reason : ""));
        if (key) {
          var options = [["unmapped", "not mapped"], ["other", "neither"]];
          key.solutions.forEach(function (m) { options.push(["matched:" + m.key, "= " + m.key + ": " + m.action]); });
          key.harmful_actions.forEach(function (h) { options.push(["harmful:" + h.key, "harmful " + h.key + ": " + h.action]); });
          var select = mapper("solution", s, options);
          select.value = s.verdict === "matched" ? "matched:" + s.matched_solution
            : s.verdict === "harmful" ? "harmful:" + s.harmful_action : s.verdict;
          item.appendChild(select);
        }
        list.appendChild(item);
      });
    });
  }

  root.addEventListener("change", function (event) {
    var select = event.target.closest("[data-map]");
    if (!select) return;
    var target = select.getAttribute("data-map").split(":");
    var choice = select.value.split(":");
    var body = { verdict: choice[0] };
    if (target[0] === "problem" && choice[1]) body.expected = choice[1];
    if (target[0] === "solution" && choice[0] === "matched") body.model = choice[1];
    if (target[0] === "solution" && choice[0] === "harmful") body.harmful = choice[1];
    post(target[0] + "s/" + target[1] + "/map/", body).catch(function () {});
  });

  function refreshRatings() {
    var list = document.getElementById("iv-ratings");
    if (!list) return Promise.resolve();
    return I.request("GET", api + "ratings/").then(function (page) {
      list.textContent = "";
      page.results.forEach(function (r) { list.appendChild(I.el("li", r.rater + " · " + r.dimension + " = " + r.level)); });
    });
  }

  function refreshAll() {
    return Promise.all([refreshSession(), refreshFacts(), refreshQuestions(), refreshProblems(), refreshSolutions(), refreshRatings()]).catch(fail);
  }

  // Phase controls
  document.querySelectorAll("#iv-actions [data-action]").forEach(function (button) {
    button.addEventListener("click", function () {
      var action = button.getAttribute("data-action");
      // The state, not the version, guards a double click: the candidate's input changes the version.
      var body = { from_state: state };
      if (action === "pause" || action === "void") {
        var reason = window.prompt(action === "pause" ? "Why pause?" : "Why void the session?");
        if (!reason) return;
        body.reason = reason;
      }
      post(action + "/", body).then(refreshAll, function () {});
    });
  });

  // Questions and suggestions
  var questionInput = document.getElementById("iv-question");
  var suggestTimer = null;
  function drawSuggestions(list) {
    var box = document.getElementById("iv-suggestions");
    box.textContent = "";
    list.forEach(function (s) {
      var fact = facts.filter(function (f) { return f.key === s.key; })[0];
      var item = I.el("li", null, "list-group-item d-flex align-items-center");
      item.setAttribute("data-suggestion", s.key);
      item.appendChild(I.el("span", s.title + " (" + Math.round(s.score) + ")"));
      item.appendChild(I.el("span", s.reasons.join("; "), "small text-secondary ms-2"));
      if (fact) item.appendChild(revealButtons(fact));
      box.appendChild(item);
    });
  }
  if (questionInput) {
    questionInput.addEventListener("input", function () {
      clearTimeout(suggestTimer);
      var text = questionInput.value.trim();
      suggestTimer = setTimeout(function () {
        if (!text) { drawSuggestions([]); return; }
        I.request("GET", api + "suggestions/?q=" + encodeURIComponent(text)).then(drawSuggestions, fail);
      }, 250);
    });
    document.getElementById("iv-record").addEventListener("click", function () {
      var text = questionInput.value.trim();
      if (!text) return;
      post("questions/", { text: text }).then(function (q) {
        lastQuestion = q;
        document.getElementById("iv-last-question").textContent = "Answering: " + q.text;
        document.getElementById("iv-not-available").disabled = false;
        refreshQuestions();
      }, function () {});
    });
    document.getElementById("iv-not-available").addEventListener("click", function () {
      if (!lastQuestion) return;
      post("questions/" + lastQuestion.id + "/answer/", { answer: "not_available" }).then(function () {
        lastQuestion = null;
        questionInput.value = "";
        drawSuggestions([]);
        document.getElementById("iv-not-available").disabled = true;
        document.getElementById("iv-last-question").textContent = "";
        refreshQuestions();
      }, function () {});
    });
  }
  root.addEventListener("click", function (event) {
    var button = event.target.closest("[data-reveal]");
    if (!button) return;
    var body = { fact: button.getAttribute("data-reveal"), level: button.getAttribute("data-level") };
    if (lastQuestion) body.question = lastQuestion.id;
    post("reveals/", body).then(function () { return Promise.all([refreshFacts(), refreshQuestions()]); }, function () {})
      .then(function () { if (questionInput && questionInput.value) questionInput.dispatchEvent(new Event("input")); });
  });
  document.getElementById("iv-fact-search").addEventListener("input", drawFacts);

  // Flags, notes, ratings
  document.querySelectorAll("[data-flag]").forEach(function (b) {
    b.addEventListener("click", function () { post("notes/", { flag: b.getAttribute("data-flag") }).catch(function () {}); });
  });
  var noteAdd = document.getElementById("iv-note-add");
  if (noteAdd) noteAdd.addEventListener("click", function () {
    var text = document.getElementById("iv-note-text");
    var dimension = document.getElementById("iv-note-dimension").value || null;
    post("notes/", { text: text.value, dimension: dimension }).then(function () { text.value = ""; }, function () {});
  });
  var ratingForm = document.getElementById("iv-rating-form");
  if (ratingForm) ratingForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = new FormData(ratingForm);
    post("ratings/", { dimension: data.get("dimension"), level: Number(data.get("level")), evidence: data.get("evidence") })
      .then(function () { ratingForm.reset(); refreshRatings(); }, function () {});
  });

  // Consensus and closing (the lead)
  function refreshConsensus() {
    var list = document.getElementById("iv-consensus");
    if (!list) return Promise.resolve();
    return I.request("GET", api + "consensus/").then(function (page) {
      list.textContent = "";
      page.results.forEach(function (c) {
        list.appendChild(I.el("li", c.dimension + " = " + c.level + (c.discussion ? " — " + c.discussion : "")));
      });
    });
  }
  var consensusForm = document.getElementById("iv-consensus-form");
  if (consensusForm) consensusForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = new FormData(consensusForm);
    post("consensus/", { dimension: data.get("dimension"), level: Number(data.get("level")), discussion: data.get("discussion") })
      .then(function () { consensusForm.elements.namedItem("discussion").value = ""; refreshConsensus(); }, function () {});
  });
  var closeForm = document.getElementById("iv-close-form");
  if (closeForm) closeForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = new FormData(closeForm);
    post("close/", { recommendation: data.get("recommendation"), summary: data.get("summary"), from_state: state })
      .then(refreshAll, function () {});
  });

  refreshAll();
  refreshConsensus().catch(fail);
  setInterval(function () { countdown.draw(); }, 1000);
  // Poll; a mapping menu that is open or focused is not redrawn under the rater's hand.
  setInterval(function () {
    refreshSession().catch(function () {});
    if (document.activeElement && document.activeElement.hasAttribute("data-map")) return;
    refreshProblems().catch(function () {});
    refreshSolutions().catch(function () {});
  }, 3000);
})();
