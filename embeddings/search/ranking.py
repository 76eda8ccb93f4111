"""One ranking from two sides, and where it ends. Pure functions over numbers (no Django).

Meaning: the cosine of an image to the query vector. Keywords: the share of the query's word
weight an image's text or name contains, in [0, 1]. Neither side's scale is assumed: both rules
below measure this query's cosines against a "background", the cosines of a random sample of
the gallery's images to the same query (what an unrelated image scores for it), so they hold for
CLIP, SigLIP and the demo model alike:

- spread = best cosine - 90th percentile of the background: how far this query's best match
  stands out from what unrelated images score;
- fusion (calibrated sum): fused = cosine + keywords * lift, lift = (best - lowest candidate
  cosine) + spread: an image with every query word in its text or name goes past the best
  pure-meaning match however unrelated the model finds it (a model cannot read every word),
  ordered among its peers by meaning; half the words lift it half as far;
- cutoff: an image passes when its cosine is within CUTOFF_BAND * spread of the best, or when it
  contains every query word. On the demo gallery (360 images, every colour x shape query, the 10
  right images as truth) this passes about 9 images a query at mean F1 0.87 (docs/SEARCH.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BACKGROUND_QUANTILE = 90
CUTOFF_BAND = 0.3
ALL_WORDS = 0.999  # keyword share that counts as "every word" (float sums)
RRF_K = 60
CAP = 0.999  # a lifted score goes at most this share of the way from its cosine to 1
FUSION = "sum"  # or "rrf"; chosen by measurement on the hybrid test gallery (docs/SEARCH.md)


@dataclass
class Scale:
    best: float  # the best cosine among the candidates
    low: float  # the lowest
    reference: float  # what an unrelated image scores for this query
    spread: float  # best - reference, at least a tiny positive number


def scale(cosines, background) -> Scale:
    cosines = np.asarray(list(cosines), dtype=np.float64)
    best = float(cosines.max()) if cosines.size else 0.0
    bg = np.asarray(background, dtype=np.float64)
    reference = float(np.percentile(bg, BACKGROUND_QUANTILE)) if bg.size else float(np.median(cosines) if cosines.size else 0)
    low = float(cosines.min()) if cosines.size else 0.0
    return Scale(best, low, reference, max(best - reference, 1e-6))


def meaning_threshold(s: Scale) -> float:
    """The cosine from which an image passes on meaning alone. When the best match does not stand
    out from the background at all, nothing passes on meaning (the query matches nothing here)."""
    if s.best <= s.reference:
        return float("inf")
    return s.best - CUTOFF_BAND * s.spread


def fuse_sum(cosines: dict, keyword: dict, s: Scale) -> dict:
    """Calibrated sum: id -> fused score (on the cosine scale)."""
    lift = s.best - s.low + s.spread
    # Kept under 1, as a cosine is: min_score=1 still means "nothing", and a lifted score never
    # passes for an identical image. Past the cap, meaning still orders (the cap rises with it).
    return {i: min(c + keyword.get(i, 0.0) * lift, c + CAP * (1 - c)) if keyword.get(i) else c
            for i, c in cosines.items()}


def fuse_rrf(cosines: dict, keyword: dict) -> dict:
    """Reciprocal-rank fusion (kept to compare against; see docs/SEARCH.md): id -> 1/(k+rank) summed."""
    fused = {i: 0.0 for i in cosines}
    for side in (cosines, keyword):
        for rank, i in enumerate(sorted(side, key=lambda j: -side[j]), start=1):
            if i in fused:
                fused[i] += 1.0 / (RRF_K + rank)
    return fused


def fuse(cosines: dict, keyword: dict, s: Scale, method: str | None = None) -> dict:
    return fuse_rrf(cosines, keyword) if (method or FUSION) == "rrf" else fuse_sum(cosines, keyword, s)


def passes(cosine: float, keyword: float, threshold: float) -> bool:
    return cosine >= threshold or keyword >= ALL_WORDS


def order(fused: dict) -> list:
    """Ids best first; ties by id, so pages never shuffle."""
    return sorted(fused, key=lambda i: (-fused[i], i))
