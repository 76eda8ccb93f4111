// Staff tools on the search page (loaded for staff only; the API checks again): drop files anywhere
// to add them, each with its progress and outcome; select results (click, shift-click, select all)
// and delete or re-encode them, after a confirmation, without reloading the page.
(function () {
  const $ = id => document.getElementById(id);
  const tools = $("staff-tools");
  if (!tools) return;
  tools.hidden = false;
  const csrf = () => (document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || "";
  const notice = $("staff-notice");
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

  // At most `width` requests at a time.
  async function pool(items, width, fn) {
    const queue = items.slice(), out = [];
    await Promise.all(Array.from({ length: width }, async () => {
      for (let item; (item = queue.shift()) !== undefined;) out.push(await fn(item));
    }));
    return out;
  }

  // ---- upload ---------------------------------------------------------------------------------
  const input = $("upload-files"), overlay = $("drop-overlay"), panel = $("uploads"), rows = panel.querySelector("ol");
  $("upload-button").addEventListener("click", () => input.click());
  input.addEventListener("change", () => { upload([...input.files]); input.value = ""; });
  const carriesFiles = ev => ev.dataTransfer && [...ev.dataTransfer.types].includes("Files");
  let depth = 0;  // dragenter/leave fire per element crossed: count them to know when the drag left the page
  document.addEventListener("dragenter", ev => { if (carriesFiles(ev)) { depth++; overlay.hidden = false; } });
  document.addEventListener("dragleave", ev => { if (carriesFiles(ev) && --depth <= 0) { depth = 0; overlay.hidden = true; } });
  document.addEventListener("dragover", ev => { if (carriesFiles(ev)) ev.preventDefault(); });
  document.addEventListener("drop", ev => {
    depth = 0;
    overlay.hidden = true;
    if (!carriesFiles(ev)) return;
    ev.preventDefault();
    upload([...ev.dataTransfer.files]);
  });

  function row(file) {
    const li = document.createElement("li");
    const name = document.createElement("span"), bar = document.createElement("progress"), out = document.createElement("span");
    name.className = "name"; name.textContent = file.name;
    bar.max = 1; bar.value = 0; bar.setAttribute("aria-label", `Upload of ${file.name}`);
    out.className = "outcome"; out.textContent = "waiting";
    li.append(name, bar, out);
    rows.append(li);
    return li;
  }

  function outcome(li, kind, text, link) {
    const out = li.querySelector(".outcome");
    li.dataset.outcome = kind;
    out.className = `outcome outcome-${kind}`;
    out.textContent = text;
    if (link) { const a = document.createElement("a"); a.href = link.href; a.textContent = link.text; out.append(" ", a); }
  }

  function send(file) {
    const li = row(file);
    return new Promise(resolve => {
      const xhr = new XMLHttpRequest(), form = new FormData(), bar = li.querySelector("progress");
      form.append("files", file, file.name);
      xhr.open("POST", "/api/images");
      xhr.setRequestHeader("X-CSRFToken", csrf());
      xhr.responseType = "json";
      li.querySelector(".outcome").textContent = "uploading…";
      xhr.upload.addEventListener("progress", ev => { if (ev.lengthComputable) bar.value = ev.loaded / ev.total; });
      xhr.addEventListener("load", () => {
        bar.value = 1;
        const body = xhr.response || {}, error = body.error || {};
        if (xhr.status === 201 && body.images && body.images.length) {
          const id = body.images[0].id;
          outcome(li, "added", "added, to be indexed:", { href: `/images/${id}/`, text: `#${id}` });
          resolve("added");
        } else if (xhr.status === 409 && error.existing_id) {
          outcome(li, "duplicate", "duplicate of", { href: `/images/${error.existing_id}/`, text: `#${error.existing_id}` });
          resolve("duplicate");
        } else {
          const prefix = `${file.name}: `;  // the API names the file; this row already does
          const reason = (error.message || body.detail || `the server answered ${xhr.status}`).replace(prefix, "");
          outcome(li, "rejected", `rejected: ${reason}`);
          resolve("rejected");
        }
      });
      xhr.addEventListener("error", () => { outcome(li, "rejected", "failed: the connection broke"); resolve("rejected"); });
      xhr.send(form);
    });
  }

  async function upload(files) {
    if (!files.length) return;
    panel.hidden = false;
    const done = await pool(files, 2, send);
    const n = kind => done.filter(d => d === kind).length;
    notice.textContent = `Uploads: ${n("added")} added, ${n("duplicate")} duplicate, ${n("rejected")} rejected.`;
  }

  // ---- selection and bulk actions -------------------------------------------------------------
  const grid = $("grid");
  if (!grid) return;
  const selected = new Set();
  let anchor = null;  // the last card picked: shift-click selects from it
  const cards = () => [...grid.querySelectorAll("li.card")];
  const buttons = ["select-none", "delete-selected", "reencode-selected", "add-to-album"].map($).filter(Boolean);

  function mark(li, on) {
    li.classList.toggle("selected", on);
    const box = li.querySelector(".pick");
    if (box) box.checked = on;
    if (on) selected.add(li.dataset.id); else selected.delete(li.dataset.id);
  }
  function refresh() {
    $("selected-count").textContent = `${selected.size} selected`;
    buttons.forEach(b => { b.disabled = !selected.size; });
    document.body.classList.toggle("selecting", selected.size > 0);
  }
  function pick(li, range) {
    if (range && anchor && anchor.isConnected && anchor !== li) {
      const list = cards(), [a, b] = [list.indexOf(anchor), list.indexOf(li)].sort((x, y) => x - y);
      list.slice(a, b + 1).forEach(c => mark(c, true));
    } else {
      mark(li, !selected.has(li.dataset.id));
    }
    anchor = li;
    refresh();
  }
  // Capture: while anything is selected, a click on a thumbnail selects instead of opening it.
  grid.addEventListener("click", ev => {
    const li = ev.target.closest("li.card");
    if (!li) return;
    if (ev.target.closest(".pick")) { pick(li, ev.shiftKey); return; }
    if (ev.target.closest("a.thumb") && (selected.size || ev.shiftKey)) {
      ev.preventDefault(); ev.stopPropagation();
      pick(li, ev.shiftKey);
    }
  }, true);
  $("select-all").addEventListener("click", () => { cards().forEach(li => mark(li, true)); refresh(); });
  $("select-none").addEventListener("click", () => { cards().forEach(li => mark(li, false)); refresh(); });
  document.addEventListener("keydown", ev => {
    if (ev.key === "Escape" && selected.size && !document.querySelector("dialog[open]")) { $("select-none").click(); }
  });

  function confirmed(title, text, ok) {
    const dialog = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-ok").textContent = ok;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise(resolve => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
  }

  async function bulk(action, ids) {
    const response = await fetch(`/api/images/${action}`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify({ ids: ids.map(Number) }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((body.error && body.error.message) || `the server answered ${response.status}`);
    return body;
  }

  function recount(removed) {
    const count = $("count");
    if (!count) return;
    const n = Math.max(0, Number(count.dataset.n) - removed), plus = !!count.dataset.plus;
    count.dataset.n = n;
    count.textContent = `${n}${plus ? "+" : ""} ${count.dataset.relevant ? "relevant " : ""}result${n === 1 && !plus ? "" : "s"}`;
  }

  $("delete-selected").addEventListener("click", async () => {
    const ids = [...selected];
    if (!ids.length || !(await confirmed(`Delete ${plural(ids.length, "image")}?`,
      "They are removed from the gallery, the index and storage. This cannot be undone.", `Delete ${plural(ids.length, "image")}`))) return;
    try {
      const { done, missing } = await bulk("delete", ids);
      const gone = [...done, ...missing].map(String);
      gone.forEach(id => { const li = grid.querySelector(`li.card[data-id="${id}"]`); if (li) li.remove(); selected.delete(id); });
      recount(gone.length);
      document.dispatchEvent(new CustomEvent("results:removed", { detail: { count: gone.length } }));
      notice.textContent = `Deleted ${plural(done.length, "image")}.`;
    } catch (err) {
      notice.textContent = `Nothing deleted: ${err.message}`;
    }
    refresh();
    $("select-all").focus();  // the button that was used is disabled now
  });

  // ---- put the selection (or the lightbox's image) in an album (POST /api/albums/{id}/images) --
  async function toAlbum(album, ids) {
    const response = await fetch(`/api/albums/${album}/images`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify({ ids: ids.map(Number) }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((body.error && body.error.message) || `the server answered ${response.status}`);
    return body;
  }
  if ($("lb-add-to-album")) $("lb-add-to-album").addEventListener("click", async () => {
    const id = (($("lb-detail").getAttribute("href") || "").match(/\/images\/(\d+)\//) || [])[1], status = $("lb-album-status");
    if (!id) return;
    try {
      await toAlbum($("lb-album-target").value, [id]);
      status.textContent = `Added to ${$("lb-album-target").selectedOptions[0].textContent}.`;
    } catch (err) {
      status.textContent = `Not added: ${err.message}`;
    }
  });
  if ($("add-to-album")) $("add-to-album").addEventListener("click", async () => {
    const ids = [...selected], target = $("album-target");
    if (!ids.length || !target.value) return;
    try {
      const body = await toAlbum(target.value, ids);
      const name = target.selectedOptions[0].textContent;
      notice.innerHTML = "";
      notice.append(`Added ${plural(body.done.length, "image")} to `);
      const a = document.createElement("a"); a.href = `/albums/${target.value}/`; a.textContent = name; notice.append(a, ".");
      cards().forEach(li => mark(li, false));
    } catch (err) {
      notice.textContent = `Nothing added: ${err.message}`;
    }
    refresh();
  });

  $("reencode-selected").addEventListener("click", async () => {
    const ids = [...selected];
    if (!ids.length || !(await confirmed(`Re-encode ${plural(ids.length, "image")}?`,
      "They leave the results until the worker has encoded them again.", `Re-encode ${plural(ids.length, "image")}`))) return;
    try {
      const { done } = await bulk("reencode", ids);
      done.map(String).forEach(id => { const li = grid.querySelector(`li.card[data-id="${id}"]`); if (li) { li.classList.add("busy"); mark(li, false); } });
      notice.textContent = `Queued ${plural(done.length, "image")} for re-encoding.`;
    } catch (err) {
      notice.textContent = `Nothing re-encoded: ${err.message}`;
    }
    refresh();
    $("select-all").focus();
  });
})();
