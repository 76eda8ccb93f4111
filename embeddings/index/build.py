"""Builds the host's index file from the database, beside the serving index: one builder at a time
per host (an flock), rows streamed in chunks (memory stays near the index itself), published
atomically (index_file). Run by `rebuild_index`, `check_index --fix`, a web process that finds no
usable file, and every worker on its timer (`maintain`), which folds the web processes' in-memory
deltas into a new file without retraining, and retrains when the kind or the size moved on."""
from __future__ import annotations

import contextlib
import logging
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import close_old_connections, connection, transaction

from embeddings.index import kinds
from embeddings.index.file import GenerationWriter, IndexFileError, Snapshot, build_lock
from embeddings.index.signal import bump_generation
from embeddings.models import Embedding, Tombstone

log = logging.getLogger(__name__)
CHUNK = 5000
FOLD_MIN_ROWS = 1000  # fold the deltas when this many rows (or 2% of the file) changed...
FOLD_MAX_AGE = 600  # ...or when anything changed and the file is this many seconds old
CHECK_SECONDS = 30  # how often a worker looks


def root_for(model_key: str) -> Path:
    return Path(settings.INDEX_DIR) / (re.sub(r"[^A-Za-z0-9._-]+", "_", model_key).strip("_") or "model")


def wanted_kind(n: int, current: str | None = None) -> str:
    kind = kinds.choose_kind(n, settings.INDEX_KIND, settings.APPROX_INDEX_THRESHOLD)
    if current and settings.INDEX_KIND == "auto" and kinds.KINDS.index(kind) < kinds.KINDS.index(current):
        # Going back to a smaller kind only well under its threshold: a collection at the edge
        # must not swap kinds back and forth with every few deletions.
        kind = kinds.choose_kind(int(n * 1.25), "auto", settings.APPROX_INDEX_THRESHOLD)
    return kind


def _mine(model_key: str):
    return Embedding.objects.filter(model_name=model_key)


def _sample(model_key: str, size: int) -> np.ndarray:
    ids = np.asarray(_mine(model_key).values_list("id", flat=True), dtype=np.int64)
    if size < len(ids):
        ids = np.random.default_rng(0).choice(ids, size, replace=False)
    blobs = []
    for s in range(0, len(ids), CHUNK):
        blobs += [bytes(b) for b in _mine(model_key).filter(id__in=ids[s:s + CHUNK].tolist()).values_list("vector", flat=True)]
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)


def chunks(model_key: str):
    """(embedding ids, image ids, vectors) in ascending image id order, CHUNK rows at a time."""
    rows = _mine(model_key).order_by("image_id").values_list("id", "image_id", "vector").iterator(chunk_size=CHUNK)
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            yield _unpack(batch)
            batch = []
    if batch:
        yield _unpack(batch)


def _unpack(batch):
    emb, img, blobs = zip(*batch)
    vectors = np.frombuffer(b"".join(bytes(b) for b in blobs), dtype=np.float32).reshape(len(batch), -1)
    return np.asarray(emb, np.int64), np.asarray(img, np.int64), vectors


def _reusable(root: Path, kind: str, dim: int):
    """The current file's trained, empty index when it can serve again (same kind and size range)."""
    import faiss

    try:
        snap = Snapshot.open(root, dim)
    except IndexFileError:
        return None, None
    if snap is None or snap.kind != kind or kind == kinds.FLAT:
        return None, None
    try:
        return faiss.read_index(str(root / snap.gen / "trained.faiss")), snap.meta.get("trained_n")
    except Exception:  # noqa: BLE001 - no trained copy: train afresh
        return None, None


