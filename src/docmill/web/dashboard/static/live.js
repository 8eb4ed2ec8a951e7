// Keeps a dashboard page current without reloading it. The server's event stream (/live)
// sends a fingerprint of the queues, documents and workers whenever it changes; the page
// then fetches its own URL with "X-Live: 1" and swaps in the fresh #live block. A swap waits
// while the visitor has ticked a box or is typing inside that block.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });
  var live = document.getElementById("live");
  if (!live || !window.EventSource || document.body.dataset.live !== "on") return;
  var shown = document.body.dataset.digest;
  var pending = false;
  var busy = false;

  function held() {
    var active = document.activeElement;
    return live.querySelector("input:checked") !== null ||
      (active && live.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName));
  }

  function refresh() {
    if (busy) { pending = true; return; }
    if (held()) { pending = true; setTimeout(refresh, 2000); return; }
    busy = true;
    pending = false;
    fetch(window.location.href, { headers: { "X-Live": "1" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.ok && response.headers.get("X-Live") === "1") return response.text();
        return null;
      })
      .then(function (html) {
        if (html !== null) {
          live.innerHTML = html;
          document.body.dataset.refreshed = String(Date.now());
        }
      })
      .catch(function () {})
      .then(function () {
        busy = false;
        if (pending) refresh();
      });
  }

  var source = new EventSource("/live");
  source.onmessage = function (event) {
    if (event.data === shown) return;
    shown = event.data;
    refresh();
  };
})();
