"""The JSON API (spec section 6), built with django-ninja, which also serves its OpenAPI schema
at /api/openapi.json and docs at /api/docs. Thin: validate, call a selector or service, shape."""
import time
from datetime import datetime
from datetime import timezone as dt_timezone

import numpy as np
from django.conf import settings
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from ninja import File, Form, NinjaAPI, Query, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.files import UploadedFile
from ninja.security import HttpBearer, django_auth, django_auth_is_staff
from pydantic import Field

from . import selectors, services
from .models import ApiToken, Image

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


# ---- schemas -------------------------------------------------------------------------
class ErrorBody(Schema):
    code: str
    message: str


class ErrorOut(Schema):
    error: ErrorBody


class ResultOut(Schema):
    id: int
    score: float
    image_url: str
    thumbnail_url: str
    detail_url: str
    width: int
    height: int
    original_filename: str
    uploaded_at: datetime


class ResultsOut(Schema):
    query: str | None
    model: str
    took_ms: float
    results: list[ResultOut]
    next: str | None


class ImageOut(Schema):
    id: int
    status: str
    failure_reason: str
    original_filename: str
    sha256: str
    width: int
    height: int
    format: str
    byte_size: int
    image_url: str
    thumbnail_url: str
    detail_url: str
    uploaded_at: datetime
    indexed_at: datetime | None


class UploadItem(Schema):
    id: int
    status: str
    original_filename: str


class RejectedItem(Schema):
    original_filename: str
    reason: str
    existing_id: int | None = None


class UploadOut(Schema):
    images: list[UploadItem]
    duplicates: list[RejectedItem]
    rejected: list[RejectedItem]


class SearchParams(Schema):
    q: str = Field(..., max_length=10_000)
    k: int = Field(20, ge=1, le=selectors.MAX_K)
    offset: int = Field(0, ge=0, le=10_000)
    min_score: float | None = Field(None, ge=-1, le=1)
    uploaded_after: datetime | None = None
    uploaded_before: datetime | None = None


class TextIn(Schema):
    text: str = Field(..., max_length=10_000)


class SimilarityIn(Schema):
    text_embedding: list[float] = Field(..., min_length=1, max_length=4096)
    image_embedding: list[float] = Field(..., min_length=1, max_length=4096)


class EmbeddingOut(Schema):
    embedding: list[float]
    dim: int
    model: str


def _check_rate(request):
    """A fixed one-minute window per token user or client address, counted in Redis."""
    limit = settings.SEARCH_RATE_PER_MINUTE
    if not limit:
        return
    who = f"u{request.user.pk}" if getattr(request.user, "is_authenticated", False) else request.META.get("REMOTE_ADDR", "-")
    key = f"clipsearch:rate:{who}:{int(time.time() // 60)}"
    try:
        from .jobs import redis_connection

        pipe = redis_connection().pipeline()
        count, _ = pipe.incr(key).expire(key, 120).execute()
    except Exception:
        return  # Redis down: serve searches rather than refuse them
    if count > limit:
        raise RateLimited(f"more than {limit} searches a minute; wait a little")


class RateLimited(Exception):
    pass


@api.exception_handler(RateLimited)
def on_rate(request, exc):
    response = _error(request, 429, "rate_limited", str(exc))
    response["Retry-After"] = "60"
    return response


def _abs(request, url):
    return request.build_absolute_uri(url)


def _result(request, hit):
    im = hit.image
    return {"id": im.pk, "score": round(hit.score, 6), "image_url": _abs(request, im.file.url),
            "thumbnail_url": _abs(request, im.thumbnail.url if im.thumbnail else im.file.url),
            "detail_url": _abs(request, im.get_absolute_url()), "width": im.width, "height": im.height,
            "original_filename": im.original_filename, "uploaded_at": im.uploaded_at}


def _results(request, query, page, next_params=None):
    nxt = None
    if page.has_more and next_params is not None:
        q = request.GET.copy()
        q.update(next_params)
        nxt = _abs(request, f"{request.path}?{q.urlencode()}")
    return {"query": query, "model": selectors.MODEL_KEY, "took_ms": round(page.took_ms, 2),
            "results": [_result(request, h) for h in page.hits], "next": nxt}


def _image(request, im):
    return {"id": im.pk, "status": im.status, "failure_reason": im.failure_reason,
            "original_filename": im.original_filename, "sha256": im.sha256, "width": im.width,
            "height": im.height, "format": im.format, "byte_size": im.byte_size,
            "image_url": _abs(request, im.file.url),
            "thumbnail_url": _abs(request, im.thumbnail.url if im.thumbnail else im.file.url),
            "detail_url": _abs(request, im.get_absolute_url()), "uploaded_at": im.uploaded_at,
            "indexed_at": im.indexed_at}


def _get_image(image_id):
    im = Image.objects.filter(pk=image_id).first() if 0 < image_id < 2**63 else None
    if im is None:
        raise HttpError(404, f"no image with id {image_id}")
    return im


ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut}


