"""Plain helpers shared by the tests (fixtures live in tests/conftest.py).

Import from here, never from a conftest: `from tests.support import ROOT, make_staff`.
"""
import io
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent

STAFF_USERNAME = "staff"
STAFF_PASSWORD = "a-long-password"  # long enough for the admin's password validators


# ---- subprocesses on this test's database -----------------------------------------------------
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
    proc = subprocess.Popen(cmd, cwd=ROOT, env=db_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kw)
    if wait:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
        return out
    return proc


def start_worker_and_wait(tmp_path, at_least=1, timeout=120):
    """A long-running worker, returned once it has indexed `at_least` images (to kill it mid-run)."""
    from embeddings.models import Image

    worker = run_worker(tmp_path, wait=False)
    deadline = time.time() + timeout
    while Image.objects.filter(status="indexed").count() < at_least and time.time() < deadline:
        time.sleep(0.05)
    return worker


# ---- images -----------------------------------------------------------------------------------
def jpeg_bytes(img, quality=90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def upload_and_ingest(images, redis, name=None):
    """Store (jpeg bytes, meta) demo pairs under their demo file names (or `name(i, meta)`) and
    encode them in-process. Returns the Image rows in gallery order (row i is image i)."""
    from demo.synth import demo_filename
    from embeddings import services
    from embeddings.pipeline import ingest

    name = name or demo_filename
    rows = [services.add_image(data, name(i, meta), enqueue=False) for i, (data, meta) in enumerate(images)]
    totals = ingest.ingest_pending(redis=redis)
    assert totals["indexed"] == len(rows) and totals["failed"] == 0, totals
    return rows


def add_pending(demo_images, n):
    """`n` distinct images stored and waiting to be encoded (none encoded here); the Image rows.

    Past the gallery's end the pictures repeat, each made a distinct file (its own sha256) by two
    bytes appended after the JPEG's end, which decoders ignore."""
    from embeddings import services

    return [services.add_image(demo_images[i % len(demo_images)][0] + i.to_bytes(2, "big"), f"{i}.jpg", enqueue=False)
            for i in range(n)]


# ---- users and tokens -------------------------------------------------------------------------
def make_staff(username=STAFF_USERNAME, password=STAFF_PASSWORD):
    """The one way the tests make a staff user (a superuser, so the admin shows everything)."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username, password=password, is_staff=True, is_superuser=True)


def make_token(username) -> str:
    """A new API token for `username`, made as an operator would: with `create_api_token`."""
    from django.core.management import call_command

    out = io.StringIO()
    call_command("create_api_token", username, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip().splitlines()[-1]


# ---- API answers ------------------------------------------------------------------------------
RESULT_FIELDS = {"id", "score", "image_url", "thumbnail_url", "detail_url", "width", "height",
                 "original_filename", "uploaded_at", "taken_at", "camera", "library", "path", "matched"}
LIST_FIELDS = {"query", "model", "took_ms", "results", "next", "passed", "interpreted"}


def assert_error(resp, status=None, code=None):
    """A 4xx answer in the API's error envelope {"error": {"code", "message", ...}}; returns the error."""
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.content[:500])
    if status is not None:
        assert resp.status_code == status, (resp.status_code, resp.content[:500])
    body = resp.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def assert_result_list(body, k=None):
    """A result list as documented: its fields, absolute URLs, scores in [-1, 1] best first."""
    assert set(body) == LIST_FIELDS, body.keys()
    assert isinstance(body["model"], str) and body["model"]
    assert isinstance(body["took_ms"], (int, float)) and body["took_ms"] >= 0
    for r in body["results"]:
        assert set(r) == RESULT_FIELDS, r.keys()
        assert isinstance(r["id"], int) and isinstance(r["score"], float)
        assert r["matched"] and set(r["matched"]) <= {"meaning", "text", "name"}, r["matched"]
        assert -1.0001 <= r["score"] <= 1.0001
        for key in ("image_url", "thumbnail_url", "detail_url"):
            assert r[key].startswith("http://testserver/"), r[key]
        assert r["detail_url"].endswith(f"/images/{r['id']}/")
        assert r["width"] > 0 and r["height"] > 0
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True), scores  # best first
    if k is not None:
        assert len(body["results"]) <= k
    return body["results"]


def path_of(url):
    """The path and query of an absolute URL, for the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def running_processes() -> dict[int, int]:
    """pid -> process group of every process that has not exited (a zombie only waits to be reaped)."""
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                out[int(entry.name)] = int(fields[2])
    return out


def query_plan(queryset, postgres_off: str) -> str:
    """The database's plan for a queryset, as text: PostgreSQL with `postgres_off` (a planner setting
    such as "enable_sort") turned off, so that a small test table shows the plan a large one gets;
    SQLite's EXPLAIN QUERY PLAN as it is."""
    from django.db import connection

    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            return "\n".join(str(r[-1]) for r in cursor.fetchall())
        cursor.execute(f"SET {postgres_off} = off")
        try:
            cursor.execute("EXPLAIN " + sql, params)
            return "\n".join(r[0] for r in cursor.fetchall())
        finally:
            cursor.execute(f"RESET {postgres_off}")
