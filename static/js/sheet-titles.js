// The manual comparison of two sheets (/moderation/doublons): title autocomplete. Each field
// with data-titles fills its <datalist> with "Titre (adresse)" values the server reads back.
// Without JavaScript, an address or an exact title still works.
(function () {
  "use strict";
  if (!window.fetch) { return; }
  Array.prototype.forEach.call(document.querySelectorAll("input[data-titles]"), function (input) {
    var list = document.getElementById(input.getAttribute("list"));
    var timer = null;
    var last = "";
    if (!list) { return; }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var q = input.value.trim();
        if (q === last || q.length < 2 || /\)\s*$/.test(q)) { return; }
        last = q;
        fetch(input.getAttribute("data-titles") + "?q=" + encodeURIComponent(q),
              { headers: { "Accept": "application/json" }, credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : { items: [] }; })
          .then(function (body) {
            list.textContent = "";
            (body.items || []).forEach(function (item) {
              var option = document.createElement("option");
              option.value = item.value;
              list.appendChild(option);
            });
          })
          .catch(function () { /* no suggestion: typing an address still works */ });
      }, 250);
    });
  });
})();
