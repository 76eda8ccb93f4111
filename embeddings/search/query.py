"""Query text: phrases joined with ` + ` and ` - `, and how their vectors combine. Pure logic."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

MAX_QUERY_CHARS = 1000  # longer text is cut: the model reads at most 77 tokens anyway
_TERM = re.compile(r"\s+([+-])\s+")
_QUOTED = re.compile(r'"([^"]*)"')


class BadQuery(ValueError):
    """The query cannot be answered as given; the message says why."""


def _signed(q: str) -> list[tuple[int, str]]:
    """`a dog - a cat` -> [(+1, "a dog"), (-1, "a cat")], the phrases as typed (quotes kept).
    A space in front lets a leading sign split off: "- a cat" is a phrase to avoid."""
    parts = _TERM.split(" " + (q or "").strip()[:MAX_QUERY_CHARS])
    return [(1, parts[0])] + [(1 if s == "+" else -1, t) for s, t in zip(parts[1::2], parts[2::2])]


def _phrases(signed: list[tuple[int, str]]) -> list[tuple[int, str]]:
    # Quotes say "these words must be in the picture's text or name"; the model reads the words.
    terms = [(s, " ".join(t.replace('"', " ").split())) for s, t in signed]
    terms = [(s, t) for s, t in terms if t]
    if not terms:
        raise BadQuery("the query is empty")
    if all(s < 0 for s, _ in terms):
        raise BadQuery("the query needs at least one phrase to look for, not only phrases to avoid")
    return terms


def parse_query(q: str) -> list[tuple[int, str]]:
    """`a dog on grass - a cat + a ball` -> [(+1, 'a dog on grass'), (-1, 'a cat'), (+1, 'a ball')]."""
    return _phrases(_signed(q))


def combine(vectors: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """The signed sum of unit vectors, normalised: one query vector."""
    v = np.sum([sign * vec for sign, vec in vectors], axis=0).astype(np.float32)
    norm = np.linalg.norm(v)
    if norm < 1e-6:
        raise BadQuery("the phrases cancel each other out")
    return v / norm


@dataclass(frozen=True)
class QueryTerms:
    """The keyword side of a text query: the words of its phrases to look for, the "quoted"
    phrases that must appear in an image's text or name, and those that must not (quoted in a
    ` - ` phrase)."""

    text: str
    required: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()


def _terms(signed: list[tuple[int, str]]) -> QueryTerms:
    text, required, excluded = [], [], []
    for sign, phrase in signed:
        quoted = [" ".join(p.split()) for p in _QUOTED.findall(phrase) if p.strip()]
        if sign > 0:
            text.append(phrase.replace('"', " "))
            required += quoted
        else:
            excluded += quoted
    return QueryTerms(" ".join(" ".join(text).split()), tuple(required), tuple(excluded))


def keyword_terms(q: str) -> QueryTerms:
    """`"total 42.50" receipt - "draft"` -> text "total 42.50 receipt", required ("total 42.50",),
    excluded ("draft",)."""
    return _terms(_signed(q))


@dataclass(frozen=True)
class TextQuery:
    """A text query read once: its phrases for the model and its terms for the keyword side."""

    text: str
    phrases: tuple[tuple[int, str], ...]
    terms: QueryTerms


def read_query(q: str) -> TextQuery:
    """The one parse of a search's text (BadQuery when it holds nothing to look for)."""
    signed = _signed(q)
    return TextQuery((q or "").strip()[:MAX_QUERY_CHARS], tuple(_phrases(signed)), _terms(signed))
