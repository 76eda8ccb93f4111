"""The FAISS index against the database: kinds by size, recall, catching up, persistence; a deleted
image leaves the loaded index; a deleted, truncated or overwritten index file is rebuilt."""
import time

import numpy as np
import pytest

from embeddings import selectors, services
from embeddings.index import FLAT, IVF, VectorIndex, get_index, reset_indexes
from embeddings.models import Embedding, Image, Tombstone
from tests.support import upload_and_ingest

pytestmark = pytest.mark.django_db
DIM = 64


def clustered(n, seed=0, clusters=50):
    """Vectors shaped like real embeddings: clusters on the sphere, not uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM))
    v = centres[rng.integers(0, clusters, n)] + 0.35 * rng.normal(size=(n, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def store(vectors, start=0):
    images = Image.objects.bulk_create(
        Image(file=f"x/{start + i}.jpg", sha256=f"{start + i:064d}", width=1, height=1, format="JPEG",
              byte_size=1, status="indexed") for i in range(len(vectors)))
    Embedding.objects.bulk_create(Embedding(image=im, model_name="m", vector=v.tobytes()) for im, v in zip(images, vectors))
    return [im.pk for im in images]


def exact_top(vectors, ids, q, k):
    order = np.argsort(-(vectors @ q))[:k]
    return [ids[i] for i in order]


def test_small_collection_is_exact(settings):
    vectors = clustered(300)
    ids = store(vectors)
    index = VectorIndex("m", DIM)
    index.sync(force=True)
    assert index.kind == FLAT and len(index.ids) == 300
    for q in clustered(20, seed=1):
        assert [i for i, _ in index.search(q, 10)] == exact_top(vectors, ids, q, 10)


def test_large_collection_is_approximate_with_high_recall(settings):
    settings.APPROX_INDEX_THRESHOLD = 2000
    vectors = clustered(6000)
    ids = store(vectors)
    index = VectorIndex("m", DIM)
    index.sync(force=True)
    assert index.kind == IVF
    recalls = [len(set(i for i, _ in index.search(q, 10)) & set(exact_top(vectors, ids, q, 10))) / 10
               for q in clustered(100, seed=2)]
    assert np.mean(recalls) >= 0.95


def test_catches_up_with_new_rows_and_tombstones(settings):
    settings.INDEX_REFRESH_SECONDS = 0
    ids = store(clustered(50))
    index = VectorIndex("m", DIM)
    index.sync(force=True)
    more = store(clustered(10, seed=3), start=50)
    Tombstone.objects.create(image_id=ids[0])
    Image.objects.filter(pk=ids[0]).delete()
    index.sync(force=True)
    assert len(index.ids) == 59 and ids[0] not in index.ids and set(more) <= set(index.ids)


def test_rows_committed_out_of_order_are_found(settings):
    """A row with an id below the watermark (a slower transaction) is caught by the count check."""
    store(clustered(20))
    index = VectorIndex("m", DIM)
    index.sync(force=True)
    late = store(clustered(1, seed=4), start=20)[0]
    index.emb_mark = Embedding.objects.order_by("-id").first().id + 100  # as if a later id had been seen
    index.sync(force=True)
    assert late in index.ids


def test_saved_file_round_trips(settings, tmp_path):
    vectors = clustered(100)
    store(vectors)
    index = VectorIndex("m", DIM)
    index.sync(force=True)
    index.save()
    again = VectorIndex("m", DIM)
    assert again.load()
    q = clustered(1, seed=5)[0]
    assert again.search(q, 5) == index.search(q, 5)
    assert not list(index.path.parent.glob(".tmp-*"))  # the temp file was renamed, not left


# ---- the saved file and the loaded index, on images encoded by the demo model -------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_deleted_image_leaves_loaded_index(redis, demo_images, settings):
    settings.INDEX_REFRESH_SECONDS = 0.05
    upload_and_ingest(demo_images[:12], redis)
    vec = selectors.query_vector("a red circle")
    first = selectors.search(vec, k=12).hits
    assert len(first) == 12
    victim = first[0].image
    services.delete_images([victim])
    time.sleep(0.1)
    index = get_index(settings.MODEL_KEY, len(vec))
    again = selectors.search(vec, k=12).hits
    assert victim.pk not in [h.image.pk for h in again]
    assert victim.pk not in index.ids  # gone from the loaded index itself, not only filtered
    assert len(again) == 11


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_index_file_deleted_while_serving(redis, demo_images, settings):
    settings.INDEX_REFRESH_SECONDS = 0
    upload_and_ingest(demo_images[:10], redis)
    vec = selectors.query_vector("a green star")
    before = [h.image.pk for h in selectors.search(vec, k=5).hits]
    index = get_index(settings.MODEL_KEY, len(vec))
    index.save()
    index.path.unlink()  # deleted under the running process
    assert [h.image.pk for h in selectors.search(vec, k=5).hits] == before
    index.save()
    assert index.path.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_index_file_is_rebuilt(redis, demo_images, settings, damage):
    """The next process to start finds the saved file cut short or overwritten: it answers as
    before, from the database, and saves the file whole again."""
    settings.INDEX_REFRESH_SECONDS = 0
    upload_and_ingest(demo_images[:10], redis)
    vec = selectors.query_vector("a blue square")
    expected = [(h.image.pk, round(h.score, 4)) for h in selectors.search(vec, k=5).hits]
    index = get_index(settings.MODEL_KEY, len(vec))
    index.save()
    data = index.path.read_bytes()
    index.path.write_bytes(data[:100] if damage == "truncated" else b"garbage" * 100)
    reset_indexes()  # the next process to start
    assert [(h.image.pk, round(h.score, 4)) for h in selectors.search(vec, k=5).hits] == expected
    fresh = get_index(settings.MODEL_KEY, len(vec))
    assert fresh.load() and len(fresh.ids) == 10  # the file was rewritten whole
