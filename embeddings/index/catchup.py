"""How a web process keeps up with the database without full rebuilds.

New rows: every Embedding id above a low mark is read (ids only; vectors of the unseen ones). The
mark only passes an id once that id was seen, or after GRACE_SECONDS of absence (a transaction
that took the id and has not committed yet, or one that rolled back or was deleted): rows that
commit out of id order are found as they commit. Deletions: Tombstone ids above a mark, at once.
A count check is the safety net: when the database holds more rows than the process knows
(a commit later than the grace), the ids are compared in full and the missing rows fetched.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from embeddings.index import build
from embeddings.models import Embedding, Tombstone

log = logging.getLogger(__name__)
GRACE_SECONDS = 30.0
REWIND_IDS = 2000  # after a new file: ids this far below its highest are read again
COUNT_EVERY = 5.0  # seconds between count checks while rows change (60 when nothing seems to)
FETCH = 2000


class CatchUp:
    def __init__(self, index):
        self.index = index
        self.low_mark, self.tomb_mark = 0, 0
        self.seen: set[int] = set()
        self.gap_since: dict[int, float] = {}
        self.counted_at = 0.0

    def _mine(self):
        return Embedding.objects.filter(model_name=self.index.model_key)

    def waiting(self) -> bool:
        """An id gap is open: look again at the next refresh even if nothing says rows changed."""
        return bool(self.gap_since)

    def _restart(self, emb_mark: int, tomb_mark: int, known: np.ndarray) -> None:
        self.low_mark = max(0, emb_mark - REWIND_IDS)
        self.seen = set(known[known > self.low_mark].tolist())
        self.gap_since, self.tomb_mark = {}, tomb_mark

    def rebase(self, snap, kept_emb) -> None:
        known = np.concatenate([np.asarray(snap.emb_ids), kept_emb])
        self._restart(int(snap.meta["emb_mark"]), int(snap.meta["tomb_mark"]), known)

    def load_everything(self) -> None:
        """A full read into the delta (no usable file)."""
        tomb_mark = Tombstone.objects.order_by("-id").values_list("id", flat=True).first() or 0
        for emb_ids, image_ids, vectors in build.chunks(self.index.model_key):
            self.index.delta.add(emb_ids, image_ids, vectors, unique=True)
        known = self.index.delta.live_embeddings()
        self._restart(int(known.max()) if len(known) else 0, tomb_mark, known)

    def run(self, count: bool, force: bool = False, may_count: bool = True) -> bool:
        """Catch up; True when a count check says rows are missing (the caller reconciles). Without
        `may_count` no count is taken, even one that is due (the caller takes it later)."""
        now = time.monotonic()
        n_db = None
        if force or (may_count and ((count and now - self.counted_at >= COUNT_EVERY) or now - self.counted_at >= 60)):
            n_db, self.counted_at = self._mine().count(), now  # before the rows: they can only add
        late = self._tombstones()  # deletions the count may or may not have seen
        self._new_rows()
        self._advance(now)
        if n_db is None:
            return False
        if force:
            return self.index.size() != n_db
        return self.index.size() + late < n_db

    def _tombstones(self) -> int:
        rows = list(Tombstone.objects.filter(id__gt=self.tomb_mark).values_list("id", "image_id"))
        if rows:
            self.index.remove_images(np.asarray([image_id for _, image_id in rows], np.int64))
            self.tomb_mark = max(t for t, _ in rows)
        return len(rows)

    def _new_rows(self) -> None:
        ids = list(self._mine().filter(id__gt=self.low_mark).values_list("id", flat=True))
        new = sorted(i for i in ids if i not in self.seen)
        for s in range(0, len(new), FETCH):
            rows = list(self._mine().filter(id__in=new[s:s + FETCH]).values_list("id", "image_id", "vector"))
            if rows:
                vectors = np.frombuffer(b"".join(bytes(r[2]) for r in rows), np.float32).reshape(len(rows), -1)
                self.index.add_rows([r[0] for r in rows], [r[1] for r in rows], vectors)
        self.seen.update(new)

    def _advance(self, now: float) -> None:
        mark = self.low_mark
        for i in sorted(x for x in self.seen if x > mark):
            if i != mark + 1:  # ids mark+1 .. i-1 not seen: in flight, rolled back or deleted
                if now - self.gap_since.setdefault(mark + 1, now) < GRACE_SECONDS:
                    break
            mark = i
        self.low_mark = mark
        self.seen = {x for x in self.seen if x > mark}
        self.gap_since = {g: t for g, t in self.gap_since.items() if g > mark}

    def reconcile(self) -> None:
        """Compare every Embedding id with the rows held; fetch what is missing, drop what is gone."""
        db = np.asarray(self._mine().values_list("id", flat=True), np.int64)
        known = self.index.known_embeddings()
        missing, extra = np.setdiff1d(db, known), np.setdiff1d(known, db)
        for s in range(0, len(missing), FETCH):
            rows = list(self._mine().filter(id__in=missing[s:s + FETCH].tolist()).values_list("id", "image_id", "vector"))
            if rows:
                vectors = np.frombuffer(b"".join(bytes(r[2]) for r in rows), np.float32).reshape(len(rows), -1)
                self.index.add_rows([r[0] for r in rows], [r[1] for r in rows], vectors)
        if len(extra):
            self.index.remove_embeddings(extra)
        if len(missing) or len(extra):
            log.warning("index of %s: %d rows found late, %d gone without a tombstone", self.index.model_key,
                        len(missing), len(extra))
        self.seen.update(int(i) for i in missing if i > self.low_mark)
