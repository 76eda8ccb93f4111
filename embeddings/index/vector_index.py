"""The index a web process searches: the host's index file, memory-mapped read-only (index_file),
plus a small in-memory delta of vectors newer than the file (index_delta). Searches read an
immutable view and take no lock. Catching up is incremental and gap-safe (index_catchup); a full
build runs beside the serving index (index_build) and is swapped in when its file is published.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.db import connection, connections

from embeddings.index import build
from embeddings.index.catchup import CatchUp
from embeddings.index.delta import Delta
from embeddings.index.file import IndexFileError, Snapshot, current_token
from embeddings.index.kinds import FLAT
from embeddings.index.refresher import Refresher
from embeddings.index.rows import IndexRows
from embeddings.index.signal import read_generation
from embeddings.models import Embedding

log = logging.getLogger(__name__)
# How long a search waits for the catch-up it started (usually a few ms); past that it answers from
# the view it has and the catch-up finishes beside it, so no search waits on the database's count.
REFRESH_WAIT_SECONDS = 0.1


def to_vectors(blobs) -> np.ndarray | None:
    """Stored vector blobs (float32 bytes) as one array, one row each."""
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1) if blobs else None


@dataclass(frozen=True)
class View:
    """What a search reads: swapped whole, never changed in place (but for rows turning dead)."""

    base: Snapshot | None
    alive: np.ndarray | None
    hidden: int
    delta: tuple


class VectorIndex(IndexRows):
    def __init__(self, model_key: str, dim: int):
        super().__init__(dim)
        self.model_key = model_key
        self.root = build.root_for(model_key)
        self._sync_lock = threading.Lock()
        self._view: View | None = None
        self.catchup = CatchUp(self)
        self.token = None
        self.generation = None
        self.checked_at = 0.0
        self.rebuilds = 0
        self.built_at, self.last_build_ms = None, None
        self.note = ""  # why the file is not in use, for /api/status
        self._background: threading.Thread | None = None
        self._refresher = Refresher(self)
        self._count_owed = False

    # ---- reading the host's file ---------------------------------------------------------------
    def _load_file(self, token) -> None:
        for _ in range(3):
            try:
                snap = Snapshot.open(self.root, self.dim)
                break
            except IndexFileError as exc:
                snap, self.note = None, f"index file unusable ({exc}); serving from memory until it is rebuilt"
                if current_token(self.root) == token:
                    log.warning("%s: %s", self.root, self.note)
                    break
                token = current_token(self.root)  # replaced (and the old one removed) while we opened it
        self.token = token  # a broken file is not retried until a new one is published
        if snap is not None:
            self._rebase(snap)
            self.note = ""
        elif self._view is None:
            self._without_file()

    def _rebase(self, snap: Snapshot) -> None:
        """Map a newly published generation; keep from the delta only what it lacks."""
        alive = np.ones(snap.n, dtype=bool)
        kept = self.delta.rows_newer_than(snap)
        self.delta = Delta(self.dim)
        self.base, self.alive, self.hidden = snap, alive, 0
        self.add_rows(*kept)
        self.built_at, self.last_build_ms = snap.meta.get("built_at"), snap.meta.get("build_ms")
        self.catchup.rebase(snap, kept[0])

    def _without_file(self) -> None:
        """No usable file: a small collection gets its file built here and now; a large one is
        served flat from memory while the file is built beside it."""
        n = Embedding.objects.filter(model_name=self.model_key).count()
        # Inside a transaction (tests, commands) no other connection sees the rows: build here too.
        if (build.wanted_kind(n) == FLAT or connection.in_atomic_block) and self._build(blocking=False):
            return
        started = time.perf_counter()
        self.base, self.alive, self.hidden = None, None, 0
        self.delta = Delta(self.dim)
        self.catchup.load_everything()
        self.rebuilds += 1
        self.built_at = datetime.now(UTC).isoformat()
        self.last_build_ms = round((time.perf_counter() - started) * 1000, 1)
        self.note = self.note or "no index file yet; serving flat from memory while it is built"
        self._in_background(lambda: build.build(self.model_key, self.dim, blocking=False))

    def _build(self, blocking: bool, kind: str | None = None) -> bool:
        meta = build.build(self.model_key, self.dim, kind=kind, blocking=blocking)
        if meta is None:
            return False
        self.rebuilds += 1
        token = current_token(self.root)
        self._rebase(Snapshot.open(self.root, self.dim))
        self.token, self.note = token, ""
        return True

    def _in_background(self, fn) -> None:
        """Run fn beside the searches. A caller inside a transaction (a test, a command) sees rows that
        another connection cannot: it runs fn itself."""
        if connection.in_atomic_block:
            fn()
            return
        if self._background is not None and self._background.is_alive():
            return

        def run():
            try:
                fn()
            except Exception:
                log.exception("index work in the background failed")
            finally:
                connections.close_all()  # this thread's own connections

        self._background = threading.Thread(target=run, name="clipsearch-index", daemon=True)
        self._background.start()

    def _publish(self) -> None:
        self._view = View(self.base, self.alive, self.hidden, self.delta.view())

    # ---- keeping up ------------------------------------------------------------------------------
    def sync(self, force: bool = False, count: bool = True) -> None:
        """Catch up with the file and the database. A search never waits for another thread's catch-up
        (it answers from the current view), only the very first one of a process does. With `count`
        False the count check is left owed, for check_count."""
        if not force and self._fresh():
            return
        if not self._sync_lock.acquire(blocking=force or self._view is None):
            return
        try:
            token = current_token(self.root)
            if self._view is None or token != self.token:
                self._load_file(token)
            generation = read_generation(self.model_key)  # read before the rows: no lost update
            changed = generation != self.generation
            if force or generation is None or changed or self.catchup.waiting():
                self._count_owed = self._count_owed or (changed and not count)
                missing = self.catchup.run(count=changed and count, force=force, may_count=count or force)
                self.generation = generation
                self._after_count(missing, force)
            self._publish()
            self.checked_at = time.monotonic()
        finally:
            self._sync_lock.release()

    def check_count(self) -> None:
        """The count check that a sync(count=False) left owed (or that is due anyway)."""
        if not self._count_owed and time.monotonic() - self.catchup.counted_at < 60:
            return  # nothing owed, nothing due: no round trips
        with self._sync_lock:
            owed, self._count_owed = self._count_owed, False
            missing = self.catchup.run(count=owed, force=False)
            self._after_count(missing, False)
            self._publish()

    def _after_count(self, missing: bool, force: bool) -> None:
        if missing and (force or connection.in_atomic_block):
            self.catchup.reconcile()
        elif missing:  # reading every id takes a while on a big collection: not in a search
            self._in_background(self._reconcile)

    def _fresh(self) -> bool:
        return self._view is not None and time.monotonic() - self.checked_at < settings.INDEX_REFRESH_SECONDS

    def refresh(self) -> None:
        """What a search does to keep up: the first search of a process (and a caller inside a
        transaction, whose rows no other connection sees) catches up itself; later ones ask the
        index's refresher for a round and wait for it at most REFRESH_WAIT_SECONDS."""
        if self._view is None or connection.in_atomic_block:
            self.sync()
            return
        if self._fresh():
            return
        self._refresher.ask().wait(REFRESH_WAIT_SECONDS)

    def _reconcile(self) -> None:
        with self._sync_lock:
            self.catchup.reconcile()
            self._publish()

    def rebuild(self, kind: str | None = None) -> None:
        """Build the file afresh (retraining) and serve it; other processes swap it in on their own."""
        with self._sync_lock:
            self._build(blocking=True, kind=kind)
            self.catchup.run(count=True, force=True)
            self._publish()

    def stop(self) -> None:
        """End this index's catch-up thread (its database connection closes with it)."""
        self._refresher.stop()

    # ---- queries --------------------------------------------------------------------------------
    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        self.refresh()
        view = self._view
        if view is None or k <= 0:
            return []
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        parts = [Delta.search_view(view.delta, q, k)]
        if view.base is not None:
            parts.append(view.base.search(q, k, view.alive, view.hidden))
        ids = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(ids[i]), float(scores[i])) for i in order]

    def cosines(self, vector: np.ndarray, image_ids) -> dict[int, float]:
        """The query's cosine to each of these images that the index holds, read from the index itself
        (the fusion's keyword matches the meaning ranking did not list): fetching 200 vectors from
        PostgreSQL took 14 ms of a 48 ms search at 100k images."""
        view = self._view
        if view is None or not len(image_ids):
            return {}
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        found = {i: float(v @ q) for i, v in Delta.vectors_of(view.delta, image_ids).items()}
        rest = np.asarray([i for i in image_ids if i not in found], dtype=np.int64)
        if view.base is not None and len(rest):
            rows = view.base.row_of(rest)
            held = rows >= 0
            held[held] = view.alive[rows[held]]
            if held.any():
                scores = view.base.vectors_at(rows[held]) @ q
                found.update(zip(rest[held].tolist(), scores.tolist()))
        return found

    @property
    def kind(self) -> str:
        return self.base.kind if self.base is not None else FLAT

    def stats(self) -> dict:
        return {"kind": self.kind, "size": self.size(), "path": str(self.root),
                "bytes": (self.base.bytes if self.base is not None else 0) + self.delta.nbytes,
                "mmap": self.base is not None, "delta": self.delta.live,
                "built_at": datetime.fromisoformat(self.built_at) if self.built_at else None,
                "last_build_ms": self.last_build_ms, "rebuilds": self.rebuilds, "note": self.note}


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
    """Forget in-memory indexes (tests: the next process to start)."""
    with _registry_lock:
        for index in _indexes.values():
            index.stop()
        _indexes.clear()
