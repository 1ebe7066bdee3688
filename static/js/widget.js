/* Fiches initiatives — widget for partner sites.

   <div class="kb-widget" data-sheet="SLUG"><a href="…/fiches/SLUG">La fiche</a></div>
   <div class="kb-widget" data-list="tag=accueil&amp;scale=commune"><a href="…/fiches?tag=accueil">Les fiches</a></div>
   <script src="…/widget.js" async></script>

   Each div becomes an iframe sized to its content. The link inside the div stays visible until
   the frame reports its height: without scripts, or when frames are blocked, readers keep the link. */
(function () {
  "use strict";
  if (window.kbWidgets) { window.kbWidgets.scan(); return; }

  var MIN_HEIGHT = 40, MAX_HEIGHT = 4000;
  // Filled in by the server from the facet declaration (kb/embed/listing.py LIST_KEYS).
  var LIST_KEYS = /*kb:list-keys*/["q", "tag", "scale", "department", "city", "limit"]/*kb:end*/;
  var script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  var scriptUrl = new URL(script ? script.src : "/widget.js", window.location.href);
  var base = scriptUrl.href.replace(/\/widget\.js([?#].*)?$/, "");
  var frames = {}; // secret -> {iframe, fallback}

  function newSecret() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function listQuery(raw) {
    var given = new URLSearchParams(raw || "");
    var kept = new URLSearchParams();
    LIST_KEYS.forEach(function (key) { var v = given.get(key); if (v) kept.set(key, v); });
    return kept.toString();
  }

  function mount(div) {
    if (div.getAttribute("data-kb-mounted")) return;
    var slug = div.getAttribute("data-sheet");
    var src, title;
    if (slug) {
      src = base + "/embed/sheets/" + encodeURIComponent(slug.trim());
      title = "Fiche initiative";
    } else if (div.hasAttribute("data-list")) {
      var query = listQuery(div.getAttribute("data-list"));
      src = base + "/embed/list" + (query ? "?" + query : "");
      title = "Liste de fiches initiatives";
    } else {
      return;
    }
    div.setAttribute("data-kb-mounted", "1");
    var fallback = document.createElement("div");
    while (div.firstChild) fallback.appendChild(div.firstChild);
    div.appendChild(fallback);
    var label = fallback.textContent.trim();
    var secret = newSecret();
    var iframe = document.createElement("iframe");
    iframe.title = label || title;
    iframe.style.cssText = "display:block;width:100%;max-width:640px;height:0;border:0;margin:0;";
    iframe.src = src + "#kb-secret=" + secret + "&kb-origin=" + encodeURIComponent(window.location.origin);
    frames[secret] = { iframe: iframe, fallback: fallback };
    div.appendChild(iframe);
  }

  function scan() {
    Array.prototype.forEach.call(document.querySelectorAll(".kb-widget"), mount);
  }

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (!data || data.type !== "kb-widget:height" || typeof data.secret !== "string") return;
    var entry = Object.prototype.hasOwnProperty.call(frames, data.secret) ? frames[data.secret] : null;
    // Only the frame we created, with the secret we gave it, may resize it.
    if (!entry || event.source !== entry.iframe.contentWindow) return;
    if (event.origin !== scriptUrl.origin) return;
    var height = Number(data.height);
    if (!isFinite(height)) return;
    height = Math.max(MIN_HEIGHT, Math.min(MAX_HEIGHT, Math.ceil(height)));
    entry.iframe.style.height = height + "px";
    entry.fallback.hidden = true;
  });

  window.kbWidgets = { scan: scan };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", scan);
  } else {
    scan();
  }
})();
