"""When two images are the same picture, and how pairs become groups. Pure: hashes, colour
signatures and taken times in, decisions out. Each threshold was chosen on the evaluation set of
tests/duplicates/evalset.py (500 originals, 4,000 copies, 334 series shots, 300 distractors;
figures in docs/DUPLICATES.md, made by bench/duplicates_eval.py)."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from embeddings.duplicates.hashing import WHOLES, distance

# Most bits two hashes may differ in for the same picture. Distances are even (the median splits
# the 64 bits in halves). 6 kept precision 0.94 with star groups; 8 gained 1 point of recall for
# 4 points of precision; 10 lost both (docs/DUPLICATES.md).
SAME_BITS = 6
# Most mean absolute difference (0-255) of the 4x4 colour signatures: 95% of true pairs lie
# under 18; two gradients whose grey hashes collide rarely share their colours.
SAME_COLOUR = 18.0
# Two shots whose EXIF taken times differ are two shots, however alike: a copy keeps its
# original's time or loses it, never changes it. They can be a series.
SERIES_SECONDS = 60
SIMILAR_BITS = 16


def pair_distance(a_hashes, b_hashes) -> int:
    """The fewest bits between one image's hashes of the whole (as it is, inside its bars) and the
    other's 17 hashes (its crop grid and inside its bars), either way round: a copy cut by up to
    10% a side lies near one of its original's grid crops; a screenshot's inside near the original."""
    a_whole, b_whole = [a_hashes[i] for i in WHOLES], [b_hashes[i] for i in WHOLES]
    return min(min(distance(x, y) for x in a_hashes for y in b_whole), min(distance(x, y) for x in b_hashes for y in a_whole))


# A copy's brightness and contrast may change a little (SPEC §15): the colours are compared after
# the one's are fitted to the other's by a gain and an offset, the gain kept within these bounds
# (brightness ±15% and contrast ±10% need 0.75-1.3). Raw differences lost 18% of recoloured
# copies at 18; fitted, they stay under it while unrelated colours stay apart.
GAIN = (0.7, 1.4)


def colour_distance(a, b) -> float:
    """Mean absolute difference (0-255) of two colour signatures, b fitted to a by gain and offset."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    bc = b - b.mean()
    gain = float(np.clip((bc * (a - a.mean())).sum() / max(float((bc * bc).sum()), 1e-6), *GAIN))
    return float(np.abs(a - (a.mean() + gain * bc)).mean())


def same_picture(bits: int, colour: float, taken_a, taken_b) -> bool:
    if taken_a is not None and taken_b is not None and taken_a != taken_b:
        return False
    return bits <= SAME_BITS and colour <= SAME_COLOUR


def similar(bits: int, taken_a, taken_b) -> bool:
    """A series: both taken times known, moments apart, the pictures alike."""
    if taken_a is None or taken_b is None:
        return False
    return abs(taken_a - taken_b) <= SERIES_SECONDS and bits <= SIMILAR_BITS


def star_groups(edges) -> list[list]:
    """Groups from pairs without chaining: the image with the most partners takes them all, then
    the next among those left. Joining pairs transitively (connected components) let runs of
    look-alike gradients and series shots merge into one group of thousands (precision 0.008
    at 10 bits on the evaluation set, against 0.56 with stars)."""
    partners = defaultdict(set)
    for a, b in edges:
        partners[a].add(b)
        partners[b].add(a)
    done, groups = set(), []
    for seed in sorted(partners, key=lambda k: (-len(partners[k]), k)):
        if seed in done:
            continue
        group = [seed] + sorted(m for m in partners[seed] if m not in done)
        done.update(group)
        if len(group) > 1:
            groups.append(group)
    return groups


def _key(a, b):
    return (a, b) if a < b else (b, a)


def same_groups(edges: dict, taken: dict) -> list[list]:
    """Groups of the same picture from its pairs ((a, b) -> bits) and taken times (id -> seconds
    or None). One picture has one taken time, so:
    - an image without a time that pairs with images of different times is the copy of one of
      them only: the time of its nearest partner (fewest bits) wins, its pairs to the others go.
      Such an image (a PNG or a screenshot of an original, EXIF gone) was the bridge that put a
      series shot into its scene's group: 94% of the false pairs at 6 bits (docs/DUPLICATES.md);
    - stars (star_groups' order) take a partner only if its time agrees with the group's;
    - an image left out of every star joins the group of its nearest partner, times agreeing."""
    partners = defaultdict(list)
    for (a, b), bits in edges.items():
        partners[a].append((bits, b))
        partners[b].append((bits, a))
    dropped = set()
    for x, near in partners.items():
        if taken.get(x) is not None:
            continue
        timed = sorted((bits, taken[y], y) for bits, y in near if taken.get(y) is not None)
        if timed:
            dropped.update(_key(x, y) for _, t, y in timed if t != timed[0][1])
    live = defaultdict(list)
    for (a, b), bits in edges.items():
        if (a, b) not in dropped:
            live[a].append((bits, b))
            live[b].append((bits, a))
    where, groups = {}, []
    for seed in sorted(live, key=lambda k: (-len(live[k]), k)):
        if seed in where:
            continue
        group, times = [seed], {taken.get(seed)} - {None}
        for _, m in sorted(live[seed]):
            if m in where or m in group or (taken.get(m) is not None and times and taken[m] not in times):
                continue
            group.append(m)
            times |= {taken.get(m)} - {None}
        if len(group) > 1:
            where.update(dict.fromkeys(group, len(groups)))
            groups.append(group)
    for x in sorted(live):
        if x in where:
            continue
        for _, y in sorted(live[x]):
            g = where.get(y)
            times = {taken.get(k) for k in groups[g]} - {None} if g is not None else set()
            if g is not None and (taken.get(x) is None or not times or taken[x] in times):
                groups[g].append(x)
                where[x] = g
                break
    return groups
