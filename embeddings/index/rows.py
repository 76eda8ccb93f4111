"""The rows one web process serves: the host's file (a Snapshot) with a per-process flag per row
(dead: deleted, or replaced by a newer vector), plus the in-memory delta. Changed only by the
thread that holds the index's sync lock; searches read them through an immutable view."""
from __future__ import annotations

import numpy as np

from embeddings.index.delta import Delta
from embeddings.index.file import Snapshot


class IndexRows:
    def __init__(self, dim: int):
        self.dim = dim
        self.base: Snapshot | None = None
        self.alive, self.hidden = None, 0  # per file row: still served here; how many are not
        self.delta = Delta(dim)

    def add_rows(self, emb_ids, image_ids, vectors) -> None:
        """New vectors; each hides an older vector of its image, in the file or the delta."""
        emb_ids, image_ids = np.asarray(emb_ids, np.int64), np.asarray(image_ids, np.int64)
        if not len(emb_ids):
            return
        keep = np.ones(len(emb_ids), bool)
        if self.base is not None and len(self.base.emb_ids):  # an empty file has no row to hide
            rows = self.base.row_of(image_ids)
            inside = rows >= 0
            file_emb = np.where(inside, np.asarray(self.base.emb_ids)[np.maximum(rows, 0)], -1)
            keep = emb_ids > file_emb  # the file's own row, or an older one, adds nothing
            self._hide_rows(rows[inside & keep])
        self.delta.add(emb_ids[keep], image_ids[keep], np.asarray(vectors)[keep])

    def remove_images(self, image_ids) -> None:
        if self.base is not None:
            rows = self.base.row_of(image_ids)
            self._hide_rows(rows[rows >= 0])
        self.delta.remove_images(image_ids)

    def remove_embeddings(self, emb_ids) -> None:
        """Rows whose Embedding is gone from the database (found by a count check)."""
        if self.base is not None:
            self._hide_rows(np.nonzero(np.isin(self.base.emb_ids, emb_ids))[0])
        self.delta.remove_embeddings(emb_ids)

    def _hide_rows(self, rows) -> None:
        rows = np.asarray(rows, np.int64)
        rows = rows[self.alive[rows]]
        self.alive[rows] = False
        self.hidden += len(rows)

    def known_embeddings(self) -> np.ndarray:
        file_part = np.asarray(self.base.emb_ids)[self.alive] if self.base is not None else np.empty(0, np.int64)
        return np.concatenate([file_part, self.delta.live_embeddings()])

    @property
    def ids(self) -> np.ndarray:
        """Image ids this process would find, ascending."""
        file_part = np.asarray(self.base.ids)[self.alive] if self.base is not None else np.empty(0, np.int64)
        return np.union1d(file_part, self.delta.live_images())

    def size(self) -> int:
        return (self.base.n - self.hidden if self.base is not None else 0) + self.delta.live

