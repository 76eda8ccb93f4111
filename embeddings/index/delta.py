"""A web process's in-memory delta: vectors newer than the host's index file, searched exactly.

Rows are appended to arrays that only grow (a bigger copy when full), so a search holding an
older view reads rows that stay put; a row that turns dead is only flagged. The builder folds
the delta into the next file, after which it starts empty again."""
from __future__ import annotations

import numpy as np


class Delta:
    def __init__(self, dim: int, capacity: int = 256):
        self.dim, self.n, self.live = dim, 0, 0
        self._alloc(capacity)

    def _alloc(self, capacity: int) -> None:
        old = (self.vecs, self.ids, self.emb, self.alive) if self.n else None
        self.vecs = np.empty((capacity, self.dim), np.float32)
        self.ids = np.empty(capacity, np.int64)
        self.emb = np.empty(capacity, np.int64)
        self.alive = np.zeros(capacity, bool)
        if old:
            for new, prev in zip((self.vecs, self.ids, self.emb, self.alive), old):
                new[:self.n] = prev[:self.n]

    def add(self, emb_ids, image_ids, vectors, unique: bool = False) -> None:
        """Append rows; the newest vector of an image (highest Embedding id) wins. `unique`: the
        caller vouches that the images are new here and each comes once (a full load)."""
        emb_ids, image_ids = np.asarray(emb_ids, np.int64), np.asarray(image_ids, np.int64)
        vectors = np.asarray(vectors, np.float32).reshape(len(emb_ids), self.dim)
        if not len(emb_ids):
            return
        if not unique:
            order = np.lexsort((emb_ids, image_ids))  # by image, then Embedding id
            last = np.r_[image_ids[order][1:] != image_ids[order][:-1], True]
            pick = order[last]
            emb_ids, image_ids, vectors = emb_ids[pick], image_ids[pick], vectors[pick]
            n = self.n
            cur = np.nonzero(self.alive[:n] & np.isin(self.ids[:n], image_ids))[0]
            if len(cur):
                incoming = np.searchsorted(image_ids, self.ids[cur])  # image_ids is sorted and unique now
                newer = emb_ids[incoming] > self.emb[cur]
                self.alive[cur[newer]] = False
                self.live -= int(newer.sum())
                stale = np.ones(len(emb_ids), bool)
                stale[incoming[~newer]] = False
                emb_ids, image_ids, vectors = emb_ids[stale], image_ids[stale], vectors[stale]
        m = len(emb_ids)
        if self.n + m > len(self.ids):
            self._alloc(max(2 * len(self.ids), self.n + m))
        s = slice(self.n, self.n + m)
        self.vecs[s], self.ids[s], self.emb[s], self.alive[s] = vectors, image_ids, emb_ids, True
        self.n += m
        self.live += m

    def _drop(self, mask) -> None:
        self.alive[:self.n][mask] = False
        self.live -= int(mask.sum())

    def remove_images(self, image_ids) -> None:
        if self.n:
            self._drop(self.alive[:self.n] & np.isin(self.ids[:self.n], image_ids))

    def remove_embeddings(self, emb_ids) -> None:
        if self.n:
            self._drop(self.alive[:self.n] & np.isin(self.emb[:self.n], emb_ids))

    def live_embeddings(self) -> np.ndarray:
        return self.emb[:self.n][self.alive[:self.n]]

    def live_images(self) -> np.ndarray:
        return self.ids[:self.n][self.alive[:self.n]]

    def rows_newer_than(self, snap):
        """(emb ids, image ids, vectors) of live rows that a new file does not hold in this version."""
        live = self.alive[:self.n]
        emb, ids, vecs = self.emb[:self.n][live], self.ids[:self.n][live], self.vecs[:self.n][live]
        rows = snap.row_of(ids)
        file_emb = np.where(rows >= 0, np.asarray(snap.emb_ids)[np.maximum(rows, 0)] if snap.n else -1, -1)
        keep = emb > file_emb
        return emb[keep], ids[keep], vecs[keep]

    @property
    def nbytes(self) -> int:
        return self.vecs.nbytes + self.ids.nbytes + self.emb.nbytes + self.alive.nbytes

    def view(self) -> tuple:
        return self.vecs, self.ids, self.alive, self.n

    @staticmethod
    def vectors_of(view: tuple, image_ids) -> dict[int, np.ndarray]:
        """The live vector of each of these images that a view holds."""
        vecs, ids, alive, n = view
        rows = np.flatnonzero(alive[:n] & np.isin(ids[:n], np.asarray(image_ids, np.int64)))
        return {int(ids[r]): vecs[r] for r in rows}

    @staticmethod
    def search_view(view: tuple, q: np.ndarray, k: int):
        """Exact top k of a view: (image ids, scores)."""
        vecs, ids, alive, n = view
        if not n:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        scores = vecs[:n] @ q
        scores[~alive[:n]] = -np.inf
        top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.isfinite(scores[top])]
        return ids[top], scores[top]
