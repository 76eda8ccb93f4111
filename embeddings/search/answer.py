"""A search as asked, answered: dates and cameras typed as words become filters (interpret), words
that name nothing browse the filtered images newest taken first, and any other words rank by
meaning and keywords. The search page, the API and smart albums all answer through here."""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from datetime import time as day_start

from django.db.models import Count
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from embeddings.models import Image
from embeddings.search import selectors
from embeddings.search.interpret import Interpreted, carries_nothing, interpret
from embeddings.search.query import TextQuery, read_query
from embeddings.search.request import Filters, SearchRequest


@dataclass
class Answer:
    page: selectors.Page
    interpreted: Interpreted | None  # what was read out of the words, if anything
    query: TextQuery | None  # the words ranked by, None when browsing

    @property
    def browsing(self) -> bool:
        return self.query is None


CAMERAS_CHECK_S = 60  # new photos' cameras are looked for at most this often
CAMERAS_FULL_S = 600  # and every camera read again this often (edits, deletions)
_cameras = {"names": frozenset(), "mark": 0, "checked": -math.inf, "full": -math.inf}
_cameras_lock = threading.Lock()


def _cameras_of(rows) -> set[str]:
    pairs = rows.exclude(camera_make="", camera_model="").order_by("camera_make", "camera_model")
    return {" ".join(p for p in pair if p) for pair in pairs.values_list("camera_make", "camera_model").distinct()}


def known_cameras() -> list[str]:
    """The library's cameras ("Canon EOS 5D"), per process: a camera is read out of a query only when
    someone has one. Every row is read once in CAMERAS_FULL_S (40-57 ms at 100k images on PostgreSQL),
    in between only the rows added since (one index range). Before, the newest 500 rows were read
    each minute, so an older photo's camera was neither offered nor understood."""
    with _cameras_lock:
        now = time.monotonic()
        if now - _cameras["checked"] >= CAMERAS_CHECK_S:
            full = now - _cameras["full"] >= CAMERAS_FULL_S
            mark = Image.objects.order_by("-id").values_list("id", flat=True).first() or 0
            rows = Image.objects.filter(id__lte=mark)
            if full:
                _cameras.update(names=frozenset(_cameras_of(rows)), full=now)
            elif mark > _cameras["mark"]:
                _cameras["names"] |= _cameras_of(rows.filter(id__gt=_cameras["mark"]))
            _cameras.update(mark=mark, checked=now)
        return sorted(_cameras["names"])


def forget_cameras() -> None:
    """Read every camera again on the next search (tests: each starts with its own rows)."""
    with _cameras_lock:
        _cameras.update(names=frozenset(), mark=0, checked=-math.inf, full=-math.inf)


def _midnight(d: date | None) -> datetime | None:
    return datetime.combine(d, day_start.min, tzinfo=UTC) if d else None


def with_words(filters: Filters, found: Interpreted) -> Filters:
    """The filters with what was read from the words; a filter given explicitly wins."""
    return replace(filters,
                   taken_after=filters.taken_after or (None if filters.taken_before else _midnight(found.taken_after)),
                   taken_before=filters.taken_before or (None if filters.taken_after else _midnight(found.taken_before)),
                   months=filters.months or found.months, camera=filters.camera or found.camera)


def _browsable(filters: Filters):
    rows = filters.apply(Image.objects.exclude(status=Image.Status.FAILED))
    return rows.annotate(when=Coalesce("taken_at", "uploaded_at"))


def newest_first(filters: Filters, at: date | None = None):
    """The images that pass the filters, newest taken first (uploaded time where none is known), in
    the order of the image_when_newest_first index; with `at` (a month), from that month back."""
    rows = _browsable(filters).select_related("library").order_by("-when", "-id")
    if at:
        rows = rows.filter(when__lt=_midnight(date(at.year + (at.month == 12), at.month % 12 + 1, 1)))
    return rows


def browse(filters: Filters, k: int = 20, offset: int = 0, at: date | None = None) -> selectors.Page:
    """A page of newest_first."""
    started = time.perf_counter()
    page = list(newest_first(filters, at)[offset:offset + k + 1])
    hits = [selectors.Hit(im, None, []) for im in page[:k]]
    return selectors.Page(hits, len(page) > k, (time.perf_counter() - started) * 1000, None)


def timeline_months(filters: Filters, limit: int = 600) -> list[dict]:
    """The months that hold browsable images, newest first, with their counts (the timeline's jumps)."""
    rows = (_browsable(filters).annotate(month=TruncMonth("when", tzinfo=UTC)).values("month")
            .annotate(n=Count("id")).order_by("-month")[:limit])
    return [{"key": r["month"].strftime("%Y-%m"), "label": r["month"].strftime("%B %Y"), "n": r["n"]} for r in rows]


def answer(asked: SearchRequest, today: date | None = None, exclude_id: int | None = None,
           at: date | None = None) -> Answer:
    """Answer a search: read dates and a camera out of its words, then browse or rank. A reading that
    no image passes was a guess gone wrong ("colosseum 2019" names a file, not a year): the words
    are then taken as typed."""
    today = today or timezone.localdate()
    found = interpret(asked.q, today, known_cameras()) if asked.q else None
    if found:
        filters = with_words(asked.filters, found)
        if _browsable(filters).exists():
            return replace(_answer(asked, filters, found.text, at, exclude_id), interpreted=found)
    return _answer(asked, asked.filters, asked.q, at, exclude_id)


def _answer(asked: SearchRequest, filters: Filters, text: str, at: date | None, exclude_id: int | None) -> Answer:
    if carries_nothing(text):
        return Answer(browse(filters, asked.k, asked.offset, at), None, None)
    query = read_query(text)
    page = selectors.search(selectors.query_vector(query), k=asked.k, offset=asked.offset, min_score=asked.min_score,
                            filters=filters, sort=asked.sort, query=query, cutoff=asked.cutoff, exclude_id=exclude_id)
    return Answer(page, None, query)
