"""The results as one scrolls and filters: more pages load with the API's ranking (nothing repeated,
nothing skipped), the filter bar changes the results and the URL, and the page says plainly when
there is nothing to show."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import PAGE_SIZE, result_ids, search, shot, skip_without_chromium

skip_without_chromium()
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def api_ids(page, live_server, query):
    body = page.request.get(f"{live_server.url}/api/search?{query}").json()
    return [r["id"] for r in body["results"]], body


def scroll_to_end(page):
    page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")


def test_scrolling_loads_the_next_pages_of_the_same_ranking(page, live_server, loaded):
    search(page, live_server, "a yellow triangle", cutoff="none")
    assert len(result_ids(page)) == PAGE_SIZE
    expect(page.locator("#count")).to_have_text(f"{PAGE_SIZE}+ results")
    cards = page.locator("#grid > li.card")
    for pages in (2, 3):
        scroll_to_end(page)
        expect(cards).to_have_count(pages * PAGE_SIZE)
    expect(page.locator("#count")).to_have_text(f"{3 * PAGE_SIZE}+ results")
    shown = result_ids(page)
    ranking, _ = api_ids(page, live_server, f"q=a+yellow+triangle&k={3 * PAGE_SIZE}&cutoff=none")
    assert shown == ranking  # in order: nothing repeated, nothing skipped
    # The no-JS pager moved on with the loaded pages: its next link continues after them.
    expect(page.get_by_role("link", name="Next →")).to_have_attribute("href", re.compile(rf"offset={3 * PAGE_SIZE}(&|$)"))
    expect(page.locator(".pager [aria-current=page]")).to_have_text("3")
    shot(page, "21-endless-results", full_page=False)

    # To the end: the last page says so, and every image was shown once.
    for _ in range(20):
        if not page.get_by_role("link", name="Next →").count():
            break
        n = cards.count()
        scroll_to_end(page)
        expect(cards).not_to_have_count(n)
    expect(page.get_by_text("No more results.")).to_be_visible()
    assert sorted(result_ids(page)) == sorted(im.pk for im in loaded)
    expect(page.locator("#count")).to_have_text(f"{len(loaded)} results")


def test_a_filter_change_updates_the_results_and_the_url(page, live_server, loaded):
    search(page, live_server, "a purple cross", cutoff="none")
    before = result_ids(page)
    _, body = api_ids(page, live_server, f"q=a+purple+cross&k={PAGE_SIZE}&cutoff=none")
    scores = [r["score"] for r in body["results"]]
    cut = next(i for i in range(8, PAGE_SIZE - 1) if scores[i] > scores[i + 1])  # a score gap past the 8th
    threshold = round((scores[cut] + scores[cut + 1]) / 2, 6)

    page.get_by_label("Minimum score").fill(str(threshold))
    page.get_by_label("Minimum score").press("Tab")  # a change applies the filters by itself
    expect(page).to_have_url(re.compile(rf"[?&]min_score={threshold}(&|$)"))
    assert "q=a+purple+cross" in page.url and "cutoff=none" in page.url
    assert "after=" not in page.url  # empty filters stay out of a shared URL
    expect(page.locator("#count")).to_have_text(re.compile(rf"^{cut + 1} (relevant )?results$"))
    assert result_ids(page) == before[:cut + 1]
    assert all(float(s) >= threshold - 0.0005 for s in page.locator("#grid .score").all_text_contents())

    # Sort by taken time: the choice is in the URL, the other filters stay.
    page.get_by_label("Sort").select_option("taken")
    expect(page).to_have_url(re.compile(r"[?&]sort=taken(&|$)"))
    assert f"min_score={threshold}" in page.url
    expect(page.get_by_label("Sort")).to_have_value("taken")
    assert result_ids(page) and all(float(s) >= threshold - 0.0005 for s in page.locator("#grid .score").all_text_contents())

    # Taken dates: the gallery's drawings have no EXIF date, so a taken-date range leaves nothing.
    page.get_by_label("Taken from").fill("2001-02-03")
    expect(page).to_have_url(re.compile(r"[?&]taken_after=2001-02-03(&|$)"))
    expect(page.get_by_role("heading", name=re.compile("Nothing"))).to_be_visible()
    expect(page.locator("#grid")).to_have_count(0)


def test_states_say_what_to_do(page, live_server, loaded):
    # Nothing above a minimum score.
    page.goto(live_server.url + "/?q=a+dog+on+grass&min_score=0.999")  # words no file name holds: meaning alone
    expect(page.get_by_role("heading", name="Nothing scores 0.999 or more")).to_be_visible()
    # An impossible date filters nothing (and breaks nothing).
    response = page.goto(live_server.url + "/?q=a+red+circle&after=2024-02-30")
    assert response.status == 200
    expect(page.locator("#grid > li.card").first).to_be_visible()
    # An error (an image search the session no longer holds) is announced.
    page.goto(live_server.url + "/?qi=nosuchkey")
    expect(page.get_by_role("alert")).to_contain_text("expired")
    # No staff tools for a visitor.
    search(page, live_server, "a white ring")
    expect(page.locator("#staff-tools")).to_have_count(0)
    expect(page.locator("#grid .pick")).to_have_count(0)


def test_empty_gallery(page, live_server, transactional_db):
    page.goto(live_server.url + "/")
    expect(page.get_by_role("heading", name="No images yet")).to_be_visible()
    expect(page.get_by_role("link", name="admin upload panel")).to_be_visible()
