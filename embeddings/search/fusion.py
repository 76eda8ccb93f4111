"""A text query's one ranking: its meaning (CLIP hits from the index) and its keyword matches
(OCR text, names) fused, "quoted" phrases enforced, and the list ended where relevance drops.
The rules are the pure functions of embeddings.search.ranking; this module gathers their inputs."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from embeddings.index.vector_index import to_vectors
from embeddings.models import Embedding, Image
from embeddings.search import keywords, model_switch, ranking
from embeddings.search.query import QueryTerms

POOL = 200  # candidates per side: the cutoff and the fusion look this far down
BACKGROUND_SIZE = 256

_cache: dict[str, tuple] = {}  # model key -> (newest embedding id, sample, index generation)
_cache_lock = threading.Lock()


def _sampled_up_to(lo: int, hi: int) -> int:
    """The newest id a sample is drawn up to: `hi` itself for a small gallery (its sample is all of
    it), else `hi` rounded down to a sixteenth of its power of two. Ingesting moves `hi` with every
    batch, and a new sample took 14 ms of a search at 100k images; a sample of the gallery as it was
    a few percent of rows ago describes it as well."""
    if hi - lo + 1 <= BACKGROUND_SIZE * 2:
        return hi
    step = max(1, (1 << (hi.bit_length() - 1)) // 16)
    return max(lo + BACKGROUND_SIZE * 2 - 1, hi - hi % step)


def background(model_key: str, generation=None) -> np.ndarray:
    """Vectors of a random sample of the gallery (what an unrelated image looks like to a query).

    Drawn with a seed from the newest embedding's id (rounded: _sampled_up_to), so every web process
    draws the same sample for the same gallery (pages of one search agree) and a new one once the
    gallery has grown. With the index's `generation` (the Redis counter bumped by every write, with
    the index's size: a restarted Redis counts from 0 again), the sample is reused without a database
    round trip until either moves: two queries fewer per search."""
    with _cache_lock:
        cached = _cache.get(model_key)
        if generation is not None and cached and len(cached) > 2 and cached[2] == generation:
            return cached[1]
    mine = Embedding.objects.filter(model_name=model_key).values_list("id", flat=True)
    # Two ordered reads, not one MIN/MAX aggregate: SQLite scans every row of the model for the
    # aggregate (measured at 100k: 19.9 ms) but reads one index entry for each of these (0.02 ms).
    lo, hi = mine.order_by("id").first(), mine.order_by("-id").first()
    if hi is None:
        return np.zeros((0, 1), np.float32)
    upto = _sampled_up_to(lo, hi)
    with _cache_lock:
        cached = _cache.get(model_key)
        if cached and cached[0] == upto:
            _cache[model_key] = (upto, cached[1], generation)
            return cached[1]
    rows = Embedding.objects.filter(model_name=model_key)
    if upto - lo + 1 > BACKGROUND_SIZE * 2:
        rng = np.random.default_rng(upto)
        ids = rng.choice(np.arange(lo, upto + 1), size=BACKGROUND_SIZE * 2, replace=False)
        rows = rows.filter(id__in=[int(i) for i in ids])
    blobs = list(rows.order_by("id").values_list("vector", flat=True)[:BACKGROUND_SIZE])
    matrix = to_vectors(blobs) if blobs else np.zeros((0, 1), np.float32)
    with _cache_lock:
        _cache[model_key] = (upto, matrix, generation)
    return matrix


def cosines_for(vector, ids, index=None) -> dict[int, float]:
    """Cosines of the query to these images' vectors (for keyword matches the index did not list): read
    from the index where it holds them, from the database for rows newer than this process's view."""
    ids = list(ids)
    found = index.cosines(vector, ids) if index is not None else {}
    rest = [i for i in ids if i not in found]
    if rest:
        rows = Embedding.objects.filter(model_name=model_switch.serving_key(), image_id__in=rest)
        pairs = list(rows.values_list("image_id", "vector"))
        if pairs:
            scores = to_vectors([v for _, v in pairs]) @ np.asarray(vector, np.float32)
            found.update((i, float(s)) for (i, _), s in zip(pairs, scores))
    return found


@dataclass
class Ranked:
    pk: int
    score: float  # the fused score, on the cosine scale
    keyword: bool  # a keyword match or a required phrase counted for it
    meaning: bool  # its cosine alone passed the meaning threshold


@dataclass
class Ranking:
    items: list[Ranked]  # best first
    passed: int | None  # how many passed the cutoff, or None where none applied
    words: list[str]
    terms: QueryTerms

    def matched(self, image: Image, item: Ranked) -> list[str]:
        """Why a hit matched: "meaning", "text", "name" (computed for the page shown only)."""
        why = keywords.why(image, self.words, self.terms) if item.keyword else []
        return (["meaning"] if item.meaning or not why else []) + why


def rank(vector, meaning: list[tuple[int, float]], terms: QueryTerms, rows, min_score=None, cutoff="auto",
         total=None, generation=None, index=None) -> Ranking:
    """The fused ranking of image ids, best first.

    `meaning`: the index's best (id, cosine) pairs; `rows`: the images the query may return
    (filters applied); `index`: the vector index the meaning came from. With "quoted" phrases only
    images containing them are candidates, looked up through the keyword index however far down the
    meaning ranking they lie. Works on ids and
    keyword texts only: building 200 model rows cost 4.3 ms of a 17 ms search at 100k images."""
    cos = dict(meaning)
    candidates = set(cos)
    if terms.required:
        rows = rows.filter(keywords.phrase_filter(terms))
        candidates = set(rows.values_list("pk", flat=True)[: POOL * 5])
        cos = {}
    matches = keywords.match(rows, terms.text, limit=POOL, total=total)
    candidates.update(matches.scores)  # drawn from `rows`: filters and phrases already hold
    if terms.required or terms.excluded:
        docs = dict(Image.objects.filter(pk__in=list(candidates)).values_list("pk", "keywords"))
        candidates = {i for i in candidates if i in docs and keywords.phrase_ok(docs[i], terms)}
    missing = [i for i in candidates if i not in cos]
    if missing:
        cos.update(cosines_for(vector, missing, index))
    cos = {i: c for i, c in cos.items() if i in candidates}
    if not cos:
        return Ranking([], 0 if cutoff == "auto" and min_score is None else None, matches.words, terms)
    bg = background(model_switch.serving_key(), generation)
    bg_scores = bg @ np.asarray(vector, np.float32) if bg.shape[1] == len(vector) else np.zeros(0)
    s = ranking.scale(cos.values(), bg_scores)
    fused = ranking.fuse(cos, matches.scores, s)
    threshold = ranking.meaning_threshold(s)
    out = []
    for i in ranking.order(fused):
        kw = matches.scores.get(i, 0.0)
        if min_score is not None and fused[i] < min_score:
            continue
        if min_score is None and cutoff == "auto" and not ranking.passes(cos[i], kw, threshold):
            continue
        out.append(Ranked(i, min(fused[i], 1.0), bool(kw or terms.required), cos[i] >= threshold))
    passed = len(out) if (cutoff == "auto" and min_score is None) else None
    return Ranking(out, passed, matches.words, terms)
