"""The JSON API's input and output shapes (django-ninja schemas); the OpenAPI schema is made from
them. Output fields that are URLs resolve against the request, so links are absolute."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from ninja import ModelSchema, Schema
from pydantic import BeforeValidator, Field, StrictFloat

from .models import Image
from .selectors import MAX_K


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
    """Where an image lies and what its EXIF says, from an Image (or a Hit, which reads as one)."""

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


class ResultOut(ImageLinks, PhotoFacts, ModelSchema):
    """One search result: the image (a selectors.Hit's `image`), its score and why it matched."""

    score: float
    matched: list[Literal["meaning", "text", "name"]]

    class Meta:
        model = Image
        fields = ["id", "width", "height", "original_filename", "uploaded_at"]

    @staticmethod
    def resolve_score(obj):
        return round(obj.score, 6)

    @staticmethod
    def resolve_matched(obj):
        return getattr(obj, "matched", None) or ["meaning"]


class ResultsOut(Schema):
    query: str | None
    model: str
    took_ms: float
    results: list[ResultOut]
    next: str | None
    passed: int | None = None  # how many results passed the relevance cutoff (null: no cutoff applied)


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


class SearchParams(Schema):
    q: str = Field(..., min_length=1, max_length=MAX_Q, pattern=HAS_TEXT)
    k: int = Field(20, ge=1, le=MAX_K)
    offset: int = Field(0, ge=0, le=10_000)
    min_score: float | None = Field(None, ge=-1, le=1)
    uploaded_after: datetime | None = None
    uploaded_before: datetime | None = None
    taken_after: datetime | None = None
    taken_before: datetime | None = None
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


class ModelOut(Schema):
    """What get_model_info() reports, plus the key embeddings are stored under."""

    model_name: str
    model_key: str
    model_path: str
    is_demo: bool
    engine: str
    device: str
    precision: str
    embedding_dim: int
    image_size: int
    max_text_length: int
    parameters: int
    batch_size: int
    max_workers: int
    caching: bool
    process_rss_mb: float
    gpu_memory_allocated_mb: float | None
    gpu_memory_total_mb: float | None
    cached_models: int


class Counts(Schema):
    pending: int
    processing: int
    indexed: int
    failed: int


class IndexOut(Schema):
    kind: str
    size: int
    path: str
    bytes: int  # index memory: the mapped file (shared by the host's processes) plus this process's delta
    mmap: bool  # false: no usable file, this process serves from its own memory (see note)
    delta: int  # vectors newer than the file, held in this process's memory
    built_at: datetime | None
    last_build_ms: float | None
    rebuilds: int  # full builds done by this process since it started
    note: str


class FailureOut(Schema):
    id: int
    original_filename: str
    reason: str
    at: datetime


class OcrOut(Schema):
    """OCR's progress, apart from encoding's: indexed images by OCR state."""

    enabled: bool
    pending: int
    done: int
    failed: int
    not_asked: int  # indexed while OCR was off (or before it existed)
    done_fraction: float


class SwitchOut(Schema):
    """A model switch under way: searches answer with `serving` until `target` covers the library."""

    serving: str
    target: str
    covered: int
    total: int


class StatusOut(Schema):
    counts: Counts
    total: int
    done_fraction: float
    queue_length: int | None
    model: ModelOut
    embedded_with_current_model: int
    switching: SwitchOut | None = None
    index: IndexOut
    ocr: OcrOut
    recent_failures: list[FailureOut]


class LibraryCounts(Schema):
    images: int
    indexed: int
    pending: int
    failed: int


class SkippedOut(Schema):
    path: str
    reason: str


class LibraryOut(Schema):
    """A library (from libraries.with_counts()): its state, counts and last scan."""

    id: int
    name: str
    root: str
    state: str
    message: str
    created_at: datetime
    last_scan_started_at: datetime | None
    last_scan_finished_at: datetime | None
    counts: LibraryCounts
    last_scan: dict[str, int] | None = Field(None, description="added, changed, moved, removed, unchanged, "
                                             "touched, unreadable, duplicates")
    skipped: list[SkippedOut] = Field(default_factory=list, description="files the last scan skipped, with why")
    skipped_total: int = 0

    @staticmethod
    def resolve_counts(obj):
        return {"images": obj.image_count, "indexed": obj.indexed_count, "pending": obj.pending_count,
                "failed": obj.failed_count}

    @staticmethod
    def resolve_last_scan(obj):
        report = obj.last_scan_report if isinstance(obj.last_scan_report, dict) else {}
        return report.get("counts")

    @staticmethod
    def resolve_skipped(obj):
        report = obj.last_scan_report if isinstance(obj.last_scan_report, dict) else {}
        return [{"path": p, "reason": r} for p, r in report.get("skipped", [])[:100]]

    @staticmethod
    def resolve_skipped_total(obj):
        report = obj.last_scan_report if isinstance(obj.last_scan_report, dict) else {}
        return report.get("skipped_total", 0)


class ScanQueuedOut(Schema):
    id: int
    name: str
    queued: bool


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
