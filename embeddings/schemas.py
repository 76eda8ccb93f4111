"""The JSON API's input and output shapes (django-ninja schemas); the OpenAPI schema is made from
them. Output fields that are URLs resolve against the request, so links are absolute."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import ModelSchema, Schema
from pydantic import Field

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
        return _absolute(context, obj.file.url)

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


class SearchParams(Schema):
    q: str = Field(..., max_length=10_000)
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
    text: str = Field(..., max_length=10_000)


class SimilarityIn(Schema):
    text_embedding: list[float] = Field(..., min_length=1, max_length=4096)
    image_embedding: list[float] = Field(..., min_length=1, max_length=4096)


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


class FailureOut(Schema):
    id: int
    original_filename: str
    reason: str
    at: datetime


class StatusOut(Schema):
    counts: Counts
    total: int
    done_fraction: float
    queue_length: int | None
    model: ModelOut
    embedded_with_current_model: int
    index: IndexOut
    recent_failures: list[FailureOut]
