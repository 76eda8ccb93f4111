"""Browsing and dates in words through the JSON API: no query (or only words that name nothing) lists
the images the filters pass, newest taken first; dates and cameras typed as words become filters
(`interpreted`), explicit parameters winning."""
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache

from embeddings.models import Image

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dated(indexed_gallery):
    """Twelve images taken a month apart through 2019 (six by one camera); the rest undated."""
    cache.clear()  # the library's cameras are kept a minute per process: this test's cameras are new
    chosen = list(Image.objects.order_by("pk")[:12])
    for n, im in enumerate(chosen):
        im.taken_at = datetime(2019, n + 1, 10, 12, tzinfo=UTC)
        im.camera_make, im.camera_model = ("Canon", "EOS 5D") if n % 2 else ("FUJIFILM", "X-T30")
        im.save()
    return chosen


def get(client, **params):
    resp = client.get("/api/search", params)
    assert resp.status_code == 200, resp.content[:400]
    return resp.json()


def test_no_query_browses_newest_taken_first_then_by_upload(client, dated):
    body = get(client, k=200)
    ids = [r["id"] for r in body["results"]]
    # the undated were uploaded today, after every 2019 photo was taken: their upload time places them first
    undated = list(Image.objects.filter(taken_at__isnull=True).order_by("-uploaded_at", "-id").values_list("pk", flat=True))
    assert ids == undated + [im.pk for im in reversed(dated)]
    Image.objects.filter(pk=dated[0].pk).update(taken_at=datetime.now(UTC) + timedelta(days=1))
    assert get(client, k=1)["results"][0]["id"] == dated[0].pk  # a taken time newer than every upload leads
    assert all(r["score"] is None and r["matched"] == [] for r in body["results"])
    assert body["query"] is None and body["passed"] is None and body["interpreted"] is None


def test_browse_pages_the_same_way(client, dated):
    first = get(client, k=5, library="")
    assert len(first["results"]) == 5 and first["next"]
    second = client.get(first["next"]).json()
    everything = [r["id"] for r in get(client, k=200)["results"]]
    assert [r["id"] for r in first["results"] + second["results"]] == everything[:10]


def test_filters_alone_and_stopwords_browse(client, dated):
    canon = {im.pk for n, im in enumerate(dated) if n % 2}
    assert {r["id"] for r in get(client, camera="EOS 5D", k=50)["results"]} == canon
    body = get(client, q="a photo", camera="EOS 5D", k=50)  # every word a stopword: never an empty answer
    assert {r["id"] for r in body["results"]} == canon and len(canon) == 6
    july = get(client, taken_after="2019-07-01T00:00:00Z", taken_before="2019-08-01T00:00:00Z")
    assert [r["id"] for r in july["results"]] == [dated[6].pk]


def test_dates_and_cameras_in_words_become_filters(client, dated):
    body = get(client, q="a shape in july 2019", cutoff="none", k=50)
    assert body["interpreted"]["taken_after"] == "2019-07-01" and body["interpreted"]["taken_before"] == "2019-08-01"
    assert body["interpreted"]["text"] == "a shape" and body["interpreted"]["camera"] is None
    assert [r["id"] for r in body["results"]] == [dated[6].pk]
    assert body["results"][0]["score"] is not None  # ranked by the words left
    only_words = get(client, q="2019 from the canon", k=50)
    assert only_words["interpreted"]["camera"] == "canon" and only_words["interpreted"]["text"] == ""
    assert {r["id"] for r in only_words["results"]} == {im.pk for n, im in enumerate(dated) if n % 2}
    december = get(client, q="photos in december", k=50)
    assert december["interpreted"]["months"] == [12] and [r["id"] for r in december["results"]] == [dated[11].pk]


def test_explicit_parameters_win_over_words(client, dated):
    body = get(client, q="a photo in july 2019", taken_after="2019-03-01T00:00:00Z", taken_before="2019-04-01T00:00:00Z")
    assert [r["id"] for r in body["results"]] == [dated[2].pk]
    assert body["interpreted"]["taken_after"] == "2019-07-01"  # what was read is still said


def test_a_plain_word_stays_a_word(client, dated):
    body = get(client, q="may flowers", cutoff="none", k=5)
    assert body["interpreted"] is None and body["results"] and body["results"][0]["score"] is not None


def test_the_search_page_without_words_is_a_timeline(client, dated):
    page = client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "December 2019" in html and "newest taken first" in html and 'name="at"' in html
    jumped = client.get("/", {"at": "2019-03"}).content.decode()
    start = jumped.index('id="grid"')
    assert "March 2019" in jumped[start:] and "April 2019" not in jumped[start:]
    chips = client.get("/", {"q": "a shape in july 2019"}).content.decode()
    assert "taken: in july 2019" in chips


def test_a_reading_that_finds_nothing_gives_way_to_the_words(client, dated):
    """"colosseum 2019" may name a file, not a year: with no photo taken in 2019 that matches, the
    words are searched as typed (interpreted: null) rather than answering nothing."""
    from embeddings import services
    from tests.support import jpeg_bytes

    Image.objects.filter(taken_at__year=2019).update(taken_at=datetime(2018, 5, 1, tzinfo=UTC))
    named = services.add_image(jpeg_bytes(__import__("demo.synth", fromlist=["gallery"]).gallery(1, seed=3)[0][0]),
                               "Colosseum_2019.jpg", enqueue=False)
    from embeddings.pipeline import ingest

    ingest.ingest_pending()
    body = get(client, q="colosseum 2019")
    assert body["interpreted"] is None and body["results"][0]["id"] == named.pk


def test_browse_excludes_failed_images(client, dated):
    Image.objects.filter(pk=dated[0].pk).update(status=Image.Status.FAILED)
    assert dated[0].pk not in {r["id"] for r in get(client, k=200)["results"]}


@pytest.mark.parametrize("at", [None, "2019-06"])
def test_a_browse_page_is_read_in_index_order_not_sorted(dated, at):
    """Browsing reads its page from the image_when_newest_first index: a sort of every row cost 181 ms a
    page at 100k images on PostgreSQL. (The planner is told not to sort, so a small table answers too.)"""
    from datetime import date

    from django.db import connection

    from embeddings.search.answer import newest_first
    from embeddings.search.request import Filters
    from tests.support import query_plan

    rows = newest_first(Filters(), date.fromisoformat(at + "-01") if at else None)[:21]
    plan = query_plan(rows, "enable_sort")
    if connection.vendor == "postgresql":
        assert "image_when_newest_first" in plan and "Sort" not in plan, plan
    else:
        assert "image_when_newest_first" in plan and "TEMP B-TREE" not in plan, plan
