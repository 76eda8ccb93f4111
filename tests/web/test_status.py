"""`/api/status` (counts, queue, index) and `/api/model` (the loaded model's facts)."""
import pytest
from django.conf import settings

from embeddings import services

pytestmark = pytest.mark.django_db(transaction=True)


def test_status_and_model(client, indexed_gallery, demo_images):
    services.add_image(demo_images[50][0], "waiting.jpg", enqueue=False)
    resp = client.get("/api/status")
    assert resp.status_code == 200
    s = resp.json()
    assert s["counts"] == {"pending": 1, "processing": 0, "indexed": len(indexed_gallery), "failed": 0}
    assert s["total"] == len(indexed_gallery) + 1
    assert isinstance(s["queue_length"], int)
    assert s["index"]["size"] == len(indexed_gallery) and s["index"]["kind"]
    assert s["embedded_with_current_model"] == len(indexed_gallery)
    assert s["model"]["embedding_dim"] > 0
    m = client.get("/api/model")
    assert m.status_code == 200
    info = m.json()
    for key in ("model_name", "is_demo", "device", "precision", "embedding_dim", "image_size", "model_key"):
        assert key in info, key
    assert info["model_key"] == settings.MODEL_KEY
