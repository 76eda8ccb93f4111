"""Search through the JSON API: by text (paging, minimum score, upload dates), by image (alone or
with text) and "more like this", on the real Redis and database with the demo model."""
import io
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image as PILImage

from embeddings import services
from embeddings.models import Image
from tests.support import assert_error, assert_result_list, path_of

pytestmark = pytest.mark.django_db(transaction=True)


def png_bytes(size=(32, 32), colour=(200, 30, 30)):
    buf = io.BytesIO()
    PILImage.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def test_search_answers_as_documented(client, indexed_gallery):
    resp = client.get("/api/search", {"q": "a red circle", "k": 5, "cutoff": "none"})
    assert resp.status_code == 200, resp.content
    body = resp.json()
    results = assert_result_list(body, k=5)
    assert len(results) == 5
    assert body["query"] == "a red circle"
    assert body["model"] == settings.MODEL_KEY
    assert body["next"] is not None
    by_id = {im.pk: im for im in indexed_gallery}
    for r in results:
        im = by_id[r["id"]]
        assert r["original_filename"] == im.original_filename
        assert (r["width"], r["height"]) == (im.width, im.height)
    # The URLs really serve the image, its thumbnail and its page.
    first = results[0]
    for key in ("image_url", "thumbnail_url", "detail_url"):
        got = client.get(path_of(first[key]))
        assert got.status_code == 200, (key, got.status_code)
    assert client.get(path_of(first["image_url"]))["Content-Type"] == "image/jpeg"


def test_search_paging_reaches_every_result_once(client, indexed_gallery):
    url = "/api/search?" + "q=a+blue+square&k=5&cutoff=none"
    seen, pages, scores = [], 0, []
    while url:
        body = client.get(url).json()
        results = assert_result_list(body, k=5)
        pages += 1
        seen += [r["id"] for r in results]
        scores += [r["score"] for r in results]
        url = path_of(body["next"]) if body["next"] else None
        assert pages <= 10
    assert len(seen) == len(set(seen)) == len(indexed_gallery)  # no overlap, nothing missed
    assert pages == 5  # 24 results in pages of 5
    assert scores == sorted(scores, reverse=True)  # the ranking continues across pages
    # The next URL keeps the other parameters and moves the offset.
    body = client.get("/api/search", {"q": "a blue square", "k": 7, "min_score": -1}).json()
    qs = parse_qs(urlsplit(body["next"]).query)
    assert qs["q"] == ["a blue square"] and qs["k"] == ["7"] and qs["offset"] == ["7"] and qs["min_score"] == ["-1"]
    # Exactly at the end: a full last page has no next.
    last = client.get("/api/search", {"q": "a blue square", "k": 4, "offset": 20, "cutoff": "none"}).json()
    assert len(last["results"]) == 4 and last["next"] is None
    beyond = client.get("/api/search", {"q": "a blue square", "k": 4, "offset": 24, "cutoff": "none"}).json()
    assert beyond["results"] == [] and beyond["next"] is None


def test_search_min_score(client, indexed_gallery):
    full = client.get("/api/search", {"q": "a green star", "k": 24, "cutoff": "none"}).json()["results"]
    threshold = (full[5]["score"] + full[6]["score"]) / 2  # between two scores: rounding cannot matter
    body = client.get("/api/search", {"q": "a green star", "k": 24, "min_score": threshold}).json()
    results = assert_result_list(body)
    assert all(r["score"] >= threshold for r in results)
    assert [r["id"] for r in results] == [r["id"] for r in full if r["score"] >= threshold]
    assert len(results) == 6 or full[5]["score"] == full[6]["score"]
    nothing = client.get("/api/search", {"q": "a green star", "min_score": 1}).json()
    assert nothing["results"] == [] and nothing["next"] is None


def test_search_upload_date_filters(client, indexed_gallery):
    old = [im.pk for im in indexed_gallery[:10]]
    Image.objects.filter(pk__in=old).update(uploaded_at=timezone.now() - timedelta(days=30))
    cut = (timezone.now() - timedelta(days=1)).isoformat()

    before = client.get("/api/search", {"q": "a shape", "k": 50, "uploaded_before": cut, "cutoff": "none"}).json()
    assert sorted(r["id"] for r in assert_result_list(before)) == sorted(old)
    after = client.get("/api/search", {"q": "a shape", "k": 50, "uploaded_after": cut, "cutoff": "none"}).json()
    assert sorted(r["id"] for r in assert_result_list(after)) == sorted(im.pk for im in indexed_gallery[10:])
    # Paging through a filtered search still reaches every match once.
    seen, url = [], f"/api/search?q=a+shape&k=3&cutoff=none&uploaded_before={cut.replace('+', '%2B')}"
    while url:
        body = client.get(url).json()
        seen += [r["id"] for r in body["results"]]
        url = path_of(body["next"]) if body["next"] else None
    assert sorted(seen) == sorted(old)
    day = client.get("/api/search", {"q": "a shape", "uploaded_after": "2001-01-01", "uploaded_before": "2001-01-02"})
    assert day.status_code == 200 and day.json()["results"] == []


def test_search_by_image_and_mixed(client, indexed_gallery, demo_images):
    data, _ = demo_images[3]
    resp = client.post("/api/search/image", {"file": SimpleUploadedFile("q.jpg", data, "image/jpeg"), "k": "5"})
    assert resp.status_code == 200, resp.content
    body = resp.json()
    results = assert_result_list(body, k=5)
    assert len(results) == 5 and body["query"] is None
    assert results[0]["id"] == indexed_gallery[3].pk and results[0]["score"] > 0.999  # the image itself
    mixed = client.post("/api/search/image", {"file": SimpleUploadedFile("q.jpg", data), "q": "a red circle"})
    assert mixed.status_code == 200, mixed.content
    assert mixed.json()["query"] == "a red circle"
    assert len(assert_result_list(mixed.json())) == 20  # the default k
    # A picture nobody uploaded (a PNG) works too.
    png = client.post("/api/search/image", {"file": SimpleUploadedFile("x.png", png_bytes(), "image/png")})
    assert png.status_code == 200 and len(png.json()["results"]) == 20


def test_similar_images(client, indexed_gallery):
    target = indexed_gallery[0]
    body = client.get(f"/api/images/{target.pk}/similar", {"k": 5}).json()
    results = assert_result_list(body, k=5)
    assert len(results) == 5 and target.pk not in [r["id"] for r in results]
    assert body["query"] is None
    seen, url = [], f"/api/images/{target.pk}/similar?k=10"
    while url:
        page = client.get(url).json()
        seen += [r["id"] for r in page["results"]]
        url = path_of(page["next"]) if page["next"] else None
    assert sorted(seen) == sorted(im.pk for im in indexed_gallery if im.pk != target.pk)


def test_similar_of_pending_image_is_a_clear_4xx(client, redis, demo_images):
    im = services.add_image(demo_images[0][0], "pending.jpg", enqueue=False)
    assert_error(client.get(f"/api/images/{im.pk}/similar"), 409)
