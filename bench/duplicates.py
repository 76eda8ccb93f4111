"""Duplicates at 100k images: the full pass (every pair of the same picture by the multi-index
hash, every series pair by taken time, each decided by the rules), the check of one new image
against the collection (the worker's hook: its in-memory hash matrix), and the naive all-pairs
cost beside them. The 100k images are SYNTHETIC evidence, not drawn pictures (see synthetic()):
random whole-picture hashes with the crop-grid structure of real ones; 10% planted copies of
another (0-4 bits off), 5% burst shots of another (4-13 bits off, taken 1-30 s later); random
colours; 70% with a taken time over five years.

    .venv/bin/python bench/duplicates.py [--images 100000] [--new 200] [--out FILE]
"""
from __future__ import annotations

import argparse
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
import numpy as np  # noqa: E402

from bench import common  # noqa: E402
from embeddings.duplicates import hashing, pairs, rules, store  # noqa: E402
from embeddings.files.image_policy import inspect_image  # noqa: E402
from tests.duplicates import evalset  # noqa: E402


def real_hashes(originals: int) -> np.ndarray:
    items = evalset.generate(originals, distractors=originals // 2, seed=99)
    return np.asarray([hashing.hashes_of_bytes(inspect_image(i.data).thumbnail)[1] for i in items], np.int64)


def synthetic(n: int, real: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n images' hashes, colours and taken times (nan: none). Each whole-picture hash is random with
    32 bits set (a pHash splits its 64 at the median); its other 16 hashes keep the XOR offsets of a
    real image's grid and bars (how crops move a real hash), so the structure is real, the spread
    uniform: a real library's hashes are more clumped, which makes the multi-index hash's buckets
    fuller (a cost this bench does not show)."""
    def balanced(count, ones):
        bits = rng.random((count, 64)).argsort(axis=1) < np.broadcast_to(np.asarray(ones)[..., None], (count, 1))
        return (bits.astype(np.uint64) << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64).view(np.int64)

    offsets = real ^ real[:, :1]
    hashes = balanced(n, 32)[:, None] ^ offsets[rng.integers(0, len(real), n)]
    taken = np.where(rng.random(n) < 0.7, rng.uniform(1.5e9, 1.5e9 + 5 * 365 * 86400, n), np.nan)
    colours = rng.uniform(0, 255, (n, 48)).astype(np.float32)
    copies = rng.choice(n, n // 10, replace=False)
    sources = rng.integers(0, n, len(copies))
    hashes[copies] = hashes[sources] ^ balanced(len(copies), rng.integers(0, 5, len(copies)))[:, None]
    colours[copies] = np.clip(colours[sources] + rng.normal(0, 4, (len(copies), 48)), 0, 255)
    taken[copies] = np.where(rng.random(len(copies)) < 0.5, taken[sources], np.nan)
    bursts = rng.choice(n, n // 20, replace=False)
    sources = rng.integers(0, n, len(bursts))
    hashes[bursts] = hashes[sources] ^ balanced(len(bursts), rng.integers(4, 14, len(bursts)))[:, None]
    taken[bursts] = taken[sources] + rng.uniform(1, 30, len(bursts))
    return hashes, colours, taken


def _when(t):
    return None if np.isnan(t) else int(t)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=200, help="new images checked one by one")
    parser.add_argument("--out")
    args = parser.parse_args()
    rng = np.random.default_rng(24)
    out = {"machine": common.machine_line(), "images": args.images, "load_start": common.loadavg()}
    hashes, colours, taken = synthetic(args.images, real_hashes(120), rng)

    started = time.perf_counter()
    found = pairs.find_pairs(hashes, colours, taken)
    out["full_pass_s"] = round(time.perf_counter() - started, 2)
    tiers = [t for t, _ in found.values()]
    out["pairs"] = {"same": tiers.count("same"), "similar": tiers.count("similar")}
    started = time.perf_counter()
    groups = rules.same_groups({p: b for p, (t, b) in found.items() if t == "same"},
                               {k: _when(t) for k, t in enumerate(taken)})
    out["same_groups_s"] = round(time.perf_counter() - started, 2)
    out["same_groups"] = len(groups)

    matrix = store.Matrix()  # the worker's matrix, filled here without the database
    started = time.perf_counter()
    matrix.add(np.arange(args.images), hashes)
    out["matrix_fill_s"] = round(time.perf_counter() - started, 2)
    times = []
    order = np.argsort(taken)  # the database's index on taken_at, as a sorted array here
    when = taken[order]
    for k in rng.choice(args.images, args.new, replace=False):
        started = time.perf_counter()
        near = matrix.near(hashes[k], rules.SAME_BITS)
        if not np.isnan(taken[k]):  # images taken moments apart (store.check_image asks the database)
            lo, hi = np.searchsorted(when, [taken[k] - rules.SERIES_SECONDS, taken[k] + rules.SERIES_SECONDS + 1e-6])
            near.update(dict.fromkeys(order[lo:hi].tolist()))
        near.pop(int(k), None)
        others = np.fromiter(near, np.int64, len(near))
        bits = pairs.distances_to(hashes[k], pairs.as_unsigned(hashes[others])) if len(others) else []
        decided = {int(o): pairs.decide(int(b), rules.colour_distance(colours[k], colours[o]), _when(taken[k]), _when(taken[o]))
                   for o, b in zip(others, bits)}
        times.append((time.perf_counter() - started) * 1000)
        assert all(d is None or d in ("same", "similar") for d in decided.values())
    out["one_new_image_ms"] = {"median": round(float(np.median(times)), 2), "p95": round(common.percentile(times, 95), 2),
                               "max": round(max(times), 2)}

    # naive all pairs: every image's 17 hashes against every other's two wholes, both ways
    sample = 500
    started = time.perf_counter()
    every = pairs.as_unsigned(hashes)
    for k in range(sample):
        pairs.distances_to(hashes[k], every)
    per_image = (time.perf_counter() - started) / sample
    out["naive_all_pairs_s"] = round(per_image * args.images / 2, 1)
    out["naive_note"] = f"{sample} images against all, scaled to n(n-1)/2 pairs (vectorised numpy, the same distance)"
    out["load_end"] = common.loadavg()
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
