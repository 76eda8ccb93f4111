"""The encoder endpoints: `/api/encode/text`, `/api/encode/image` and `/api/similarity`."""
import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

pytestmark = pytest.mark.django_db(transaction=True)


def test_encode_text_image_and_similarity(client, demo_images):
    t = client.post("/api/encode/text", {"text": "a red circle"}, content_type="application/json")
    assert t.status_code == 200, t.content
    tv = t.json()
    assert tv["dim"] == len(tv["embedding"]) > 0 and tv["model"] == settings.MODEL_KEY
    assert abs(np.linalg.norm(tv["embedding"]) - 1) < 1e-3
    i = client.post("/api/encode/image", {"file": SimpleUploadedFile("a.jpg", demo_images[0][0], "image/jpeg")})
    assert i.status_code == 200, i.content
    iv = i.json()
    assert iv["dim"] == tv["dim"] == len(iv["embedding"])
    s = client.post("/api/similarity", {"text_embedding": tv["embedding"], "image_embedding": iv["embedding"]},
                    content_type="application/json")
    assert s.status_code == 200, s.content
    expected = float(np.dot(tv["embedding"], iv["embedding"]))
    assert abs(s.json()["similarity"] - expected) < 1e-4
    same = client.post("/api/similarity", {"text_embedding": [1, 2, 3], "image_embedding": [2, 4, 6]},
                       content_type="application/json")
    assert abs(same.json()["similarity"] - 1) < 1e-6


def test_non_latin_encode_text(client):
    for text in ("красный круг", "赤い丸", "🔴"):
        resp = client.post("/api/encode/text", {"text": text}, content_type="application/json")
        assert resp.status_code == 200, resp.content


@pytest.mark.parametrize("size", [(1, 100_000), (100_000, 1)])
def test_a_pixel_strip_encodes_quickly(client, redis, size):
    """A 475-byte PNG of 1 x 100,000 pixels once cost 6.5 s and 2.5 GB in the resize; the centre is
    now cut out first."""
    import io
    import time

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (30, 30, 200)).save(buf, "PNG")
    started = time.perf_counter()
    resp = client.post("/api/encode/image", {"file": SimpleUploadedFile("strip.png", buf.getvalue(), "image/png")})
    assert resp.status_code == 200, resp.content
    assert time.perf_counter() - started < 5
    assert abs(np.linalg.norm(resp.json()["embedding"]) - 1) < 1e-3
