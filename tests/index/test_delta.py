"""The in-memory delta (embeddings.index.delta), pure numpy: newest vector per image wins, removals
only flag rows, growth keeps the rows, and an exact search of a view."""
import numpy as np

from embeddings.index.delta import Delta


def unit(*xs):
    v = np.asarray(xs, np.float32)
    return v / np.linalg.norm(v)


def test_the_newest_embedding_of_an_image_wins_whatever_the_order():
    d = Delta(2)
    d.add([5, 3], [1, 1], [unit(1, 0), unit(0, 1)])
    assert d.live == 1 and list(d.live_embeddings()) == [5]
    d.add([4], [1], [unit(1, 1)])  # older than what is held: ignored
    assert list(d.live_embeddings()) == [5]
    d.add([9], [1], [unit(0, 1)])  # newer: replaces
    assert list(d.live_embeddings()) == [9] and d.live == 1


def test_search_finds_the_best_live_rows_and_skips_removed_ones():
    d = Delta(2, capacity=2)
    d.add([1, 2, 3], [10, 20, 30], [unit(1, 0), unit(1, 1), unit(0, 1)])  # past the capacity: grows
    assert d.n == 3 and len(d.ids) >= 3
    ids, scores = Delta.search_view(d.view(), unit(1, 0), 2)
    assert [int(i) for i in ids[np.argsort(-scores)]] == [10, 20]
    d.remove_images([10])
    ids, _ = Delta.search_view(d.view(), unit(1, 0), 2)
    assert set(int(i) for i in ids) == {20, 30}
    d.remove_embeddings([2])
    ids, _ = Delta.search_view(d.view(), unit(1, 0), 5)
    assert [int(i) for i in ids] == [30] and d.live == 1


def test_an_old_view_keeps_reading_its_rows_after_growth():
    d = Delta(2, capacity=1)
    d.add([1], [10], [unit(1, 0)])
    old = d.view()
    d.add([2, 3], [20, 30], [unit(0, 1), unit(1, 1)])
    ids, _ = Delta.search_view(old, unit(1, 0), 5)
    assert [int(i) for i in ids] == [10]  # the view taken before still sees exactly its rows


def test_an_empty_delta_finds_nothing():
    ids, scores = Delta.search_view(Delta(3).view(), unit(1, 0, 0), 5)
    assert ids.size == 0 and scores.size == 0
