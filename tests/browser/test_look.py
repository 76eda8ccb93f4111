"""How the pages look and read: the dark theme (the system's, or the toggle's, remembered), no
serious or critical axe-core violations in either theme, and no sideways scrolling on a phone."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import (
    axe_violations,
    log_in_as_staff,
    no_sideways_scroll,
    search,
    shot,
    skip_without_chromium,
)

skip_without_chromium()
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LIGHT_BG, DARK_BG = "rgb(246, 247, 249)", "rgb(17, 20, 24)"  # --bg of each theme (static/clipsearch.css)


def background(page):
    return page.evaluate("() => getComputedStyle(document.body).backgroundColor")


def test_dark_theme_follows_the_system_and_the_toggle(new_page, live_server, loaded):
    page = new_page(color_scheme="dark")
    search(page, live_server, "a red circle")
    assert background(page) == DARK_BG
    toggle = page.get_by_role("button", name="Dark theme")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    shot(page, "20-search-dark", full_page=False)
    toggle.click()  # a choice beats the system, and is remembered
    expect(toggle).to_have_attribute("aria-pressed", "false")
    assert background(page) == LIGHT_BG
    page.reload()
    assert background(page) == LIGHT_BG
    page.goto(live_server.url + "/status/")
    assert background(page) == LIGHT_BG
    expect(page.get_by_role("button", name="Dark theme")).to_have_attribute("aria-pressed", "false")

    light = new_page(color_scheme="light")  # a fresh browser: no choice made, the system's light theme
    light.goto(live_server.url + "/")
    assert background(light) == LIGHT_BG
    light.emulate_media(color_scheme="dark")
    assert background(light) == DARK_BG
    expect(light.get_by_role("button", name="Dark theme")).to_have_attribute("aria-pressed", "true")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_violations(new_page, live_server, loaded, scheme):
    page = new_page(color_scheme=scheme)
    log_in_as_staff(page, live_server)  # staff see every control there is
    search(page, live_server, "a green triangle", cutoff="none")
    page.locator("#grid .pick").first.click()  # a selection shows the bulk buttons enabled
    assert axe_violations(page) == [], "search page with results"
    if scheme == "light":
        shot(page, "19-search-light", full_page=False)
    page.locator("#grid .pick").first.click()
    page.locator("#grid a.thumb").first.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    assert axe_violations(page) == [], "lightbox"
    href = page.get_by_role("dialog").get_by_role("link", name="Details").get_attribute("href")
    page.goto(live_server.url + href)
    expect(page.get_by_role("heading", name="Similar images")).to_be_visible()
    assert axe_violations(page) == [], "detail page"
    page.goto(live_server.url + "/status/")
    assert axe_violations(page) == [], "status page"
    page.goto(live_server.url + "/?q=a+dog+on+grass&min_score=0.999")
    assert axe_violations(page) == [], "no results"


@pytest.mark.parametrize("width", [390, 360])
def test_a_phone_never_scrolls_sideways(new_page, live_server, loaded, width):
    page = new_page(width=width, height=800, is_mobile=True, has_touch=True)
    page.goto(live_server.url + "/")
    sw, cw = no_sideways_scroll(page)
    assert sw <= cw, ("empty search page", sw, cw)
    search(page, live_server, "a small purple star")
    sw, cw = no_sideways_scroll(page)
    assert sw <= cw, ("results", sw, cw)
    if width == 390:
        shot(page, "23-phone", full_page=False)
    page.locator("#grid a.thumb").first.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    sw, cw = no_sideways_scroll(page)
    assert sw <= cw, ("lightbox", sw, cw)
    if width == 390:
        shot(page, "23-phone-lightbox", full_page=False)
    page.keyboard.press("Escape")
    # Closing goes back in history (asynchronously): let it land before navigating on, or the
    # late back-navigation races the next goto.
    expect(page).not_to_have_url(re.compile(r"[?&]open="))
    for path in (page.locator("#grid a.thumb").first.get_attribute("href"), "/status/"):
        page.goto(live_server.url + path)
        sw, cw = no_sideways_scroll(page)
        assert sw <= cw, (path, sw, cw)


def test_the_audit_finds_what_it_should(page, live_server):
    """The axe audit is real: an image without a text alternative and unlabelled controls are caught."""
    page.goto(live_server.url + "/status/")
    page.evaluate("""() => document.querySelector('main').insertAdjacentHTML('beforeend',
        '<img src="/static/none.png"><input type="text"><p style="color:#bbb;background:#fff">faint</p>')""")
    found = {line.split(" ")[0] for line in axe_violations(page)}
    assert {"image-alt", "label", "color-contrast"} <= found, found
