"""The JSON API's shapes for the state of the app: the model, the status page's counts, index and
OCR progress, and the libraries."""
from __future__ import annotations

from datetime import datetime

from ninja import Schema
from pydantic import Field


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
