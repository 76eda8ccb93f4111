"""The photo facts in the browser: the filter bar's camera and taken-date fields narrow the
results, and "Newest taken first" orders them by when each photo was taken (facts set on the rows
as a scan or an upload reads them from EXIF)."""
import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import result_ids, search, skip_without_chromium

skip_without_chromium()
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def dated(loaded):
    """Six images taken a day apart from 2019-06-01; the odd ones by a Canon, the even by a Fujifilm."""
    from embeddings.models import Image

    chosen = loaded[:6]
    for n, im in enumerate(chosen):
        Image.objects.filter(pk=im.pk).update(
            taken_at=datetime(2019, 6, 1, 12, tzinfo=UTC) + timedelta(days=n),
            camera_make="Canon" if n % 2 else "FUJIFILM", camera_model="EOS R5" if n % 2 else "X-T30")
    return [im.pk for im in chosen]


def apply(page, label, value):
    field = page.get_by_label(label)
    field.fill(value)
    field.press("Tab")  # a change applies the filters by itself


def test_camera_taken_dates_and_sort_by_taken(page, live_server, dated):
    search(page, live_server, "a shape", cutoff="none")
    apply(page, "Camera", "canon")
    expect(page).to_have_url(re.compile(r"[?&]camera=canon(&|$)"))
    expect(page.locator("#grid > li.card")).to_have_count(3)
    assert sorted(result_ids(page)) == sorted(dated[1::2])

    apply(page, "Camera", "")
    apply(page, "Taken from", "2019-06-02")
    apply(page, "Taken before", "2019-06-05")
    expect(page).to_have_url(re.compile(r"[?&]taken_before=2019-06-05(&|$)"))
    assert "taken_after=2019-06-02" in page.url
    expect(page.locator("#grid > li.card")).to_have_count(3)
    assert sorted(result_ids(page)) == sorted(dated[1:4])

    apply(page, "Taken before", "")
    page.get_by_label("Sort").select_option("taken")
    expect(page).to_have_url(re.compile(r"[?&]sort=taken(&|$)"))
    expect(page.locator("#grid > li.card")).to_have_count(5)
    assert result_ids(page) == list(reversed(dated[1:]))  # newest taken first
