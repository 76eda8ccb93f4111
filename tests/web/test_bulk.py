"""Bulk actions on chosen images (the search page's selection): POST /api/images/delete and
/api/images/reencode with {"ids": [...]}, staff or token; a session needs the CSRF token."""
import pytest
from django.test import Client

from embeddings.models import Image
from tests.support import assert_error

pytestmark = pytest.mark.django_db(transaction=True)


def post(client, path, ids, **headers):
    return client.post(path, {"ids": ids}, content_type="application/json", **headers)


def test_delete_and_reencode_many(client, indexed_gallery, auth):
    a, b, c = (im.pk for im in indexed_gallery[:3])
    resp = post(client, "/api/images/delete", [a, b, 999_999, a], **auth)
    assert resp.status_code == 200, resp.content
    assert resp.json() == {"done": sorted([a, b]), "missing": [999_999]}
    assert not Image.objects.filter(pk__in=[a, b]).exists()
    for pk in (a, b):
        assert client.get(f"/api/images/{pk}").status_code == 404
    ranked = [r["id"] for r in client.get("/api/search", {"q": "a red circle", "k": 50, "cutoff": "none"}).json()["results"]]
    assert ranked and not {a, b} & set(ranked)

    resp = post(client, "/api/images/reencode", [c, a], **auth)
    assert resp.status_code == 200 and resp.json() == {"done": [c], "missing": [a]}
    assert Image.objects.get(pk=c).status == Image.Status.PENDING


def test_bad_lists_and_no_rights(client, indexed_gallery, auth, staff_user):
    pk = indexed_gallery[0].pk
    assert_error(post(client, "/api/images/delete", [], **auth), 422)
    assert_error(post(client, "/api/images/delete", ["x"], **auth), 422)
    assert_error(post(client, "/api/images/delete", list(range(1, 1002)), **auth), 422)
    assert_error(post(client, "/api/images/reencode", [2**70], **auth), 422)
    assert_error(post(client, "/api/images/delete", [pk]), 401)  # no token, no login
    session = Client(enforce_csrf_checks=True)
    session.force_login(staff_user)
    assert 400 <= post(session, "/api/images/delete", [pk]).status_code < 500  # a session without the CSRF token
    assert Image.objects.filter(pk=pk).exists()
    session.get("/")
    resp = post(session, "/api/images/delete", [pk], HTTP_X_CSRFTOKEN=session.cookies["csrftoken"].value)
    assert resp.status_code == 200 and resp.json()["done"] == [pk]
