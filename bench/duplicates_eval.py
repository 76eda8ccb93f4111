"""The duplicate rules on the evaluation set (tests/duplicates/evalset.py): precision and recall of
the "same picture" and "similar" tiers, pairs counted inside the groups the rules form, recall by
copy kind, and the hashing cost. What the rules see is what the app makes of each file: its
thumbnail (embeddings.files.image_policy), then the hashes (embeddings.duplicates.hashing).

    .venv/bin/python bench/duplicates_eval.py [--originals 500] [--distractors 300] [--out FILE]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clipsearch.settings")
os.environ.setdefault("CLIPSEARCH_DATA_DIR", str(ROOT / "var-h24"))
import django  # noqa: E402

django.setup()
import faiss  # noqa: E402

from embeddings.duplicates import hashing, rules  # noqa: E402
from embeddings.files.image_policy import inspect_image  # noqa: E402
from tests.duplicates import evalset  # noqa: E402


def pair_scores(crops, full):
    """(a, b) -> fewest bits between one's crop grid and the other's hash, for pairs within
    SIMILAR_BITS (a range search of every grid crop among the whole-picture hashes)."""
    index = faiss.IndexBinaryFlat(64)
    index.add(hashing.to_bytes(full))
    grid = len(hashing.CROP_GRID)
    lims, dist, ids = index.range_search(hashing.to_bytes([c for cs in crops for c in cs]), rules.SIMILAR_BITS + 1)
    best = {}
    for q in range(len(crops) * grid):
        x = q // grid
        for d, y in zip(dist[lims[q]:lims[q + 1]], ids[lims[q]:lims[q + 1]]):
            if y != x:
                key = (min(x, int(y)), max(x, int(y)))
                best[key] = min(best.get(key, 99), int(d))
    return best


def score(groups, truth, positives):
    tp = fp = 0
    for g in groups:
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                if truth(g[i]) == truth(g[j]):
                    tp += 1
                else:
                    fp += 1
    return {"precision": round(tp / max(1, tp + fp), 4), "recall": round(tp / max(1, positives), 4),
            "true_pairs": tp, "false_pairs": fp, "positive_pairs": positives}


def evaluate(items, thumbs, hashes, colours):
    full = [h[0] for h in hashes]
    best = pair_scores([h[1] for h in hashes], full)
    taken = [i.taken for i in items]
    same_edges = [p for p, d in best.items()
                  if rules.same_picture(d, rules.colour_distance(colours[p[0]], colours[p[1]]), taken[p[0]], taken[p[1]])]
    similar_edges = same_edges + [p for p, d in best.items() if rules.similar(d, taken[p[0]], taken[p[1]])]
    by_picture, by_scene = collections.Counter(i.picture for i in items), collections.Counter(
        i.scene if i.scene >= 0 else ("d", k) for k, i in enumerate(items))
    same_groups = rules.star_groups(same_edges)
    out = {"same": score(same_groups, lambda k: items[k].picture, sum(n * (n - 1) // 2 for n in by_picture.values())),
           "similar": score(rules.star_groups(similar_edges), lambda k: items[k].scene if items[k].scene >= 0 else ("d", k),
                            sum(n * (n - 1) // 2 for n in by_scene.values()))}
    where = {k: g for g, members in enumerate(same_groups) for k in members}
    originals = {i.picture: k for k, i in enumerate(items) if i.transform == "original"}
    found, total = collections.Counter(), collections.Counter()
    for k, i in enumerate(items):
        if i.transform in evalset.SAME_TRANSFORMS:
            total[i.transform] += 1
            found[i.transform] += where.get(k, -1) == where.get(originals[i.picture], -2)
    out["recall_by_copy"] = {t: round(found[t] / total[t], 4) for t in total}
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--originals", type=int, default=500)
    parser.add_argument("--distractors", type=int, default=300)
    parser.add_argument("--out")
    args = parser.parse_args()
    t = time.perf_counter()
    items = evalset.generate(args.originals, distractors=args.distractors)
    timings = {"generate_s": round(time.perf_counter() - t, 2)}
    t = time.perf_counter()
    thumbs = [inspect_image(i.data).thumbnail for i in items]
    timings["thumbnails_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    hashes = [hashing.hashes_of_bytes(b) for b in thumbs]
    timings["hash_ms_per_image"] = round((time.perf_counter() - t) * 1000 / len(items), 3)
    t = time.perf_counter()
    colours = [hashing.colour_signature(b) for b in thumbs]
    timings["colour_ms_per_image"] = round((time.perf_counter() - t) * 1000 / len(items), 3)
    t = time.perf_counter()
    result = evaluate(items, thumbs, hashes, colours)
    timings["rules_s"] = round(time.perf_counter() - t, 2)
    result.update(timings=timings, images=len(items), originals=args.originals, distractors=args.distractors,
                  rules={"SAME_BITS": rules.SAME_BITS, "SAME_COLOUR": rules.SAME_COLOUR,
                         "SERIES_SECONDS": rules.SERIES_SECONDS, "SIMILAR_BITS": rules.SIMILAR_BITS})
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
