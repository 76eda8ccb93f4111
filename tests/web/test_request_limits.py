"""Request-level rules: a body over its limit is refused (413) before Django reads a byte of it, on
the browser's search form as on the API; an anonymous write is 401 (not 403 "CSRF check Failed"),
a staff session without its CSRF token 403; an undeclared method is 405 with its Allow header and
an unknown API address 404, both in the API's JSON error envelope; and a decoder's error reaches a
person without object reprs or repeated prefixes."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from clipsearch.middleware import BATCH_FILES, body_limit
from embeddings.files.image_policy import readable
from tests.support import assert_error, jpeg_bytes

pytestmark = pytest.mark.django_db


class UnreadableBody:
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


def _post_claiming(client, path, length, **extra):
    return client.generic("POST", path, b"", content_type="multipart/form-data; boundary=x",
                          CONTENT_LENGTH=str(length), **{"wsgi.input": UnreadableBody()}, **extra)


@pytest.mark.parametrize("path", ["/", "/api/search/image", "/api/encode/image", "/api/encode/text", "/api/images",
                                  "/admin/embeddings/image/add/", "/api/nowhere"])
def test_a_body_over_the_limit_is_refused_unread(client, settings, path):
    settings.MAX_UPLOAD_BYTES = 5 * 2**20
    limit = body_limit(path)
    assert limit == (BATCH_FILES if path in ("/api/images", "/admin/embeddings/image/add/") else 1) * 5 * 2**20 + 2**20
    resp = _post_claiming(client, path, 300 * 2**20)
    assert resp.status_code == 413
    if path.startswith("/api/"):
        error = assert_error(resp, 413, "too_large")
        assert "300 MB" in error["message"] and f"{limit // 2**20} MB" in error["message"], error
    else:
        assert b"Too large" in resp.content


def test_a_body_within_the_limit_reaches_the_view(client, redis, demo_images):
    resp = client.post("/api/search/image", {"file": SimpleUploadedFile("a.jpg", demo_images[0][0])})
    assert resp.status_code == 200, resp.content[:300]


def test_anonymous_writes_are_401_not_csrf_403(indexed_gallery):
    client = Client(enforce_csrf_checks=True)
    assert_error(client.post("/api/images", {"files": [SimpleUploadedFile("a.jpg", b"x")]}), 401, "unauthorized")
    assert_error(client.delete(f"/api/images/{indexed_gallery[0].pk}"), 401, "unauthorized")
    assert_error(client.post("/api/images", {"files": []}), 401, "unauthorized")


def test_a_staff_session_needs_its_csrf_token(staff_user, redis, demo_images):
    from PIL import Image

    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    upload = {"files": [SimpleUploadedFile("a.jpg", jpeg_bytes(Image.new("RGB", (40, 30), "teal")))]}
    assert_error(client.post("/api/images", upload), 403)
    client.get("/")  # the search page sets the CSRF cookie
    upload["files"][0].seek(0)
    resp = client.post("/api/images", upload, HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert resp.status_code == 201, resp.content[:300]


@pytest.mark.parametrize("method", ["TRACE", "PUT", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path, allow", [("/api/search", {"GET"}), ("/api/status", {"GET"}), ("/api/images", {"POST"}),
                                         ("/api/images/1", {"GET", "DELETE"})])
def test_undeclared_methods_are_405_json_with_allow(client, method, path, allow):
    resp = client.generic(method, path)
    error = assert_error(resp, 405, "method_not_allowed")
    assert method in error["message"]
    assert {m.strip() for m in resp["Allow"].split(",")} == allow


@pytest.mark.parametrize("path", ["/api/nowhere", "/api/images/abc", "/api/images/-1", "/api/images/1/nothing"])
def test_unknown_api_addresses_are_404_json(client, path):
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize("exc, said", [
    (OSError("cannot identify image file <_io.BytesIO object at 0x7f4c2a1b3d10>"), "cannot identify image file"),
    (ValueError("image: image item 0: broken data stream"), "broken data stream"),
    (MemoryError(), "more memory"),
    (OSError(""), "OSError while decoding"),
])
def test_decoder_errors_are_said_for_a_person(exc, said):
    text = readable(exc, "PNG")
    assert said in text and "0x" not in text and "object at" not in text and not text.startswith("image")
