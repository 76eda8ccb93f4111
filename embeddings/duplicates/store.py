"""The evidence and pairs in the database: hashes made when an image is indexed, the check of a new
image against the collection (its neighbours only), and the full pass (after a model switch, or
to start over). Reads the thumbnails through the storage; writes only the duplicates' own tables."""
from __future__ import annotations

import logging
import threading
from datetime import timedelta

import faiss
import numpy as np
from django.db import transaction
from django.db.models import Q

from embeddings.duplicates import hashing, pairs, rules
from embeddings.models import DuplicatePair, Image, ImageHash

log = logging.getLogger(__name__)
CHUNK = 500
SERIES = timedelta(seconds=rules.SERIES_SECONDS)


def thumbnail_bytes(image: Image) -> bytes:
    with image.thumbnail.storage.open(image.thumbnail.name, "rb") as f:
        return f.read()


def evidence(data: bytes) -> ImageHash:
    full, grid, signature = hashing.evidence_of_bytes(data)
    colour = np.clip(np.rint(signature), 0, 255).astype(np.uint8)
    return ImageHash(full=full, grid=hashing.to_bytes(grid).tobytes(), colour=colour.tobytes())


def save_evidence(images) -> list[int]:
    """Make and store the hashes of these images (replacing older ones); the ids that have them."""
    return [row.image_id for row in _save_evidence(images)]


def _save_evidence(images) -> list[ImageHash]:
    made = []
    for image in images:
        if not image.thumbnail:
            continue
        try:
            row = evidence(thumbnail_bytes(image))
        except (OSError, ValueError) as exc:  # a thumbnail gone or unreadable: no evidence, no pairs
            log.warning("no duplicate evidence for image %s: %s", image.pk, exc)
            continue
        row.image_id = image.pk
        made.append(row)
    with transaction.atomic():
        ImageHash.objects.filter(image_id__in=[r.image_id for r in made]).delete()
        ImageHash.objects.bulk_create(made)
    return made


def _grid(blob) -> np.ndarray:
    return np.frombuffer(bytes(blob), dtype=">i8").astype(np.int64)


def _seconds(when) -> float:
    return when.timestamp() if when else np.nan


class Matrix:
    """Every image's hashes in memory, caught up by row id (re-made rows get new ids): a worker
    checks one new image against 100k in a few ms without reading them all each time. Two flat
    binary indexes (faiss, popcount in C++): the images' whole-picture hashes, queried with the
    new image's 17, and all their hashes, queried with its two wholes. A re-made image's old rows
    stay (their id is the same; a full pass starts afresh), and rows of images deleted since stay
    until the process restarts: candidates are read back from the database."""

    def __init__(self):
        self.lock = threading.Lock()
        self.watermark = 0
        self.wholes, self.all = faiss.IndexBinaryFlat(64), faiss.IndexBinaryFlat(64)
        self.whole_ids, self.all_ids = np.zeros(0, np.int64), np.zeros(0, np.int64)

    def add(self, image_ids, hashes) -> None:
        """Rows of (image id, its GRID signed hashes)."""
        hashes = np.asarray(hashes, np.int64).reshape(-1, pairs.GRID)
        ids = np.asarray(image_ids, np.int64)
        self.wholes.add(hashing.to_bytes(hashes[:, pairs.WHOLES].reshape(-1)))
        self.all.add(hashing.to_bytes(hashes.reshape(-1)))
        self.whole_ids = np.concatenate([self.whole_ids, np.repeat(ids, len(pairs.WHOLES))])
        self.all_ids = np.concatenate([self.all_ids, np.repeat(ids, pairs.GRID)])

    def sync(self) -> None:
        with self.lock:
            rows = list(ImageHash.objects.filter(id__gt=self.watermark).order_by("id").values_list("id", "image_id", "grid"))
            if rows:
                self.add([r[1] for r in rows], np.stack([_grid(r[2]) for r in rows]))
                self.watermark = rows[-1][0]

    def near(self, hashes, bits: int) -> dict[int, int]:
        """image id -> pair distance for every image within `bits` of this one (hashes: its GRID)."""
        hashes = np.asarray(hashes, np.int64)
        out: dict[int, int] = {}
        # One thread: a search of a few queries split across OpenMP threads waited 7 ms a call for
        # a busy second core (a database beside the worker), against 2 ms alone at 100k images.
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            for index, ids, queries in ((self.wholes, self.whole_ids, hashes), (self.all, self.all_ids, hashes[pairs.WHOLES])):
                if index.ntotal == 0:
                    continue
                _, dist, found = index.range_search(hashing.to_bytes(queries), bits + 1)
                for image, d in zip(ids[found].tolist(), dist.tolist()):
                    if d < out.get(image, 99):
                        out[image] = d
        finally:
            faiss.omp_set_num_threads(threads)
        return out


