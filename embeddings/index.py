"""The FAISS index: derived from the database, one per model, one copy per process.

Each process keeps the index in memory and catches up with the database by watermarks
(highest Embedding id and Tombstone id seen). A Redis counter, bumped after every write,
tells it cheaply whether anything changed; a count check catches rows that committed out of
id order and triggers a rebuild. The file under INDEX_DIR only speeds up start-up: it is
saved atomically and rebuilt from the database when missing or damaged.
"""
from __future__ import annotations

import io
import logging
import os
import re
import tempfile
import threading
import time

import faiss
import numpy as np
from django.conf import settings

from .models import Embedding, Tombstone
from .queue import redis_connection

log = logging.getLogger(__name__)
FLAT, IVF = "flat", "ivf-fp16"


def generation_key(model_key: str) -> str:
    return f"clipsearch:gen:{model_key}"


def bump_generation(model_key: str) -> None:
    """Tell every web process that this model's embeddings changed (best effort)."""
    try:
        redis_connection().incr(generation_key(model_key))
    except Exception as exc:  # Redis down: processes still catch up on their timed check
        log.warning("could not bump index generation: %s", exc)


def _read_generation(model_key: str):
    try:
        return redis_connection().get(generation_key(model_key))
    except Exception:
        return None


def to_vectors(blobs) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1) if blobs else None


def kind_for(n: int) -> str:
    return IVF if n >= settings.APPROX_INDEX_THRESHOLD else FLAT


