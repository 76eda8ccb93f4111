"""Workers end to end: real `rqworker` processes on the real Redis and database share the work
exactly once, lose nothing when killed, and fail a broken image alone."""
import signal
import time

import pytest

from embeddings.jobs import ingest_pending
from embeddings.models import Embedding, Image
from embeddings.pipeline import ingest
from embeddings.queue import get_queue
from tests.support import add_pending, run_worker, start_worker_and_wait

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_two_workers_share_the_work_exactly_once(redis, demo_images, tmp_path, monkeypatch):
    add_pending(demo_images, 200)
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
    add_pending(demo_images, 120)
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


def test_one_bad_image_fails_alone(redis, demo_images):
    images = add_pending(demo_images, 5)
    victim = images[2]
    with open(victim.file.path, "wb") as f:
        f.write(b"\xff\xd8\xff broken")
    totals = ingest.ingest_pending(redis=redis)
    assert totals["indexed"] == 4 and totals["failed"] == 1
    victim.refresh_from_db()
    assert victim.status == "failed" and victim.failure_reason
