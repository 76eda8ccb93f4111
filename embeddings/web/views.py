"""Browser pages. Thin: parse the request, call a selector or service, render."""
import base64
import mimetypes
import secrets
from datetime import date
from functools import wraps

import numpy as np
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from embeddings.files import originals
from embeddings.models import Album, Image, Library
from embeddings.search import model_switch, selectors
from embeddings.search import request as search_request
from embeddings.search.answer import answer, known_cameras, timeline_months
from embeddings.search.query import BadQuery, read_query
from embeddings.web import links
from embeddings.web.links import chips

PAGE_SIZE = 24


def readable(view):
    """Public unless CLIPSEARCH_PUBLIC=false; then a login is needed."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not settings.CLIPSEARCH_PUBLIC and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapped


def _month(value):
    """A "jump to" month of the timeline, YYYY-MM, or None."""
    try:
        year, month = (int(part) for part in (value or "").split("-"))
        return date(year, month, 1) if 1900 <= year <= 2100 and 1 <= month <= 12 else None
    except ValueError:
        return None


def _int(value, default, lo, hi):
    try:
        return min(max(int(value), lo), hi)
    except (TypeError, ValueError):
        return default


_SAVED_QUERIES = 8  # image queries kept per session so that their pages can be turned


def _save_query_vector(request, vector) -> str:
    """Keep an image query's vector in the session; the pager links carry only its key.

    An uploaded picture cannot ride along in a link, and encoding it again per page would cost
    a model call; so the vector (text mixed in) is kept, the oldest dropped past a few.
    """
    saved = request.session.get("query_vectors", {})
    key = secrets.token_urlsafe(8)
    saved[key] = [model_switch.serving_key(), base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode()]
    request.session["query_vectors"] = dict(list(saved.items())[-_SAVED_QUERIES:])
    return key


def _saved_query_vector(request, key):
    model, raw = request.session.get("query_vectors", {}).get(key) or (None, None)
    if model != model_switch.serving_key():  # unknown key, or a vector of the model used before a restart
        raise BadQuery("that image search has expired: drop or choose the image again")
    return np.frombuffer(base64.b64decode(raw), dtype=np.float32)


def _filter_choices() -> dict:
    return {"libraries": list(Library.objects.values_list("name", flat=True)), "cameras": known_cameras()}


@readable
@ensure_csrf_cookie  # the image-search POST sends the token from this cookie
@require_http_methods(["GET", "POST"])
def search_page(request):
    params = request.POST if request.method == "POST" else request.GET
    asked = search_request.parse(params, k=PAGE_SIZE)
    q, filters, offset = asked.q, asked.filters, asked.offset
    like = params.get("like")
    upload = request.FILES.get("image")
    saved = params.get("qi")  # key of an image query kept in the session (pages 2, 3, ...)
    ctx = {"q": q, "min_score": params.get("min_score", ""), "after": params.get("after", ""),
           "before": params.get("before", ""), "taken_after": params.get("taken_after", ""),
           "taken_before": params.get("taken_before", ""), "camera": filters.camera or "",
           "library": filters.library or "", "sort": asked.sort, "cutoff": asked.cutoff, "offset": offset,
           "page_size": PAGE_SIZE, "total_images": Image.objects.count(), "model": selectors.model_info()}
    try:
        vector, got = None, None
        if like:
            vector = selectors.image_vector(_int(like, 0, 0, 2**62))
            if vector is None:
                raise BadQuery("that image is not indexed (yet)")
            ctx["like"] = like
        elif saved:
            vector = _saved_query_vector(request, saved)
            ctx["qi"] = saved
        elif upload:
            if upload.size > settings.MAX_UPLOAD_BYTES:
                raise BadQuery("the file is over the upload size limit")
            vector = selectors.query_vector(read_query(q) if q else None, upload.read())
            ctx["qi"] = _save_query_vector(request, vector)
        elif ctx["total_images"]:  # words (dates and cameras read out of them), or a timeline to browse
            got = answer(asked, at=_month(params.get("at")))
        if vector is not None:
            page = selectors.search(vector, k=PAGE_SIZE, offset=offset, min_score=asked.min_score, filters=filters,
                                    exclude_id=int(like) if like else None, sort=asked.sort, cutoff=asked.cutoff)
        else:
            page = got.page if got else None
        if page is not None:
            browsing = bool(got and got.browsing)
            ctx.update(page=page, searched=True, by_image=bool(upload or saved), browsing=browsing,
                       timeline=browsing and not q, at=params.get("at", "") if browsing else "",
                       chips=chips(q, got.interpreted, ctx) if got else [],
                       match_words=selectors.highlight_words(got.query) if got and got.query else [])
            state = links.state(ctx)
            if ctx["timeline"]:
                ctx["months"] = [{**m, "url": links.link(state, at=m["key"], offset=0)} for m in timeline_months(filters)]
            ctx.update(state=state.urlencode(), pages=links.pages(state, offset, page, PAGE_SIZE),
                       count=links.count(page, offset),
                       next_url=links.link(state, offset=offset + PAGE_SIZE) if page.has_more else None,
                       prev_url=links.link(state, offset=max(offset - PAGE_SIZE, 0)) if offset else None,
                       less_relevant_url=links.link(state, cutoff="none"))
    except BadQuery as exc:
        ctx["error"] = str(exc)
    status = 400 if "error" in ctx else 200
    if params.get("fragment"):  # the next page for endless scrolling: its cards and pager only
        return render(request, "_results_page.html", ctx, status=status)
    if request.user.is_staff:  # the staff tools: put a selection in an album, keep this search as a smart album
        ctx["manual_albums"] = Album.objects.filter(kind=Album.Kind.MANUAL)
        ctx["smart_query"] = {search_request.ALIASES.get(key, key): value for key, value in params.items()
                              if key in links.FILTERS and value and key not in ("q", "at")}
    opened = _int(params.get("open"), 0, 0, 2**62)  # a shared lightbox link: that image, wherever it ranks
    ctx["filters_active"] = links.active_filters(ctx)
    ctx.update(_filter_choices(), opened=Image.objects.filter(pk=opened).select_related("library").first() if opened else None)
    return render(request, "search.html", ctx, status=status)


@readable
def image_detail(request, pk):
    image = get_object_or_404(Image.objects.select_related("library"), pk=pk)
    similar = selectors.similar(pk, k=12)
    return render(request, "detail.html", {"image": image, "similar": similar, "model": selectors.model_info()})


@readable
def status_page(request):
    return render(request, "status.html", {"s": selectors.status()})


@readable
def media(request, path):
    """Uploaded files, re-served with the type of their checked format and nosniff."""
    if ".." in path.split("/") or not default_storage.exists(path):
        raise Http404("no such file")
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    response = FileResponse(default_storage.open(path, "rb"), content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@readable
def library_original(request, pk):
    """A library image's original, read where it lies: only inside its library root, only a format
    on the allowlist within the pixel limit, sent with that format's type and nosniff."""
    image = get_object_or_404(Image.objects.select_related("library"), pk=pk, library__isnull=False)
    try:
        data, content_type = originals.for_serving(image)
    except (OSError, ValueError):  # gone, unreadable, outside the root, or refused by the policy
        raise Http404("the original is not available") from None
    response = HttpResponse(data, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response
