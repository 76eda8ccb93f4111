"""The JSON API, built with django-ninja, which also serves its OpenAPI schema at
/api/openapi.json and docs at /api/docs. Thin: validate, call a selector or service, and return
objects that the schemas (embeddings.schemas) shape."""
import time
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.utils import timezone
from ninja import File, Form, NinjaAPI, Query, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.files import UploadedFile
from ninja.parser import Parser
from ninja.security import HttpBearer, SessionAuth, SessionAuthIsStaff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import image_policy, selectors, services, serving
from .models import ApiToken, Image
from .queue import redis_connection
from .schemas import (
    MAX_Q,
    BulkIdsIn,
    BulkOut,
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


class StrictParser(Parser):
    """A parameter given twice (`q=a&q=b`) arrives as a list, so that one that takes a single value is
    a 422 ("not a valid string"), not "the last one wins"; undeclared names stay ignored."""

    def parse_querydict(self, data, list_fields, request):
        return {key: data.getlist(key) if key in list_fields or len(data.getlist(key)) > 1 else data[key] for key in data}


api = NinjaAPI(title="clipsearch", version="1.0", urls_namespace="api", docs_url="/docs", parser=StrictParser())


class BearerToken(HttpBearer):
    def authenticate(self, request, token):
        found = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.hash(token), user__is_active=True).first()
        if found is None:
            return None
        ApiToken.objects.filter(pk=found.pk).update(last_used_at=timezone.now())
        request.user = found.user
        return found.user


class _SessionOnly:
    """A session login, CSRF-checked only when there is a logged-in session to protect: an
    anonymous request is then 401 (no credentials), not 403 "CSRF check Failed"."""

    def _get_key(self, request):
        if not getattr(request.user, "is_authenticated", False):
            return None
        return super()._get_key(request)


class StaffSession(_SessionOnly, SessionAuthIsStaff):
    pass


class UserSession(_SessionOnly, SessionAuth):
    pass


WRITE = [BearerToken(), StaffSession()]
# Read endpoints are public unless CLIPSEARCH_PUBLIC=false (read once, with the settings).
READ = None if settings.CLIPSEARCH_PUBLIC else [BearerToken(), UserSession()]


def statuses(*codes: int) -> dict:
    """The error answers an operation documents: `codes` and 503 (database or Redis unreachable for
    a moment). Writes add 401 (no credentials) and 403 (a staff session without its CSRF token);
    reads add 401 only when the API is not public."""
    return dict.fromkeys(sorted({*codes, 503}), ErrorOut)


def reads(*codes: int) -> dict:
    return statuses(*codes, *(() if READ is None else (401,)))


def writes(*codes: int) -> dict:
    return statuses(*codes, 401, 403)


ERRORS = statuses(400, 401, 403, 404, 409, 413, 422, 429)  # every code some operation answers (for routers mounted here)


# What a client can do next with an uploaded image (OpenAPI links: stateful clients and testers follow them).
UPLOADED_LINKS = {name: {"operationId": f"embeddings_api_{op}", "parameters": {"image_id": "$response.body#/images/0/id"}}
                  for name, op in (("GetImage", "image_detail"), ("SimilarImages", "similar"), ("DeleteImage", "image_delete"))}
UPLOAD_FILES = File(..., min_length=1, max_length=settings.DATA_UPLOAD_MAX_NUMBER_FILES)


