"""What every endpoint of the JSON API shares: who may call it (tokens, sessions), the error answers
it documents and their one JSON shape, the per-client search rate, and the small request helpers.
The endpoints live in the api_* routers; embeddings.web.api assembles them."""
import time

from django.conf import settings
from django.http import JsonResponse
from django.utils import timezone
from ninja import File
from ninja.errors import HttpError
from ninja.files import UploadedFile
from ninja.security import HttpBearer, SessionAuth, SessionAuthIsStaff

from embeddings.files import image_policy
from embeddings.models import ApiToken, Image
from embeddings.queue import redis_connection
from embeddings.search import model_switch
from embeddings.web.schemas import ErrorOut, result_items


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


ERRORS = statuses(400, 401, 403, 404, 409, 413, 422, 429)  # every code some operation answers


def error_body(code: str, message: str, **extra) -> dict:
    """The one shape of every error answer."""
    return {"error": {"code": code, "message": message, **extra}}


def error_response(status: int, code: str, message: str, **extra) -> JsonResponse:
    """An error answered by an endpoint itself (sent as is: `extra` such as a duplicate's
    existing_id is not in the generic ErrorOut schema)."""
    return JsonResponse(error_body(code, message, **extra), status=status)


UPLOAD_FILES = File(..., min_length=1, max_length=settings.DATA_UPLOAD_MAX_NUMBER_FILES)


def image_parts(*fields: str) -> dict:
    """OpenAPI for multipart fields that take an image: the formats the upload policy allows (a
    client generated from the schema sends those; anything else is a 400 saying why)."""
    types = "image/jpeg, image/png, image/gif, image/webp, image/bmp, image/tiff"
    encoding = {f: {"contentType": types} for f in fields}
    return {"requestBody": {"content": {"multipart/form-data": {"encoding": encoding}}}}


class RateLimited(Exception):
    pass


def check_rate(request):
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


def results(request, query, page, next_params=None, interpreted=None) -> dict:
    """A result list (ResultsOut): the page's hits and the absolute link to the next page."""
    nxt = None
    if page.has_more and next_params is not None:
        q = request.GET.copy()
        for key, value in next_params.items():
            q[key] = str(value)  # replaces (QueryDict.update would append a second offset)
        nxt = request.build_absolute_uri(f"{request.path}?{q.urlencode()}")
    return {"query": query, "model": model_switch.serving_key(), "took_ms": round(page.took_ms, 2),
            "results": result_items(page.hits, request),
            "next": nxt, "passed": page.passed, "interpreted": interpreted}


def get_image(image_id) -> Image:
    im = Image.objects.filter(pk=image_id).first() if 0 < image_id < 2**63 else None
    if im is None:
        raise HttpError(404, f"no image with id {image_id}")
    return im


def read_upload(file: UploadedFile) -> bytes:
    """An uploaded query image's bytes, refused unread when over the size limit."""
    try:
        image_policy.check_size(file.size)
    except image_policy.RejectedImage as exc:
        raise HttpError(413, str(exc)) from None
    return file.read()
