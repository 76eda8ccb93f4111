"""The adaptive cutoff, measured: on a demo gallery with ten right images for every colour x shape
query, what passes the cutoff is compared with those ten (precision, recall, F1). The files are
named by number, so nothing but the meaning decides (demo names spell colour and shape)."""
import pytest

from demo.metrics import relevant_ids
from demo.synth import COLOURS, SHAPES, gallery
from embeddings import services
from embeddings.pipeline import ingest
from tests.support import jpeg_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
PER_PAIR = 10


@pytest.fixture(scope="module")
def balanced_gallery():
    """360 drawn images: every colour x shape ten times (five small, five large)."""
    return [(jpeg_bytes(img), meta) for img, meta in gallery(len(COLOURS) * len(SHAPES) * PER_PAIR, seed=4242)]


def f1(passed: set, relevant: set) -> tuple[float, float, float]:
    hit = len(passed & relevant)
    precision = hit / len(passed) if passed else 0.0
    recall = hit / len(relevant)
    return precision, recall, (2 * precision * recall / (precision + recall) if hit else 0.0)


def test_cutoff_f1_on_the_demo_gallery(client, redis, balanced_gallery, settings):
    settings.OCR_ENABLED = False  # meaning only: the drawn shapes carry no text
    rows = [services.add_image(data, f"{i}.jpg", enqueue=False) for i, (data, _) in enumerate(balanced_gallery)]
    totals = ingest.ingest_pending(redis=redis)
    assert totals["indexed"] == len(rows)
    metas = [meta for _, meta in balanced_gallery]
    scores = []
    for colour in COLOURS:
        for shape in SHAPES:
            body = client.get("/api/search", {"q": f"a {colour} {shape}", "k": 200}).json()
            passed = {r["id"] for r in body["results"]}
            assert body["passed"] == len(passed) and body["next"] is None, body["passed"]
            relevant = {rows[i].pk for i in relevant_ids(metas, colour=colour, shape=shape)}
            assert len(relevant) == PER_PAIR
            scores.append(f1(passed, relevant))
    n = len(scores)
    precision, recall, mean_f1 = (sum(s[j] for s in scores) / n for j in range(3))
    print(f"cutoff on {n} queries: precision {precision:.3f} recall {recall:.3f} mean F1 {mean_f1:.3f}")
    assert mean_f1 >= 0.8, (precision, recall, mean_f1)

    # cutoff=none fills the page; min_score overrides the cutoff (on the same scores).
    full = client.get("/api/search", {"q": "a red circle", "k": 50, "cutoff": "none"}).json()
    assert len(full["results"]) == 50 and full["passed"] is None and full["next"]
    threshold = full["results"][29]["score"] - 1e-6
    low = client.get("/api/search", {"q": "a red circle", "k": 50, "min_score": threshold}).json()
    assert [r["id"] for r in low["results"]] == [r["id"] for r in full["results"] if r["score"] >= threshold]
    assert len(low["results"]) >= 30 and low["passed"] is None