def image_parts(*fields: str) -> dict:
    """OpenAPI for multipart fields that take an image: the formats the upload policy allows (a
    client generated from the schema sends those; anything else is a 400 saying why)."""
    types = "image/jpeg, image/png, image/gif, image/webp, image/bmp, image/tiff"
    encoding = {f: {"contentType": types} for f in fields}
    return {"requestBody": {"content": {"multipart/form-data": {"encoding": encoding}}}}


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
    code = {403: "forbidden", 404: "not_found", 409: "duplicate", 413: "too_large", 422: "invalid"}.get(exc.status_code)
    return _error(request, exc.status_code, code or "bad_request", image_policy.readable(exc))


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
@api.exception_handler(RedisConnectionError)
@api.exception_handler(RedisTimeoutError)
def on_unavailable(request, exc):
    """The database or Redis went away for a moment (a restart, a dropped connection): say so and
    when to retry, rather than a 500; the next request reconnects."""
    what = "Redis" if isinstance(exc, (RedisConnectionError, RedisTimeoutError)) else "the database"
    response = _error(request, 503, "unavailable", f"{what} is unreachable for a moment; try again")
    response["Retry-After"] = "2"
    return response


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
        for key, value in next_params.items():
            q[key] = str(value)  # replaces (QueryDict.update would append a second offset)
        nxt = request.build_absolute_uri(f"{request.path}?{q.urlencode()}")
    return {"query": query, "model": serving.serving_key(), "took_ms": round(page.took_ms, 2), "results": page.hits,
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
    try:
        image_policy.check_size(file.size)
    except image_policy.RejectedImage as exc:
        raise HttpError(413, str(exc)) from None
    return file.read()


# ---- endpoints -----------------------------------------------------------------------
@api.get("/search", response={200: ResultsOut, **reads(400, 422, 429)}, auth=READ, summary="Text search")
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


@api.post("/search/image", response={200: ResultsOut, **reads(400, 413, 422, 429)}, auth=READ,
          summary="Search by image, optionally mixed with text", openapi_extra=image_parts("file"))
def search_image(request, file: File[UploadedFile], q: str = Form("", max_length=MAX_Q),
                 k: int = Form(20, ge=1, le=selectors.MAX_K)):
    _check_rate(request)
    vector = selectors.query_vector(q, _read_upload(file))
    return _results(request, q or None, selectors.search(vector, k=k))


@api.get("/images/{int:image_id}/similar", response={200: ResultsOut, **reads(404, 409, 422, 429)}, auth=READ,
         summary="More like this")
def similar(request, image_id: int, k: int = Query(20, ge=1, le=selectors.MAX_K), offset: int = Query(0, ge=0, le=10_000)):
    _check_rate(request)
    _get_image(image_id)
    page = selectors.similar(image_id, k=k, offset=offset)
    if page is None:
        return _error(request, 409, "not_indexed", f"image {image_id} has no embedding for the current model yet")
    return _results(request, None, page, {"offset": offset + k})


@api.post("/images", response={201: UploadOut, **writes(400, 409, 413, 422)}, auth=WRITE, summary="Upload images",
          openapi_extra={**image_parts("files"), "responses": {"201": {"links": UPLOADED_LINKS}}})
def upload(request, files: list[UploadedFile] = UPLOAD_FILES):
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


@api.get("/images/{int:image_id}", response={200: ImageOut, **reads(404)}, auth=READ, summary="An image's facts and status")
def image_detail(request, image_id: int):
    return _get_image(image_id)


@api.delete("/images/{int:image_id}", response={204: None, **writes(404)}, auth=WRITE, summary="Delete an image")
def image_delete(request, image_id: int):
    services.delete_images([_get_image(image_id)])
    return Status(204, None)


@api.get("/status", response={200: StatusOut, **reads()}, auth=READ, summary="Counts, queue, model and index")
def status(request):
    return selectors.status()


@api.get("/model", response={200: ModelOut, **reads()}, auth=READ, summary="The loaded model (get_model_info)")
def model(request):
    return selectors.model_info()


@api.post("/encode/text", response={200: EmbeddingOut, **reads(400, 413, 422)}, auth=READ, summary="Encode text")
def encode_text(request, body: TextIn):
    if not body.text.strip():
        raise HttpError(400, "text is empty")
    v = selectors.service().embed_texts([body.text])[0]
    return {"embedding": v.tolist(), "dim": len(v), "model": settings.MODEL_KEY}


@api.post("/encode/image", response={200: EmbeddingOut, **reads(400, 413, 422)}, auth=READ, summary="Encode an image",
          openapi_extra=image_parts("file"))
def encode_image(request, file: File[UploadedFile]):
    service = selectors.service()
    try:
        picture = image_policy.decode(_read_upload(file), draft_target=service.load().preprocessor.target)
        v = service.embed_images([picture])[0]
    except ValueError as exc:  # RejectedImage is one
        raise HttpError(400, f"not a readable image: {image_policy.readable(exc)}") from None
    return {"embedding": v.tolist(), "dim": len(v), "model": settings.MODEL_KEY}


@api.post("/similarity", response={200: SimilarityOut, **reads(400, 413, 422)}, auth=READ,
          summary="Cosine similarity of two embeddings")
def similarity(request, body: SimilarityIn):
    a, b = np.asarray(body.text_embedding, np.float64), np.asarray(body.image_embedding, np.float64)
    if a.shape != b.shape:  # the one rule a JSON schema cannot state
        raise HttpError(400, f"the two embeddings differ in length ({a.size} and {b.size})")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise HttpError(400, "embeddings must be finite numbers")
    # Scaled first, so that no large value overflows the norms; a zero vector has no direction:
    # its similarity to anything is 0, as in most libraries.
    a, b = a / (np.abs(a).max() or 1.0), b / (np.abs(b).max() or 1.0)
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return {"similarity": 0.0 if na == 0 or nb == 0 else float(np.clip(a @ b / (na * nb), -1.0, 1.0))}


# By import path: the router module imports this one (for auth and error shapes), not the reverse.
api.add_router("/libraries", "embeddings.api_libraries.router")


# ---- bulk actions of the search page's selection (one request, one transaction) --------------
def _existing(ids):
    found = list(Image.objects.filter(pk__in=set(ids)))
    known = {im.pk for im in found}
    return found, sorted(known), sorted(set(ids) - known)


@api.post("/images/delete", response={200: BulkOut, **ERRORS}, auth=WRITE, summary="Delete many images")
def images_delete(request, body: BulkIdsIn):
    found, done, missing = _existing(body.ids)
    services.delete_images(found)
    return {"done": done, "missing": missing}


@api.post("/images/reencode", response={200: BulkOut, **ERRORS}, auth=WRITE, summary="Re-encode many images")
def images_reencode(request, body: BulkIdsIn):
    found, done, missing = _existing(body.ids)
    services.reencode_images(found)
    return {"done": done, "missing": missing}
