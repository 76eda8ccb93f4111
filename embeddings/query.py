"""Query text: phrases joined with ` + ` and ` - `, and how their vectors combine. Pure logic."""
from __future__ import annotations

import re

import numpy as np

MAX_QUERY_CHARS = 1000  # longer text is cut: the model reads at most 77 tokens anyway
_TERM = re.compile(r"\s+([+-])\s+")


class BadQuery(ValueError):
    """The query cannot be answered as given; the message says why."""


def parse_query(q: str) -> list[tuple[int, str]]:
    """`a dog on grass - a cat + a ball` -> [(+1, 'a dog on grass'), (-1, 'a cat'), (+1, 'a ball')]."""
    q = (q or "").strip()[:MAX_QUERY_CHARS]
    # A space in front lets a leading sign split off: "- a cat" is a phrase to avoid, not "- a cat".
    parts = _TERM.split(" " + q)
    terms = [(1, parts[0].strip())]
    for sign, text in zip(parts[1::2], parts[2::2]):
        terms.append((1 if sign == "+" else -1, text.strip()))
    terms = [(s, t) for s, t in terms if t]
    if not terms:
        raise BadQuery("the query is empty")
    if all(s < 0 for s, _ in terms):
        raise BadQuery("the query needs at least one phrase to look for, not only phrases to avoid")
    return terms


def combine(vectors: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """The signed sum of unit vectors, normalised: one query vector."""
    v = np.sum([sign * vec for sign, vec in vectors], axis=0).astype(np.float32)
    norm = np.linalg.norm(v)
    if norm < 1e-6:
        raise BadQuery("the phrases cancel each other out")
    return v / norm
