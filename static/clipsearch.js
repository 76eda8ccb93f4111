// Every page: the theme toggle and the status page's live counts.
(function () {
  // Theme: the toggle shows what is in effect (a choice, else the system's) and remembers a choice.
  const toggle = document.getElementById("theme-toggle");
  if (toggle) {
    const root = document.documentElement;
    const system = window.matchMedia("(prefers-color-scheme: dark)");
    const isDark = () => (root.dataset.theme || (system.matches ? "dark" : "light")) === "dark";
    const show = () => toggle.setAttribute("aria-pressed", String(isDark()));
    toggle.hidden = false;
    show();
    system.addEventListener("change", show);
    toggle.addEventListener("click", () => {
      root.dataset.theme = isDark() ? "light" : "dark";
      try { localStorage.setItem("clipsearch-theme", root.dataset.theme); } catch (e) { /* not remembered */ }
      show();
    });
  }

  // Status page: refresh the counts while work is pending.
  const status = document.getElementById("status");
  if (status && Number(status.dataset.pending) > 0) {
    setInterval(async () => {
      let s;
      try {
        const response = await fetch("/api/status");
        if (!response.ok) return;  // a failed refresh keeps the last counts; the next tick tries again
        s = await response.json();
      } catch (e) { return; }
      const done = s.total ? (s.counts.indexed + s.counts.failed) / s.total : 1;
      document.getElementById("progress").value = done;
      ["pending", "processing", "indexed", "failed"].forEach(k => document.getElementById("n-" + k).textContent = s.counts[k]);
    }, 1500);
  }
})();
