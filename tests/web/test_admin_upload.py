"""Uploading through the admin: many files at once, encoded by a real worker; duplicates linked
to the stored image; awkward files rejected with their reasons."""
import os

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from embeddings.models import Embedding, Image
from embeddings.pipeline import ingest
from tests.bad_inputs import corpus
from tests.support import run_worker

pytestmark = pytest.mark.django_db(transaction=True)
CORPUS = corpus()
KEEP = {n for n, (_, e) in CORPUS.items() if e == "indexed"}


@pytest.mark.slow
def test_admin_upload_then_worker_indexes_all(staff_client, redis, demo_images, tmp_path):
    files = [SimpleUploadedFile(f"shape {i}.jpg", data, "image/jpeg") for i, (data, _) in enumerate(demo_images[:50])]
    resp = staff_client.post("/admin/embeddings/image/add/", {"files": files}, follow=True)
    assert resp.status_code == 200
    assert Image.objects.count() == 50
    assert Image.objects.filter(status="pending").count() == 50
    assert redis.llen("rq:queue:embeddings") >= 1  # enqueued after the commit

    run_worker(tmp_path, "--burst")

    assert Image.objects.filter(status="indexed").count() == 50
    assert Embedding.objects.filter(model_name=settings.MODEL_KEY).count() == 50
    for im in Image.objects.all():
        assert im.thumbnail and os.path.exists(im.thumbnail.path)
        assert im.original_filename.startswith("shape ")
        assert im.file.name != im.original_filename  # stored under a generated name
    api = staff_client.get("/api/status").json()
    assert api["counts"]["indexed"] == 50 and api["counts"]["pending"] == 0
    assert api["embedded_with_current_model"] == 50 and api["index"]["size"] == 50
    page = staff_client.get("/status/")
    assert b"Indexed" in page.content and b">50<" in page.content
    hits = staff_client.get("/api/search", {"q": "a red circle", "k": 5, "cutoff": "none"}).json()["results"]
    assert len(hits) == 5


@pytest.mark.slow
def test_admin_links_a_duplicate_to_the_stored_image(staff_client, redis, demo_images):
    data = demo_images[0][0]
    staff_client.post("/admin/embeddings/image/add/", {"files": [SimpleUploadedFile("a.jpg", data)]})
    resp = staff_client.post("/admin/embeddings/image/add/", {"files": [SimpleUploadedFile("again.jpg", data)]},
                             follow=True)
    text = resp.content.decode().lower()  # the admin capitalises messages
    existing = Image.objects.get()
    assert f"/admin/embeddings/image/{existing.pk}/change/" in text, text[text.find("messagelist"):][:800]
    assert Image.objects.count() == 1


def check_stored_and_encoded(redis):
    ingest.ingest_pending(redis=redis)
    stored = {im.original_filename: im for im in Image.objects.all()}
    assert len(stored) == len(KEEP)
    for im in stored.values():
        assert im.status == "indexed", (im.original_filename, im.failure_reason)
        assert "/" not in im.original_filename and "\\" not in im.original_filename
        assert im.original_filename not in im.file.name  # stored under a generated name
    rotated = stored["exif-rotated.jpg"]
    assert (rotated.width, rotated.height) == (64, 96)  # shown upright: EXIF applied


def test_admin_rejects_awkward_files_with_reasons(staff_client, redis):
    """Each file of tests/bad_inputs.py through the upload form: the bad ones named with the reason
    they were rejected, the odd but valid ones stored under generated names and encoded."""
    files = [SimpleUploadedFile(name, data) for name, (data, _) in CORPUS.items()]
    resp = staff_client.post("/admin/embeddings/image/add/", {"files": files}, follow=True)
    assert resp.status_code == 200
    text = resp.content.decode().lower()
    for name, (_, expected) in CORPUS.items():
        if expected == "rejected":
            assert f"{name}: rejected:".lower() in text, name
    check_stored_and_encoded(redis)
