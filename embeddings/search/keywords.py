"""The keyword side of search: one normalised text per image (OCR text, file name, library path,
camera) and the database queries that find partial words in it, case- and accent-insensitively.

The text is normalised here, in Python, the same way for documents and queries (lower case,
accents stripped), so both databases only need a substring match that an index serves:
PostgreSQL a pg_trgm GIN index (LIKE '%word%'), SQLite an FTS5 trigram table (see migration 0003).
"""
from __future__ import annotations

import math
import re
import time
import unicodedata
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL

from embeddings.models import Image
from embeddings.search.query import QueryTerms

# Words too common to say anything on their own (the query's meaning still counts them).
STOPWORDS = frozenset("""a an and any are as at be by for from has have in is it its of on or that the this
to with photo photos picture pictures image images""".split())
MIN_TERM = 3  # shorter words match half the gallery (and FTS5's trigrams need three characters)
MAX_TERMS = 8
_SEPARATORS = re.compile(r"[_\-./\\]+")
_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = "\"'`“”‘’«»()[]{}<>,;:!?¿¡"


def normalise(text: str | None) -> str:
    """Lower case, accents stripped, whitespace collapsed: "Café  ROMA" -> "cafe roma"."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    # Control characters (NUL among them, which PostgreSQL refuses in text) become spaces.
    plain = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACE.sub(" ", plain.casefold()).strip()


def _with_words(name: str) -> str:
    """A file name or path plus the same with separators as spaces, so that a quoted
    "colosseum 2019" finds Colosseum_2019.JPG."""
    name = normalise(name)
    spaced = _SPACE.sub(" ", _SEPARATORS.sub(" ", name)).strip()
    return name if spaced == name else f"{name} {spaced}"


def name_text(image) -> str:
    """The normalised name side of an image: original file name, library path, camera."""
    camera = " ".join(p for p in (image.camera_make, image.camera_model) if p)
    return " ".join(p for p in (_with_words(image.original_filename), _with_words(image.path), normalise(camera)) if p)


def document(image) -> str:
    """What the keyword index holds for an image (Image.keywords)."""
    return " ".join(p for p in (name_text(image), normalise(image.ocr_text)) if p)


def words(text: str) -> list[str]:
    """The searchable words of a query phrase, normalised, stopwords and short words left out."""
    out = []
    for raw in normalise(text).split():
        word = raw.strip(_EDGE_PUNCT)
        if len(word) >= MIN_TERM and word not in STOPWORDS and word not in out:
            out.append(word)
    return out[:MAX_TERMS]


def _squeeze(text: str) -> str:
    # OCR often drops the spaces between words ("Total42.50EUR"): phrases compare without them.
    return text.replace(" ", "")


def contains(word: str) -> Q:
    """Images whose keyword text contains `word` (already normalised), through the index."""
    if connection.vendor == "sqlite" and len(word) >= 3:
        # A quoted FTS5 string is a substring match under the trigram tokenizer.
        fts = '"' + word.replace('"', '""') + '"'
        return Q(id__in=RawSQL("SELECT rowid FROM embeddings_image_fts WHERE embeddings_image_fts MATCH %s", [fts]))
    return Q(keywords__contains=word)


def phrase_filter(terms: QueryTerms) -> Q:
    """The rows that may hold every required phrase and none of the excluded ones: each word of a
    required phrase must be there (the index narrows); `phrase_ok` then checks the phrase itself."""
    q = Q()
    for phrase in terms.required:
        for word in normalise(phrase).split():
            q &= contains(word.strip(_EDGE_PUNCT) or word)
    return q


def phrase_ok(doc: str, terms: QueryTerms) -> bool:
    """Every required phrase in the keyword text (spaces ignored), no excluded one."""
    squeezed = _squeeze(doc)
    return (all(_squeeze(normalise(p)) in squeezed for p in terms.required)
            and not any(_squeeze(normalise(p)) in squeezed for p in terms.excluded))


@dataclass
class KeywordMatches:
    scores: dict[int, float]  # image id -> share of the query's word weight it contains, in (0, 1]
    words: list[str]


COUNT_CAP = 10_000  # counting a word's matches stops here: past it, a word weighs next to nothing anyway
# A word in this many rows keeps its count a while (per process, per filter): counting "street" in 1M
# rows took 19.7 ms a query, and a count a few minutes old moves its weight by next to nothing. A
# rarer word is counted afresh, so a word that OCR has just read is found at once.
COMMON = 1_000
COMMON_KEPT_S = 300
_common: dict[tuple, tuple[int, float]] = {}  # (rows' SQL, params, word) -> (count, when counted)


def _union(parts: list[tuple[str, list]]) -> tuple[str, list]:
    """One statement of several SELECTs, each in parentheses so that its LIMIT stays its own."""
    return " UNION ALL ".join(f"SELECT * FROM ({sql}) AS part{n}" for n, (sql, _) in enumerate(parts)), \
        [p for _, params in parts for p in params]


def _counts(rows, found: list[str]) -> dict[str, int]:
    """How many of `rows` contain each word (capped at COUNT_CAP), in one round trip: for three
    words 0.71 ms against 1.05 for a query per word (SQLite, 100k images)."""
    sql, params = rows.order_by().values("pk").query.sql_with_params()
    scope, now = (sql, tuple(map(str, params))), time.monotonic()
    kept = {w: hit[0] for w in found if (hit := _common.get((*scope, w))) and now - hit[1] < COMMON_KEPT_S}
    ask = [w for w in found if w not in kept]
    if not ask:
        return kept
    # No ORDER BY: the model's default (newest first) made PostgreSQL sort every match to count them.
    parts = [(f"SELECT {n} AS word, COUNT(*) AS n FROM ({sql}) AS counted", p) for n, (sql, p) in enumerate(
        rows.filter(contains(w)).order_by().values("pk")[:COUNT_CAP].query.sql_with_params() for w in ask)]
    with connection.cursor() as cursor:
        cursor.execute(*_union(parts))
        got = dict(cursor.fetchall())
    if len(_common) > 10_000:  # many filters seen: start again rather than grow
        _common.clear()
    for n, word in enumerate(ask):
        kept[word] = got.get(n, 0)
        if kept[word] >= COMMON:
            _common[(*scope, word)] = (kept[word], now)
    return kept


def _candidates(rows, found: list[str], counts: dict[str, int], per_word: int, enough: int) -> dict[int, str]:
    """The keyword texts of each word's first `per_word` matches, from the rarest word on until about
    `enough` are in hand (a word in one image is never crowded out by one in thousands), in one
    round trip. Taken in the keyword index's own order, not sorted: newest first made PostgreSQL
    fetch and sort every row holding a common word (2 x 36 ms for "street" at 1M rows)."""
    chosen, expected = [], 0
    for w in sorted(found, key=counts.get):
        if expected >= enough:
            break
        chosen.append(w)
        expected += min(counts[w], per_word)
    parts = [rows.filter(contains(w)).order_by().values_list("id", "keywords")[:per_word].query.sql_with_params()
             for w in chosen]
    with connection.cursor() as cursor:
        cursor.execute(*_union(parts))
        return dict(cursor.fetchall())


def match(rows, text: str, limit: int = 200, total: int | None = None) -> KeywordMatches:
    """The `limit` best keyword matches among `rows` (an Image queryset) for the words of `text`.

    A word weighs its inverse document frequency, so that a word or number found in one image
    counts more than one found in hundreds. A word that no image contains weighs nothing: it is
    left to the meaning side ("receipt" in "espresso receipt" describes, "espresso" is printed)."""
    found = words(text)
    if not found:
        return KeywordMatches({}, [])
    total = max(total or rows[:COUNT_CAP].count(), 1)
    counts = _counts(rows, found)
    weights = {w: math.log(1 + total / (1 + n)) for w, n in counts.items() if n}
    if not weights:
        return KeywordMatches({}, [])
    found = [w for w in found if w in weights]
    norm = sum(weights.values())
    docs = _candidates(rows, found, counts, per_word=limit * 2, enough=limit * 5)
    scores = {}
    for pk, doc in docs.items():
        got = sum(weights[w] for w in found if w in (doc or ""))
        if got:
            scores[pk] = got / norm
    best = sorted(scores.items(), key=lambda kv: -kv[1])[:limit]
    return KeywordMatches(dict(best), found)


def why(image, found_words: list[str], terms: QueryTerms | None = None) -> list[str]:
    """Which keyword fields a hit matched: "text" (what OCR read), "name" (file name, path, camera)."""
    needles = list(found_words) + [normalise(p) for p in (terms.required if terms else [])]
    out = []
    for label, doc in (("text", normalise(image.ocr_text)), ("name", name_text(image))):
        if any(_squeeze(n) in _squeeze(doc) for n in needles if n):
            out.append(label)
    return out


def refresh(images) -> int:
    """Recompute the keyword text of these images (after their name, path, camera or text changed)."""
    n = 0
    for image in images:
        n += Image.objects.filter(pk=image.pk).update(keywords=document(image))
    return n
