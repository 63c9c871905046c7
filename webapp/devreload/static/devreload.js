// Development only: this file is served, and included in pages, only under `flask run --debug`.
// Reload the page when the server says a template, style or script changed, and when the
// socket reconnects to a server process other than the one that rendered the page (after a
// Python edit restarted it).
(function () {
  "use strict";
  const script = document.currentScript;
  const bootId = script.dataset.bootId;
  const bootUrl = script.dataset.bootUrl;

  document.addEventListener("realtime:dev:reload", () => window.location.reload());
  document.addEventListener("realtime:connect", () => {
    fetch(bootUrl, { cache: "no-store" })
      .then((response) => response.json())
      .then((data) => {
        if (data.boot_id !== bootId) window.location.reload();
      })
      .catch(() => {});
  });
})();
