/* Inside a widget frame: tell the partner page our height, so that it shows us without a scrollbar.
   The parent gave us its origin and a per-widget secret in the fragment (never sent to the server). */
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.hash.slice(1));
  var secret = params.get("kb-secret");
  if (!secret || window.parent === window) return;
  var origin = params.get("kb-origin");
  if (!origin || origin === "null") origin = "*";
  var box = document.querySelector("[data-kb-frame]") || document.body;
  var last = -1;

  function send() {
    var height = Math.ceil(box.getBoundingClientRect().height);
    if (height === last) return;
    last = height;
    try {
      window.parent.postMessage({ type: "kb-widget:height", secret: secret, height: height }, origin);
    } catch (e) { /* a malformed origin: stay at the parent's default height */ }
  }

  send();
  if (window.ResizeObserver) new ResizeObserver(send).observe(box);
  window.addEventListener("load", send);
  window.addEventListener("resize", send);
  // Late web fonts or a throttled observer in a hidden frame: check again a few times.
  [250, 1000, 3000].forEach(function (ms) { window.setTimeout(send, ms); });
})();
