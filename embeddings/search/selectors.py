"""Reads: search, similar images, status. Views, the API and commands call these."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Q

from embeddings.files import image_policy
from embeddings.index.vector_index import get_index
from embeddings.models import Embedding, Image, Library
from embeddings.queue import get_queue
from embeddings.search import fusion, keywords, model_switch
from embeddings.search.query import BadQuery, TextQuery, combine, read_query
from embeddings.search.request import Filters

log = logging.getLogger(__name__)


def configured_model():
    """The CLIP service of the configured model (encoding, and queries outside a model switch)."""
    # Imported here: the CLIP code brings torch, and every management command (migrate too)
    # imports the URLs and so this module; only processes that search load the model.
    from embeddings.clip.service import get_clip_service

    return get_clip_service()


@lru_cache(maxsize=4)
def _model_for(key: str):
    from embeddings.clip.service import CLIPService

    return CLIPService(**model_switch.service_args(key))


def query_model():
    """The service that encodes queries: the configured model's, or during a model switch the
    model whose vectors still answer searches (embeddings.search.model_switch)."""
    key = model_switch.serving_key()
    return configured_model() if key == settings.MODEL_KEY else _model_for(key)


@lru_cache(maxsize=512)
def _text_vector(key: str, text: str) -> np.ndarray:
    return query_model().embed_texts([text])[0]


def query_vector(query: TextQuery | str | None = None, image: bytes | None = None) -> np.ndarray:
    """One vector for text phrases (+/-), an image, or both. The image passes the upload policy
    and is decoded once, by the format it was sniffed as; only the picture reaches the model.
    A search that also ranks by words passes the TextQuery it parsed; a plain string is parsed here."""
    parts = []
    if isinstance(query, str):
        query = read_query(query) if query.strip() else None
    if query is not None:
        key = model_switch.serving_key()
        parts += [(sign, _text_vector(key, text)) for sign, text in query.phrases]
    if image is not None:
        try:
            encoder = query_model()
            picture = image_policy.decode(image, draft_target=encoder.load().preprocessor.target)
            parts.append((1, encoder.embed_images([picture])[0]))
        except ValueError as exc:  # RejectedImage is one
            raise BadQuery(f"the uploaded file is not a readable image: {exc}") from None
    if not parts:
        raise BadQuery("give a text query or an image")
    return combine(parts)


def image_vector(image_id: int) -> np.ndarray | None:
    blob = (Embedding.objects.filter(image_id=image_id, model_name=model_switch.serving_key())
            .values_list("vector", flat=True).first())
    return None if blob is None else np.frombuffer(bytes(blob), dtype=np.float32)


@dataclass
class Hit:
    image: Image
    score: float | None  # None when browsing (no query to score against)
    matched: list[str] = field(default_factory=lambda: ["meaning"])  # why it matched: meaning, text, name


@dataclass
class Page:
    hits: list[Hit]
    has_more: bool
    took_ms: float
    passed: int | None = None  # how many passed the relevance cutoff, where one applied


# sort=taken orders the results that pass the relevance cutoff; with no cutoff, this many best.
TAKEN_SORT_POOL = 1000


def search(vector, k=20, offset=0, min_score=None, filters: Filters | None = None, exclude_id=None,
           sort="relevance", query: TextQuery | None = None, cutoff="none") -> Page:
    """Rank indexed images by cosine similarity: ids and scores from the index, checked against the
    filters in one query a round; model rows are built for the page shown only.
    With `query` (a text query, parsed once) the ranking is hybrid (embeddings.search.fusion): keyword matches
    in OCR text and names fused in, "quoted" phrases required, and with `cutoff` "auto" the list
    ends where relevance drops (`min_score`, on the fused score, overrides it). Image queries and
    "more like this" pass no text and stay pure meaning. Sort "taken" orders what passed by taken
    time, newest first."""
    started = time.perf_counter()
    filters = filters or Filters()
    key = model_switch.serving_key()
    index = get_index(key, len(vector))
    # During a model switch, images waiting for the new model still have the old one's vector.
    searchable = Q(status=Image.Status.INDEXED) if key == settings.MODEL_KEY else ~Q(status=Image.Status.FAILED)
    want = offset + k + 1  # one more than the page tells whether there is a next page
    if sort == "taken":
        want = max(want, TAKEN_SORT_POOL)
    if query:
        want = max(want, fusion.POOL)  # the fusion and the cutoff look this far down
    floor = None if query else min_score  # a keyword match may lift a hit past min_score
    fetch = want
    while True:  # ids and scores only: rows are built for the page shown, not the pool ranked
        ranked = index.search(vector, fetch + (1 if exclude_id else 0))
        if floor is not None:
            ranked = [(i, s) for i, s in ranked if s >= floor]
        allowed = set(filters.apply(Image.objects.filter(searchable, pk__in=[i for i, _ in ranked]))
                      .values_list("pk", flat=True))
        hits = [(i, s) for i, s in ranked if i in allowed and i != exclude_id]
        exhausted = len(ranked) < fetch or index.stats()["size"] <= fetch
        if len(hits) >= want or exhausted:
            break
        fetch *= 4  # filters or deletions removed some: look further down the ranking
    passed, fused = None, None
    if query:
        rows = filters.apply(Image.objects.filter(searchable)).exclude(pk=exclude_id or 0)
        fused = fusion.rank(vector, hits, query.terms, rows, min_score=min_score, cutoff=cutoff, total=index.stats()["size"],
                            generation=None if index.generation is None else (index.generation, index.size()),
                            index=index)
        hits, passed = [(r.pk, r.score) for r in fused.items], fused.passed
    if sort == "taken":
        taken = dict(Image.objects.filter(pk__in=[i for i, _ in hits]).values_list("pk", "taken_at"))
        hits = [h for h in hits if h[0] in taken]
        hits.sort(key=lambda h: (taken[h[0]] is None, -(taken[h[0]].timestamp() if taken[h[0]] else 0)))
    shown = hits[offset:offset + k]
    images = Image.objects.select_related("library").in_bulk([i for i, _ in shown])
    by_pk = {r.pk: r for r in fused.items} if fused is not None else {}
    # Image queries and "more like this" rank by meaning alone; a text query's hits say why they matched.
    page = [Hit(images[i], s, fused.matched(images[i], by_pk[i]) if i in by_pk else ["meaning"])
            for i, s in shown if i in images]  # an image deleted since it was ranked is left out
    return Page(page, len(hits) > offset + k, (time.perf_counter() - started) * 1000, passed)


def highlight_words(query: TextQuery) -> list[str]:
    """The normalised words a text query looks for in OCR text and names (for the page to mark)."""
    terms = query.terms
    return list(dict.fromkeys(keywords.words(terms.text) + [keywords.normalise(p) for p in terms.required]))


def similar(image_id: int, k=20, offset=0) -> Page | None:
    vector = image_vector(image_id)
    if vector is None:
        return None
    return search(vector, k=k, offset=offset, exclude_id=image_id)


def warm_up() -> None:
    """Load the model and the index at process start, so the first search is as fast as the rest."""
    model_info()  # a model that cannot load stops the process here, with its message
    try:
        key = model_switch.serving_key()
        get_index(key, len(_text_vector(key, "a photo"))).sync(force=True)
    except DatabaseError as exc:  # not migrated yet: the index loads on the first search
        log.warning("index not loaded at start: %s", exc)


def model_info() -> dict:
    info = configured_model().get_model_info()
    info["model_key"] = settings.MODEL_KEY
    return info


def ocr_progress() -> dict:
    """OCR's own progress, apart from encoding's: images by OCR state (only indexed images are read)."""
    by = dict(Image.objects.filter(status=Image.Status.INDEXED).values_list("ocr_status").annotate(n=Count("id"))
              .values_list("ocr_status", "n"))
    done, failed, pending = by.get("done", 0), by.get("failed", 0), by.get("pending", 0)
    return {"enabled": settings.OCR_ENABLED, "pending": pending, "done": done, "failed": failed, "not_asked": by.get("", 0),
            "done_fraction": (done + failed) / (done + failed + pending) if done + failed + pending else 1.0}


def status() -> dict:
    counts = {s: 0 for s in Image.Status.values}
    counts.update(dict(Image.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n")))
    total = sum(counts.values())
    try:
        queue_length = get_queue().count
    except Exception:
        queue_length = None  # Redis down: say so rather than fail the page
    info = model_info()
    index = get_index(settings.MODEL_KEY, info["embedding_dim"])
    index.sync()
    failures = Image.objects.filter(status=Image.Status.FAILED).order_by("-updated_at")[:20]
    return {
        "counts": counts,
        "total": total,
        "done_fraction": (counts["indexed"] + counts["failed"]) / total if total else 1.0,
        "queue_length": queue_length,
        "model": info,
        "embedded_with_current_model": Embedding.objects.filter(model_name=settings.MODEL_KEY).count(),
        "switching": model_switch.switching(),
        "index": index.stats(),
        "ocr": ocr_progress(),
        # libraries, so that a refused scan (an unplugged disk) is seen here too
        "libraries": list(Library.objects.values("name", "state", "message", "last_scan_finished_at")),
        "recent_failures": [
            {"id": f.pk, "original_filename": f.original_filename, "reason": f.failure_reason, "at": f.updated_at}
            for f in failures
        ],
    }
