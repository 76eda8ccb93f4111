"""Albums through the JSON API on the real database, index and model: manual albums (create, add,
remove, order, rename, delete) and smart albums whose members are what their search passes now,
including a photo indexed after the album was made."""
from datetime import UTC, datetime

import pytest

from embeddings.models import Album, Image
from tests.support import assert_error, upload_and_ingest

pytestmark = pytest.mark.django_db(transaction=True)


def post(client, url, body, auth, status=None):
    resp = client.post(url, body, content_type="application/json", **auth)
    if status is not None:
        assert resp.status_code == status, resp.content[:400]
    return resp


def test_manual_album_lifecycle(client, auth, indexed_gallery):
    made = post(client, "/api/albums", {"name": "  Holidays  "}, auth, 201).json()
    assert made["name"] == "Holidays" and made["kind"] == "manual" and made["count"] == 0 and made["query"] is None
    url = f"/api/albums/{made['id']}"
    ids = [im.pk for im in indexed_gallery[:5]]
    added = post(client, f"{url}/images", {"ids": ids + [999_999]}, auth, 200).json()
    assert added == {"done": sorted(ids), "missing": [999_999]}
    post(client, f"{url}/images", {"ids": ids[:2]}, auth, 200)  # twice is harmless
    # order "taken": newest taken first, uploaded time where none is known
    Image.objects.filter(pk=ids[3]).update(taken_at=datetime(2030, 1, 1, tzinfo=UTC))
    body = client.get(url, {"k": 3}).json()
    assert body["count"] == 5 and body["results"][0]["id"] == ids[3] and len(body["results"]) == 3 and body["next"]
    rest = client.get(body["next"]).json()
    assert {r["id"] for r in body["results"] + rest["results"]} == set(ids)
    # order "added": the newest entry first
    post(client, f"{url}/images/remove", {"ids": [ids[0]]}, auth, 200)
    post(client, f"{url}/images", {"ids": [ids[0]]}, auth, 200)
    assert client.patch(url, {"order": "added", "name": "Rome"}, content_type="application/json", **auth).status_code == 200
    body = client.get(url).json()
    assert body["name"] == "Rome" and body["results"][0]["id"] == ids[0]
    removed = post(client, f"{url}/images/remove", {"ids": ids[:2] + [ids[0]]}, auth, 200).json()
    assert removed["done"] == sorted(ids[:2]) and client.get(url).json()["count"] == 3
    assert [a["id"] for a in client.get("/api/albums").json()] == [made["id"]]
    assert client.delete(url, **auth).status_code == 204
    assert Image.objects.filter(pk__in=ids).count() == 5  # deleting an album keeps its images
    assert_error(client.get(url), 404, "not_found")


def test_writes_need_staff_or_a_token_and_bad_input_is_4xx(client, auth, indexed_gallery):
    assert_error(client.post("/api/albums", {"name": "x"}, content_type="application/json"), 401)
    assert_error(post(client, "/api/albums", {"name": "   "}, auth), 422)
    assert_error(post(client, "/api/albums", {"name": "x", "query": {"q": "a", "nonsense": 1}}, auth), 422)
    assert_error(post(client, "/api/albums", {"name": "x", "query": {"taken_after": "9999-12-31T23:00:00-05:00"}}, auth), 422)
    smart = post(client, "/api/albums", {"name": "reds", "query": {"q": "a red shape"}}, auth, 201).json()
    assert_error(post(client, f"/api/albums/{smart['id']}/images", {"ids": [indexed_gallery[0].pk]}, auth), 409)
    assert_error(client.get("/api/albums/999999"), 404)
    assert_error(post(client, "/api/albums/999999/images", {"ids": [1]}, auth), 404)


def test_a_smart_album_holds_what_its_search_passes_now(client, auth, indexed_gallery, demo_images, redis):
    made = post(client, "/api/albums", {"name": "Circles", "query": {"q": "a circle", "cutoff": "none", "k": 3}}, auth)
    assert made.status_code == 422  # k is not a saved filter: pages are asked when reading
    made = post(client, "/api/albums", {"name": "Circles", "query": {"q": "a red circle"}}, auth, 201).json()
    assert made["kind"] == "smart" and made["query"] == {"q": "a red circle"}
    url = f"/api/albums/{made['id']}"
    body = client.get(url, {"k": 200}).json()
    search = client.get("/api/search", {"q": "a red circle", "k": 200}).json()
    assert [r["id"] for r in body["results"]] == [r["id"] for r in search["results"]] and body["count"] == search["passed"]
    # a photo indexed after the album was made shows up at the next read, no re-run of the album
    red_circles = [(d, m) for d, m in demo_images[24:] if m["colour"] == "red" and m["shape"] == "circle"][:1]
    [new] = upload_and_ingest(red_circles, redis)
    assert new.pk in {r["id"] for r in client.get(url, {"k": 200}).json()["results"]}
    # filters alone: a browse
    Image.objects.filter(pk=indexed_gallery[0].pk).update(camera_make="Canon", camera_model="EOS 5D")
    cams = post(client, "/api/albums", {"name": "Canon", "query": {"camera": "eos 5d"}}, auth, 201).json()
    assert [r["id"] for r in client.get(f"/api/albums/{cams['id']}").json()["results"]] == [indexed_gallery[0].pk]
    assert Album.objects.get(pk=cams["id"]).kind == "smart"
