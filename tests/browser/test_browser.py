"""The browser UI in a real headless Chromium driven by Playwright, against pytest-django's live
server (a thread of this process) on the real Redis and database: text search, paging, "more like
this", the detail page, search by an uploaded picture, the admin upload and the live status page.
Fixtures: tests/browser/conftest.py."""
import re

import pytest
from playwright.sync_api import expect

from demo.metrics import precision_at_k
from demo.synth import parse_demo_filename
from embeddings.pipeline import ingest
from embeddings.search import selectors
from tests.browser.helpers import GALLERY_SIZE, names_where, result_alts, search, shot, skip_without_chromium
from tests.support import STAFF_PASSWORD, STAFF_USERNAME, make_staff

skip_without_chromium()
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_text_search_more_like_this_and_paging(page, live_server, loaded, gallery_images):
    page.goto(live_server.url + "/")
    expect(page.get_by_label("Search images")).to_be_visible()
    expect(page.locator("p.hint").first).to_be_visible()
    shot(page, "01-search-empty")

    search(page, live_server, "a red circle", cutoff="none")  # every image, so paging can reach them all
    alts = result_alts(page)
    assert len(alts) == 24, alts
    # The demo model's precision@5 is about 0.98 on such galleries: allow one miss in five.
    assert precision_at_k([alts], [names_where(gallery_images, colour="red")], 5) == 1, alts[:5]
    assert alts[0] in names_where(gallery_images, colour="red", shape="circle"), alts[:5]
    assert precision_at_k([alts], [names_where(gallery_images, colour="red", shape="circle")], 5) >= 0.8, alts[:5]
    expect(page.locator("ul.grid .score").first).to_have_text(re.compile(r"^-?\d\.\d{3}$"))
    shot(page, "02-search-red-circle")

    # Page forward: different results each time, until "No more results."
    seen = set(alts)
    pages = 1
    while page.get_by_role("link", name="Next →").count():
        page.goto(live_server.url + page.get_by_role("link", name="Next →").get_attribute("href"))  # see below
        expect(page.locator("p.summary")).to_contain_text(f"shown from {pages * 24 + 1} ")
        pages += 1
        now = result_alts(page)
        assert now and not seen & set(now), "a page repeats results"
        seen |= set(now)
        if pages == 2:
            expect(page.get_by_role("link", name="← Previous")).to_be_visible()
            shot(page, "03-search-page-2")
        assert pages <= GALLERY_SIZE // 24 + 1
    expect(page.get_by_text("No more results.")).to_be_visible()
    assert len(seen) == GALLERY_SIZE and pages == GALLERY_SIZE // 24
    shot(page, "04-search-last-page")

    # More like this, from the first result of a fresh search.
    search(page, live_server, "a blue star")
    first_alt = result_alts(page)[0]
    page.locator("ul.grid li").first.get_by_role("link", name="more like this").click()
    expect(page.locator("p.summary")).to_contain_text("Images like #")
    like = result_alts(page)
    assert len(like) == 24 and first_alt not in like
    shape = parse_demo_filename(first_alt)["shape"]
    # Similar, in the demo model's image space, means mostly the same shape (colours vary).
    assert precision_at_k([like], [names_where(gallery_images, shape=shape)], 5) >= 0.8, (first_alt, like[:5])
    shot(page, "05-more-like-this")

    # The detail page of a result (a click opens the lightbox; its Details link the page): the
    # image, its facts and similar images.
    page.locator("ul.grid img").first.click()
    page.get_by_role("dialog").get_by_role("link", name="Details").click()
    expect(page.locator("article.detail dl")).to_contain_text("Indexed")
    expect(page.get_by_role("heading", name="Similar images")).to_be_visible()
    assert len(result_alts(page)) == 12
    shot(page, "06-detail")


def test_search_by_uploaded_image(page, live_server, loaded, gallery_files, tmp_path):
    name, data = gallery_files[7]
    path = tmp_path / "query.jpg"
    path.write_bytes(data)
    page.goto(live_server.url + "/")
    page.locator("#image").set_input_files(str(path))  # the page submits it by itself
    expect(page.locator("p.summary")).to_contain_text("Images like your picture")
    alts = result_alts(page)
    assert len(alts) == 24 and alts[0] == name  # the picture itself ranks first
    shot(page, "07-search-by-image")

    # The next page goes on with the picture's ranking (kept in the session), not a text search.
    # Followed by its address, not a click: scrolling to the link can load more results first
    # (endless scroll), which moves the link on to the page after.
    page.goto(live_server.url + page.get_by_role("link", name="Next →").get_attribute("href"))
    expect(page.locator("p.summary")).to_contain_text("Images like your picture")
    expect(page.locator("p.summary")).to_contain_text("shown from 25 ")
    second = result_alts(page)
    assert len(second) == 24 and not set(alts) & set(second)
    page.get_by_role("link", name="← Previous").click()
    assert result_alts(page) == alts

    # A key the session does not hold (an old link, another browser) says so plainly.
    page.goto(live_server.url + "/?qi=nosuchkey&offset=24")
    expect(page.get_by_role("alert")).to_contain_text("expired")


def test_text_search_url_has_no_csrf_token(page, live_server, loaded):
    search(page, live_server, "a green square")
    assert "csrfmiddlewaretoken" not in page.url, page.url


def test_admin_upload_and_status(page, live_server, redis, gallery_files):
    make_staff()
    page.goto(live_server.url + "/admin/login/?next=/admin/embeddings/image/add/")
    page.get_by_label("Username").fill(STAFF_USERNAME)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/embeddings/image/add/$"))
    files = [{"name": name, "mimeType": "image/jpeg", "buffer": data} for name, data in gallery_files[:6]]
    page.locator("input[type=file][name=files]").set_input_files(files)
    shot(page, "08-admin-upload-form")
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("ul.messagelist")).to_contain_text("6 images added")
    for name, _ in gallery_files[:6]:
        expect(page.locator(f'#result_list img[alt="{name}"]')).to_be_visible()
    shot(page, "09-admin-uploaded")

    # Status: the pending images, then counts that refresh by themselves as they are encoded.
    # The model loads first, as the server's start-up warm-up does (nothing here has needed it yet).
    selectors.model_info()
    page.goto(live_server.url + "/status/")
    expect(page.locator("#n-pending")).to_have_text("6")
    expect(page.locator("#n-indexed")).to_have_text("0")
    shot(page, "10-status-pending")
    totals = ingest.ingest_pending(redis=redis)
    assert totals["indexed"] == 6
    expect(page.locator("#n-indexed")).to_have_text("6", timeout=10_000)
    expect(page.locator("#n-pending")).to_have_text("0")
    assert page.locator("#progress").evaluate("e => e.value") == 1
    page.reload()
    expect(page.locator("#status")).to_contain_text("6 vectors")
    shot(page, "11-status-indexed")
