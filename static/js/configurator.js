/* Configurator: live preview and snippets without a full page reload, copy buttons.
   Without scripts the form still works: it submits and the server renders the same result. */
(function () {
  "use strict";
  var form = document.getElementById("embed-form");
  var result = document.getElementById("embed-result");
  if (!form || !result || !window.fetch) return;

  function showMode() {
    var mode = form.querySelector("input[name=mode]:checked");
    var current = mode ? mode.value : "sheet";
    Array.prototype.forEach.call(form.querySelectorAll("fieldset[data-mode]"), function (fs) {
      fs.hidden = fs.getAttribute("data-mode") !== current;
    });
  }

  // The list parameters come from the server (kb/embed/listing.py LIST_KEYS): one declaration.
  var listKeys = (form.getAttribute("data-list-keys") || "").split(" ");
  var timer = null, pending = null;
  function refresh() {
    showMode();
    var query = new URLSearchParams(new FormData(form));
    var mode = query.get("mode");
    Array.from(query.keys()).forEach(function (key) {
      if (!query.get(key) || (mode === "list" && key === "sheet")) query.delete(key);
      if (mode !== "list" && listKeys.indexOf(key) >= 0) query.delete(key);
    });
    var url = form.action + "?" + query.toString();
    if (pending) pending.abort();
    pending = new AbortController();
    fetch(url, { signal: pending.signal, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("embed-result");
        if (fresh) {
          result.innerHTML = fresh.innerHTML;
          window.history.replaceState(null, "", url);
          if (window.kbWidgets) window.kbWidgets.scan();
        }
      })
      .catch(function () { /* keep the previous preview */ });
  }

  form.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 300);
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); refresh(); });
  result.addEventListener("click", function (event) {
    var target = event.target.closest("[data-copy]");
    if (!target) return;
    var area = document.getElementById(target.getAttribute("data-copy"));
    area.select();
    var done = function () { target.textContent = "Copié !"; };
    if (navigator.clipboard) navigator.clipboard.writeText(area.value).then(done, function () { document.execCommand("copy"); done(); });
    else { document.execCommand("copy"); done(); }
  });
  showMode();
})();
