// Follow the system's light or dark colour mode (Bootstrap 5.3 colour modes).
(function () {
  "use strict";
  const query = window.matchMedia("(prefers-color-scheme: dark)");
  const applyTheme = () => document.documentElement.setAttribute("data-bs-theme", query.matches ? "dark" : "light");
  applyTheme();
  query.addEventListener("change", applyTheme);
})();
