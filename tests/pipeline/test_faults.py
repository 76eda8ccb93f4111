"""Faults: each ends with every image indexed (or failed with a reason), none encoded twice,
and `check_index` clean. Real worker processes, Redis and database."""
import threading
import time

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from embeddings import services
from embeddings.jobs import ingest_pending
from embeddings.models import Embedding, Image
from embeddings.queue import get_queue
from tests.support import add_pending, run_worker, start_worker_and_wait

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def assert_all_indexed_once(n):
    assert Image.objects.filter(status="indexed").count() == n
    assert Embedding.objects.filter(model_name=settings.MODEL_KEY).count() == n
    call_command("check_index")  # exits non-zero (SystemExit) unless the index and database agree


def test_job_timeout_releases_its_claim(redis, tmp_path, monkeypatch):
    import io

    import numpy as np
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    # 32 noise PNGs of 6 MP in one claim: decoding them takes seconds on any machine (no JPEG
    # draft shortcut), so a 1 s job timeout fires mid-batch.
    for i in range(32):
        buf = io.BytesIO()
        PILImage.fromarray(rng.integers(0, 255, (2000, 3000, 3), dtype=np.uint8)).save(buf, "PNG", compress_level=1)
        services.add_image(buf.getvalue(), f"big{i}.png", enqueue=False)
    monkeypatch.setenv("CLIPSEARCH_INGEST_BATCH_SIZE", "64")
    job = get_queue().enqueue(ingest_pending, job_timeout=1)
    # The worker also queues a normal job at start (pending images): it re-encodes what the
    # timed-out job released.
    run_worker(tmp_path, "--burst")
    job.refresh()
    assert job.is_failed and "JobTimeoutException" in (job.latest_result().exc_string or "")
    assert not Image.objects.filter(status__in=["processing", "pending"]).exists()  # released, not stuck
    assert_all_indexed_once(32)
    assert set(Image.objects.values_list("attempts", flat=True)) == {2}  # claimed, released, encoded once


def test_database_connection_dropped_during_job(redis, demo_images, tmp_path, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("terminating a server connection needs PostgreSQL (CI runs it)")
    add_pending(demo_images, 120)
    get_queue().enqueue(ingest_pending)
    monkeypatch.setenv("CLIPSEARCH_INGEST_BATCH_SIZE", "4")
    monkeypatch.setenv("CLIPSEARCH_CLAIM_LEASE", "3")
    worker = start_worker_and_wait(tmp_path)
    with connection.cursor() as c:  # drop every other session on this database
        c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    time.sleep(1)
    get_queue().enqueue(ingest_pending)  # what RQ's retry would do, without waiting for its timer
    deadline = time.time() + 180
    while Image.objects.exclude(status="indexed").exists() and time.time() < deadline:
        time.sleep(0.5)
    worker.terminate()
    worker.wait(30)
    if Image.objects.exclude(status="indexed").exists():
        time.sleep(4)
        run_worker(tmp_path, "--burst")
    assert_all_indexed_once(120)
    assert max(Image.objects.values_list("attempts", flat=True)) <= 2


def test_same_file_uploaded_twice_at_once_gives_one_record(redis, demo_images):
    data = demo_images[0][0]
    results, barrier = [], threading.Barrier(2)

    def upload():
        barrier.wait()
        try:
            results.append(services.add_image(data, "same.jpg", enqueue=False).pk)
        except services.DuplicateImage as dup:
            results.append(("dup", dup.existing.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Image.objects.count() == 1
    pk = Image.objects.get().pk
    assert sorted(map(str, results)) == sorted([str(pk), str(("dup", pk))])


def _restart_redis(redis):
    """Restart the Redis the app uses, losing its data (no persistence), as a crash would."""
    import subprocess

    from django.conf import settings as dj

    from clipsearch import embedded_redis

    if dj.REDIS_EMBEDDED:
        embedded_redis.stop(dj.DATA_DIR)
        embedded_redis.start(dj.DATA_DIR)
        return
    kw = redis.connection_pool.connection_kwargs
    if kw.get("host") not in ("127.0.0.1", "localhost") or kw.get("port") != 6379:
        pytest.skip("restarts only a local Redis on 6379")
    subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], capture_output=True)
    subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
                    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"], check=True)
    for _ in range(50):
        try:
            if redis.ping():
                return
        except Exception:
            time.sleep(0.1)


def test_redis_restarted_during_ingest(redis, demo_images, tmp_path, monkeypatch):
    add_pending(demo_images, 200)
    get_queue().enqueue(ingest_pending)
    monkeypatch.setenv("CLIPSEARCH_INGEST_BATCH_SIZE", "8")
    monkeypatch.setenv("CLIPSEARCH_CLAIM_LEASE", "3")
    worker = start_worker_and_wait(tmp_path, at_least=16)
    try:
        _restart_redis(redis)
        # The worker either reconnects and finishes, or loses its connection and stops.
        deadline = time.time() + 120
        while Image.objects.exclude(status="indexed").exists() and worker.poll() is None and time.time() < deadline:
            time.sleep(0.5)
        worker.terminate()
        worker.wait(60)
        time.sleep(4)  # leases of the old Redis are gone anyway
        run_worker(tmp_path, "--burst")  # a fresh worker sweeps what was left
    finally:
        if worker.poll() is None:
            worker.kill()
    assert_all_indexed_once(200)
    assert max(Image.objects.values_list("attempts", flat=True)) <= 2
