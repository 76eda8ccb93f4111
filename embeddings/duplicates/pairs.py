"""Which images to compare, and what each compared pair is: pure (numpy and faiss), arrays in,
pairs out, so that the app's full pass, its per-image check, the evaluation test and the bench all
run the same code.

Candidates come from what each tier needs: for "same picture", images whose hashes lie within a
few bits (a multi-index hash of the whole-picture hashes, queried with every crop of the grid: the
work grows with the collection, not its square); for "similar", images taken moments apart (a
sort by taken time). The rules (embeddings.duplicates.rules) then decide each candidate."""
from __future__ import annotations

import faiss
import numpy as np

from embeddings.duplicates import hashing, rules

GRID = len(hashing.CROP_GRID) + 1  # an image's hashes: its crop grid, then its picture inside bars
WHOLES = list(hashing.WHOLES)


def as_unsigned(hashes) -> np.ndarray:
    return np.asarray(hashes, dtype=np.int64).view(np.uint64)


def distances_to(hashes, all_hashes: np.ndarray) -> np.ndarray:
    """The pair distance (rules.pair_distance) of one image (its GRID hashes) to every row of
    `all_hashes` (n, GRID), unsigned. Vectorised: 100k rows in a few ms."""
    mine = as_unsigned(hashes)
    one = np.bitwise_count(all_hashes[:, :, None] ^ mine[WHOLES][None, None, :]).min(axis=(1, 2))
    other = np.bitwise_count(all_hashes[:, WHOLES][:, :, None] ^ mine[None, None, :]).min(axis=(1, 2))
    return np.minimum(one, other)


def hash_candidates(hashes: np.ndarray, bits: int) -> dict[tuple[int, int], int]:
    """(i, j) with i < j -> pair distance, for every pair within `bits`, found by a multi-index
    hash of the images' whole-picture hashes queried with all their hashes: the 64 bits in 4
    tables of 16, each probed with up to `bits // 4` bits flipped, so that every pair within
    `bits` is found (one of the four 16-bit parts differs by at most that), exactly."""
    n = len(hashes)
    if n < 2:
        return {}
    hashes = np.asarray(hashes).reshape(n, GRID).view(np.int64)
    index = faiss.IndexBinaryMultiHash(64, 4, 16)
    index.nflip = bits // 4
    # each distinct hash once: most images have no bars (their inside is their whole), and a crop
    # of a flat part can hash like the whole; a fuller table or a repeated query only costs time
    owners, wholes = _distinct(hashes[:, WHOLES])
    index.add(hashing.to_bytes(wholes))
    q, queries = _distinct(hashes)
    lims, dist, ids = index.range_search(hashing.to_bytes(queries), bits + 1)
    q = np.repeat(q, np.diff(lims).astype(np.int64))
    ids = owners[ids.astype(np.int64)]
    keep = ids != q
    a, b, d = np.minimum(q, ids)[keep], np.maximum(q, ids)[keep], dist[keep]
    order = np.lexsort((d, b, a))
    a, b, d = a[order], b[order], d[order]
    first = np.ones(len(a), bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return {(int(x), int(y)): int(z) for x, y, z in zip(a[first], b[first], d[first])}


def _distinct(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row of each, hash) for the distinct hashes of each row."""
    owner = np.repeat(np.arange(len(rows)), rows.shape[1])
    flat = rows.reshape(-1)
    pairs_ = np.unique(np.stack([owner, flat], axis=1), axis=0)
    return pairs_[:, 0], pairs_[:, 1]


def time_candidates(taken: np.ndarray, seconds: int) -> list[tuple[int, int]]:
    """(i, j) with i < j for images both with a taken time (nan: none) at most `seconds` apart."""
    known = np.flatnonzero(~np.isnan(taken))
    order = known[np.argsort(taken[known], kind="stable")]
    times = taken[order]
    out = []
    for k in range(len(order)):
        end = np.searchsorted(times, times[k] + seconds, side="right")
        out.extend((min(order[k], order[m]), max(order[k], order[m])) for m in range(k + 1, end))
    return [(int(a), int(b)) for a, b in out]


def decide(bits: int, colour: float, taken_a, taken_b) -> str | None:
    """"same", "similar" or None for one compared pair."""
    if rules.same_picture(bits, colour, taken_a, taken_b):
        return "same"
    if rules.similar(bits, taken_a, taken_b):
        return "similar"
    return None


def _taken(t):
    return None if t is None or np.isnan(t) else int(t)


def find_pairs(hashes, colours, taken) -> dict[tuple[int, int], tuple[str, int]]:
    """Every pair of rows that is the same picture or a series: (i, j) -> (tier, bits).
    `hashes` (n, GRID) signed 64-bit, `colours` (n, 48), `taken` (n,) seconds or nan."""
    hashes = as_unsigned(hashes).reshape(-1, GRID)
    colours, taken = np.asarray(colours, np.float32), np.asarray(taken, np.float64)
    found = hash_candidates(hashes, rules.SAME_BITS)
    for a, b in time_candidates(taken, rules.SERIES_SECONDS):
        if (a, b) not in found:
            found[(a, b)] = int(distances_to(hashes[a].view(np.int64), hashes[b:b + 1])[0])
    out = {}
    for (a, b), bits in found.items():
        tier = decide(bits, rules.colour_distance(colours[a], colours[b]), _taken(taken[a]), _taken(taken[b]))
        if tier:
            out[(a, b)] = (tier, bits)
    return out
