// The sheet form, enhanced. Without JavaScript everything still works: the server shows the
// limits and counts, refuses a text too long with its count, and the "Aperçu des textes"
// button renders the Markdown on a full page. With it:
// - the character counts follow the typing ("37 / 200 caractères");
// - each long text gets an "Aperçu" button: the server renders it (kb/text.py), shown in place;
// - the text is kept in this browser (localStorage) until the form is sent, and offered back
//   if the page is closed or lost before that.
(function () {
  "use strict";
  var form = document.querySelector("form.sheet-form[data-draft]");
  if (!form) { return; }

  // --- character counts ----------------------------------------------------------------------
  var announcer = document.createElement("p");
  announcer.className = "visually-hidden";
  announcer.setAttribute("aria-live", "polite");
  form.appendChild(announcer);

  function count(el) {
    // As the server counts: surrounding spaces dropped, one character per line break.
    return el.value.replace(/\r\n/g, "\n").trim().length;
  }

  function showCount(el, announce) {
    var max = parseInt(el.getAttribute("data-max"), 10);
    var out = document.getElementById(el.id + "-count");
    if (!out || !max) { return; }
    var n = count(el);
    var over = n > max;
    out.textContent = n + " / " + max + " caractères" + (over ? " : " + (n - max) + " de trop" : "");
    out.classList.toggle("over", over);
    if (announce && over !== (el.getAttribute("data-over") === "1")) {
      // Said once when the limit is crossed, not at every key.
      announcer.textContent = over ? "Limite dépassée de " + (n - max) + " caractères." :
        "Texte de nouveau dans la limite.";
    }
    el.setAttribute("data-over", over ? "1" : "0");
  }

  Array.prototype.forEach.call(form.querySelectorAll("[data-max]"), function (el) {
    showCount(el, false);
    el.addEventListener("input", function () { showCount(el, true); });
  });

  // --- Markdown preview ------------------------------------------------------------------------
  var previewUrl = form.getAttribute("data-preview-url");
  var csrf = form.querySelector("input[name=csrf_token]");

  Array.prototype.forEach.call(form.querySelectorAll("textarea[data-preview]"), function (area) {
    if (!previewUrl || !window.fetch || !window.FormData) { return; }
    var box = document.getElementById(area.id + "-preview");
    if (!box) {
      box = document.createElement("div");
      box.id = area.id + "-preview";
      box.className = "preview";
      box.hidden = true;
      area.closest(".field").insertAdjacentElement("afterend", box);
    }
    box.setAttribute("aria-live", "polite");
    var button = document.createElement("button");
    button.type = "button";
    button.className = "secondary small";
    button.setAttribute("aria-controls", box.id);
    var label = area.closest(".field").querySelector("label");
    var name = label ? label.textContent.trim() : "ce texte";
    button.textContent = "Aperçu";
    button.setAttribute("aria-label", "Aperçu : " + name);
    button.setAttribute("aria-expanded", box.hidden ? "false" : "true");
    area.insertAdjacentElement("afterend", button);

    button.addEventListener("click", function () {
      if (!box.hidden) {
        box.hidden = true;
        button.setAttribute("aria-expanded", "false");
        button.textContent = "Aperçu";
        return;
      }
      var body = new FormData();
      body.append("csrf_token", csrf ? csrf.value : "");
      body.append("preview_field", area.name);
      body.append("text", area.value);
      button.disabled = true;
      fetch(previewUrl, { method: "POST", body: body, credentials: "same-origin",
                          headers: { "Accept": "application/json" } })
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
        .then(function (data) {
          box.innerHTML = '<p class="preview-label">Aperçu : ' + escapeHtml(name) + "</p>" +
            (data.html || '<p class="hint">Rien à afficher : le champ est vide.</p>');
          box.hidden = false;
          button.setAttribute("aria-expanded", "true");
          button.textContent = "Masquer l'aperçu";
        })
        .catch(function () {
          box.innerHTML = '<p class="error">L\'aperçu n\'a pas pu être affiché ; votre texte n\'est pas touché.</p>';
          box.hidden = false;
        })
        .then(function () { button.disabled = false; });
    });
    area.addEventListener("input", function () {
      if (!box.hidden) { box.classList.add("stale"); }
    });
  });

  function escapeHtml(text) {
    var div = document.createElement("div");
    div.textContent = text;
    return div.innerHTML;
  }

  // --- draft kept in the browser -----------------------------------------------------------------
  var storage;
  try { storage = window.localStorage; storage.getItem("kb-test"); } catch (e) { storage = null; }
  if (!storage) { return; }
  var key = "kb-brouillon:" + form.getAttribute("data-draft");
  var token = form.querySelector("input[name=submission]");
  token = token ? token.value : "";

  function fields() {
    return Array.prototype.filter.call(
      form.querySelectorAll(".form-section textarea, .form-section input, .form-section select, input[name=base_revision]"),
      function (el) { return el.name && el.type !== "checkbox" && el.type !== "radio" && el.type !== "submit"; });
  }

  function read() {
    try { return JSON.parse(storage.getItem(key) || "null"); } catch (e) { return null; }
  }

  function save(sent) {
    var values = {};
    fields().forEach(function (el) { values[el.name] = el.value; });
    try {
      storage.setItem(key, JSON.stringify({ token: token, sent: !!sent, at: new Date().toISOString(), values: values }));
    } catch (e) { /* storage full or refused: the server keeps nothing less */ }
  }

  function restore(draft) {
    fields().forEach(function (el) {
      if (Object.prototype.hasOwnProperty.call(draft.values, el.name)) {
        el.value = draft.values[el.name];
        el.dispatchEvent(new Event("input", { bubbles: true }));
      }
    });
  }

  var draft = read();
  if (draft && draft.token === token) {
    // This very form came back from the server (an error to correct, a preview): the page
    // holds the text; the draft stays until the form is accepted.
    draft.sent = false;
    storage.setItem(key, JSON.stringify(draft));
  } else if (draft && draft.sent) {
    // Sent, and the server answered with a fresh form since: it was accepted.
    storage.removeItem(key);
  } else if (draft && draft.values) {
    var status = document.createElement("div");
    status.className = "banner draft-banner";
    status.setAttribute("role", "region");
    status.setAttribute("aria-label", "Brouillon retrouvé");
    var when = new Date(draft.at);
    var text = document.createElement("p");
    text.textContent = "Un brouillon non envoyé de ce formulaire a été gardé dans ce navigateur" +
      (isNaN(when) ? "" : " (" + when.toLocaleString("fr-FR", { dateStyle: "long", timeStyle: "short" }) + ")") + ".";
    var restoreButton = document.createElement("button");
    restoreButton.type = "button";
    restoreButton.textContent = "Reprendre le brouillon";
    var dropButton = document.createElement("button");
    dropButton.type = "button";
    dropButton.className = "secondary";
    dropButton.textContent = "L'effacer";
    status.appendChild(text);
    status.appendChild(restoreButton);
    status.appendChild(document.createTextNode(" "));
    status.appendChild(dropButton);
    form.insertAdjacentElement("beforebegin", status);
    restoreButton.addEventListener("click", function () {
      restore(draft);
      save(false);
      status.remove();
      var first = form.querySelector(".form-section input, .form-section textarea");
      if (first) { first.focus(); }
    });
    dropButton.addEventListener("click", function () {
      storage.removeItem(key);
      status.remove();
    });
  }

  var timer = null;
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { save(false); }, 500);
  });
  form.addEventListener("submit", function () {
    clearTimeout(timer);
    save(true);
  });
})();
