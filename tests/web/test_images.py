"""Images through the JSON API: upload (many at once, duplicates reported), their facts, deletion."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from demo.synth import demo_filename
from embeddings.models import Image
from embeddings.pipeline import ingest
from tests.support import assert_error, path_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_upload_many_then_facts_and_duplicates(client, redis, demo_images, auth):
    files = [SimpleUploadedFile(demo_filename(i, m), d, "image/jpeg") for i, (d, m) in enumerate(demo_images[:3])]
    resp = client.post("/api/images", {"files": files}, **auth)
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["duplicates"] == [] and body["rejected"] == []
    assert [i["original_filename"] for i in body["images"]] == [f.name for f in files]
    assert all(i["status"] == "pending" for i in body["images"])
    ids = [i["id"] for i in body["images"]]
    assert Image.objects.filter(pk__in=ids).count() == 3
    assert redis.llen("rq:queue:embeddings") >= 1  # encoding was scheduled

    facts = client.get(f"/api/images/{ids[0]}")
    assert facts.status_code == 200
    f = facts.json()
    assert f["id"] == ids[0] and f["status"] == "pending" and f["format"] == "JPEG"
    assert f["original_filename"] == files[0].name and f["width"] == 224 and f["height"] == 224
    assert f["byte_size"] == len(demo_images[0][0]) and len(f["sha256"]) == 64 and f["indexed_at"] is None
    assert f["uploaded_at"] and f["failure_reason"] == ""
    assert client.get(path_of(f["thumbnail_url"])).status_code == 200

    # The exact same bytes again, under another name: 409 naming the stored image.
    dup = client.post("/api/images", {"files": [SimpleUploadedFile("again.jpg", demo_images[0][0])]}, **auth)
    err = assert_error(dup, 409, "duplicate")
    assert err["existing_id"] == ids[0]
    # A new file with a duplicate: 201, the duplicate reported beside it.
    mixed = client.post("/api/images", {"files": [SimpleUploadedFile("again.jpg", demo_images[1][0]),
                                                  SimpleUploadedFile("new.jpg", demo_images[5][0])]}, **auth)
    assert mixed.status_code == 201, mixed.content
    assert [d["existing_id"] for d in mixed.json()["duplicates"]] == [ids[1]]
    assert [i["original_filename"] for i in mixed.json()["images"]] == ["new.jpg"]
    assert Image.objects.count() == 4

    ingest.ingest_pending(redis=redis)
    f = client.get(f"/api/images/{ids[0]}").json()
    assert f["status"] == "indexed" and f["indexed_at"]


def test_upload_keeps_hostile_names_as_data_only(client, redis, demo_images, auth):
    resp = client.post("/api/images", {"files": [SimpleUploadedFile("../../etc/passwd.jpg", demo_images[0][0])]}, **auth)
    assert resp.status_code == 201, resp.content
    im = Image.objects.get()
    assert im.original_filename == "passwd.jpg"
    assert ".." not in im.file.name and im.file.name.startswith("images/")


def test_delete_image(client, indexed_gallery, auth):
    victim = client.get("/api/search", {"q": "a red circle", "k": 1}).json()["results"][0]["id"]
    resp = client.delete(f"/api/images/{victim}", **auth)
    assert resp.status_code == 204, resp.content
    assert_error(client.get(f"/api/images/{victim}"), 404, "not_found")
    assert_error(client.get(f"/api/images/{victim}/similar"), 404, "not_found")
    assert_error(client.delete(f"/api/images/{victim}", **auth), 404, "not_found")
    results = client.get("/api/search", {"q": "a red circle", "k": 50, "cutoff": "none"}).json()["results"]
    assert victim not in [r["id"] for r in results] and len(results) == len(indexed_gallery) - 1
