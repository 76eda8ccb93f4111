"""A read whose database session is killed while it is being served (`pg_terminate_backend`, as
an operator's restart or a failover does) is answered again once on a new connection: no 503 for
the API, no 500 for a page. An upload is answered again too (images are known by their bytes);
any other write is never repeated: it answers 503 with Retry-After.
PostgreSQL only: SQLite has no server session to kill."""
import psycopg
import pytest
from django.db import connection

from embeddings.search import selectors

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a database server session to kill")]


def terminate(conn) -> None:
    """Have another session terminate `conn`'s database session (as pg_terminate_backend by an operator)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    s = conn.settings_dict
    with psycopg.connect(host=s["HOST"], port=s["PORT"], user=s["USER"], dbname=s["NAME"],
                         password=s["PASSWORD"] or None, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def kill_my_session_once(monkeypatch):
    """selectors.status, but the first call first has this process's database session terminated
    by another session, after a query on it (so the request's health check has passed)."""
    real, calls = selectors.status, []

    def dying(*args, **kwargs):
        if not calls:
            calls.append(1)
            terminate(connection)
        return real(*args, **kwargs)

    monkeypatch.setattr(selectors, "status", dying)
    return calls


def test_api_read_is_answered_on_a_new_connection(client, redis, monkeypatch):
    calls = kill_my_session_once(monkeypatch)
    resp = client.get("/api/status")
    assert calls == [1]
    assert resp.status_code == 200, resp.content
    assert resp.json()["model"]


def test_page_read_is_answered_on_a_new_connection(client, redis, monkeypatch):
    calls = kill_my_session_once(monkeypatch)
    resp = client.get("/status/")
    assert calls == [1]
    assert resp.status_code == 200, resp.content[:500]


def test_a_write_is_not_repeated(client, redis, monkeypatch, auth, demo_images):
    from embeddings import services

    image = services.add_image(demo_images[0][0], "a.jpg", enqueue=False)

    def dying_delete(images):
        terminate(connection)
        calls.append(1)
        with connection.cursor() as cur:
            cur.execute("SELECT 1")

    calls = []
    monkeypatch.setattr(services, "delete_images", dying_delete)
    resp = client.post("/api/images/delete", {"ids": [image.pk]}, content_type="application/json", **auth)
    assert resp.status_code == 503, resp.content  # answered once, never a 500
    assert resp["Retry-After"] == "2" and resp.json()["error"]["code"] == "unavailable"
    assert calls == [1]
    connection.close()  # the test client keeps the dead connection (Django closes it after a real request)


def test_an_upload_is_answered_again_and_stores_each_image_once(client, redis, monkeypatch, auth, demo_images):
    """An upload is safe to run again: the image the first try stored is a duplicate of itself."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from embeddings import services
    from embeddings.models import Image

    real, calls = services.add_image, []

    def dying_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the first image is stored; the session dies before the second
            terminate(connection)
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "add_image", dying_second)
    files = [SimpleUploadedFile("one.jpg", demo_images[0][0]), SimpleUploadedFile("two.jpg", demo_images[1][0])]
    resp = client.post("/api/images", {"files": files}, **auth)
    assert resp.status_code == 201, resp.content
    body = resp.json()
    first = Image.objects.get(original_filename="one.jpg")
    assert [i["original_filename"] for i in body["images"]] == ["two.jpg"]
    assert [d["existing_id"] for d in body["duplicates"]] == [first.pk]
    assert Image.objects.count() == 2 and len(calls) == 4  # two tries of two files