def build(model_key: str, dim: int, kind: str | None = None, retrain: bool = True, blocking: bool = True) -> dict | None:
    """Build and publish a new generation; None when another process holds the lock (not blocking)."""
    import faiss

    root = root_for(model_key)
    with build_lock(root, blocking) as got:
        if not got:
            return None
        started = time.perf_counter()
        tomb_mark = Tombstone.objects.order_by("-id").values_list("id", flat=True).first() or 0  # before the rows
        n = _mine(model_key).count()
        kind = kind or wanted_kind(n)
        index, trained_n = (None, None) if retrain else _reusable(root, kind, dim)
        retrained = index is None
        if retrained:
            sample = _sample(model_key, kinds.train_size(kind, n)) if kinds.needs_training(kind) else None
            if sample is not None and len(sample) < kinds.nlist_for(n):
                kind, sample = kinds.FLAT, None  # too few rows to train on (deleted meanwhile)
            index, trained_n = kinds.trained_index(kind, dim, n, sample), n
        writer = GenerationWriter(root, kind, dim, index)
        try:
            if kind != kinds.FLAT:
                faiss.write_index(index, str(writer.tmp / "trained.faiss"))  # folds reuse it
            # One snapshot of the rows on PostgreSQL; SQLite would lock writers out for the whole read.
            with transaction.atomic() if connection.vendor == "postgresql" else contextlib.nullcontext():
                for emb_ids, image_ids, vectors in chunks(model_key):
                    writer.add(emb_ids, image_ids, vectors)
            meta = {"built_at": datetime.now(UTC).isoformat(), "tomb_mark": tomb_mark, "trained_n": trained_n,
                    "build_ms": round((time.perf_counter() - started) * 1000, 1), "retrained": retrained}
            meta = writer.finish(meta)
        except BaseException:
            writer.abort()
            raise
    bump_generation(model_key)
    log.info("built %s index for %s: %d vectors in %.1f s", kind, model_key, meta["n"],
             time.perf_counter() - started)
    return meta


def plan(model_key: str, dim: int) -> tuple[bool, bool, str]:
    """(build?, retrain?, why) for the current file against the database."""
    root = root_for(model_key)
    try:
        snap = Snapshot.open(root, dim)
    except IndexFileError as exc:
        return True, True, f"the file is unusable ({exc})"
    n = _mine(model_key).count()
    if snap is None:
        return bool(n), True, "no file yet"
    kind = wanted_kind(n, snap.kind)
    if kind != snap.kind:
        return True, True, f"{n} vectors want {kind}, the file is {snap.kind}"
    trained_n = snap.meta.get("trained_n") or snap.n
    if kind != kinds.FLAT and not trained_n / 2 <= n <= trained_n * 2:
        return True, True, f"trained on {trained_n}, now {n}"
    changed = _mine(model_key).filter(id__gt=snap.meta["emb_mark"]).count()
    changed += Tombstone.objects.filter(id__gt=snap.meta["tomb_mark"]).count() + (n != snap.n)
    age = time.time() - datetime.fromisoformat(snap.meta["built_at"]).timestamp()
    if changed >= max(FOLD_MIN_ROWS, n // 50) or (changed and age > FOLD_MAX_AGE):
        return True, False, f"{changed} rows changed since the file was built"
    return False, False, ""


def dim_of(model_key: str) -> int | None:
    blob = _mine(model_key).values_list("vector", flat=True).first()
    return None if blob is None else len(bytes(blob)) // 4


def maintain(model_key: str | None = None) -> dict | None:
    """One look by a worker: build or fold when the plan says so and no other builder is busy."""
    model_key = model_key or settings.MODEL_KEY
    dim = dim_of(model_key)
    if dim is None:
        return None
    go, retrain, why = plan(model_key, dim)
    if not go:
        return None
    log.info("index for %s: %s; building", model_key, why)
    return build(model_key, dim, retrain=retrain, blocking=False)


def maintain_forever(stop) -> None:
    """A worker's timer thread: `stop` is a threading.Event. The first look comes at once (a new
    host builds its file at its first worker's start)."""
    import faiss

    # One FAISS thread: the build shares the CPU with the encoding (FAISS's own OpenMP runtime, not
    # torch's). Measured on a loaded 2-core machine: 2 threads made training 3-4x slower.
    faiss.omp_set_num_threads(1)
    timeout = 0
    while not stop.wait(timeout):
        timeout = CHECK_SECONDS
        try:
            maintain()
        except Exception as exc:  # never let housekeeping kill the worker
            log.warning("index maintenance failed: %s", exc)
        finally:
            close_old_connections()
