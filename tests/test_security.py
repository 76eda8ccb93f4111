"""Deployment promises: media headers, the Redis-backed search rate limit, CSRF on the admin."""
import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from embeddings import services
from embeddings.models import Image
from tests.bad_inputs import corpus

pytestmark = pytest.mark.django_db(transaction=True)


def test_media_served_with_checked_type_and_nosniff(client, redis):
    data = corpus()["rgba.png"][0]
    im = services.add_image(data, "innocent.jpg", enqueue=False)  # a PNG named .jpg
    resp = client.get(im.file.url)
    assert resp.status_code == 200
    assert resp["Content-Type"] == "image/png"  # the format we checked, not the name given
    assert resp["X-Content-Type-Options"] == "nosniff"
    assert b"".join(resp.streaming_content) == data
    assert client.get("/media/../secret_key").status_code == 404
    assert client.get("/media/images/none.png").status_code == 404


def test_search_rate_limit_counts_in_redis(client, redis, settings, demo_images):
    settings.SEARCH_RATE_PER_MINUTE = 3
    services.add_image(demo_images[0][0], "a.jpg", enqueue=False)
    services.ingest_pending(redis=redis)
    codes = [client.get("/api/search", {"q": "a red circle"}).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    resp = client.get("/api/search", {"q": "a red circle"})
    assert resp.json()["error"]["code"] == "rate_limited" and resp["Retry-After"] == "60"
    assert any(k.startswith(b"clipsearch:rate:") for k in redis.keys())


def test_admin_upload_needs_csrf_token(redis, demo_images):
    staff = get_user_model().objects.create_user("staff", password="pw", is_staff=True, is_superuser=True)
    c = Client(enforce_csrf_checks=True)
    c.force_login(staff)
    resp = c.post("/admin/embeddings/image/add/", {"files": [SimpleUploadedFile("a.jpg", demo_images[0][0])]})
    assert resp.status_code == 403
    assert Image.objects.count() == 0
    page = c.get("/admin/embeddings/image/add/")
    token = page.cookies["csrftoken"].value
    resp = c.post("/admin/embeddings/image/add/", {"files": [SimpleUploadedFile("a.jpg", demo_images[0][0])],
                                                   "csrfmiddlewaretoken": token})
    assert resp.status_code == 302 and Image.objects.count() == 1


def test_anonymous_cannot_upload_or_delete(client, redis, demo_images):
    im = services.add_image(demo_images[0][0], "a.jpg", enqueue=False)
    assert client.post("/api/images", {"files": [SimpleUploadedFile("b.jpg", demo_images[1][0])]}).status_code == 401
    assert client.delete(f"/api/images/{im.pk}").status_code == 401
    assert Image.objects.count() == 1
