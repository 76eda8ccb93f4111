"""The JSON API, built with django-ninja, which also serves its OpenAPI schema at
/api/openapi.json and docs at /api/docs. Thin: validate, call a selector or service, and return
objects that the schemas (embeddings.schemas) shape."""
import time
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.http import Http404
from django.utils import timezone
from ninja import File, Form, NinjaAPI, Query, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.files import UploadedFile
from ninja.security import HttpBearer, django_auth, django_auth_is_staff

from . import image_policy, selectors, services
from .clip.vectors import cosine
from .models import ApiToken, Image
from .queue import redis_connection
from .schemas import (
    EmbeddingOut,
    ErrorOut,
    ImageOut,
    ModelOut,
    ResultsOut,
    SearchParams,
    SimilarityIn,
    SimilarityOut,
    StatusOut,
    TextIn,
    UploadOut,
)

api = NinjaAPI(title="clipsearch", version="1.0", urls_namespace="api", docs_url="/docs")


class BearerToken(HttpBearer):
    def authenticate(self, request, token):
        found = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.hash(token), user__is_active=True).first()
        if found is None:
            return None
        ApiToken.objects.filter(pk=found.pk).update(last_used_at=timezone.now())
        request.user = found.user
        return found.user


WRITE = [BearerToken(), django_auth_is_staff]
# Read endpoints are public unless CLIPSEARCH_PUBLIC=false (read once, with the settings).
READ = None if settings.CLIPSEARCH_PUBLIC else [BearerToken(), django_auth]
ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut}


# ---- errors: every failure answers {"error": {"code", "message"}} ------------------------
class RateLimited(Exception):
    pass


def _error(request, status, code, message, **extra):
    return api.create_response(request, {"error": {"code": code, "message": message, **extra}}, status=status)


@api.exception_handler(ValidationError)
def on_validation(request, exc):
    first = exc.errors[0] if exc.errors else {}
    where = ".".join(str(p) for p in first.get("loc", [])[1:]) or "request"
    return _error(request, 422, "invalid", f"{where}: {first.get('msg', 'invalid value')}", details=exc.errors)


@api.exception_handler(AuthenticationError)
def on_auth(request, exc):
    return _error(request, 401, "unauthorized", "a valid API token (Authorization: Bearer …) or a staff login is needed")


@api.exception_handler(HttpError)
def on_http(request, exc):
    return _error(request, exc.status_code, {404: "not_found", 409: "duplicate"}.get(exc.status_code, "bad_request"), str(exc))


@api.exception_handler(Http404)
def on_404(request, exc):
    return _error(request, 404, "not_found", str(exc) or "not found")


@api.exception_handler(selectors.BadQuery)
def on_bad_query(request, exc):
    return _error(request, 400, "bad_query", str(exc))


@api.exception_handler(RateLimited)
def on_rate(request, exc):
    response = _error(request, 429, "rate_limited", str(exc))
    response["Retry-After"] = "60"
    return response


# ---- helpers ---------------------------------------------------------------------------
def _check_rate(request):
    """A fixed one-minute window per token user or client address, counted in Redis."""
    limit = settings.SEARCH_RATE_PER_MINUTE
    if not limit:
        return
    who = f"u{request.user.pk}" if getattr(request.user, "is_authenticated", False) else request.META.get("REMOTE_ADDR", "-")
    key = f"clipsearch:rate:{who}:{int(time.time() // 60)}"
    try:
        pipe = redis_connection().pipeline()
        count, _ = pipe.incr(key).expire(key, 120).execute()
    except Exception:
        return  # Redis down: serve searches rather than refuse them
    if count > limit:
        raise RateLimited(f"more than {limit} searches a minute; wait a little")


def _results(request, query, page, next_params=None) -> dict:
    nxt = None
    if page.has_more and next_params is not None:
        q = request.GET.copy()
        q.update(next_params)
        nxt = request.build_absolute_uri(f"{request.path}?{q.urlencode()}")
    return {"query": query, "model": settings.MODEL_KEY, "took_ms": round(page.took_ms, 2), "results": page.hits,
            "next": nxt, "passed": page.passed}


def _get_image(image_id):
    im = Image.objects.filter(pk=image_id).first() if 0 < image_id < 2**63 else None
    if im is None:
        raise HttpError(404, f"no image with id {image_id}")
    return im


def _utc(d: datetime | None) -> datetime | None:
    """Date filters in UTC: naive means UTC, and odd offsets (which PostgreSQL refuses) are folded in."""
    if d is None:
        return None
    try:
        return d.replace(tzinfo=UTC) if timezone.is_naive(d) else d.astimezone(UTC)
    except (OverflowError, ValueError):
        raise HttpError(422, "the date is out of range") from None


def _read_upload(file: UploadedFile) -> bytes:
    """An uploaded query image's bytes, refused unread when over the size limit."""
    if file.size > settings.MAX_UPLOAD_BYTES:
        raise HttpError(400, "the file is over the upload size limit")
    return file.read()


