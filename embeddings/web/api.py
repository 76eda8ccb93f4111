"""The JSON API, built with django-ninja, which also serves its OpenAPI schema at
/api/openapi.json and docs at /api/docs: the routers of endpoints (api_search, api_images,
api_model, api_libraries) mounted on one NinjaAPI, and the error answers they share. Thin:
endpoints validate, call a selector or service, and return what the schemas shape."""
from django.db import InterfaceError, OperationalError
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from embeddings.files import image_policy
from embeddings.search.query import BadQuery
from embeddings.search.request import BadParameter
from embeddings.web import api_albums, api_duplicates, api_images, api_libraries, api_model, api_search
from embeddings.web.api_base import RateLimited, error_body


class StrictParser(Parser):
    """A parameter given twice (`q=a&q=b`) arrives as a list, so that one that takes a single value is
    a 422 ("not a valid string"), not "the last one wins"; undeclared names stay ignored."""

    def parse_querydict(self, data, list_fields, request):
        return {key: data.getlist(key) if key in list_fields or len(data.getlist(key)) > 1 else data[key] for key in data}


class ClipsearchApi(NinjaAPI):
    def get_openapi_operation_id(self, operation) -> str:
        # By endpoint name, not module: ids (and the upload's OpenAPI links) stay put when code moves.
        return f"embeddings_api_{operation.view_func.__name__}"


api = ClipsearchApi(title="clipsearch", version="1.0", urls_namespace="api", docs_url="/docs", parser=StrictParser())
api.add_router("", api_search.router)
api.add_router("", api_images.router)
api.add_router("", api_model.router)
api.add_router("/libraries", api_libraries.router)
api.add_router("/albums", api_albums.router)
api.add_router("/duplicates", api_duplicates.router)


# ---- errors: every failure answers {"error": {"code", "message"}} ------------------------
def _error(request, status, code, message, **extra):
    return api.create_response(request, error_body(code, message, **extra), status=status)


@api.exception_handler(ValidationError)
def on_validation(request, exc):
    first = exc.errors[0] if exc.errors else {}
    where = ".".join(str(p) for p in first.get("loc", [])[1:]) or "request"
    return _error(request, 422, "invalid", f"{where}: {first.get('msg', 'invalid value')}", details=exc.errors)


@api.exception_handler(BadParameter)
def on_bad_parameter(request, exc):
    return _error(request, 422, "invalid", str(exc))


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
    # clipsearch.middleware.RetryReads answers a read once more, on a new database connection.
    response.database_went_away = what == "the database"
    return response


@api.exception_handler(Http404)
def on_404(request, exc):
    return _error(request, 404, "not_found", str(exc) or "not found")


@api.exception_handler(BadQuery)
def on_bad_query(request, exc):
    return _error(request, 400, "bad_query", str(exc))


@api.exception_handler(RateLimited)
def on_rate(request, exc):
    response = _error(request, 429, "rate_limited", str(exc))
    response["Retry-After"] = "60"
    return response
