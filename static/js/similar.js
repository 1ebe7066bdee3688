// "Cette initiative existe peut-être déjà": while a new sheet is typed, list the published
// sheets most like it (GET /api/v1/sheets/similar, debounced). Progressive enhancement: without
// JavaScript the server shows the same list on a confirmation step after the first submit.
(function () {
  "use strict";
  var panel = document.getElementById("similar-sheets");
  var title = document.getElementById("title");
  if (!panel || !title || !window.fetch) { return; }
  var context = document.getElementById("context");
  var summary = document.getElementById("summary");
  var seen = document.getElementById("duplicates_seen");
  var confirmation = document.getElementById("distinct-confirmation");
  var warnedInput = document.getElementById("duplicates_warned");
  // Every sheet shown to the writer, with the highest score shown: sent with the form, so that
  // a pair the writer was warned about reaches moderators even if the text drifted lower.
  var warned = {};
  if (warnedInput && warnedInput.value) {
    warnedInput.value.split(";").forEach(function (part) {
      var pair = part.split("=");
      if (pair.length === 2 && !isNaN(parseFloat(pair[1]))) { warned[pair[0]] = parseFloat(pair[1]); }
    });
  }
  var high = parseFloat(panel.getAttribute("data-high") || "1");
  var timer = null;
  var last = "";
  var controller = null;

  // Keep the list next to the title, where the writer is looking.
  var titleField = title.closest(".field");
  if (titleField) {
    titleField.insertAdjacentElement("afterend", panel);
    if (confirmation) { panel.insertAdjacentElement("afterend", confirmation); }
  }

  function render(items) {
    panel.textContent = "";
    if (!items.length) { panel.hidden = true; return; }
    var heading = document.createElement("h2");
    heading.textContent = "Cette initiative existe peut-être déjà";
    var help = document.createElement("p");
    help.textContent = "Si l'une de ces fiches décrit la même initiative, complétez-la plutôt que d'en créer une nouvelle.";
    var list = document.createElement("ul");
    list.className = "similar-list";
    items.forEach(function (item) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = item.url; a.target = "_blank"; a.rel = "noopener";
      a.textContent = item.title;
      var score = document.createElement("span");
      score.className = "meta";
      score.textContent = " (ressemblance " + Math.round(item.score * 100) + "\u00a0%)";
      li.appendChild(a); li.appendChild(score); list.appendChild(li);
    });
    items.forEach(function (item) {
      if (item.slug && !(warned[item.slug] >= item.score)) { warned[item.slug] = item.score; }
    });
    if (warnedInput) {
      warnedInput.value = Object.keys(warned).map(function (slug) {
        return slug + "=" + warned[slug].toFixed(4);
      }).join(";");
    }
    panel.appendChild(heading); panel.appendChild(help); panel.appendChild(list);
    panel.hidden = false;
    if (seen) { seen.value = "1"; }
    if (confirmation && items[0].score >= high) { confirmation.hidden = false; }
  }

  var form = title.form;

  // The whole form, as it would be sent: the score shown here is the one the server computes
  // when the sheet is sent, and the one moderators see.
  function query() {
    if (!form || !window.FormData) { return; }
    var body = new FormData(form);
    var text = [summary ? summary.value : "", context ? context.value : ""].join("\n");
    var key = new URLSearchParams(body).toString();
    if (key === last) { return; }
    last = key;
    if (title.value.trim().length < 4 && text.trim().length < 40) { render([]); return; }
    if (controller) { controller.abort(); }
    controller = window.AbortController ? new AbortController() : null;
    fetch(panel.getAttribute("data-url"), { method: "POST", body: body, headers: { "Accept": "application/json" },
      signal: controller ? controller.signal : undefined })
      .then(function (r) { return r.ok ? r.json() : { items: [] }; })
      .then(function (body) { render(body.items || []); })
      .catch(function () { /* a failed hint is no error: the server checks again on submit */ });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(query, 400);
  }
  if (form) {
    form.addEventListener("input", function (event) {
      // Ticking "c'est une autre initiative" or typing its reason changes no score.
      if (confirmation && confirmation.contains(event.target)) { return; }
      schedule();
    });
  }
  if (title.value) { schedule(); }
})();
