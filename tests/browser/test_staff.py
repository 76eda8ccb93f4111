"""Staff tools on the search page: files dropped anywhere are uploaded, each with its own outcome;
results are selected (click, shift-click, select all) and deleted or re-encoded after a
confirmation, and the page updates without a reload."""
import base64
import re

import pytest
from playwright.sync_api import expect

from demo.synth import gallery
from tests.browser.helpers import PAGE_SIZE, log_in_as_staff, result_ids, search, shot, skip_without_chromium
from tests.support import jpeg_bytes

skip_without_chromium()
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DROP = """files => {
  const dt = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.data), c => c.charCodeAt(0));
    dt.items.add(new File([bytes], f.name, {type: f.type}));
  }
  for (const type of ['dragenter', 'dragover', 'drop'])  // dropped on the page, not on the search-by-image zone
    document.querySelector('main').dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
}"""


def as_file(name, data, kind):
    return {"name": name, "data": base64.b64encode(data).decode(), "type": kind}


def test_drop_upload_shows_each_files_outcome(page, live_server, loaded, gallery_files):
    log_in_as_staff(page, live_server)
    new = jpeg_bytes(gallery(1, seed=99)[0][0])
    dup_name, dup_data = gallery_files[0]
    page.evaluate(DROP, [as_file("new-picture.jpg", new, "image/jpeg"), as_file("again.jpg", dup_data, "image/jpeg"),
                         as_file("notes.txt", b"not a picture at all\n", "text/plain")])
    rows = page.locator("#uploads li")
    expect(rows).to_have_count(3)
    expect(page.locator("#staff-notice")).to_have_text("Uploads: 1 added, 1 duplicate, 1 rejected.")
    added, duplicate, rejected = (rows.filter(has_text=name) for name in ("new-picture.jpg", "again.jpg", "notes.txt"))
    expect(added).to_have_attribute("data-outcome", "added")
    new_id = int(added.get_by_role("link").text_content().lstrip("#"))
    expect(duplicate).to_have_attribute("data-outcome", "duplicate")
    expect(duplicate.get_by_role("link", name=f"#{loaded[0].pk}")).to_have_attribute("href", f"/images/{loaded[0].pk}/")
    expect(rejected).to_have_attribute("data-outcome", "rejected")
    expect(rejected.locator(".outcome")).to_have_text(re.compile(r"^rejected: \S.{5,}"))  # with the reason
    for row in (added, duplicate, rejected):
        assert row.locator("progress").evaluate("e => e.value") == 1
    shot(page, "24-upload")

    # The API agrees: one image more, pending, under its own name.
    body = page.request.get(f"{live_server.url}/api/images/{new_id}").json()
    assert body["original_filename"] == "new-picture.jpg" and body["status"] == "pending"


def test_select_and_delete_then_reencode(page, live_server, loaded):
    log_in_as_staff(page, live_server)
    # Words that no file name holds: a ranking by meaning alone. (With name matches fused in, the
    # scale of the fusion follows the best hit, so deleting the best hits reorders the rest.)
    search(page, live_server, "a dark shape", cutoff="none")
    ids = result_ids(page)
    picks = page.locator("#grid .pick")
    count = page.locator("#selected-count")

    # Click one, shift-click two further on (a range of three), click the middle one off again.
    picks.nth(0).click()
    picks.nth(2).click(modifiers=["Shift"])
    expect(count).to_have_text("3 selected")
    picks.nth(1).click()
    expect(count).to_have_text("2 selected")
    # While selecting, a click on a thumbnail selects it rather than opening it.
    page.locator("#grid a.thumb").nth(4).click()
    expect(count).to_have_text("3 selected")
    expect(page.locator("#lightbox")).to_be_hidden()
    page.locator("#grid a.thumb").nth(4).click()
    expect(count).to_have_text("2 selected")
    expect(page.locator("#grid li.selected")).to_have_count(2)
    shot(page, "25-selection", full_page=False)

    # Delete, after a confirmation that can be cancelled.
    page.get_by_role("button", name="Delete…").click()
    confirm = page.get_by_role("dialog", name="Delete 2 images?")
    expect(confirm).to_be_visible()
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    assert result_ids(page) == ids
    page.get_by_role("button", name="Delete…").click()
    page.get_by_role("button", name="Delete 2 images").click()
    expect(page.locator("#staff-notice")).to_have_text("Deleted 2 images.")
    gone = [ids[0], ids[2]]
    expect(page.locator("#grid > li.card")).to_have_count(PAGE_SIZE - 2)
    assert result_ids(page) == [i for i in ids if i not in gone]
    expect(count).to_have_text("0 selected")
    for pk in gone:
        assert page.request.get(f"{live_server.url}/api/images/{pk}").status == 404
    api = page.request.get(f"{live_server.url}/api/search?q=a+dark+shape&k={2 * PAGE_SIZE}&cutoff=none").json()
    ranking = [r["id"] for r in api["results"]]
    assert not set(gone) & set(ranking)
    # The next page starts where the shortened first one ends: nothing skipped, nothing repeated.
    page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
    expect(page.locator("#grid > li.card")).to_have_count(2 * PAGE_SIZE - 2)
    assert result_ids(page) == ranking[:2 * PAGE_SIZE - 2]

    # Select all, then re-encode one: it is queued again and marked on the page.
    page.get_by_role("button", name="Select all").click()
    expect(count).to_have_text(f"{2 * PAGE_SIZE - 2} selected")
    page.get_by_role("button", name="Clear selection").click()
    expect(count).to_have_text("0 selected")
    picks.nth(0).click()
    page.get_by_role("button", name="Re-encode…").click()
    page.get_by_role("button", name="Re-encode 1 image").click()
    expect(page.locator("#staff-notice")).to_have_text("Queued 1 image for re-encoding.")
    expect(page.locator("#grid > li.card").first).to_have_class(re.compile(r"\bbusy\b"))
    assert page.request.get(f"{live_server.url}/api/images/{ids[1]}").json()["status"] == "pending"


def test_bulk_endpoints_need_staff(page, live_server, loaded):
    """The browser's session alone (no staff login) cannot delete: the API refuses, nothing changes."""
    page.goto(live_server.url + "/")
    response = page.request.post(f"{live_server.url}/api/images/delete", data={"ids": [loaded[0].pk]})
    assert response.status == 401
    assert page.request.get(f"{live_server.url}/api/images/{loaded[0].pk}").status == 200
