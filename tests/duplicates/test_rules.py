"""The duplicate evidence and rules on a small evaluation set drawn like the full one
(tests/duplicates/evalset.py; the full figures come from bench/duplicates_eval.py): each file goes
through the app's own thumbnail, then the hashes."""
import io

import numpy as np
import pytest
from PIL import Image

from embeddings.duplicates import hashing, rules
from embeddings.files.image_policy import inspect_image
from tests.duplicates import evalset


@pytest.fixture(scope="module")
def small_set():
    items = evalset.generate(originals=48, distractors=24, seed=7)
    thumbs = [inspect_image(i.data).thumbnail for i in items]
    return items, [hashing.hashes_of_bytes(t)[1] for t in thumbs], [hashing.colour_signature(t) for t in thumbs]


def _with_original(items):
    originals = {i.picture: k for k, i in enumerate(items) if i.transform == "original"}
    return [(k, originals[i.picture], i.transform) for k, i in enumerate(items) if i.transform in evalset.SAME_TRANSFORMS]


def test_the_set_has_every_kind_and_copy(small_set):
    items, _, _ = small_set
    assert {i.extra.get("kind") for i in items if i.scene >= 0} == set(evalset.KINDS)
    assert {i.transform for i in items} == {"original", "series", *evalset.SAME_TRANSFORMS}
    assert sum(i.scene == -1 for i in items) == 24
    # every original, series shot and distractor is a picture of its own; copies share their original's
    assert len({i.picture for i in items}) == len([i for i in items if i.transform in ("original", "series")])


def test_lossless_and_reencoded_copies_hash_alike(small_set):
    items, hashes, _ = small_set
    for transform in ("png_no_exif", "exif_rotated", "jpeg"):
        near = [hashing.distance(hashes[k][0], hashes[o][0]) <= rules.SAME_BITS
                for k, o, t in _with_original(items) if t == transform]
        assert np.mean(near) >= 0.95, (transform, np.mean(near))


def test_the_crop_grid_finds_crops_the_whole_hash_misses(small_set):
    items, hashes, _ = small_set
    pairs = [(k, o) for k, o, t in _with_original(items) if t == "crop"]
    whole = [hashing.distance(hashes[k][0], hashes[o][0]) for k, o in pairs]
    grid = [rules.pair_distance(hashes[k], hashes[o]) for k, o in pairs]
    assert all(g <= w for g, w in zip(grid, whole))
    assert np.median(grid) < np.median(whole)
    assert np.mean([g <= rules.SAME_BITS for g in grid]) >= 0.8


def test_distractors_are_not_the_same_picture(small_set):
    items, hashes, colours = small_set
    ds = [k for k, i in enumerate(items) if i.scene == -1 or i.transform == "original"]
    same = [(a, b) for n, a in enumerate(ds) for b in ds[n + 1:]
            if rules.same_picture(rules.pair_distance(hashes[a], hashes[b]),
                                  rules.colour_distance(colours[a], colours[b]), None, None)]
    assert len(same) <= 1, same


def test_flat_bars_are_trimmed_like_a_screenshot():
    rng = np.random.default_rng(1)
    inner = rng.integers(0, 255, (60, 80)).astype(np.float32)
    canvas = np.full((100, 90), 20.0, dtype=np.float32)
    canvas[25:85, 5:85] = inner
    assert hashing.flat_edges(canvas) == (25, 85, 5, 85)
    assert hashing.flat_edges(np.full((40, 40), 7.0)) == (0, 40, 0, 40)  # a flat picture stays whole
    thin = np.full((100, 100), 20.0, dtype=np.float32)
    thin[45:55, :] = rng.integers(0, 255, (10, 100))
    assert hashing.flat_edges(thin) == (0, 100, 0, 100)  # never trimmed below half a side


def test_hashes_are_signed_64_bit_and_round_trip_to_bytes():
    im = Image.fromarray(np.random.default_rng(2).integers(0, 255, (120, 160, 3), dtype=np.uint8))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    full, crops = hashing.hashes_of_bytes(buf.getvalue())
    assert len(crops) == len(hashing.CROP_GRID) + 1 == 17 and crops[0] == full
    assert crops[16] == full  # no bars: the picture inside them is the whole
    assert all(-(1 << 63) <= h < (1 << 63) for h in crops)
    rows = hashing.to_bytes([full, -1, 0])
    assert rows.shape == (3, 8) and rows[1].tolist() == [255] * 8 and rows[2].tolist() == [0] * 8
    assert hashing.distance(full, full) == 0 and hashing.distance(-1, 0) == 64


def test_a_different_taken_time_is_another_shot():
    assert rules.same_picture(0, 0.0, 100, None) and rules.same_picture(0, 0.0, None, None)
    assert not rules.same_picture(0, 0.0, 100, 103)
    assert rules.similar(10, 100, 130) and not rules.similar(10, 100, 1000) and not rules.similar(10, None, 100)
    assert not rules.same_picture(rules.SAME_BITS + 2, 0.0, None, None)
    assert not rules.same_picture(0, rules.SAME_COLOUR + 1, None, None)


def test_star_groups_do_not_chain():
    # a path a-b-c-d-e: components would make one group of five; stars keep each group around one image
    groups = rules.star_groups([(1, 2), (2, 3), (3, 4), (4, 5)])
    assert all(len(g) <= 3 for g in groups)
    assert sorted(x for g in groups for x in g) == sorted(set(x for g in groups for x in g))  # nobody twice
    assert rules.star_groups([(1, 2), (1, 3), (1, 4)]) == [[1, 2, 3, 4]]
    assert rules.star_groups([]) == []


def test_a_bar_meeting_a_soft_gradient_is_cut_at_the_bar_and_a_gradient_alone_is_whole():
    ramp = np.tile(np.linspace(180, 196, 80, dtype=np.float32), (60, 1))  # rows flat to the eye (std < 4)
    canvas = np.full((100, 90), 25.0, dtype=np.float32)
    canvas[20:80, 5:85] = ramp
    assert hashing.flat_edges(canvas) == (20, 80, 5, 85)
    assert hashing.flat_edges(ramp) == (0, 60, 0, 80)


def test_one_picture_has_one_taken_time():
    # 3 has no time and pairs with 1 (t=100, 2 bits) and 2 (t=105, a series shot, 6 bits): it is 1's copy
    groups = rules.same_groups({(1, 3): 2, (2, 3): 6, (1, 4): 4}, {1: 100, 2: 105, 3: None, 4: None})
    assert sorted(map(sorted, groups)) == [[1, 3, 4]]
    # a star never takes two different times, and an image left out joins its nearest partner's group
    groups = rules.same_groups({(1, 2): 0, (1, 3): 2, (2, 5): 4, (1, 4): 4}, {1: None, 2: 7, 3: 9, 4: 7, 5: None})
    assert sorted(map(sorted, groups)) == [[1, 2, 4, 5]]
    assert rules.same_groups({}, {}) == []


def test_colours_are_compared_after_a_brightness_and_contrast_fit():
    rng = np.random.default_rng(3)
    a = rng.uniform(40, 200, 48)
    assert rules.colour_distance(a, a * 1.15 + 4) < 1  # a brighter copy
    assert rules.colour_distance(a, (a - a.mean()) * 0.9 + a.mean()) < 1  # less contrast
    assert rules.colour_distance(a, rng.uniform(40, 200, 48)) > rules.SAME_COLOUR  # other colours
    assert rules.colour_distance(a, 255 - a) > rules.SAME_COLOUR  # a negative is no fit (the gain stays positive)
