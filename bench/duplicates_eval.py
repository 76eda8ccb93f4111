"""The duplicate rules on the evaluation set (tests/duplicates/evalset.py): precision and recall of
the "same picture" and "similar" tiers, pairs counted inside the groups the rules form (the code
the app's full pass runs: embeddings.duplicates.pairs and rules), recall by copy kind, and the
hashing cost. What the rules see is what the app makes of each file: its
thumbnail (embeddings.files.image_policy), then the hashes (embeddings.duplicates.hashing).

    .venv/bin/python bench/duplicates_eval.py [--originals 500] [--distractors 300] [--out FILE]
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
from embeddings.duplicates import hashing, rules  # noqa: E402
from embeddings.files.image_policy import inspect_image  # noqa: E402
from tests.duplicates import evalset  # noqa: E402


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
    hashes = [hashing.hashes_of_bytes(b)[1] for b in thumbs]
    timings["hash_ms_per_image"] = round((time.perf_counter() - t) * 1000 / len(items), 3)
    t = time.perf_counter()
    colours = [hashing.colour_signature(b) for b in thumbs]
    timings["colour_ms_per_image"] = round((time.perf_counter() - t) * 1000 / len(items), 3)
    t = time.perf_counter()
    result = evalset.evaluate(items, hashes, colours)
    timings["rules_s"] = round(time.perf_counter() - t, 2)
    result.update(timings=timings, images=len(items), originals=args.originals, distractors=args.distractors,
                  rules={"SAME_BITS": rules.SAME_BITS, "SAME_COLOUR": rules.SAME_COLOUR, "GAIN": rules.GAIN,
                         "SERIES_SECONDS": rules.SERIES_SECONDS, "SIMILAR_BITS": rules.SIMILAR_BITS})
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
