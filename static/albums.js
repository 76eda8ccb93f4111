// The album page's staff tool: select images (their checkboxes) and take them out of a manual album
// (POST /api/albums/{id}/images/remove); the API checks the rights again.
(function () {
  const button = document.getElementById("remove-selected"), grid = document.getElementById("grid");
  if (!button || !grid) return;
  const csrf = () => (document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || "";
  const status = document.getElementById("selected-count");
  const chosen = () => [...grid.querySelectorAll("li.card .pick:checked")].map(box => box.closest("li.card"));
  grid.addEventListener("change", () => {
    const n = chosen().length;
    grid.querySelectorAll("li.card").forEach(li => li.classList.toggle("selected", !!li.querySelector(".pick:checked")));
    status.textContent = `${n} selected`;
    button.disabled = !n;
  });
  button.addEventListener("click", async () => {
    const cards = chosen();
    const response = await fetch(`/api/albums/${button.dataset.album}/images/remove`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify({ ids: cards.map(li => Number(li.dataset.id)) }),
    });
    if (!response.ok) { status.textContent = `Nothing removed: the server answered ${response.status}`; return; }
    cards.forEach(li => li.remove());
    const count = document.getElementById("count");
    const left = grid.querySelectorAll("li.card").length;
    status.textContent = `Removed ${cards.length}.`;
    if (count) count.textContent = `${left} image${left === 1 ? "" : "s"} on this page`;
    button.disabled = true;
  });
})();
