// Small progressive enhancements; the search page works without JS for text search.
(function () {
  const form = document.getElementById("search-form");
  const drop = document.getElementById("drop");
  const file = document.getElementById("image");
  if (form && drop && file) {
    // An image search must be a multipart POST; plain text search stays a GET link.
    const submitImage = () => {
      // The token goes only into this POST, never into a GET search URL.
      const csrf = document.cookie.match(/csrftoken=([^;]+)/);
      if (csrf) { const i = document.createElement("input"); i.type = "hidden"; i.name = "csrfmiddlewaretoken"; i.value = csrf[1]; form.appendChild(i); }
      form.method = "post"; form.submit();
    };
    form.addEventListener("submit", () => { if (!file.files.length) file.disabled = true; });
    file.addEventListener("change", () => { if (file.files.length) submitImage(); });
    ["dragenter", "dragover"].forEach(e => drop.addEventListener(e, ev => { ev.preventDefault(); drop.classList.add("over"); }));
    ["dragleave", "drop"].forEach(e => drop.addEventListener(e, () => drop.classList.remove("over")));
    drop.addEventListener("drop", ev => { ev.preventDefault(); if (ev.dataTransfer.files.length) { file.files = ev.dataTransfer.files; submitImage(); } });
    drop.addEventListener("keydown", ev => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); file.click(); } });
  }
  // Status page: refresh the counts while work is pending.
  const status = document.getElementById("status");
  if (status && Number(status.dataset.pending) > 0) {
    setInterval(async () => {
      const s = await (await fetch("/api/status")).json();
      const done = s.total ? (s.counts.indexed + s.counts.failed) / s.total : 1;
      document.getElementById("progress").value = done;
      ["pending", "processing", "indexed", "failed"].forEach(k => document.getElementById("n-" + k).textContent = s.counts[k]);
    }, 1500);
  }
})();