_matrix = Matrix()


def _store_pairs(decided: dict[int, dict[int, tuple[str, int]]]) -> None:
    """Replace the pairs of these images (image -> its partner -> (tier, bits)), in one transaction."""
    with transaction.atomic():
        DuplicatePair.objects.filter(Q(low_id__in=list(decided)) | Q(high_id__in=list(decided))).delete()
        rows = {(min(i, o), max(i, o)): (t, b) for i, found in decided.items() for o, (t, b) in found.items()}
        DuplicatePair.objects.bulk_create(
            [DuplicatePair(low_id=a, high_id=b, tier=t, bits=bits) for (a, b), (t, bits) in rows.items()], ignore_conflicts=True)


def compare(image: Image, mine: ImageHash, matrix: Matrix) -> dict[int, tuple[str, int]]:
    """One image (its hashes `mine`, stored, and `matrix` caught up with them) against the collection:
    hash neighbours within the same picture's bits and images taken moments apart; partner ->
    (tier, bits) for the pairs the rules keep."""
    grid = _grid(mine.grid)
    near = matrix.near(grid, rules.SAME_BITS)  # a series pair needs times moments apart: found by time
    near.pop(image.pk, None)
    if image.taken_at:
        moments = Image.objects.filter(taken_at__range=(image.taken_at - SERIES, image.taken_at + SERIES))
        near.update(dict.fromkeys(moments.exclude(pk=image.pk).values_list("pk", flat=True)[:200], None))
    # the candidates' evidence as it is now (the matrix may hold an older one): distance, colour, time
    found = list(ImageHash.objects.filter(image_id__in=list(near)).exclude(image__status=Image.Status.FAILED)
                 .values_list("image_id", "grid", "colour", "image__taken_at"))
    bits = pairs.distances_to(grid, pairs.as_unsigned(np.stack([_grid(r[1]) for r in found]))) if found else []
    colour = np.frombuffer(bytes(mine.colour), np.uint8)
    decided = {}
    for (other, _, blob, taken), d in zip(found, bits):
        c = rules.colour_distance(colour, np.frombuffer(bytes(blob), np.uint8))
        tier = pairs.decide(int(d), c, _int_seconds(image.taken_at), _int_seconds(taken))
        if tier:
            decided[other] = (tier, int(d))
    return decided


def _int_seconds(when):
    return None if when is None else int(when.timestamp())


def check_new(image_ids) -> int:
    """The worker's hook after a batch commits: hashes, then each image against the collection."""
    images = list(Image.objects.filter(pk__in=list(image_ids), status=Image.Status.INDEXED))
    made = {row.image_id: row for row in _save_evidence(images)}
    _matrix.sync()  # once for the batch: its rows are all stored (a round trip an image cost ~1 ms)
    decided = {i.pk: compare(i, made[i.pk], _matrix) for i in images if i.pk in made}
    _store_pairs(decided)
    return sum(len(d) for d in decided.values())


def full_pass(rehash: bool = False, progress=None) -> dict:
    """Every indexed image's hashes (only the missing ones unless `rehash`), then every pair found
    anew: the stored pairs are replaced in one transaction."""
    todo = Image.objects.filter(status=Image.Status.INDEXED)
    if not rehash:
        todo = todo.filter(duplicate_hash__isnull=True)
    ids = list(todo.values_list("pk", flat=True))
    for start in range(0, len(ids), CHUNK):
        save_evidence(Image.objects.filter(pk__in=ids[start:start + CHUNK]))
        if progress:
            progress(min(start + CHUNK, len(ids)), len(ids))
    rows = list(ImageHash.objects.filter(image__status=Image.Status.INDEXED).order_by("image_id")
                .values_list("image_id", "grid", "colour", "image__taken_at"))
    if not rows:
        found = {}
    else:
        image_ids = [r[0] for r in rows]
        found = pairs.find_pairs(np.stack([_grid(r[1]) for r in rows]),
                                 np.stack([np.frombuffer(bytes(r[2]), np.uint8) for r in rows]).astype(np.float32),
                                 np.asarray([_seconds(r[3]) for r in rows], np.float64))
    with transaction.atomic():
        DuplicatePair.objects.all().delete()
        # rows are in id order, so row a < row b is image low < image high
        DuplicatePair.objects.bulk_create([DuplicatePair(low_id=image_ids[a], high_id=image_ids[b], tier=t, bits=bits)
                                           for (a, b), (t, bits) in found.items()], batch_size=2000)
    return {"hashed": len(ids), "images": len(rows), "pairs": len(found)}
