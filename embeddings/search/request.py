"""A search as asked: the query text, its filters, sort, cutoff and page. One parser turns request
parameters into it for both the search page and the JSON API, so a filter means the same thing on
both. The API's values arrive typed and checked by its schema (a bad one is a 422 before this);
the page's arrive as form strings, and one that cannot be read is left out rather than refused."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

SORTS = ("relevance", "taken")
CUTOFFS = ("auto", "none")
MAX_K = 200
MAX_OFFSET = 10_000
# The page's short names for the upload dates (kept: links people saved use them).
ALIASES = {"after": "uploaded_after", "before": "uploaded_before"}
TEXT_LIMITS = {"camera": 128, "library": 100}


class BadParameter(ValueError):
    """A parameter the API's schema let through but that cannot be used (a date out of range)."""


@dataclass(frozen=True)
class Filters:
    """What a search may be narrowed to, besides its meaning. Empty fields filter nothing."""

    uploaded_after: datetime | None = None
    uploaded_before: datetime | None = None
    taken_after: datetime | None = None
    taken_before: datetime | None = None
    camera: str | None = None  # every word must appear in the make or the model, any case
    library: str | None = None  # a library's id or name
    months: tuple[int, ...] = ()  # taken in these months of any year ("snow in december")

    def apply(self, rows):
        # a library image hidden as a duplicate of a kept copy leaves every search (SPEC §15)
        rows = rows.filter(duplicate_hidden__isnull=True)
        if self.uploaded_after:
            rows = rows.filter(uploaded_at__gte=self.uploaded_after)
        if self.uploaded_before:
            rows = rows.filter(uploaded_at__lt=self.uploaded_before)
        if self.taken_after:
            rows = rows.filter(taken_at__gte=self.taken_after)
        if self.taken_before:
            rows = rows.filter(taken_at__lt=self.taken_before)
        for word in (self.camera or "").split():
            rows = rows.filter(Q(camera_make__icontains=word) | Q(camera_model__icontains=word))
        if self.months:
            rows = rows.filter(in_months(rows.model, self.months))
        if self.library:
            key = self.library.strip()
            rows = rows.filter(Q(library__name=key) | Q(library_id=int(key)) if key.isdigit() else Q(library__name=key))
        return rows


def in_months(model, months) -> Q:
    """Taken in these months of any year, as taken_at ranges over the years the photos span, which
    the taken_at index answers. The month's number read from every row (taken_at__month__in) scanned
    the whole table where no photo matched: 66 ms at 100k images on PostgreSQL, on every query
    whose words read as a season ("snow in winter") before it fell back to the words as typed."""
    dated = model.objects.filter(taken_at__isnull=False).values_list("taken_at", flat=True)
    first, last = dated.order_by("taken_at").first(), dated.order_by("-taken_at").first()
    if first is None:
        return Q(pk__in=[])  # no photo has a taken time: none was taken in any month
    zone = timezone.get_current_timezone()
    ranges: list[list[datetime]] = []
    for year in range(timezone.localtime(first, zone).year, timezone.localtime(last, zone).year + 1):
        for month in sorted({m for m in months if 1 <= m <= 12}):
            start = datetime(year, month, 1, tzinfo=zone)
            end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=zone)
            if ranges and ranges[-1][1] == start:
                ranges[-1][1] = end  # December then January: one range
            else:
                ranges.append([start, end])
    q = Q(pk__in=[])
    for start, end in ranges:
        q |= Q(taken_at__gte=start, taken_at__lt=end)
    return q


@dataclass(frozen=True)
class SearchRequest:
    q: str = ""
    filters: Filters = field(default_factory=Filters)
    k: int = 20
    offset: int = 0
    min_score: float | None = None
    sort: str = "relevance"
    cutoff: str = "auto"


def _when(value, strict: bool) -> datetime | None:
    """A date filter in UTC: a day means its start, naive means UTC, and odd offsets (which
    PostgreSQL refuses) are folded in."""
    if value in (None, ""):
        return None
    try:
        if isinstance(value, str):
            value = parse_datetime(value) or parse_date(value)
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime.combine(value, time.min)
        if not isinstance(value, datetime):
            raise ValueError("not a date")
        return value.replace(tzinfo=UTC) if timezone.is_naive(value) else value.astimezone(UTC)
    except (OverflowError, ValueError):  # well formed but impossible (2024-02-30), or out of range
        if strict:
            raise BadParameter("the date is out of range") from None
        return None


def _text(value, limit: int) -> str | None:
    """A free-text filter as the database can take it (PostgreSQL refuses NUL), or None."""
    value = str(value or "").replace("\x00", "").strip()[:limit]
    return value or None


def _number(value, kind, default, lo, hi):
    try:
        return min(max(kind(value), lo), hi) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def parse(params: Mapping, *, k: int = 20, strict: bool = False) -> SearchRequest:
    """The search a request asks for. `strict` (the API): a value its schema passed but that cannot
    be used raises BadParameter; otherwise (the page) such a value is left out."""
    get = {ALIASES.get(key, key): value for key, value in params.items()}
    filters = Filters(**{name: _when(get.get(name), strict) for name in
                         ("uploaded_after", "uploaded_before", "taken_after", "taken_before")},
                      **{name: _text(get.get(name), limit) for name, limit in TEXT_LIMITS.items()})
    min_score = _number(get.get("min_score"), float, None, -1.0, 1.0)
    return SearchRequest(
        q=str(get.get("q") or "").strip(), filters=filters, k=_number(get.get("k"), int, k, 1, MAX_K),
        offset=_number(get.get("offset"), int, 0, 0, MAX_OFFSET), min_score=min_score,
        sort=get.get("sort") if get.get("sort") in SORTS else "relevance",
        cutoff="none" if get.get("cutoff") == "none" else "auto")