def build_faiss(vectors: np.ndarray | None, ids: np.ndarray, kind: str, dim: int):
    """Exact inner product while small; IVF over fp16 vectors when large (about 1 KB an image,
    recall@10 near 0.99 where 8-bit codes stopped at 0.97). Vectors are L2-normalised, so inner
    product is cosine similarity."""
    if kind == FLAT:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    else:
        n = len(vectors)
        nlist = int(min(max(4 * np.sqrt(n), 64), n // 39))
        index = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
        sample = vectors if n <= 100 * nlist else vectors[np.random.default_rng(0).choice(n, 100 * nlist, replace=False)]
        index.train(sample)
        index.nprobe = max(16, nlist // 64)  # measured: 1M recall@10 0.996 at 5 ms p50 (docs/PERFORMANCE.md)
    if len(ids):
        index.add_with_ids(vectors, ids)
    return index


class VectorIndex:
    def __init__(self, model_key: str, dim: int):
        self.model_key = model_key
        self.dim = dim
        self.path = settings.INDEX_DIR / (re.sub(r"[^A-Za-z0-9._-]+", "_", model_key).strip("_") + ".npz")
        self.lock = threading.RLock()
        self.index = None
        self.kind = FLAT
        self.ids = np.empty(0, dtype=np.int64)  # sorted image ids held
        self.emb_mark = 0
        self.tomb_mark = 0
        self.generation = None
        self.checked_at = 0.0
        self.saved_at = 0.0
        self.dirty = False

    # ---- building -------------------------------------------------------------------
    def rebuild(self) -> None:
        """Read every embedding of this model from the database and build afresh."""
        with self.lock:
            mine = Embedding.objects.filter(model_name=self.model_key)
            emb_mark = mine.order_by("-id").values_list("id", flat=True).first() or 0
            tomb_mark = Tombstone.objects.order_by("-id").values_list("id", flat=True).first() or 0
            rows = Embedding.objects.filter(model_name=self.model_key, id__lte=emb_mark).values_list("image_id", "vector")
            ids, blobs = [], []
            for image_id, blob in rows.iterator(chunk_size=5000):
                ids.append(image_id)
                blobs.append(bytes(blob))
            kind = kind_for(len(ids))
            self.index = build_faiss(to_vectors(blobs), np.asarray(ids, dtype=np.int64), kind, self.dim)
            self.kind = kind
            self.ids = np.sort(np.asarray(ids, dtype=np.int64))
            self.emb_mark, self.tomb_mark = emb_mark, tomb_mark
            self.dirty = True
            log.info("built %s index for %s: %d vectors", kind, self.model_key, len(ids))

    # ---- persistence ----------------------------------------------------------------
    def load(self) -> bool:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                meta = data["meta"]
                index = faiss.deserialize_index(data["index"])
                ids = data["ids"].astype(np.int64)
            if index.d != self.dim or index.ntotal != len(ids):
                raise ValueError("index file does not match its metadata")
        except FileNotFoundError:
            return False
        except Exception as exc:
            log.warning("index file %s is damaged (%s); rebuilding from the database", self.path, exc)
            return False
        self.index, self.ids = index, np.sort(ids)
        self.emb_mark, self.tomb_mark = int(meta[0]), int(meta[1])
        self.kind = IVF if isinstance(index, faiss.IndexIVF) else FLAT
        return True

    def save(self) -> None:
        with self.lock:
            buf = io.BytesIO()
            np.savez(buf, index=faiss.serialize_index(self.index), ids=self.ids,
                     meta=np.array([self.emb_mark, self.tomb_mark], dtype=np.int64))
            self.dirty = False
            self.saved_at = time.monotonic()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getvalue())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)  # atomic: readers see the old file or the new one
        except BaseException:
            os.unlink(tmp)
            raise

    # ---- keeping up with the database ------------------------------------------------
    def _remove(self, image_ids) -> None:
        image_ids = np.intersect1d(np.asarray(image_ids, dtype=np.int64), self.ids)
        if len(image_ids):
            self.index.remove_ids(image_ids)
            self.ids = np.setdiff1d(self.ids, image_ids, assume_unique=True)
            self.dirty = True

    def sync(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and self.index is not None and now - self.checked_at < settings.INDEX_REFRESH_SECONDS:
            return
        with self.lock:
            if self.index is None and not self.load():
                self.rebuild()
            generation = _read_generation(self.model_key)  # read before the rows: no lost update
            if force or generation is None or generation != self.generation:
                self._catch_up()
                self.generation = generation
            self.checked_at = now
            if self.dirty and (self.saved_at == 0 or now - self.saved_at > 30):
                self.save()

    def _catch_up(self) -> None:
        tombs = list(Tombstone.objects.filter(id__gt=self.tomb_mark).values_list("id", "image_id"))
        if tombs:
            self._remove([image_id for _, image_id in tombs])
            self.tomb_mark = max(t for t, _ in tombs)
        rows = list(
            Embedding.objects.filter(model_name=self.model_key, id__gt=self.emb_mark)
            .order_by("id").values_list("id", "image_id", "vector")
        )
        if rows:
            ids = np.asarray([r[1] for r in rows], dtype=np.int64)
            self._remove(ids)  # a re-encoded image replaces its old vector
            self.index.add_with_ids(to_vectors([bytes(r[2]) for r in rows]), ids)
            self.ids = np.union1d(self.ids, ids)
            self.emb_mark = rows[-1][0]
            self.dirty = True
        count = Embedding.objects.filter(model_name=self.model_key).count()
        wanted = kind_for(count)
        if count != len(self.ids) or (wanted != self.kind and (wanted == IVF or count < settings.APPROX_INDEX_THRESHOLD // 2)):
            # Rows committed out of id order, or the collection outgrew its index kind.
            self.rebuild()

    # ---- queries --------------------------------------------------------------------
    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        self.sync()
        with self.lock:
            if not len(self.ids) or k <= 0:
                return []
            scores, ids = self.index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), min(k, len(self.ids)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def stats(self) -> dict:
        return {"kind": self.kind, "size": int(len(self.ids)), "path": str(self.path)}


_indexes: dict[tuple[str, int], VectorIndex] = {}
_registry_lock = threading.Lock()


def get_index(model_key: str, dim: int) -> VectorIndex:
    """The process-wide index for a model (loaded once per process)."""
    with _registry_lock:
        key = (model_key, dim)
        if key not in _indexes:
            _indexes[key] = VectorIndex(model_key, dim)
        return _indexes[key]


def reset_indexes() -> None:
    """Forget in-memory indexes (tests, and after rebuild_index in this process)."""
    with _registry_lock:
        _indexes.clear()
