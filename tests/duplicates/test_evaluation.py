"""The issue's bars on the evaluation set: 500 originals (textures, photo-like noise, gradients,
text), each with its 8 copies, series shots of every third scene and 100 distractors, drawn with a
fixed seed; every file goes through the app's own thumbnail, then the hashes and the rules the
full pass runs. Same picture: precision >= 0.98, recall >= 0.95; similar: reported, and held to
where it was measured. Figures for the whole set (300 distractors): bench/duplicates_eval.py."""
import collections
import json
import time

import pytest

from embeddings.duplicates import hashing
from embeddings.files.image_policy import inspect_image
from tests.duplicates import evalset

pytestmark = pytest.mark.slow


def test_same_picture_meets_the_bars_and_similar_is_reported():
    started = time.perf_counter()
    items = evalset.generate(originals=500, distractors=100, seed=24)
    thumbs = [inspect_image(i.data).thumbnail for i in items]
    hashes = [hashing.hashes_of_bytes(t)[1] for t in thumbs]
    colours = [hashing.colour_signature(t) for t in thumbs]
    result = evalset.evaluate(items, hashes, colours)
    print(json.dumps({**result, "images": len(items), "seconds": round(time.perf_counter() - started, 1)}))
    assert sum(i.transform == "original" and i.scene >= 0 for i in items) == 500
    copies = collections.Counter(i.transform for i in items if i.transform in evalset.SAME_TRANSFORMS)
    assert copies == dict.fromkeys(evalset.SAME_TRANSFORMS, 500)
    assert result["same"]["precision"] >= 0.98, result["same"]
    assert result["same"]["recall"] >= 0.95, result["same"]
    assert result["similar"]["precision"] >= 0.95 and result["similar"]["recall"] >= 0.93, result["similar"]
    assert min(result["recall_by_copy"].values()) >= 0.88, result["recall_by_copy"]
