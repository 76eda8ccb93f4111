"""The lightbox over the results: opened and stepped by keyboard alone (loading more at the end),
closed by Esc or by Back, opened by a link; focus stays inside it and comes back to the thumbnail."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import PAGE_SIZE, result_alts, result_ids, search, shot, skip_without_chromium

skip_without_chromium()
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FOCUSED_CARD = "() => { const li = document.activeElement.closest('li.card'); return li ? Number(li.dataset.id) : null; }"


def in_dialog(page):
    return page.evaluate("() => !!document.activeElement.closest('#lightbox')")


def test_keyboard_alone(page, live_server, loaded):
    page.goto(live_server.url + "/?cutoff=none")
    page.keyboard.type("a blue star")  # the box has the focus
    page.keyboard.press("Enter")
    expect(page.locator("p.summary")).to_contain_text("Results for “a blue star”")
    alts, ids = result_alts(page), result_ids(page)
    for _ in range(60):  # Tab through the form and filters to the first result
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.matches('#grid a.thumb')"):
            break
    assert page.evaluate(FOCUSED_CARD) == ids[0]

    page.keyboard.press("Enter")
    dialog, title = page.get_by_role("dialog", name=alts[0]), page.locator("#lb-title")
    expect(dialog).to_be_visible()
    expect(page).to_have_url(re.compile(rf"[?&]open={ids[0]}(&|$)"))
    for key, i in (("ArrowRight", 1), ("ArrowRight", 2), ("ArrowLeft", 1), ("ArrowRight", 2)):
        page.keyboard.press(key)
        expect(title).to_have_text(alts[i])
        expect(page).to_have_url(re.compile(rf"[?&]open={ids[i]}(&|$)"))
    lightbox = page.locator("#lightbox")
    expect(lightbox.locator("#lb-pos")).to_have_text(re.compile(r"^3 of \d+\+?$"))
    expect(lightbox.locator("#lb-facts")).to_contain_text(alts[2])
    expect(lightbox.locator("#lb-facts")).to_contain_text("Score")
    # The query's words are marked where the facts hold them (here: the file name).
    marks = {m.lower() for m in lightbox.locator("#lb-facts mark").all_text_contents()}
    assert marks <= {"blue", "star"} and ("star" in marks) == ("star" in alts[2]), (marks, alts[2])
    expect(lightbox.get_by_role("link", name="Details")).to_have_attribute("href", f"/images/{ids[2]}/")
    expect(lightbox.get_by_role("link", name="More like this")).to_have_attribute("href", re.compile(rf"like={ids[2]}$"))
    expect(lightbox.get_by_role("link", name="Original")).to_have_attribute("href", re.compile(r"^/media/images/"))
    # The full image replaces the thumbnail once loaded.
    expect(page.locator("#lb-img")).to_have_attribute("src", re.compile(r"/media/images/"))
    # Focus is trapped: two rounds of Tab, forwards and back, never leave the dialog.
    for key in ["Tab"] * 12 + ["Shift+Tab"] * 12:
        page.keyboard.press(key)
        assert in_dialog(page), key
    shot(page, "22-lightbox", full_page=False)

    page.keyboard.press("Escape")
    expect(page.locator("#lightbox")).to_be_hidden()
    # Closing goes back past the entry the lightbox pushed; history.back() lands a moment later.
    expect(page).not_to_have_url(re.compile(r"[?&]open="))
    assert page.evaluate(FOCUSED_CARD) == ids[2]  # back on the thumbnail of the last image seen


def test_back_closes_it_and_a_link_opens_it(page, live_server, loaded):
    search(page, live_server, "a green ring", cutoff="none")
    alts, ids = result_alts(page), result_ids(page)
    page.evaluate("() => { window.sameDocument = true; }")  # gone if anything reloads the page
    page.locator("#grid a.thumb").nth(3).click()
    expect(page.get_by_role("dialog", name=alts[3])).to_be_visible()
    page.go_back()
    expect(page.locator("#lightbox")).to_be_hidden()
    expect(page).not_to_have_url(re.compile(r"[?&]open="))  # page.url follows history a moment later
    assert "q=a+green+ring" in page.url
    assert page.evaluate("() => window.sameDocument") and result_ids(page) == ids
    assert page.evaluate(FOCUSED_CARD) == ids[3]
    page.go_forward()
    expect(page.get_by_role("dialog", name=alts[3])).to_be_visible()

    # The URL of an open lightbox opens it; closing it leaves the results at their own URL.
    page.goto(f"{live_server.url}/?q=a+green+ring&cutoff=none&open={ids[5]}")
    expect(page.get_by_role("dialog", name=alts[5])).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#lightbox")).to_be_hidden()
    expect(page).not_to_have_url(re.compile(r"[?&]open="))
    assert result_ids(page) == ids

    # An image that ranks far from the first page still opens, on its own.
    outsider = next(im for im in loaded if im.pk not in ids)
    page.goto(f"{live_server.url}/?q=a+green+ring&cutoff=none&open={outsider.pk}")
    expect(page.get_by_role("dialog", name=outsider.original_filename)).to_be_visible()


def test_stepping_past_the_last_loaded_result_loads_more(page, live_server, loaded):
    search(page, live_server, "a small orange square", cutoff="none")
    ids = result_ids(page)
    assert len(ids) == PAGE_SIZE
    api = page.request.get(f"{live_server.url}/api/search?q=a+small+orange+square&k={PAGE_SIZE + 2}&cutoff=none").json()
    ranking = [r["original_filename"] for r in api["results"]]
    page.locator("#grid a.thumb").nth(PAGE_SIZE - 1).click()
    title = page.locator("#lb-title")
    expect(title).to_have_text(ranking[PAGE_SIZE - 1])
    page.keyboard.press("ArrowRight")
    expect(title).to_have_text(ranking[PAGE_SIZE])
    page.keyboard.press("ArrowRight")
    expect(title).to_have_text(ranking[PAGE_SIZE + 1])
    assert len(result_ids(page)) == 2 * PAGE_SIZE  # the next page joined the grid behind the lightbox
