"""How a search travels in links. The numbered pager, the next-page fetch of endless scrolling and
the lightbox's URL all carry the same search (words or image key, filters, sort, cutoff), made here
from the search page's context; empty and default values stay out, so shared URLs read plainly."""
import re

from django.http import QueryDict

KEYS = ("q", "like", "qi", "min_score", "after", "before", "taken_after", "taken_before", "camera", "library",
        "sort", "cutoff", "at")
FILTERS = KEYS[3:-1]
DEFAULTS = {"sort": "relevance", "cutoff": "auto"}


def state(ctx) -> QueryDict:
    out = QueryDict(mutable=True)
    for key in KEYS:
        value = ctx.get(key)
        if value not in (None, "") and DEFAULTS.get(key) != value:
            out[key] = value
    return out


def link(search: QueryDict, **extra) -> str:
    q = search.copy()
    for key, value in extra.items():
        q[key] = value
    return "?" + q.urlencode()


def pages(search: QueryDict, offset: int, page, page_size: int) -> list[dict]:
    """Numbered pages around this one: the first, two either side, and the last where it is known."""
    current = offset // page_size + 1
    last = -(-page.passed // page_size) if page.passed else current + (1 if page.has_more else 0)
    last = max(last, current)
    numbers = sorted({1, last, *range(max(1, current - 2), min(last, current + 2) + 1)})
    return [{"n": n, "url": link(search, offset=(n - 1) * page_size), "current": n == current,
             "gap": i > 0 and n - numbers[i - 1] > 1} for i, n in enumerate(numbers)]


def count(page, offset: int) -> dict:
    """How many results: exact where the relevance cutoff decided or the list ended, "N+" while more may come."""
    if page.passed is not None:
        return {"n": page.passed, "plus": False, "relevant": True}
    return {"n": offset + len(page.hits), "plus": page.has_more, "relevant": False}


def active_filters(ctx) -> int:
    return sum(1 for key in FILTERS if ctx.get(key) not in (None, "", DEFAULTS.get(key)))


def chips(q: str, found, ctx) -> list[dict]:
    """What was read out of the words, as removable chips: "taken: summer 2025", its × link the same
    search without that phrase (so it filters no more)."""
    if not found:
        return []
    out = []
    for kind, phrase in found.read:
        rest = " ".join(re.sub(re.escape(phrase), " ", q, count=1, flags=re.IGNORECASE).split())
        out.append({"kind": kind, "phrase": phrase, "remove": link(state({**ctx, "q": rest}), offset=0)})
    return out
