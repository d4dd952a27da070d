/* IncidentDesk console behaviour: keyboard shortcuts, queue selection, bulk bar, polling guard, small helpers.
 * Loaded as a file (CSP: script-src 'self'); no inline handlers, no eval. */
(function () {
  "use strict";

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function typing(target) {
    if (!target) return false;
    var tag = target.tagName;
    return target.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }
  function modalOpen() { return !!$(".modal.show"); }

  // --- queue: a selected row that j/k move and Enter opens --------------------------------------
  var selectedRef = null;
  function rows() { return $all(".queue-row"); }
  function select(index) {
    var list = rows();
    if (!list.length) return;
    index = Math.max(0, Math.min(list.length - 1, index));
    list.forEach(function (row) { row.classList.remove("is-selected"); row.removeAttribute("aria-current"); });
    var row = list[index];
    row.classList.add("is-selected");
    row.setAttribute("aria-current", "true");
    selectedRef = row.getAttribute("data-ref");
    var link = $(".incident-link", row);
    if (link) link.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }
  function selectedIndex() {
    var list = rows();
    for (var i = 0; i < list.length; i++) { if (list[i].classList.contains("is-selected")) return i; }
    return -1;
  }
  function restoreSelection() {
    if (!selectedRef) return;
    var list = rows();
    for (var i = 0; i < list.length; i++) {
      if (list[i].getAttribute("data-ref") === selectedRef) { list[i].classList.add("is-selected"); return; }
    }
  }

  // --- incident page: j/k over the timeline -------------------------------------------------------
  function moveTimeline(step) {
    var entries = $all(".timeline-entry");
    if (!entries.length) return;
    var current = entries.findIndex(function (e) { return e.classList.contains("is-selected"); });
    var next = Math.max(0, Math.min(entries.length - 1, current + step));
    entries.forEach(function (e) { e.classList.remove("is-selected"); });
    entries[next].classList.add("is-selected");
    entries[next].focus();
  }

  var pendingG = false;
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (modalOpen()) {
      if (event.key === "Escape" && window.bootstrap) window.bootstrap.Modal.getOrCreateInstance($(".modal.show")).hide();
      if (event.key !== "?") return;
    }
    var key = event.key;
    var onQueue = !!$("#queue-results");
    var onIncident = document.body.classList.contains("page-incident");
    if (pendingG) {
      pendingG = false;
      if (key === "q") { window.location.href = "/desk/"; event.preventDefault(); }
      return;
    }
    if (key === "g") { pendingG = true; setTimeout(function () { pendingG = false; }, 1000); return; }
    if (key === "?") {
      var help = $("#shortcuts");
      if (help && window.bootstrap) { window.bootstrap.Modal.getOrCreateInstance(help).toggle(); event.preventDefault(); }
      return;
    }
    if (key === "/") {
      var search = $("[data-shortcut-search]");
      var folded = search && search.closest(".collapse:not(.show)");
      if (folded && window.bootstrap && getComputedStyle(folded).display === "none") {
        window.bootstrap.Collapse.getOrCreateInstance(folded, { toggle: false }).show();  // phones fold the filters
      }
      if (search) { search.focus(); search.select(); event.preventDefault(); }
      else if (onIncident) { window.location.href = "/desk/#q"; event.preventDefault(); }
      return;
    }
    if (onQueue) {
      if (key === "j") { select(selectedIndex() + 1); event.preventDefault(); }
      else if (key === "k") { select(Math.max(0, selectedIndex() - 1)); event.preventDefault(); }
      else if (key === "o" || key === "Enter") {
        var row = rows()[selectedIndex()];
        if (row) { window.location.href = row.getAttribute("data-href"); event.preventDefault(); }
      } else if (key === "x") {
        var current = rows()[selectedIndex()];
        var box = current && $(".row-check", current);
        if (box) { box.checked = !box.checked; updateBulk(); event.preventDefault(); }
      } else if (key === "n" || key === "p") {
        var pageLink = $(key === "n" ? "#next-page" : "#previous-page");
        if (pageLink) { window.location.href = pageLink.getAttribute("href"); event.preventDefault(); }
      }
      return;
    }
    if (onIncident) {
      if (key === "a") {
        var ack = $("#action-acknowledge");
        if (ack) { ack.click(); event.preventDefault(); }
      } else if (key === "c") {
        var body = $("#comment-form textarea");
        if (body) { body.focus(); body.scrollIntoView({ block: "center" }); event.preventDefault(); }
      } else if (key === "j" || key === "k") {
        moveTimeline(key === "j" ? 1 : -1); event.preventDefault();
      } else if (key === "u") {
        var up = $("[data-shortcut-up]");
        if (up) { window.location.href = up.getAttribute("href"); event.preventDefault(); }
      }
    }
  });

  if (window.location.hash === "#q") {
    document.addEventListener("DOMContentLoaded", function () { var s = $("[data-shortcut-search]"); if (s) s.focus(); });
  }

  // --- bulk bar ----------------------------------------------------------------------------------
  function updateBulk() {
    var checked = $all(".row-check:checked").length;
    var count = $("#bulk-count");
    if (count) count.textContent = checked ? checked + " selected" : "Select incidents for a bulk action";
    var apply = $("#bulk-apply");
    if (apply) apply.disabled = checked === 0;
  }
  function showBulkFields() {
    var action = $("#bulk-action");
    if (!action) return;
    $all(".bulk-fields").forEach(function (span) { span.hidden = span.getAttribute("data-for") !== action.value; });
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      $all(".row-check").forEach(function (box) { box.checked = target.checked; });
      updateBulk();
    } else if (target.classList.contains("row-check")) {
      updateBulk();
    } else if (target.id === "bulk-action") {
      showBulkFields();
    } else if (target.hasAttribute("data-harm-toggle")) {
      toggleHarm(target);
    } else if (target.closest && target.closest("#queue-filters") && target.tagName === "SELECT") {
      target.form.requestSubmit();
    }
  });

  // Polling must never wipe what the agent is doing: skip a refresh while rows are ticked or focus is inside.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (!elt || !elt.hasAttribute || !elt.hasAttribute("data-poll")) return;
    if ($all(".row-check:checked").length || (document.activeElement && elt.contains(document.activeElement) && document.activeElement.tagName === "INPUT")) {
      event.preventDefault();
    }
  });
  document.addEventListener("htmx:afterSwap", function () { restoreSelection(); updateBulk(); });
  // The poll sends the ETag of the rows it shows; when nothing changed the server answers 304 with no body
  // and the rows stay (their countdowns and ages tick here). The swapped-in fragment carries the next ETag.
  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail && event.detail.elt;
    if (elt && elt.hasAttribute && elt.hasAttribute("data-poll") && elt.getAttribute("data-etag")) {
      event.detail.headers["If-None-Match"] = elt.getAttribute("data-etag");
    }
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr && event.detail.xhr.status === 304) event.detail.shouldSwap = false;
  });

  // --- report form: the patient-impact level only for medical incidents --------------------------
  function toggleHarm(select) {
    var group = $("#harm-level-group");
    if (!group || !select) return;
    var option = select.options[select.selectedIndex];
    group.hidden = !(option && option.getAttribute("data-medical") === "1");
  }

  // --- copy buttons -------------------------------------------------------------------------------
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) return;
    var field = $(button.getAttribute("data-copy"));
    if (!field) return;
    field.select();
    if (navigator.clipboard) navigator.clipboard.writeText(field.value).catch(function () {});
    button.textContent = "Copied";
  });

  // Whole queue rows are clickable (the link inside stays the keyboard and screen-reader target).
  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest(".queue-row");
    if (!row || event.target.closest("a, input, button, label")) return;
    window.location.href = row.getAttribute("data-href");
  });

  // Blank filters stay out of the URL, so that a shared or saved queue link reads well.
  document.addEventListener("submit", function (event) {
    if (event.target.id !== "queue-filters") return;
    $all("input, select", event.target).forEach(function (field) { if (!field.value) field.disabled = true; });
  });

  // --- queue: SLA countdowns (the server renders the same words; incidents/console.py duration) -----
  function duration(seconds) {
    seconds = Math.floor(Math.abs(seconds));
    var days = Math.floor(seconds / 86400), hours = Math.floor((seconds % 86400) / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    if (days) return days + " d " + hours + " h";
    if (hours) return hours + " h " + minutes + " m";
    return minutes ? minutes + " m" : "<1 m";
  }
  function tickCountdowns() {
    var now = Date.now();
    $all(".sla-countdown[data-due]").forEach(function (el) {
      var left = (Date.parse(el.getAttribute("data-due")) - now) / 1000;
      var text = left >= 0 ? duration(left) + " left" : "breached " + duration(left) + " ago";
      var target = $(".sla-left", el);
      if (target && target.textContent !== text) target.textContent = text;
      if (left < 0 && !el.classList.contains("sla-breached")) {
        el.classList.remove("sla-pending", "sla-warning");
        el.classList.add("sla-breached");
      }
    });
  }
  // --- queue: ages ("5 min ago"; the server renders the same words: incidents/console.py age) --------
  var AGE_UNITS = [[86400 * 365, "y"], [86400 * 7, "w"], [86400, "d"], [3600, "h"], [60, "min"]];
  function age(seconds) {
    for (var i = 0; i < AGE_UNITS.length; i++) {
      if (seconds >= AGE_UNITS[i][0]) return Math.floor(seconds / AGE_UNITS[i][0]) + " " + AGE_UNITS[i][1];
    }
    return "<1 min";
  }
  function tickAges() {
    var now = Date.now();
    $all("time.age[datetime]").forEach(function (el) {
      var text = age(Math.max((now - Date.parse(el.getAttribute("datetime"))) / 1000, 0)) + " ago";
      if (el.textContent !== text) el.textContent = text;
    });
  }
  function tick() { tickCountdowns(); tickAges(); }
  // Every second: the words have minute resolution, but each deadline falls at its own second, so a
  // one-second beat changes "10 m left" to "9 m left" within a second of the minute boundary (and turns a
  // clock that runs out red within a second). Fifty rows, and the DOM is written only when the words change.
  setInterval(tick, 1000);
  document.addEventListener("htmx:afterSwap", tick);

  // --- classify: categories of the domain, assignees of the team (qualified first), patient impact for
  // medical incidents, and the priority the matrix will give (incidents/forms.py ClassifyForm) ------
  function classifyForm(form) {
    var domain = $("[name$='domain']", form), category = $("[name$='category']", form);
    var team = $("[name$='team']", form), assignee = $("[name$='assignee']", form);
    var impact = $("[name$='impact']", form), urgency = $("[name$='urgency']", form);
    var harm = $(".classify-harm", form), out = $("#classify-priority-value", form);
    var matrix = JSON.parse(form.getAttribute("data-matrix") || "{}");
    function chosen(select) { return select ? select.options[select.selectedIndex] : null; }
    function filterCategories() {
      if (!domain || !category) return;
      Array.prototype.forEach.call(category.options, function (o) {
        var hide = !!o.value && o.getAttribute("data-domain") !== domain.value;
        o.hidden = hide; o.disabled = hide;
        if (hide && o.selected) category.value = "";
      });
      var d = chosen(domain);
      if (harm) harm.hidden = !(d && d.getAttribute("data-harm") === "1");
    }
    function filterAssignees() {
      if (!team || !assignee) return;
      var cat = chosen(category), qual = cat ? cat.getAttribute("data-qualification") : "";
      var options = Array.prototype.slice.call(assignee.options, 1);
      options.forEach(function (o) {
        var member = (" " + (o.getAttribute("data-teams") || "") + " ").indexOf(" " + team.value + " ") >= 0;
        var qualified = !!qual && (" " + (o.getAttribute("data-quals") || "") + " ").indexOf(" " + qual + " ") >= 0;
        o.hidden = !member; o.disabled = !member;
        if (!member && o.selected) assignee.value = "";
        if (!o.hasAttribute("data-label")) o.setAttribute("data-label", o.textContent);
        o.textContent = o.getAttribute("data-label") + (qualified ? " · qualified" : "");
        o.setAttribute("data-rank", qualified ? "0" : "1");
      });
      options.sort(function (a, b) {
        return a.getAttribute("data-rank").localeCompare(b.getAttribute("data-rank")) ||
          a.getAttribute("data-label").localeCompare(b.getAttribute("data-label"));
      }).forEach(function (o) { assignee.appendChild(o); });
    }
    function preview() {
      if (!out || !impact || !urgency) return;
      var p = matrix[impact.value + "-" + urgency.value];
      out.textContent = p ? "P" + p : "—";
    }
    form.addEventListener("change", function (event) {
      if (event.target === domain) { filterCategories(); filterAssignees(); }
      if (event.target === team || event.target === category) filterAssignees();
      if (event.target === impact || event.target === urgency) preview();
    });
    filterCategories(); filterAssignees(); preview();
  }

  // The action forms are fetched when opened (htmx): a classify form may arrive after the page loaded.
  function initClassify() {
    $all("form[data-classify]:not([data-ready])").forEach(function (form) {
      form.setAttribute("data-ready", "");
      classifyForm(form);
    });
  }
  document.addEventListener("htmx:load", initClassify);
  // A change that comes before htmx:load (the form just swapped in) initialises it first, in the capture phase,
  // so that the form's own listener still hears this change.
  document.addEventListener("change", function (event) {
    if (event.target.closest && event.target.closest("form[data-classify]:not([data-ready])")) initClassify();
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    initClassify();
    tick();
    showBulkFields();
    updateBulk();
    toggleHarm($("[data-harm-toggle]"));
  });
})();
