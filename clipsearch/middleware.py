"""Request-level rules that hold around every view.

Body size: a request whose Content-Length is over its limit is refused with 413 before Django
reads a byte of the body (Django would otherwise parse a 300 MB form to disk first, and only then
would a view see that the file is too large). One file's limit (CLIPSEARCH_MAX_UPLOAD_MB) plus
room for the form's other fields on every path; the batch uploads (the API's POST /api/images
and the admin's "add images" form) take up to BATCH_FILES files' worth per request.

API errors: under /api/, the answers that Django and django-ninja make without the API's exception
handlers (404 for an unknown path, 405 for an undeclared method, with its Allow header kept) are
given in the API's error envelope {"error": {"code", "message"}}, as JSON like every other answer.

A read whose database connection died (a restart, a failover, `pg_terminate_backend`) is answered
again once on a new connection (RetryReads): health checks only catch a connection that died
between requests, and a GET has nothing to undo; nor has an upload (a view may mark its request
`retry_safe`): images are known by their bytes, so what a first try stored is a duplicate of
itself. The API marks its 503 for a database error (`response.database_went_away`); a page's view
raises, and process_exception runs it again.
"""
from __future__ import annotations

import logging
from functools import cache

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpResponse, JsonResponse
from django.urls import reverse

BATCH_FILES = 20
FORM_ROOM = 1024 * 1024  # multipart boundaries, headers and the other fields of a form
log = logging.getLogger(__name__)
_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}


@cache
def _batch_paths() -> frozenset[str]:
    return frozenset({reverse("api:upload"), reverse("admin:embeddings_image_add")})


def body_limit(path: str) -> int:
    files = BATCH_FILES if path in _batch_paths() else 1
    return files * settings.MAX_UPLOAD_BYTES + FORM_ROOM


def _megabytes(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


class RequestLimits:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        api = request.path.startswith("/api/")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # as Django reads it: no body
        limit = body_limit(request.path)
        if length > limit:
            message = f"the request is {_megabytes(length)}; the most this address takes is {_megabytes(limit)}"
            if api:
                return _api_error(413, message)
            return HttpResponse(f"<!doctype html><title>Too large</title><p>Too large: {message}.</p>",
                                status=413, content_type="text/html; charset=utf-8")
        response = self.get_response(request)
        if api and response.status_code in (404, 405) and "json" not in response.get("Content-Type", ""):
            message = ("no such API address" if response.status_code == 404 else
                       f"{request.method} is not allowed here; allowed: {response.get('Allow', '')}")
            replaced = _api_error(response.status_code, message)
            if response.has_header("Allow"):
                replaced["Allow"] = response["Allow"]
            return replaced
        return response


class RetryReads:
    SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        retry_safe = request.method in self.SAFE or getattr(request, "retry_safe", False)
        if getattr(response, "database_went_away", False) and retry_safe and not getattr(request, "read_retried", False):
            request.read_retried = True
            self.reconnect(request)
            response = self.get_response(request)
        return response

    def process_exception(self, request, exception):
        """A page's view raised: run it once more here, on a new connection (a second failure is
        the usual 500)."""
        if (isinstance(exception, (OperationalError, InterfaceError)) and request.method in self.SAFE
                and not getattr(request, "read_retried", False) and request.resolver_match):
            request.read_retried = True
            self.reconnect(request)
            match = request.resolver_match
            return match.func(request, *match.args, **match.kwargs)
        return None

    @staticmethod
    def reconnect(request) -> None:
        log.warning("the database connection died under %s %s; answering it once more on a new one",
                    request.method, request.path)
        for conn in connections.all(initialized_only=True):
            conn.close()  # the next query opens a new connection


def _api_error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": _CODES.get(status, "error"), "message": message}}, status=status)
