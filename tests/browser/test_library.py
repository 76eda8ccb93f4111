"""What people do around search, in Chromium: the timeline of a search with no words (month headings,
a jump to any month), dates typed as words shown as removable chips, albums filled from a selection
and from the lightbox, a search kept as a smart album, and an album shared read-only by link."""
import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import axe_violations, log_in_as_staff, result_ids, shot, skip_without_chromium

skip_without_chromium()
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def dated(loaded):
    """The gallery with taken times: eight in July 2019, eight in the summer of 2026, the rest undated."""
    from embeddings.models import Image

    for n, im in enumerate(loaded[:16]):
        when = datetime(2019, 7, 1 + n, 12, tzinfo=UTC) if n < 8 else datetime(2026, 7, 1 + n, 12, tzinfo=UTC)
        Image.objects.filter(pk=im.pk).update(taken_at=when)
    return loaded


def test_timeline_and_dates_in_words(page, live_server, dated):
    page.goto(live_server.url + "/")
    expect(page.locator("p.summary")).to_contain_text("All images, newest taken first")
    headings = page.locator("#grid > li.month h2")
    expect(headings.first).to_be_visible()
    assert axe_violations(page) == []
    shot(page, "30-timeline", full_page=False)
    page.locator("#jump").select_option("2019-07")
    page.get_by_role("button", name="Go").click()
    expect(page).to_have_url(re.compile(r"at=2019-07"))
    expect(headings.first).to_have_text("July 2019")
    assert len(result_ids(page)) == 8
    # Dates in words: read into a filter, shown as a chip that can be removed.
    box = page.get_by_label("Search images")
    box.fill("a shape in july 2019")
    box.press("Enter")
    chip = page.locator(".chip")
    expect(chip).to_contain_text("taken: in july 2019")
    assert set(result_ids(page)) <= {im.pk for im in dated[:8]} and result_ids(page)
    shot(page, "31-dates-in-words", full_page=False)
    chip.get_by_role("link", name=re.compile("Remove")).click()
    expect(page.locator(".chip")).to_have_count(0)
    expect(page.get_by_label("Search images")).to_have_value("a shape")


def test_albums_from_a_selection_the_lightbox_and_a_saved_search(page, live_server, loaded):
    log_in_as_staff(page, live_server)
    page.goto(live_server.url + "/albums/")
    page.get_by_label("New album").fill("Favourites")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Favourites")).to_be_visible()
    album_url = page.url

    # A selection of results goes into it.
    page.goto(live_server.url + "/?q=a+red+shape&cutoff=none")
    page.wait_for_load_state("load")
    ids = result_ids(page)
    picks = page.locator("#grid .pick")
    picks.nth(0).click()
    picks.nth(1).click()
    page.locator("#album-target").select_option(label="Favourites")
    page.get_by_role("button", name="Add to album").click()
    expect(page.locator("#staff-notice")).to_contain_text("Added 2 images to Favourites")
    # ... and one more from the lightbox (the selection was cleared: a thumbnail opens it again).
    expect(page.locator("#selected-count")).to_have_text("0 selected")
    page.locator("#grid a.thumb").nth(2).click()
    lightbox = page.locator("#lightbox")
    expect(lightbox).to_be_visible()
    lightbox.get_by_role("button", name="Add this image").click()
    expect(page.locator("#lb-album-status")).to_have_text("Added to Favourites.")
    page.keyboard.press("Escape")
    # Closing goes back in history, which lands a moment later: a goto before it would be aborted.
    expect(page).not_to_have_url(re.compile(r"[?&]open="))
    page.wait_for_load_state("load")

    page.goto(album_url)
    expect(page.locator("#grid > li.card")).to_have_count(3)
    assert set(result_ids(page)) == set(ids[:3])
    assert axe_violations(page) == []
    shot(page, "32-album")

    # A search kept as a smart album: its members are what the search passes now.
    page.goto(live_server.url + "/?q=a+blue+circle")
    page.wait_for_load_state("load")
    searched = result_ids(page)
    page.get_by_label("Save as smart album").fill("Blue circles")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", name="Blue circles")).to_be_visible()
    expect(page.locator("p.summary")).to_contain_text("Smart album")
    assert sorted(result_ids(page)) == sorted(searched)
    shot(page, "33-smart-album")


def test_share_an_album_by_link(page, live_server, loaded, new_page):
    log_in_as_staff(page, live_server)
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    body = page.request.post(f"{live_server.url}/api/albums", data={"name": "Shared"}, headers={"X-CSRFToken": csrf})
    assert body.status == 201, body.text()
    album = body.json()
    from embeddings.albums import albums
    from embeddings.models import Album

    albums.add_images(Album.objects.get(pk=album["id"]), [im.pk for im in loaded[:4]])
    page.goto(album["url"])
    page.get_by_role("button", name="Share by link").click()
    link = page.locator("#share-link")
    expect(link).to_be_visible()
    url = link.get_attribute("href")

    visitor = new_page()  # another browser context: no login, no session
    visitor.goto(url)
    expect(visitor.locator("#grid > li.card")).to_have_count(4)
    assert sorted(result_ids(visitor)) == sorted(im.pk for im in loaded[:4])
    assert visitor.locator("input[name=q]").count() == 0 and visitor.locator("a[href^='/images/']").count() == 0
    assert axe_violations(visitor) == []
    shot(visitor, "34-share")

    page.get_by_role("button", name="Stop sharing").click()
    expect(page.get_by_role("button", name="Stop sharing")).to_have_count(0)
    assert visitor.goto(url).status == 404
