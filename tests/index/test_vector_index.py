"""The index against the database: kinds by size, recall, catching up (rows out of id order too,
without a full build), the file shared by processes; a deleted image leaves the loaded index; a
deleted, truncated or overwritten index file is rebuilt."""
import time

import numpy as np
import pytest

from embeddings import services
from embeddings.index import catchup
from embeddings.index.file import Snapshot
from embeddings.index.kinds import FLAT, IVF, PQ
from embeddings.index.vector_index import VectorIndex, get_index, reset_indexes
from embeddings.models import Embedding, Image, Tombstone
from embeddings.search import selectors
from tests.support import upload_and_ingest

pytestmark = pytest.mark.django_db
DIM = 64


def clustered(n, seed=0, clusters=50):
    """Vectors shaped like real embeddings: clusters on the sphere, not uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM))
    v = centres[rng.integers(0, clusters, n)] + 0.35 * rng.normal(size=(n, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def store(vectors, start=0, emb_ids=None):
    images = Image.objects.bulk_create(
        Image(file=f"x/{start + i}.jpg", sha256=f"{start + i:064d}", width=1, height=1, format="JPEG",
              byte_size=1, status="indexed") for i in range(len(vectors)))
    Embedding.objects.bulk_create(
        Embedding(image=im, model_name="m", vector=v.tobytes(), **({"id": emb_ids[j]} if emb_ids else {}))
        for j, (im, v) in enumerate(zip(images, vectors)))
    return [im.pk for im in images]


def exact_top(vectors, ids, q, k):
    order = np.argsort(-(vectors @ q))[:k]
    return [ids[i] for i in order]


def recall(index, vectors, ids, queries):
    return np.mean([len({i for i, _ in index.search(q, 10)} & set(exact_top(vectors, ids, q, 10))) / 10 for q in queries])


def test_small_collection_is_exact_and_mapped_from_its_file(settings):
    vectors = clustered(300)
    ids = store(vectors)
    index = VectorIndex("m", DIM)
    index.sync(force=True)
    assert index.kind == FLAT and len(index.ids) == 300
    assert index.stats()["mmap"] and index.stats()["delta"] == 0 and index.rebuilds == 1
    for q in clustered(20, seed=1):
        assert [i for i, _ in index.search(q, 10)] == exact_top(vectors, ids, q, 10)


@pytest.mark.parametrize("kind", ["auto", PQ])
def test_large_collection_is_approximate_with_high_recall(settings, kind):
    settings.APPROX_INDEX_THRESHOLD = 2000
    settings.INDEX_KIND = kind
    vectors = clustered(6000)
    ids = store(vectors)
    index = VectorIndex("m", DIM)
    index.sync(force=True)
    assert index.kind == (IVF if kind == "auto" else PQ)
    assert recall(index, vectors, ids, clustered(100, seed=2)) >= 0.95
    stats = index.stats()
    assert stats["mmap"] and 0 < stats["bytes"] and stats["built_at"] and stats["last_build_ms"] > 0
    if kind == PQ:  # codes of dim/8 bytes, ids and labels: well under the fp16 kind's 2*DIM bytes an image
        assert stats["bytes"] / 6000 < 2 * DIM


def test_catches_up_with_new_rows_and_tombstones(settings):
    ids = store(clustered(50))
    index = VectorIndex("m", DIM)
    index.sync(force=True)
    more = store(clustered(10, seed=3), start=50)
    Tombstone.objects.create(image_id=ids[0])
    Image.objects.filter(pk=ids[0]).delete()
    index.sync(force=True)
    assert len(index.ids) == 59 and ids[0] not in index.ids and set(more) <= set(index.ids)
    assert index.stats()["delta"] == 10 and index.rebuilds == 1  # caught up, not rebuilt
    q = clustered(1, seed=3)[0]
    assert index.search(q, 1)[0][0] == more[0]  # a delta row outranks the file's


@pytest.mark.parametrize("kind", [FLAT, IVF, PQ])
def test_cosines_are_read_from_the_file_and_the_delta_and_skip_deleted_rows(settings, kind):
    settings.APPROX_INDEX_THRESHOLD = 2000
    settings.INDEX_KIND = kind
    vectors = clustered(3000)
    ids = store(vectors)
    index = VectorIndex("m", DIM)
    index.sync(force=True)
    assert index.kind == kind
    newer = clustered(5, seed=6)
    more = store(newer, start=3000)
    Tombstone.objects.create(image_id=ids[7])
    Image.objects.filter(pk=ids[7]).delete()
    index.sync(force=True)
    assert index.stats()["delta"] == 5
    q = clustered(1, seed=7)[0]
    asked = [ids[0], ids[7], ids[2999], ids[1234], more[0], more[4], 10**9]  # a deleted one, one never stored
    got = index.cosines(q, asked)
    assert set(got) == {ids[0], ids[2999], ids[1234], more[0], more[4]}
    exact = {**dict(zip(ids, vectors @ q)), **dict(zip(more, newer @ q))}
    for image_id, cosine in got.items():  # ivf kinds keep fp16 codes
        assert cosine == pytest.approx(float(exact[image_id]), abs=2e-3)


def test_rows_committed_out_of_id_order_are_found_without_a_rebuild(settings, monkeypatch):
    store(clustered(20))
    index = VectorIndex("m", DIM)
    index.sync(force=True)
    top = Embedding.objects.order_by("-id").first().id
    later = store(clustered(1, seed=4), start=20, emb_ids=[top + 100])[0]  # a later id commits first
    index.sync(force=True)
    earlier = store(clustered(1, seed=5), start=21, emb_ids=[top + 50])[0]  # then an earlier one
    index.sync(force=True)
    assert {later, earlier} <= set(index.ids)
    # Past the grace period the gap is given up on; a row that commits even later is found by the count check.
    monkeypatch.setattr(catchup, "GRACE_SECONDS", 0)
    index.sync(force=True)
    assert index.catchup.low_mark == top + 100
    latest = store(clustered(1, seed=6), start=22, emb_ids=[top + 70])[0]
    index.sync(force=True)
    assert latest in index.ids and len(index.ids) == 23
    assert index.rebuilds == 1 and index.stats()["delta"] == 3


def test_a_reencoded_image_replaces_its_vector(settings):
    vectors = clustered(30)
    ids = store(vectors)
    index = VectorIndex("m", DIM)
    index.sync(force=True)
    new = clustered(1, seed=9)[0]
    Embedding.objects.filter(image_id=ids[3]).delete()
    Embedding.objects.create(image_id=ids[3], model_name="m", vector=new.tobytes())
    index.sync(force=True)
    hits = index.search(new, 30)
    assert [i for i, _ in hits].count(ids[3]) == 1 and hits[0][0] == ids[3] and hits[0][1] > 0.999
    assert len(index.ids) == 30


def test_a_second_process_maps_the_same_file(settings):
    vectors = clustered(100)
    store(vectors)
    first = VectorIndex("m", DIM)
    first.sync(force=True)
    again = VectorIndex("m", DIM)  # another web process on the host
    again.sync(force=True)
    assert again.rebuilds == 0 and again.stats()["mmap"]
    q = clustered(1, seed=5)[0]
    assert again.search(q, 5) == first.search(q, 5)
    assert not list(first.root.glob(".building-*")) and not list(first.root.glob(".*.tmp"))


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
    for p in sorted(index.root.rglob("*"), reverse=True):  # deleted under the running process
        p.rmdir() if p.is_dir() else p.unlink()
    assert [h.image.pk for h in selectors.search(vec, k=5).hits] == before
    reset_indexes()  # the next process to start builds it again
    assert [h.image.pk for h in selectors.search(vec, k=5).hits] == before
    assert Snapshot.open(index.root, len(vec)).n == 10


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "garbage", "pointer"])
def test_damaged_index_file_is_rebuilt(redis, demo_images, settings, damage):
    """The next process to start finds the saved file cut short or overwritten: it answers as
    before, from the database, and saves the file whole again."""
    settings.INDEX_REFRESH_SECONDS = 0
    upload_and_ingest(demo_images[:10], redis)
    vec = selectors.query_vector("a blue square")
    expected = [(h.image.pk, round(h.score, 4)) for h in selectors.search(vec, k=5).hits]
    index = get_index(settings.MODEL_KEY, len(vec))
    target = index.root / ("CURRENT" if damage == "pointer" else f"{index.base.gen}/index.faiss")
    data = target.read_bytes()
    target.write_bytes(data[:100] if damage == "truncated" else b"garbage" * 100)
    reset_indexes()  # the next process to start
    assert [(h.image.pk, round(h.score, 4)) for h in selectors.search(vec, k=5).hits] == expected
    fresh = get_index(settings.MODEL_KEY, len(vec))
    assert fresh.rebuilds == 1 and fresh.stats()["mmap"]
    assert Snapshot.open(index.root, len(vec)).n == 10  # the file was rewritten whole


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_status_reports_the_index(client, indexed_gallery, demo_images, redis, settings):
    """`/api/status` and the status page say how the index is held: a mapped file, its size and build,
    the delta beside it, and full builds by this process."""
    settings.INDEX_REFRESH_SECONDS = 0
    s = client.get("/api/status").json()["index"]
    assert s["mmap"] and s["kind"] == FLAT and s["size"] == len(indexed_gallery) and s["delta"] == 0
    assert s["bytes"] > len(indexed_gallery) * 4 * 64 and s["built_at"] and s["last_build_ms"] > 0
    assert s["rebuilds"] == 1 and s["note"] == ""  # this process found no file and built it
    upload_and_ingest(demo_images[30:33], redis)
    s = client.get("/api/status").json()["index"]
    assert s["delta"] == 3 and s["size"] == len(indexed_gallery) + 3 and s["rebuilds"] == 1
    page = client.get("/status/").content.decode()
    assert "memory-mapped file shared by this host" in page and "3 vectors newer than the file" in page
