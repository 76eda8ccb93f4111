"""The duplicates review page as staff use it: groups side by side with what differs and the
suggested best; "keep this one" (the other upload leaves search and the grid, the library copy is
hidden and listed, its file untouched on disk); "not duplicates" stays remembered across a rescan."""
import hashlib
from pathlib import Path

import pytest
from playwright.sync_api import expect

from embeddings.library import libraries
from embeddings.models import HiddenImage, Image
from embeddings.pipeline import ingest
from tests.browser.helpers import axe_violations, log_in_as_staff, result_ids, shot, skip_without_chromium
from tests.duplicates import evalset
from tests.support import upload_and_ingest

skip_without_chromium()
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _disk(root: Path) -> dict:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in sorted(root.iterdir())}


def test_review_keep_one_and_not_duplicates(page, live_server, redis, tmp_path):
    scenes = {i.name: i for i in evalset.generate(originals=2, distractors=1, seed=5)}
    root = tmp_path / "photos"
    root.mkdir()
    for n in ("scene-0-crop", "scene-1", "scene-1-resize"):
        (root / f"{n}.jpg").write_bytes(scenes[n].data)
    before = _disk(root)
    library = libraries.add_library(str(root), "photos")
    libraries.run_scan(library)
    ingest.ingest_pending(redis=redis)
    names = ["scene-0", "scene-0-jpeg", "distractor-2"]
    rows = dict(zip(names, upload_and_ingest([(scenes[n].data, n) for n in names], redis, name=lambda i, m: f"{m}.jpg")))
    at = {im.path: im.pk for im in Image.objects.filter(library=library)}
    keep, gone, hidden = rows["scene-0"].pk, rows["scene-0-jpeg"].pk, at["scene-0-crop.jpg"]

    log_in_as_staff(page, live_server)
    expect(page.get_by_role("link", name="Duplicates")).to_be_visible()
    page.goto(live_server.url + "/")
    assert {keep, gone, hidden} <= set(result_ids(page))  # all in the grid before the review
    page.get_by_role("link", name="Duplicates").click()
    expect(page.get_by_role("heading", name="Duplicates", level=1)).to_be_visible()
    groups = page.locator("section.dup-group")
    expect(groups).to_have_count(2)
    first = groups.nth(0)  # the largest: the three copies of scene 0
    expect(first.locator("li.dup-member")).to_have_count(3)
    assert set(first.locator("li.dup-member").evaluate_all("els => els.map(e => Number(e.dataset.id))")) == {keep, gone, hidden}
    expect(first.locator("li.best .badge")).to_have_text("Suggested best")
    for label in ("Resolution", "File size", "Taken", "Camera", "Source"):
        expect(first.locator("dt", has_text=label)).to_have_count(3)
    expect(first.locator("dd", has_text="library photos: scene-0-crop.jpg")).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "60-duplicates-review")

    card = first.locator(f'li.dup-member[data-id="{keep}"]')
    card.get_by_role("button", name="Keep this one").click()
    expect(page.get_by_role("status")).to_have_text(f"Kept #{keep}; deleted 1 upload(s), hid 1 library image(s).")
    expect(groups).to_have_count(1)
    hidden_list = page.get_by_role("region", name="Hidden library files")
    expect(hidden_list).to_contain_text("photos: scene-0-crop.jpg")
    shot(page, "61-duplicates-kept")
    assert not Image.objects.filter(pk=gone).exists() and HiddenImage.objects.filter(pk=hidden).exists()
    page.goto(live_server.url + "/")
    ids = set(result_ids(page))
    assert keep in ids and gone not in ids and hidden not in ids  # the others left the grid
    page.goto(live_server.url + "/?q=a+picture&cutoff=none")
    ids = set(result_ids(page))
    assert ids and gone not in ids and hidden not in ids  # and search

    page.goto(live_server.url + "/duplicates/")
    remaining = page.locator("section.dup-group")
    expect(remaining).to_have_count(1)
    remaining.get_by_role("button", name="Not duplicates").click()
    expect(page.get_by_role("status")).to_have_text("Remembered: not duplicates.")
    expect(page.locator("section.dup-group")).to_have_count(0)
    # a rescan (a file touched, so its row is re-read) and the worker again: still not proposed, still hidden
    (root / "scene-1.jpg").touch()
    libraries.run_scan(library)
    ingest.ingest_pending(redis=redis)
    page.reload()
    expect(page.locator("section.dup-group")).to_have_count(0)
    expect(page.get_by_role("region", name="Hidden library files")).to_contain_text("photos: scene-0-crop.jpg")
    shot(page, "62-duplicates-after-rescan")
    after = _disk(root)
    assert {n: v[0] for n, v in after.items()} == {n: v[0] for n, v in before.items()}  # no byte written or file deleted
    assert {n: v[1] for n, v in after.items() if n != "scene-1.jpg"} == {n: v[1] for n, v in before.items() if n != "scene-1.jpg"}
