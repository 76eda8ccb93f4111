"""Search filters beyond meaning: taken dates, camera, library, and sorting by taken time, through
the JSON API on the real database and index (photo facts set on the rows as a scan would)."""
from datetime import UTC, datetime, timedelta

import pytest

from embeddings.models import Image, Library
from tests.support import assert_result_list

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def facts(indexed_gallery, tmp_path):
    """Ten gallery images with taken times a day apart, half by one camera, three in a library."""
    lib = Library.objects.create(name="Holidays 2019", root=str(tmp_path))
    chosen = list(Image.objects.order_by("pk")[:10])
    start = datetime(2019, 6, 1, 12, tzinfo=UTC)
    for n, im in enumerate(chosen):
        im.taken_at = start + timedelta(days=n)
        im.camera_make, im.camera_model = ("Canon", "EOS R5") if n % 2 else ("FUJIFILM", "X-T30")
        if n < 3:
            im.library, im.path = lib, f"rome/{n}.jpg"
        im.save()
    return chosen, lib


def search(client, **params):
    resp = client.get("/api/search", {"q": "a shape", "k": 200, "cutoff": "none", **params})
    assert resp.status_code == 200, resp.content
    if params.get("sort") == "taken":  # not best-first by score, by design
        return resp.json()["results"]
    return assert_result_list(resp.json())


def test_taken_dates_camera_and_library_filter(client, facts):
    chosen, lib = facts
    ids = [im.pk for im in chosen]
    got = {r["id"] for r in search(client, taken_after="2019-06-03T00:00:00Z", taken_before="2019-06-06T00:00:00Z")}
    assert got == set(ids[2:5])
    canon = search(client, camera="canon r5")
    assert {r["id"] for r in canon} == set(ids[1::2])
    assert all(r["camera"] == "Canon EOS R5" for r in canon)
    for key in (lib.name, str(lib.pk)):
        in_lib = search(client, library=key)
        assert {r["id"] for r in in_lib} == set(ids[:3])
        assert {(r["library"], r["path"]) for r in in_lib} == {(lib.name, f"rome/{n}.jpg") for n in range(3)}
    assert search(client, library="no such library") == []


def test_sort_taken_orders_newest_first_with_undated_last(client, facts):
    chosen, _ = facts
    results = search(client, sort="taken", k=30)
    dated = [r for r in results if r["taken_at"]]
    assert [r["id"] for r in dated] == [im.pk for im in reversed(chosen)]
    assert results[:10] == dated  # the undated come after every dated one
    relevance = search(client, k=30)
    assert [r["id"] for r in relevance] != [r["id"] for r in results]


def test_bad_filter_values_are_clear_errors(client, facts):
    for params in ({"sort": "random"}, {"cutoff": "sometimes"}, {"taken_after": "yesterday"}, {"camera": "x\x00"}):
        resp = client.get("/api/search", {"q": "a shape", **params})
        assert resp.status_code in (400, 422), (params, resp.status_code)
        assert resp.json()["error"]["message"]
