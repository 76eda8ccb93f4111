"""The JSON API's input and output shapes (django-ninja schemas); the OpenAPI schema is made from
them. Output fields that are URLs resolve against the request, so links are absolute."""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from ninja import ModelSchema, Schema
from pydantic import BaseModel, BeforeValidator, Field, StrictFloat

from embeddings.models import Image
from embeddings.search.request import MAX_K


def _absolute(context, url: str) -> str:
    request = (context or {}).get("request")
    return request.build_absolute_uri(url) if request is not None else url


class ErrorBody(Schema):
    code: str
    message: str


class ErrorOut(Schema):
    error: ErrorBody


class ImageLinks(Schema):
    """The links every image carries, from an Image."""

    image_url: str
    thumbnail_url: str
    detail_url: str

    @staticmethod
    def resolve_image_url(obj, context):
        return _absolute(context, obj.original_url)

    @staticmethod
    def resolve_thumbnail_url(obj, context):
        return _absolute(context, obj.display_url)

    @staticmethod
    def resolve_detail_url(obj, context):
        return _absolute(context, obj.get_absolute_url())


class PhotoFacts(Schema):
    """Where an image lies and what its EXIF says, from an Image."""

    taken_at: datetime | None
    camera: str | None
    library: str | None  # the library's name; null for uploads
    path: str | None  # relative to the library's root

    @staticmethod
    def resolve_camera(obj):
        return obj.camera or None

    @staticmethod
    def resolve_library(obj):
        return obj.library.name if obj.library_id else None

    @staticmethod
    def resolve_path(obj):
        return obj.path or None


class Gps(Schema):
    lat: float
    lon: float


class ImageOut(ImageLinks, PhotoFacts, ModelSchema):
    gps: Gps | None
    text: str | None  # what OCR read; null until it ran (or when it is off)

    class Meta:
        model = Image
        fields = ["id", "status", "failure_reason", "original_filename", "sha256", "width", "height", "format",
                  "byte_size", "uploaded_at", "indexed_at"]

    @staticmethod
    def resolve_gps(obj):
        return None if obj.gps_lat is None or obj.gps_lon is None else {"lat": obj.gps_lat, "lon": obj.gps_lon}

    @staticmethod
    def resolve_text(obj):
        return obj.ocr_text


class ResultOut(BaseModel):
    """One search result: its image's links, facts and size, its score and why it matched. Built as
    a plain dict by `result_items` and checked here: ninja's resolvers wrapped every field of every
    hit (9,000 attribute lookups for 30 pages of 20). Writing 20 hits took 3.86 ms that way, 1.93 ms
    now (in-process, AVX2 kind)."""

    id: int
    score: float | None  # null when browsing (no query to score against)
    image_url: str
    thumbnail_url: str
    detail_url: str
    width: int
    height: int
    original_filename: str
    uploaded_at: datetime
    taken_at: datetime | None
    camera: str | None
    library: str | None
    path: str | None
    matched: list[Literal["meaning", "text", "name"]]


def result_items(hits, request) -> list[dict]:
    """ResultOut's fields for a page of selectors.Hit, the links absolute against the request."""
    root = request.build_absolute_uri("/")[:-1]  # scheme and host, worked out once for the page

    def absolute(url: str) -> str:
        return root + url if url.startswith("/") and not url.startswith("//") else request.build_absolute_uri(url)

    out = []
    for hit in hits:
        image = hit.image
        out.append({
            "id": image.pk, "score": None if hit.score is None else round(hit.score, 6),
            "image_url": absolute(image.original_url), "thumbnail_url": absolute(image.display_url),
            "detail_url": absolute(image.get_absolute_url()),
            "width": image.width, "height": image.height, "original_filename": image.original_filename,
            "uploaded_at": image.uploaded_at, "taken_at": image.taken_at,
            "camera": PhotoFacts.resolve_camera(image), "library": PhotoFacts.resolve_library(image),
            "path": PhotoFacts.resolve_path(image),
            "matched": hit.matched,  # [] when browsing: nothing was matched, the filters let it through
        })
    return out


