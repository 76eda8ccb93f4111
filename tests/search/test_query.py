"""Query text: phrases and signs, and how their vectors combine (pure logic)."""

import numpy as np
import pytest

from embeddings.search.query import MAX_QUERY_CHARS, BadQuery, combine, parse_query


# ---- parse_query ------------------------------------------------------------------------------
@pytest.mark.parametrize("q, terms", [
    ("a dog on grass", [(1, "a dog on grass")]),
    ("  a dog on grass  ", [(1, "a dog on grass")]),
    ("a dog on grass - a cat + a ball", [(1, "a dog on grass"), (-1, "a cat"), (1, "a ball")]),
    ("red + blue", [(1, "red"), (1, "blue")]),
    ("a dog  -   a cat", [(1, "a dog"), (-1, "a cat")]),
    # a sign only counts between spaces: hyphens and plus signs inside words stay in the phrase
    ("t-shirt", [(1, "t-shirt")]),
    ("c++ book", [(1, "c++ book")]),
    ("a dog -a cat", [(1, "a dog -a cat")]),
    ("a dog\t-\na cat", [(1, "a dog"), (-1, "a cat")]),  # any whitespace around the sign
])
def test_parse_query_phrases_and_signs(q, terms):
    assert parse_query(q) == terms


@pytest.mark.parametrize("q", ["", "   ", "\n\t", None])
def test_parse_query_refuses_empty(q):
    with pytest.raises(BadQuery, match="empty"):
        parse_query(q)


@pytest.mark.parametrize("q", ["- a cat", " - a cat - a dog"])
def test_parse_query_refuses_only_negative_phrases(q):
    with pytest.raises(BadQuery, match="at least one phrase"):
        parse_query(q)


def test_parse_query_cuts_long_text():
    q = "x" * (MAX_QUERY_CHARS + 500)
    [(sign, text)] = parse_query(q)
    assert sign == 1 and text == "x" * MAX_QUERY_CHARS
    # what follows the cut is never seen, signs included
    assert parse_query("y" * (MAX_QUERY_CHARS - 2) + " - a cat") == [(1, "y" * (MAX_QUERY_CHARS - 2) + " -")]
    assert parse_query("y" * (MAX_QUERY_CHARS - 8) + " - a cat") == [(1, "y" * (MAX_QUERY_CHARS - 8)), (-1, "a cat")]


# ---- combine ----------------------------------------------------------------------------------
def _unit(*xs):
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_combine_is_the_normalised_signed_sum():
    a, b, c = _unit(1, 0, 0), _unit(0, 1, 0), _unit(0, 0, 1)
    v = combine([(1, a), (1, b), (-1, c)])
    assert v.dtype == np.float32
    assert np.isclose(np.linalg.norm(v), 1.0, atol=1e-6)
    assert np.allclose(v, _unit(1, 1, -1), atol=1e-6)
    assert np.allclose(combine([(1, a)]), a)


def test_combine_refuses_phrases_that_cancel():
    a = _unit(0.3, -0.2, 0.9)
    with pytest.raises(BadQuery, match="cancel"):
        combine([(1, a), (-1, a)])
    with pytest.raises(BadQuery, match="cancel"):
        combine([(1, a), (1, -a)])
