/* Commune autocomplete for the sheet form: an ARIA 1.2 combobox over the plain text field.
   Without this script the field still works: the server resolves the name on submit and asks
   when it is ambiguous. Keys: Down/Up move in the list, Enter chooses, Escape closes. */
(function () {
  "use strict";
  if (!window.fetch) return;

  function setup(box) {
    var input = box.querySelector("input[type=text]");
    if (!input) return;
    var url = box.getAttribute("data-place-autocomplete");
    var isCommune = input.id === "city";
    var form = input.form;
    var code = isCommune ? form.querySelector("#commune_code") : null;
    var listId = input.id + "-listbox";
    var list = document.createElement("ul");
    list.id = listId;
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", isCommune ? "Communes proposées" : "Intercommunalités proposées");
    list.hidden = true;
    var status = document.createElement("p");
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    input.parentNode.insertBefore(list, input.nextSibling);
    box.appendChild(status);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", listId);

    var items = [], active = -1, timer = null, pending = null, derived = false;

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(index) {
      var options = list.querySelectorAll("[role=option]");
      Array.prototype.forEach.call(options, function (option, n) {
        option.setAttribute("aria-selected", n === index ? "true" : "false");
      });
      active = index;
      if (index >= 0 && options[index]) {
        input.setAttribute("aria-activedescendant", options[index].id);
        options[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function setField(name, value) {
      var field = form.querySelector("[name=" + name + "]");
      if (field && field.type !== "radio") field.value = value;
    }

    function choose(index) {
      var item = items[index];
      if (!item) return;
      input.value = item.name;
      if (isCommune) {
        if (code) code.value = item.code;
        // What the commune implies, shown at once (the server derives it anyway).
        setField("epci", item.epci_name || "");
        setField("department", item.department);
        setField("region", item.region);
        derived = true;
        var choices = form.querySelector("#place-choices");
        if (choices) choices.hidden = true;
      }
      close();
      status.textContent = item.label + " choisie.";
    }

    function render(found) {
      items = found;
      list.innerHTML = "";
      found.forEach(function (item, n) {
        var option = document.createElement("li");
        option.id = input.id + "-option-" + n;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.textContent = item.label;
        if (item.postcodes) {
          var meta = document.createElement("span");
          meta.className = "meta";
          meta.textContent = " — " + item.postcodes.slice(0, 3).join(", ") + (item.postcodes.length > 3 ? "…" : "") +
            ", " + item.region_name;
          option.appendChild(meta);
        }
        // mousedown, not click: the field keeps the focus.
        option.addEventListener("mousedown", function (event) { event.preventDefault(); choose(n); });
        list.appendChild(option);
      });
      var open = found.length > 0;
      list.hidden = !open;
      input.setAttribute("aria-expanded", open ? "true" : "false");
      active = -1;
      status.textContent = open
        ? found.length + (found.length > 1 ? " propositions" : " proposition") + " : flèche bas pour les parcourir, Entrée pour choisir."
        : "Aucune proposition.";
    }

    function lookup() {
      var text = input.value.trim();
      if (text.length < 2) { close(); items = []; return; }
      if (pending) pending.abort();
      pending = new AbortController();
      fetch(url + "&q=" + encodeURIComponent(text), { signal: pending.signal })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (body) { if (document.activeElement === input) render(body.items || []); })
        .catch(function () { /* the plain field still works */ });
    }

    input.addEventListener("input", function () {
      if (isCommune) {
        if (code) code.value = "";  // a new name: the server resolves it unless one is chosen
        if (derived) { setField("epci", ""); setField("department", ""); setField("region", ""); derived = false; }
      }
      window.clearTimeout(timer);
      timer = window.setTimeout(lookup, 150);
    });

    input.addEventListener("keydown", function (event) {
      var open = !list.hidden;
      if (event.key === "ArrowDown") {
        event.preventDefault();
        if (!open) { if (items.length) { list.hidden = false; input.setAttribute("aria-expanded", "true"); } else { lookup(); } return; }
        highlight(Math.min(active + 1, items.length - 1));
      } else if (event.key === "ArrowUp") {
        if (!open) return;
        event.preventDefault();
        highlight(Math.max(active - 1, 0));
      } else if (event.key === "Enter") {
        if (open && active >= 0) { event.preventDefault(); choose(active); }
      } else if (event.key === "Escape") {
        if (open) { event.preventDefault(); close(); }
      } else if (event.key === "Tab") {
        close();
      }
    });

    input.addEventListener("blur", function () { window.setTimeout(close, 100); });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-place-autocomplete]"), setup);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
