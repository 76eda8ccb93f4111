"""The one cosine (embeddings.clip.vectors), used by CLIPService.compute_similarity and /api/similarity."""
import numpy as np
import pytest

from embeddings.clip.vectors import cosine


def test_cosine_of_known_pairs():
    assert cosine([1, 0], [1, 0]) == pytest.approx(1.0)
    assert cosine([1, 0], [0, 1]) == pytest.approx(0.0)
    assert cosine([1, 0], [-1, 0]) == pytest.approx(-1.0)
    assert cosine([3, 4], [6, 8]) == pytest.approx(1.0)


def test_a_zero_vector_has_no_direction():
    assert cosine([0, 0, 0], [1, 2, 3]) == 0.0


def test_huge_values_do_not_overflow_and_stay_in_range():
    a = np.full(512, 1e308)
    assert cosine(a, a) == pytest.approx(1.0)
    assert -1.0 <= cosine(a, -a) <= 1.0


@pytest.mark.parametrize("a, b, words", [([1, 2], [1, 2, 3], "differ in length"), ([np.nan, 1], [1, 1], "finite"),
                                         ([np.inf, 1], [1, 1], "finite")])
def test_what_cannot_be_compared_is_a_value_error(a, b, words):
    with pytest.raises(ValueError, match=words):
        cosine(a, b)
