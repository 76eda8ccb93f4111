"""Plain helpers of the browser tests: where Chromium is, screenshots, the search steps every test
takes, and the axe-core audit (axe-core is vendored under tests/browser/vendor/, see its README)."""
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from demo.metrics import relevant_ids
from demo.synth import demo_filename
from tests.support import ROOT

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
SHOTS = ROOT / "test-artifacts" / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
GALLERY_SIZE = 240  # 5 of each colour x shape: the first five of "a red circle" can all be right
PAGE_SIZE = 24


def skip_without_chromium():
    """At a test module's top: skip it where Chromium is missing, unless CI says it must be there."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CLIPSEARCH_REQUIRE_BROWSER") == "1":
            raise RuntimeError(f"{CHROMIUM} is missing and CLIPSEARCH_REQUIRE_BROWSER=1")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)


def shot(page, name, full_page=True):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def names_where(gallery_images, **attrs):
    """The file names of the gallery images whose drawn attributes equal `attrs`."""
    metas = [meta for _, meta in gallery_images]
    return {demo_filename(i, metas[i]) for i in relevant_ids(metas, **attrs)}


def result_alts(page):
    page.wait_for_load_state("domcontentloaded")  # after a click that navigates: the whole new grid
    return page.locator("ul.grid img").evaluate_all("els => els.map(e => e.alt)")


def result_ids(page):
    return page.locator("#grid > li.card").evaluate_all("els => els.map(e => Number(e.dataset.id))")


def search(page, live_server, text, **params):
    """Type a search into the box, as a person does; `params` (e.g. cutoff="none") are in the page's URL first."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    page.goto(live_server.url + "/" + (f"?{query}" if query else ""))
    box = page.get_by_label("Search images")
    box.fill(text)
    box.press("Enter")
    expect(page.locator("p.summary")).to_contain_text(f"Results for “{text}”")
    for key, value in params.items():
        assert re.search(rf"[?&]{key}={value}(&|$)", page.url), page.url


def axe_violations(page, impacts=("serious", "critical")):
    """axe-core's WCAG A/AA (2.0-2.2) and best-practice rules on the page as it is now; the violations
    of the given impacts, as readable lines."""
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} -> " + "; ".join(str(n["target"]) for n in v["nodes"][:5])
            for v in result["violations"] if v["impact"] in impacts]


def no_sideways_scroll(page):
    """(scrollWidth, clientWidth) of the document: a page that scrolls sideways has the first larger."""
    return page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")


def log_in_as_staff(page, live_server):
    """A staff user, logged in through the admin's login form; the browser lands on the search page."""
    from tests.support import STAFF_PASSWORD, STAFF_USERNAME, make_staff

    make_staff()
    page.goto(live_server.url + "/admin/login/?next=/")
    page.get_by_label("Username").fill(STAFF_USERNAME)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(live_server.url + "/")
    # The URL changes when the new page commits; its DOM and scripts (the staff tools) come after.
    page.wait_for_load_state("load")
