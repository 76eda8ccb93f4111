"""CSRF: a logged-in session writes (API upload and delete, the admin's upload form) only with the
CSRF token; a request with an API token needs none."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from embeddings.models import Image
from tests.support import make_token

pytestmark = pytest.mark.django_db(transaction=True)


def test_session_writes_need_csrf(redis, demo_images, indexed_gallery, staff_user):
    c = Client(enforce_csrf_checks=True)
    c.force_login(staff_user)
    data = demo_images[41][0]
    resp = c.post("/api/images", {"files": [SimpleUploadedFile("a.jpg", data)]})
    assert 400 <= resp.status_code < 500, resp.status_code
    resp = c.delete(f"/api/images/{indexed_gallery[0].pk}")
    assert 400 <= resp.status_code < 500, resp.status_code
    assert Image.objects.count() == len(indexed_gallery)
    # With the CSRF token from the page's cookie, the same session may write.
    c.get("/")
    csrf = c.cookies["csrftoken"].value
    resp = c.post("/api/images", {"files": [SimpleUploadedFile("a.jpg", data)]}, HTTP_X_CSRFTOKEN=csrf)
    assert resp.status_code == 201, resp.content
    resp = c.delete(f"/api/images/{indexed_gallery[0].pk}", HTTP_X_CSRFTOKEN=csrf)
    assert resp.status_code == 204, resp.content
    # A token needs no CSRF token even from a client that enforces it.
    t = Client(enforce_csrf_checks=True)
    resp = t.delete(f"/api/images/{indexed_gallery[1].pk}", HTTP_AUTHORIZATION=f"Bearer {make_token(staff_user.username)}")
    assert resp.status_code == 204, resp.content


def test_admin_upload_needs_csrf_token(redis, demo_images, staff_user):
    c = Client(enforce_csrf_checks=True)
    c.force_login(staff_user)
    resp = c.post("/admin/embeddings/image/add/", {"files": [SimpleUploadedFile("a.jpg", demo_images[0][0])]})
    assert resp.status_code == 403
    assert Image.objects.count() == 0
    page = c.get("/admin/embeddings/image/add/")
    token = page.cookies["csrftoken"].value
    resp = c.post("/admin/embeddings/image/add/", {"files": [SimpleUploadedFile("a.jpg", demo_images[0][0])],
                                                   "csrfmiddlewaretoken": token})
    assert resp.status_code == 302 and Image.objects.count() == 1