class ReadOut(Schema):
    kind: Literal["taken", "camera"]
    phrase: str  # as typed, e.g. "in july 2019"


class InterpretedOut(Schema):
    """What was read out of the query's words into filters (embeddings.search.interpret)."""

    taken_after: date | None  # inclusive
    taken_before: date | None  # exclusive
    months: list[int] = Field(default_factory=list, description="months of any year, e.g. [12] for 'in december'")
    camera: str | None
    text: str  # what was left for meaning and keywords ("" when only filters were typed)
    read: list[ReadOut] = Field(default_factory=list)

    @staticmethod
    def resolve_read(obj):
        return [{"kind": kind, "phrase": phrase} for kind, phrase in obj.read]


class ResultsOut(Schema):
    query: str | None
    model: str
    took_ms: float
    results: list[ResultOut]
    next: str | None
    passed: int | None = None  # how many results passed the relevance cutoff (null: no cutoff applied)
    interpreted: InterpretedOut | None = None  # dates and camera read out of `q`, or null


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


# A query's most characters: any 300, each percent-encoded as up to 12 bytes, fit the request line
# with every other parameter at its longest (gunicorn.conf.py: 8,190 bytes); the model reads at
# most 77 tokens (~300 characters) of a phrase anyway. Longer is a 422, not a 414 from the server.
MAX_Q = 300
HAS_TEXT = r"\S"  # not empty or only whitespace: a query of nothing is refused


def _not_a_number(value):
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit()):
        raise ValueError("a date, like 2019-07-01 or 2019-07-01T12:00:00Z")
    return value


# A date filter: ISO 8601 only (pydantic would read a bare number as seconds since 1970).
When = Annotated[datetime | None, BeforeValidator(_not_a_number)]


class SearchParams(Schema):
    # Optional: without it the filters are browsed, newest taken first. Given, it must say something.
    q: str | None = Field(None, min_length=1, max_length=MAX_Q, pattern=HAS_TEXT)
    k: int = Field(20, ge=1, le=MAX_K)
    offset: int = Field(0, ge=0, le=10_000)
    min_score: float | None = Field(None, ge=-1, le=1)
    uploaded_after: When = None
    uploaded_before: When = None
    taken_after: When = None
    taken_before: When = None
    # No NUL: these reach the database, and PostgreSQL text cannot hold one.
    camera: str | None = Field(None, max_length=128, pattern=r"^[^\x00]*$")
    library: str | None = Field(None, max_length=100, pattern=r"^[^\x00]*$", description="a library's id or name")
    sort: Literal["relevance", "taken"] = "relevance"
    cutoff: Literal["auto", "none"] = Field("auto", description="auto: end where relevance drops; min_score overrides")


class TextIn(Schema):
    text: str = Field(..., min_length=1, max_length=10_000, pattern=HAS_TEXT)


class SimilarityIn(Schema):
    # Strict: numbers only (`true` is not 1.0, nor "1.0" a number); equal lengths and non-zero are
    # checked by the endpoint (a 400), as a JSON schema cannot say them.
    text_embedding: list[StrictFloat] = Field(..., min_length=1, max_length=4096)
    image_embedding: list[StrictFloat] = Field(..., min_length=1, max_length=4096)


class SimilarityOut(Schema):
    similarity: float


class EmbeddingOut(Schema):
    embedding: list[float]
    dim: int
    model: str


def _not_bool(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("an id is a number")
    return value


class BulkIdsIn(Schema):
    """Images chosen together (the search page's selection)."""

    # numbers only: `false` or "2" is not an id (361.0 is 361, as JSON Schema counts it an integer); bounded: an
    # id past the database's integers is a 422, not "missing"
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1), BeforeValidator(_not_bool)]] = Field(..., min_length=1, max_length=1000)


class BulkOut(Schema):
    done: list[int]  # the images acted on
    missing: list[int]  # ids with no image (already deleted, or never there)
