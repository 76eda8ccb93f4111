"""Ingest end to end: real uploads, the real `rqworker` process, the real Redis and database."""
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from embeddings import selectors, services
from embeddings.clip_config import MODEL_KEY
from embeddings.index import get_index
from embeddings.models import Embedding, Image
from tests.conftest import run_worker, start_worker_and_wait

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user("staff", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def add_all(images):
    return [services.add_image(data, f"img-{i}.jpg", enqueue=False) for i, (data, _) in enumerate(images)]


def test_admin_upload_then_worker_indexes_all(staff_client, redis, demo_images, tmp_path):
    files = [SimpleUploadedFile(f"shape {i}.jpg", data, "image/jpeg") for i, (data, _) in enumerate(demo_images[:50])]
    resp = staff_client.post("/admin/embeddings/image/add/", {"files": files}, follow=True)
    assert resp.status_code == 200
    assert Image.objects.count() == 50
    assert Image.objects.filter(status="pending").count() == 50
    assert redis.llen("rq:queue:embeddings") >= 1  # enqueued after the commit

    run_worker(tmp_path, "--burst")

    assert Image.objects.filter(status="indexed").count() == 50
    assert Embedding.objects.filter(model_name=MODEL_KEY).count() == 50
    for im in Image.objects.all():
        assert im.thumbnail and os.path.exists(im.thumbnail.path)
        assert im.original_filename.startswith("shape ")
        assert im.file.name != im.original_filename  # stored under a generated name
    api = staff_client.get("/api/status").json()
    assert api["counts"]["indexed"] == 50 and api["counts"]["pending"] == 0
    assert api["embedded_with_current_model"] == 50 and api["index"]["size"] == 50
    page = staff_client.get("/status/")
    assert b"Indexed" in page.content and b">50<" in page.content
    hits = staff_client.get("/api/search", {"q": "a red circle", "k": 5}).json()["results"]
    assert len(hits) == 5


def test_admin_rejects_duplicates_and_non_images(staff_client, redis, demo_images):
    data = demo_images[0][0]
    staff_client.post("/admin/embeddings/image/add/", {"files": [SimpleUploadedFile("a.jpg", data)]})
    resp = staff_client.post("/admin/embeddings/image/add/", {"files": [
        SimpleUploadedFile("again.jpg", data), SimpleUploadedFile("page.png", b"<html><body>hi</body></html>")]}, follow=True)
    text = resp.content.decode().lower()  # the admin capitalises messages
    existing = Image.objects.get()
    assert f"/admin/embeddings/image/{existing.pk}/change/" in text  # the duplicate links the stored image
    assert "page.png: rejected" in text, text[text.find("messagelist"):][:800]
    assert Image.objects.count() == 1


def test_index_folder_is_resumable(redis, demo_images, tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for i, (data, _) in enumerate(demo_images[:6]):
        (folder / ("sub" if i % 2 else "") / f"{i}.jpg").write_bytes(data)
    (folder / "notes.jpg").write_text("not an image")
    call_command("index_folder", str(folder))
    assert Image.objects.count() == 3
    call_command("index_folder", str(folder), "--recursive")
    assert Image.objects.count() == 6
    assert Image.objects.filter(original_filename="notes.jpg").count() == 0


def test_two_workers_share_the_work_exactly_once(redis, demo_images, tmp_path, monkeypatch):
    for i in range(200):
        data, _ = demo_images[i % len(demo_images)]
        # Make each file unique (different sha256) without changing the picture much.
        services.add_image(data + bytes([i % 256, i // 256]), f"{i}.jpg", enqueue=False)
    from embeddings.jobs import get_queue, ingest_pending

    for _ in range(2):
        get_queue().enqueue(ingest_pending)
    monkeypatch.setenv("CLIPSEARCH_INGEST_BATCH_SIZE", "8")
    workers = [run_worker(tmp_path, "--burst", wait=False) for _ in range(2)]
    outs = [w.communicate(timeout=300)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outs
    assert Image.objects.filter(status="indexed").count() == 200
    assert Embedding.objects.count() == 200
    assert set(Image.objects.values_list("attempts", flat=True)) == {1}  # each claimed and encoded once


def test_sigkilled_worker_loses_nothing(redis, demo_images, tmp_path, monkeypatch):
    for i in range(120):
        data, _ = demo_images[i % len(demo_images)]
        services.add_image(data + bytes([i]), f"{i}.jpg", enqueue=False)
    from embeddings.jobs import get_queue, ingest_pending

    get_queue().enqueue(ingest_pending)
    monkeypatch.setenv("CLIPSEARCH_INGEST_BATCH_SIZE", "4")
    monkeypatch.setenv("CLIPSEARCH_CLAIM_LEASE", "3")
    worker = start_worker_and_wait(tmp_path)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    left = Image.objects.exclude(status="indexed").count()
    assert left > 0, "the worker finished before it could be killed"
    time.sleep(4)  # the dead worker's lease expires
    run_worker(tmp_path, "--burst")
    assert Image.objects.filter(status="indexed").count() == 120
    assert Embedding.objects.count() == 120
    assert max(Image.objects.values_list("attempts", flat=True)) <= 2


def _ingest_in_process(redis):
    return services.ingest_pending(redis=redis)


def test_deleted_image_leaves_loaded_index(redis, demo_images, settings):
    settings.INDEX_REFRESH_SECONDS = 0.05
    images = add_all(demo_images[:12])
    _ingest_in_process(redis)
    vec = selectors.query_vector("a red circle")
    first = selectors.search(vec, k=12).hits
    assert len(first) == 12
    victim = first[0].image
    services.delete_images([victim])
    time.sleep(0.1)
    index = get_index(MODEL_KEY, len(vec))
    again = selectors.search(vec, k=12).hits
    assert victim.pk not in [h.image.pk for h in again]
    assert victim.pk not in index.ids  # gone from the loaded index itself, not only filtered
    assert len(again) == 11


def test_damaged_index_file_is_rebuilt(redis, demo_images, settings):
    settings.INDEX_REFRESH_SECONDS = 0.05
    add_all(demo_images[:10])
    _ingest_in_process(redis)
    vec = selectors.query_vector("a blue square")
    expected = [(h.image.pk, round(h.score, 4)) for h in selectors.search(vec, k=5).hits]
    index = get_index(MODEL_KEY, len(vec))
    index.save()
    index.path.write_bytes(b"garbage" * 100)
    from embeddings.index import reset_indexes

    reset_indexes()  # a new process starts from the damaged file
    got = [(h.image.pk, round(h.score, 4)) for h in selectors.search(vec, k=5).hits]
    assert got == expected
    fresh = get_index(MODEL_KEY, len(vec))
    assert fresh.load() and len(fresh.ids) == 10  # the file was rewritten whole


def test_check_index_finds_and_fixes(redis, demo_images, settings):
    add_all(demo_images[:8])
    _ingest_in_process(redis)
    call_command("check_index")  # agrees: exits normally
    Embedding.objects.filter(image=Image.objects.first()).delete()
    with pytest.raises(SystemExit) as exc:
        call_command("check_index")
    assert exc.value.code == 1
    call_command("check_index", "--fix")
    _ingest_in_process(redis)
    call_command("check_index")


def test_one_bad_image_fails_alone(redis, demo_images):
    images = add_all(demo_images[:5])
    victim = images[2]
    with open(victim.file.path, "wb") as f:
        f.write(b"\xff\xd8\xff broken")
    totals = _ingest_in_process(redis)
    assert totals["indexed"] == 4 and totals["failed"] == 1
    victim.refresh_from_db()
    assert victim.status == "failed" and victim.failure_reason
