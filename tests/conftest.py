"""Shared fixtures. Tests talk to the real Redis (REDIS_URL, or the embedded one started here),
the real database (PostgreSQL in CI through DATABASE_URL, else SQLite) and real workers."""
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_server():
    """The Redis the app uses: the configured one, or the embedded one under the data folder."""
    from clipsearch import embedded_redis

    if settings.REDIS_EMBEDDED:
        embedded_redis.start(settings.DATA_DIR)
    import django_rq

    conn = django_rq.get_connection(settings.RQ_QUEUE)
    conn.ping()
    yield conn


@pytest.fixture
def redis(redis_server):
    redis_server.flushdb()
    yield redis_server
    redis_server.flushdb()


@pytest.fixture(autouse=True)
def _isolated_files(settings, tmp_path):
    """Each test gets its own media and index folders and a fresh in-memory index."""
    from embeddings.index import reset_indexes

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.INDEX_DIR = tmp_path / "index"
    reset_indexes()
    yield
    reset_indexes()


def db_env(tmp_path) -> dict:
    """Environment for a subprocess (worker, command) that must use this test's database."""
    from django.db import connection

    env = dict(os.environ)
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        env["DATABASE_URL"] = f"sqlite:///{s['NAME']}"
    else:
        env["DATABASE_URL"] = f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
    env["CLIPSEARCH_MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    env["CLIPSEARCH_INDEX_DIR"] = str(settings.INDEX_DIR)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_worker(tmp_path, *extra, wait=True, **kw):
    """A real `manage.py rqworker embeddings` process on this test's database and Redis."""
    cmd = [sys.executable, "manage.py", "rqworker", settings.RQ_QUEUE, *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=db_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if wait:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
        return out
    return proc


def start_worker_and_wait(tmp_path, at_least=1, timeout=120):
    """A long-running worker, returned once it has indexed `at_least` images (to kill it mid-run)."""
    import time

    from embeddings.models import Image

    worker = run_worker(tmp_path, wait=False)
    deadline = time.time() + timeout
    while Image.objects.filter(status="indexed").count() < at_least and time.time() < deadline:
        time.sleep(0.05)
    return worker


def jpeg_bytes(img, quality=90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="session")
def demo_images():
    """A small drawn gallery: (jpeg bytes, meta) pairs."""
    from embeddings.synth import gallery

    return [(jpeg_bytes(img), meta) for img, meta in gallery(96, seed=777)]
