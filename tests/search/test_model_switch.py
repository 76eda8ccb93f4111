"""Changing CLIP_MODEL_NAME doesn't make search go dark: until the new model covers the library,
searches answer with the old model's vectors (and say so), then switch on their own."""
import shutil

import pytest

from embeddings import services
from embeddings.clip.config import DEMO_MODEL_DIR
from embeddings.index.vector_index import reset_indexes
from embeddings.models import Embedding
from embeddings.pipeline import ingest
from embeddings.search import model_switch

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def switched(indexed_gallery, tmp_path, settings):
    """The gallery encoded with the demo model, then the app configured with another model (a copy
    of the demo under another name: the workers encode with it, its vectors are kept apart)."""
    new = tmp_path / "other-model"
    shutil.copytree(DEMO_MODEL_DIR, new)
    old_key = settings.MODEL_KEY
    settings.MODEL_KEY = str(new)
    model_switch.reset()
    reset_indexes()
    yield old_key, str(new)
    model_switch.reset()
    reset_indexes()


def ids(client, q="a red circle"):
    resp = client.get("/api/search", {"q": q, "k": 10, "cutoff": "none"})
    assert resp.status_code == 200, resp.content
    body = resp.json()
    return body["model"], [r["id"] for r in body["results"]]


def test_search_keeps_answering_with_the_old_model_until_the_new_one_covers_the_library(client, redis, switched):
    old_key, new_key = switched
    queued = services.enqueue_missing(new_key)  # what `manage.py reindex` does
    assert queued == len(Embedding.objects.filter(model_name=old_key))
    model, before = ids(client)
    assert model == old_key and len(before) == 10  # not dark: the old vectors answer
    status = client.get("/api/status").json()
    assert status["switching"] == {"serving": old_key, "target": new_key, "covered": 0, "total": queued}
    assert "still answer with" in client.get("/status/").content.decode()

    totals = ingest.ingest_pending(redis=redis)
    assert totals["indexed"] == queued
    model_switch.reset()  # a web process re-checks every few seconds; the test doesn't wait
    model, after = ids(client)
    assert model == new_key and len(after) == 10
    assert after == before  # the same weights under another name rank the same
    assert client.get("/api/status").json()["switching"] is None
    assert Embedding.objects.filter(model_name=new_key).count() == queued