# ---- endpoints -----------------------------------------------------------------------
@api.get("/search", response={200: ResultsOut, **ERRORS}, auth=READ, summary="Text search")
def search(request, params: Query[SearchParams]):
    _check_rate(request)
    filters = selectors.Filters(
        uploaded_after=_utc(params.uploaded_after), uploaded_before=_utc(params.uploaded_before),
        taken_after=_utc(params.taken_after), taken_before=_utc(params.taken_before),
        camera=params.camera, library=params.library)
    vector = selectors.query_vector(params.q)
    page = selectors.search(vector, k=params.k, offset=params.offset, min_score=params.min_score, filters=filters,
                            sort=params.sort, text=params.q, cutoff=params.cutoff)
    return _results(request, params.q, page, {"offset": params.offset + params.k})


@api.post("/search/image", response={200: ResultsOut, **ERRORS}, auth=READ, summary="Search by image, optionally mixed with text")
def search_image(request, file: File[UploadedFile], q: Form[str] = "", k: Form[int] = 20):
    _check_rate(request)
    if not 1 <= k <= selectors.MAX_K:
        raise HttpError(422, f"k must be between 1 and {selectors.MAX_K}")
    vector = selectors.query_vector(q, _read_upload(file))
    return _results(request, q or None, selectors.search(vector, k=k))


@api.get("/images/{image_id}/similar", response={200: ResultsOut, **ERRORS}, auth=READ, summary="More like this")
def similar(request, image_id: int, k: int = Query(20, ge=1, le=selectors.MAX_K), offset: int = Query(0, ge=0, le=10_000)):
    _check_rate(request)
    _get_image(image_id)
    page = selectors.similar(image_id, k=k, offset=offset)
    if page is None:
        return _error(request, 409, "not_indexed", f"image {image_id} has no embedding for the current model yet")
    return _results(request, None, page, {"offset": offset + k})


@api.post("/images", response={201: UploadOut, **ERRORS}, auth=WRITE, summary="Upload images")
def upload(request, files: File[list[UploadedFile]]):
    report = services.add_images(((f.name, f.read, f.size) for f in files), request.user)
    if report.added:
        return Status(201, {
            "images": [{"id": o.image.pk, "status": o.image.status, "original_filename": o.image.original_filename}
                       for o in report.added],
            "duplicates": [{"original_filename": o.filename, "reason": o.reason, "existing_id": o.existing.pk}
                           for o in report.duplicates],
            "rejected": [{"original_filename": o.filename, "reason": o.reason} for o in report.rejected],
        })
    if report.duplicates:
        d = report.duplicates[0]
        return _error(request, 409, "duplicate", d.reason, existing_id=d.existing.pk)
    return _error(request, 400, "rejected", "; ".join(f"{o.filename}: {o.reason}" for o in report.rejected) or "no files")


@api.get("/images/{image_id}", response={200: ImageOut, **ERRORS}, auth=READ, summary="An image's facts and status")
def image_detail(request, image_id: int):
    return _get_image(image_id)


@api.delete("/images/{image_id}", response={204: None, **ERRORS}, auth=WRITE, summary="Delete an image")
def image_delete(request, image_id: int):
    services.delete_images([_get_image(image_id)])
    return Status(204, None)


@api.get("/status", response={200: StatusOut, **ERRORS}, auth=READ, summary="Counts, queue, model and index")
def status(request):
    return selectors.status()


@api.get("/model", response={200: ModelOut, **ERRORS}, auth=READ, summary="The loaded model (get_model_info)")
def model(request):
    return selectors.model_info()


@api.post("/encode/text", response={200: EmbeddingOut, **ERRORS}, auth=READ, summary="Encode text")
def encode_text(request, body: TextIn):
    if not body.text.strip():
        raise HttpError(400, "text is empty")
    v = selectors.service().embed_texts([body.text])[0]
    return {"embedding": v.tolist(), "dim": len(v), "model": settings.MODEL_KEY}


@api.post("/encode/image", response={200: EmbeddingOut, **ERRORS}, auth=READ, summary="Encode an image")
def encode_image(request, file: File[UploadedFile]):
    service = selectors.service()
    try:
        picture = image_policy.decode(_read_upload(file), draft_target=service.load().preprocessor.target)
        v = service.embed_images([picture])[0]
    except ValueError as exc:  # RejectedImage is one
        raise HttpError(400, f"not a readable image: {exc}") from None
    return {"embedding": v.tolist(), "dim": len(v), "model": settings.MODEL_KEY}


@api.post("/similarity", response={200: SimilarityOut, **ERRORS}, auth=READ, summary="Cosine similarity of two embeddings")
def similarity(request, body: SimilarityIn):
    a, b = np.asarray(body.text_embedding, np.float32), np.asarray(body.image_embedding, np.float32)
    if a.shape != b.shape:
        raise HttpError(400, "the two embeddings differ in length")
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or not a.any() or not b.any():
        raise HttpError(400, "embeddings must be finite and non-zero")
    value = cosine(a, b)
    if not np.isfinite(value):  # e.g. norms overflowing float32
        raise HttpError(400, "embeddings are too large to compare")
    return {"similarity": value}
