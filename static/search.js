// The search page: search by a dropped image, filters applied as they change, more results as one
// scrolls, and the lightbox. Without scripts the page still works: forms, the pager and detail links.
(function () {
  const $ = id => document.getElementById(id);
  const form = $("search-form"), drop = $("drop"), file = $("image"), box = $("q");
  const dropQueryInputs = () => form.querySelectorAll("[data-query]").forEach(i => i.remove());

  // ---- the form -------------------------------------------------------------------------------
  if (form && drop && file) {
    // An image search must be a multipart POST; a text search stays a GET link.
    const submitImage = () => {
      // The token goes only into this POST, never into a GET search URL.
      const csrf = document.cookie.match(/csrftoken=([^;]+)/);
      if (csrf) { const i = document.createElement("input"); i.type = "hidden"; i.name = "csrfmiddlewaretoken"; i.value = csrf[1]; form.appendChild(i); }
      dropQueryInputs();  // a new picture replaces the one searched before
      form.method = "post"; form.submit();
    };
    form.addEventListener("submit", () => {
      if (!file.files.length) file.disabled = true;
      // Empty and default fields stay out of the URL, so a shared search reads plainly.
      for (const el of form.elements) {
        if (el.name && el.name !== "q" && (el.value === "" || (el.name === "sort" && el.value === "relevance"))) el.disabled = true;
      }
    });
    // Coming Back to this page from the cache must not leave fields disabled by the last submit.
    addEventListener("pageshow", () => { for (const el of form.elements) el.disabled = false; });
    file.addEventListener("change", () => { if (file.files.length) submitImage(); });
    // This zone searches by the dropped picture; it keeps the drop from the staff upload around it.
    ["dragenter", "dragover"].forEach(e => drop.addEventListener(e, ev => { ev.preventDefault(); ev.stopPropagation(); drop.classList.add("over"); }));
    drop.addEventListener("dragleave", ev => { ev.stopPropagation(); drop.classList.remove("over"); });
    drop.addEventListener("drop", ev => {
      ev.preventDefault(); ev.stopPropagation(); drop.classList.remove("over");
      if (ev.dataTransfer.files.length) { file.files = ev.dataTransfer.files; submitImage(); }
    });
    // New words start a new search rather than refine the picture searched before.
    if (box) box.addEventListener("input", dropQueryInputs);
    const filters = $("filters"), bar = $("filter-bar");
    if (filters) filters.addEventListener("change", () => form.requestSubmit());
    // On a phone the filters start folded (the results come first) unless some are in use.
    if (bar && matchMedia("(max-width: 40rem)").matches && !bar.querySelector(".badge")) bar.open = false;
  }

  const results = $("results"), grid = $("grid"), moreStatus = $("more-status");
  // An image search came by POST: give its page a URL that reloads and shares (within this session).
  if (results && !location.search && results.dataset.state) history.replaceState(history.state, "", "?" + results.dataset.state);

  // ---- more results as one scrolls: the next page of the same ranking, as an HTML fragment -------
  let pager = document.querySelector("nav.pager");
  let nextUrl = pager && pager.dataset.next;
  let loading = null;

  function loadMore() {
    if (loading) return loading;
    if (!nextUrl || !grid) return Promise.resolve(false);
    const url = new URL(nextUrl, location.href);
    url.searchParams.set("fragment", "1");
    moreStatus.textContent = "Loading more results…";
    loading = fetch(url, { credentials: "same-origin" }).then(async response => {
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      if (!response.ok) throw new Error((doc.querySelector(".error") || {}).textContent || `the server answered ${response.status}`);
      const have = new Set([...grid.children].map(li => li.dataset.id));
      let added = 0;
      // A timeline's month heading comes along unless the grid already ends in that month.
      const months = () => [...grid.querySelectorAll("li.month")].map(li => li.dataset.month);
      doc.querySelectorAll("ul.grid > li.card, ul.grid > li.month").forEach(li => {
        if (li.classList.contains("month")) { if (months().at(-1) !== li.dataset.month) grid.append(document.adoptNode(li)); return; }
        if (!have.has(li.dataset.id)) { grid.append(document.adoptNode(li)); added++; }
      });
      const newPager = doc.querySelector("nav.pager"), count = doc.getElementById("count");
      if (newPager && pager) { const adopted = document.adoptNode(newPager); pager.replaceWith(adopted); pager = adopted; }
      nextUrl = pager && pager.dataset.next;
      if (count && $("count")) $("count").replaceWith(document.adoptNode(count));
      moreStatus.textContent = added ? `Loaded ${added} more results.` : "";
      return added > 0;
    }).catch(err => {
      moreStatus.textContent = `Could not load more results: ${err.message}`;
      return false;
    }).finally(() => { loading = null; });
    return loading;
  }

  // After deletions the server's ranking has fewer entries before the next page: move its offset back.
  document.addEventListener("results:removed", ev => {
    if (!nextUrl) return;
    const url = new URL(nextUrl, location.href);
    url.searchParams.set("offset", Math.max(0, Number(url.searchParams.get("offset")) - ev.detail.count));
    nextUrl = url.pathname + url.search;
  });

  if (grid) {
    const nearEnd = () => grid.getBoundingClientRect().bottom < innerHeight + 800;
    let queued = false;
    // On scrolling only: a page that shows its end without scrolling keeps its pager as it is.
    addEventListener("scroll", () => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => { queued = false; if (nextUrl && nearEnd()) loadMore(); });
    }, { passive: true });
    // A screen taller than the page could never scroll: fill it.
    if (nextUrl && document.documentElement.scrollHeight <= innerHeight) loadMore();
  }

  // ---- the lightbox ---------------------------------------------------------------------------
  const dialog = $("lightbox");
  if (!dialog) return;
  const img = $("lb-img"), title = $("lb-title"), facts = $("lb-facts"), pos = $("lb-pos");
  const prev = $("lb-prev"), next = $("lb-next");
  const cards = () => (grid ? [...grid.querySelectorAll("li.card")] : []);
  const find = id => cards().find(li => li.dataset.id === String(id));
  let current = null;   // the card shown
  let pushed = false;   // opening added a history entry, so closing goes Back
  let byHistory = false;

  const urlFor = id => {
    const url = new URL(location.href);
    if (id) url.searchParams.set("open", id); else url.searchParams.delete("open");
    return url.pathname + url.search + url.hash;
  };
  const total = () => {
    const c = $("count");
    return c ? c.dataset.n + (c.dataset.plus ? "+" : "") : String(cards().length);
  };

  // The words a text query looked for in names and in text read from the images: marked in the facts.
  const words = JSON.parse(($("match-words") || {}).textContent || "[]").filter(w => w.length > 1);
  const escapeRe = w => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const wordsRe = words.length ? new RegExp("(" + words.map(escapeRe).join("|") + ")", "gi") : null;
  function mark(root) {
    if (!wordsRe) return;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT), texts = [];
    while (walker.nextNode()) if (walker.currentNode.parentNode.nodeName === "DD") texts.push(walker.currentNode);
    for (const text of texts) {
      const parts = text.data.split(wordsRe);
      if (parts.length < 2) continue;
      text.replaceWith(...parts.map((part, i) => {
        if (i % 2 === 0) return part;
        const m = document.createElement("mark");
        m.textContent = part;
        return m;
      }));
    }
  }

  function show(li) {
    current = li;
    const thumb = li.querySelector("a.thumb"), small = li.querySelector("img");
    img.src = small.currentSrc || small.src;  // the thumbnail at once, the original once it has loaded
    img.alt = small.alt;
    const full = new Image();
    full.onload = () => { if (current === li) img.src = full.src; };
    full.src = thumb.dataset.full;
    title.textContent = small.alt;
    facts.replaceChildren(li.querySelector("template.facts").content.cloneNode(true));
    mark(facts);
    $("lb-like").href = li.querySelector("a.like").getAttribute("href");
    $("lb-detail").href = thumb.getAttribute("href");
    $("lb-original").href = thumb.dataset.full;
    const list = cards(), i = list.indexOf(li);
    pos.textContent = i < 0 ? "" : `${i + 1} of ${total()}`;
    prev.setAttribute("aria-disabled", String(i <= 0));
    next.setAttribute("aria-disabled", String(i < 0 || (i === list.length - 1 && !nextUrl)));
  }

  function open(li, push = true) {
    show(li);
    if (!dialog.open) dialog.showModal();
    if (push) { history.pushState({ lightbox: li.dataset.id }, "", urlFor(li.dataset.id)); pushed = true; }
  }

  async function step(delta) {
    if (!current) return;
    let list = cards(), i = list.indexOf(current);
    if (i < 0) return;
    if (delta > 0 && i === list.length - 1) {  // the end of what is loaded: load the next page first
      if (!(await loadMore())) return;
      list = cards();
    }
    const li = list[i + delta];
    if (!li || !dialog.open) return;
    show(li);
    // Stepping replaces the entry rather than adding one: Back still closes the lightbox.
    history.replaceState({ lightbox: li.dataset.id }, "", urlFor(li.dataset.id));
  }

  if (grid) grid.addEventListener("click", ev => {
    const thumb = ev.target.closest("a.thumb");
    if (!thumb || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    open(thumb.closest("li.card"));
  });
  // A swipe on a touch screen steps too.
  let touchX = null;
  dialog.addEventListener("touchstart", ev => { touchX = ev.touches.length === 1 ? ev.touches[0].clientX : null; }, { passive: true });
  dialog.addEventListener("touchend", ev => {
    const dx = touchX === null ? 0 : ev.changedTouches[0].clientX - touchX;
    if (Math.abs(dx) > 60) step(dx < 0 ? 1 : -1);
    touchX = null;
  });
  prev.addEventListener("click", () => step(-1));
  next.addEventListener("click", () => step(1));
  $("lb-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("keydown", ev => {
    if (ev.key === "ArrowRight") { ev.preventDefault(); step(1); }
    else if (ev.key === "ArrowLeft") { ev.preventDefault(); step(-1); }
    else if (ev.key === "Tab") {  // keep focus inside, whatever the browser does past the last control
      const stops = [...dialog.querySelectorAll("button, a[href]")].filter(el => el.getClientRects().length);
      const first = stops[0], last = stops[stops.length - 1];
      if (ev.shiftKey && document.activeElement === first) { ev.preventDefault(); last.focus(); }
      else if (!ev.shiftKey && document.activeElement === last) { ev.preventDefault(); first.focus(); }
    }
  });
  dialog.addEventListener("close", () => {  // Esc, the Close button, or Back
    const li = current;
    current = null;
    img.removeAttribute("src");
    if (!byHistory) {
      if (pushed) history.back(); else history.replaceState(null, "", urlFor(null));
    }
    pushed = byHistory = false;
    const thumb = li && li.isConnected && li.querySelector("a.thumb");
    if (thumb) { thumb.focus(); thumb.scrollIntoView({ block: "nearest" }); }  // back to the last image seen
  });
  addEventListener("popstate", ev => {
    const id = ev.state && ev.state.lightbox;
    if (!id && dialog.open) { byHistory = true; dialog.close(); }
    else if (id && !dialog.open && find(id)) { open(find(id), false); pushed = true; }
  });

  // A shared link (?open=ID) opens that image: from the results, or on its own when it ranks elsewhere.
  const wanted = new URLSearchParams(location.search).get("open");
  if (wanted) {
    const own = $("opened");
    const li = find(wanted) || (own && own.content.querySelector("li.card"));
    if (li) open(li, false);
  }
})();
