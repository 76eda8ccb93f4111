"""A model in Immich's ONNX layout through the whole app: the demo model exported by
demo/export_immich.py, named by its directory (as CLIP_MODEL_NAME would), ingests the demo gallery
and `/api/search` ranks it with precision@5 >= 0.85 (colour x shape queries)."""
import pytest

from demo import synth
from demo.export_immich import export
from demo.metrics import precision_at_k, relevant_ids
from embeddings.clip import service as clip_service
from embeddings.search import selectors
from tests.support import jpeg_bytes, upload_and_ingest

pytestmark = pytest.mark.slow
MIN_PRECISION = 0.85  # the demo model's own bar (tests/clip/test_demo_model.py)


@pytest.fixture
def immich_app(tmp_path, settings, monkeypatch):
    """The app's process-wide CLIP service replaced by one configured with CLIP_MODEL_NAME=<Immich dir>,
    as start-up makes it; embeddings stored under that model's key."""
    path = str(export(tmp_path / "demo-immich"))
    service = clip_service.CLIPService(path)
    monkeypatch.setattr(clip_service, "get_clip_service", lambda: service)
    settings.MODEL_KEY = path
    settings.OCR_ENABLED = False  # ranking by meaning is what is measured here
    selectors._text_vector.cache_clear()  # query vectors of the previous model
    yield service
    selectors._text_vector.cache_clear()


@pytest.mark.django_db(transaction=True)
def test_immich_layout_model_ranks_through_the_api(client, redis, immich_app):
    info = client.get("/api/model").json()
    assert info["engine"] == "onnx" and info["model_key"] == immich_app.model_name and not info["is_demo"]
    gallery = [(jpeg_bytes(img), meta) for img, meta in synth.gallery(240, seed=4242)]  # 5 of each colour x shape
    rows = upload_and_ingest(gallery, redis)
    position = {row.pk: i for i, row in enumerate(rows)}
    metas = [meta for _, meta in gallery]
    ranked, relevant = [], []
    for colour in synth.COLOURS:
        for shape in synth.SHAPES:
            results = client.get("/api/search", {"q": f"a {colour} {shape}", "k": 5}).json()["results"]
            assert len(results) == 5
            ranked.append([position[r["id"]] for r in results])
            relevant.append(relevant_ids(metas, colour=colour, shape=shape))
    mean = precision_at_k(ranked, relevant, 5)
    print(f"Immich-layout demo model, API colour x shape precision@5 {mean:.3f}")
    assert mean >= MIN_PRECISION, mean
