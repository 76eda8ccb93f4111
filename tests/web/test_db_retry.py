"""A read whose database session is killed while it is being served (`pg_terminate_backend`, as
an operator's restart or a failover does) is answered again once on a new connection: no 503 for
the API, no 500 for a page. A write is never repeated: it still answers 503 with Retry-After.
PostgreSQL only: SQLite has no server session to kill."""
import psycopg
import pytest
from django.db import connection

from embeddings.search import selectors

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql", reason="needs a database server session to kill")]


def kill_my_session_once(monkeypatch):
    """selectors.status, but the first call first has this process's database session terminated
    by another session, after a query on it (so the request's health check has passed)."""
    real, calls = selectors.status, []

    def dying(*args, **kwargs):
        if not calls:
            calls.append(1)
            with connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                pid = cur.fetchone()[0]
            s = connection.settings_dict
            with psycopg.connect(host=s["HOST"], port=s["PORT"], user=s["USER"], dbname=s["NAME"],
                                 password=s["PASSWORD"] or None, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", [pid])
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
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        s = connection.settings_dict
        with psycopg.connect(host=s["HOST"], port=s["PORT"], user=s["USER"], dbname=s["NAME"], autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
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
