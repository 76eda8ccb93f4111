"""Several hosts tested together: two web "hosts" (gunicorn, each with its own data folder and so
its own index file) and a worker "host" (its own data folder), sharing the database, Redis and an
S3 bucket (a real S3 API server on 127.0.0.1). What one host adds or deletes, the other's searches
see within 2 s; killing one host's web processes changes nothing for the other. And a worker that
cannot see a library's folder refuses with a reason that names its host, removing nothing."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from django.conf import settings as django_settings

from embeddings import services
from embeddings.library import libraries
from embeddings.models import Image
from tests.support import ROOT, db_env, make_staff, make_token, run_worker

pytestmark = pytest.mark.django_db(transaction=True)
SEEN_WITHIN = 2.0  # seconds, spec section 8 and 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Host:
    """Processes with a data folder of their own, on the shared database, Redis and bucket."""

    def __init__(self, tmp_path, name, argv):
        self.data = tmp_path / name
        self.data.mkdir()
        env = {**db_env(tmp_path), "REDIS_URL": django_settings.REDIS_URL, "CLIPSEARCH_DATA_DIR": str(self.data),
               "CLIPSEARCH_SEARCH_RATE": "0", "CLIPSEARCH_LIBRARY_SCAN_MINUTES": "0"}
        for key in ("CLIPSEARCH_MEDIA_ROOT", "CLIPSEARCH_INDEX_DIR"):
            env.pop(key)  # each host's own, under its data folder
        self.log = open(self.data / "log.txt", "w+")
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def output(self) -> str:
        return (self.data / "log.txt").read_text()[-4000:]

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


class WebHost(Host):
    def __init__(self, tmp_path, name):
        self.port = free_port()
        super().__init__(tmp_path, name, [sys.executable, "-m", "gunicorn", "clipsearch.wsgi", "-b",
                                          f"127.0.0.1:{self.port}", "-w", "2", "--timeout", "60"])
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 120
        while time.time() < deadline and self.proc.poll() is None:
            try:
                if requests.get(f"{self.url}/api/status", timeout=10).ok:
                    return
            except requests.RequestException:
                time.sleep(0.3)
        raise AssertionError(f"{name} did not start: {self.output()}")

    def found(self, image_id) -> bool:
        body = requests.get(f"{self.url}/api/search", params={"q": "a red circle", "k": 200, "cutoff": "none"},
                            timeout=10).json()
        return image_id in {r["id"] for r in body["results"]}


def seconds_until(check, limit=30.0) -> float:
    """Seconds from now until the start of the first `check` that passes: the answer it got was
    the state at that moment (a slow answer on a loaded machine is not the app being late)."""
    started = time.monotonic()
    while True:
        asked = time.monotonic()
        if check():
            return asked - started
        assert asked - started < limit, f"not within {limit} s"
        time.sleep(0.05)


def test_two_web_hosts_and_a_worker_host_share_database_redis_and_bucket(tmp_path, redis, s3_media, demo_images):
    token = make_token(make_staff().username)
    auth = {"Authorization": f"Bearer {token}"}
    hosts = []
    try:
        a, b = WebHost(tmp_path, "host-a"), WebHost(tmp_path, "host-b")
        hosts += [a, b]
        w = Host(tmp_path, "host-w", [sys.executable, "manage.py", "rqworker", django_settings.RQ_QUEUE])
        hosts.append(w)

        def upload(host, i):
            resp = requests.post(f"{host.url}/api/images", headers=auth, timeout=60,
                                 files=[("files", (f"h{i}.jpg", demo_images[i][0] + bytes([i]), "image/jpeg"))])
            assert resp.status_code == 201, resp.text
            pk = resp.json()["images"][0]["id"]
            seconds_until(lambda: Image.objects.get(pk=pk).status == "indexed", 120)
            return pk

        first = upload(a, 0)  # through host A, encoded by the worker host
        took = seconds_until(lambda: b.found(first))
        assert took <= SEEN_WITHIN, f"host B saw host A's upload after {took:.2f} s"
        assert a.found(first)
        thumb = requests.get(f"{b.url}/api/images/{first}", timeout=10).json()["thumbnail_url"]
        served = requests.get(thumb.replace("http://testserver", b.url), timeout=10)
        assert served.status_code == 200 and served.headers["X-Content-Type-Options"] == "nosniff"

        second = upload(a, 1)
        assert requests.delete(f"{b.url}/api/images/{second}", headers=auth, timeout=30).status_code in (200, 204)
        took = seconds_until(lambda: not a.found(second))
        assert took <= SEEN_WITHIN, f"host A still found host B's deletion after {took:.2f} s"

        a.kill()  # host A's web processes die; host B goes on as before
        assert b.found(first)
        third = upload(b, 2)
        assert seconds_until(lambda: b.found(third)) <= SEEN_WITHIN
        assert w.proc.poll() is None, w.output()
        # Each web host keeps an index file of its own, under its own data folder.
        assert (b.data / "index").is_dir() and not (b.data / "media").exists()
    finally:
        for host in hosts:
            host.kill(signal.SIGTERM)


def test_a_worker_that_cannot_see_a_library_refuses_and_removes_nothing(tmp_path, redis, demo_images):
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(3):
        (root / f"p{i}.jpg").write_bytes(demo_images[i][0])
    library = libraries.add_library(str(root), name="photos")
    libraries.run_scan(library)
    assert Image.objects.filter(library=library).count() == 3
    os.rename(root, tmp_path / "elsewhere")  # not mounted on this worker host

    out = run_worker(tmp_path, "--burst")
    host = socket.gethostname()
    reasons = set(Image.objects.filter(library=library).values_list("failure_reason", flat=True))
    assert len(reasons) == 1 and f"not visible on this host ({host})" in reasons.pop(), out[-3000:]

    from embeddings.queue import enqueue_scan

    assert enqueue_scan(library.pk)
    run_worker(tmp_path, "--burst")
    library.refresh_from_db()
    assert library.state == "refused" and host in library.message and "nothing was removed" in library.message
    assert Image.objects.filter(library=library).count() == 3  # nothing marked removed
    shutil.move(tmp_path / "elsewhere", root)
    services.reencode_images(Image.objects.filter(library=library))
    run_worker(tmp_path, "--burst")
    assert set(Image.objects.filter(library=library).values_list("status", flat=True)) == {"indexed"}
