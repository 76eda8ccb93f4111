// The chosen theme ("light" or "dark"), applied before the page paints; none chosen follows the system.
(function () {
  const root = document.documentElement;
  root.classList.add("js");  // controls that only make sense with scripts (e.g. auto-applied filters)
  try {
    const theme = localStorage.getItem("clipsearch-theme");
    if (theme === "light" || theme === "dark") root.dataset.theme = theme;
  } catch (e) { /* storage blocked: follow the system */ }
})();