def _utc(d: datetime | None) -> datetime | None:
    """Date filters in UTC: naive means UTC, and odd offsets (which PostgreSQL refuses) are folded in."""
    if d is None:
        return None
    try:
        return d.replace(tzinfo=dt_timezone.utc) if timezone.is_naive(d) else d.astimezone(dt_timezone.utc)
    except (OverflowError, ValueError):
        raise HttpError(422, "the date is out of range") from None


# ---- endpoints -----------------------------------------------------------------------
@api.get("/search", response={200: ResultsOut, **ERRORS}, auth=READ, summary="Text search")
def search(request, params: Query[SearchParams]):
    _check_rate(request)
    after, before = _utc(params.uploaded_after), _utc(params.uploaded_before)
    vector = selectors.query_vector(params.q)
    page = selectors.search(vector, k=params.k, offset=params.offset, min_score=params.min_score,
                            uploaded_after=after, uploaded_before=before)
    return _results(request, params.q, page, {"offset": params.offset + params.k})


@api.post("/search/image", response={200: ResultsOut, **ERRORS}, auth=READ, summary="Search by image, optionally mixed with text")
def search_image(request, file: File[UploadedFile], q: Form[str] = "", k: Form[int] = 20):
    _check_rate(request)
    if not 1 <= k <= selectors.MAX_K:
        raise HttpError(422, f"k must be between 1 and {selectors.MAX_K}")
    if file.size > settings.MAX_UPLOAD_BYTES:
        raise HttpError(400, "the file is over the upload size limit")
    vector = selectors.query_vector(q, file.read())
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
    out = {"images": [], "duplicates": [], "rejected": []}
    for f in files:
        if f.size > settings.MAX_UPLOAD_BYTES:
            out["rejected"].append({"original_filename": f.name, "reason": "over the upload size limit"})
            continue
        try:
            im = services.add_image(f.read(), f.name, request.user)
            out["images"].append({"id": im.pk, "status": im.status, "original_filename": im.original_filename})
        except services.DuplicateImage as dup:
            out["duplicates"].append({"original_filename": f.name, "reason": str(dup), "existing_id": dup.existing.pk})
        except services.RejectedImage as exc:
            out["rejected"].append({"original_filename": f.name, "reason": str(exc)})
    if out["images"]:
        return Status(201, out)
    if out["duplicates"]:
        d = out["duplicates"][0]
        return _error(request, 409, "duplicate", d["reason"], existing_id=d["existing_id"])
    return _error(request, 400, "rejected", "; ".join(f"{r['original_filename']}: {r['reason']}" for r in out["rejected"]) or "no files")


@api.get("/images/{image_id}", response={200: ImageOut, **ERRORS}, auth=READ, summary="An image's facts and status")
def image_detail(request, image_id: int):
    return _image(request, _get_image(image_id))


@api.delete("/images/{image_id}", response={204: None, **ERRORS}, auth=WRITE, summary="Delete an image")
def image_delete(request, image_id: int):
    services.delete_images([_get_image(image_id)])
    return Status(204, None)


@api.get("/status", auth=READ, summary="Counts, queue, model and index")
def status(request):
    return selectors.status()


@api.get("/model", auth=READ, summary="The loaded model (get_model_info)")
def model(request):
    return selectors.model_info()


@api.post("/encode/text", response={200: EmbeddingOut, **ERRORS}, auth=READ, summary="Encode text")
def encode_text(request, body: TextIn):
    if not body.text.strip():
        raise HttpError(400, "text is empty")
    v = selectors.service().embed_texts([body.text])[0]
    return {"embedding": v.tolist(), "dim": len(v), "model": selectors.MODEL_KEY}


@api.post("/encode/image", response={200: EmbeddingOut, **ERRORS}, auth=READ, summary="Encode an image")
def encode_image(request, file: File[UploadedFile]):
    if file.size > settings.MAX_UPLOAD_BYTES:
        raise HttpError(400, "the file is over the upload size limit")
    try:
        v = selectors.service().embed_images([file.read()])[0]
    except ValueError as exc:
        raise HttpError(400, f"not a readable image: {exc}") from None
    return {"embedding": v.tolist(), "dim": len(v), "model": selectors.MODEL_KEY}


@api.post("/similarity", response={200: dict, **ERRORS}, auth=READ, summary="Cosine similarity of two embeddings")
def similarity(request, body: SimilarityIn):
    from .clip_service import cosine

    a, b = np.asarray(body.text_embedding, np.float32), np.asarray(body.image_embedding, np.float32)
    if a.shape != b.shape:
        raise HttpError(400, "the two embeddings differ in length")
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or not a.any() or not b.any():
        raise HttpError(400, "embeddings must be finite and non-zero")
    similarity = cosine(a, b)
    if not np.isfinite(similarity):  # e.g. norms overflowing float32
        raise HttpError(400, "embeddings are too large to compare")
    return {"similarity": similarity}
