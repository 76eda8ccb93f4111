"""The JSON API's shapes for albums and their share links."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import Field

from embeddings.web.schemas import ResultOut


class AlbumIn(Schema):
    name: str = Field(..., min_length=1, max_length=100, pattern=r"\S")
    # With a query the album is smart: {"q": ..., any search filter ...} (the names GET /api/search takes).
    query: dict[str, str | float | int | None] | None = None


class AlbumPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100, pattern=r"\S")
    query: dict[str, str | float | int | None] | None = None
    order: Literal["taken", "added"] | None = None
    cover_id: int | None = Field(None, ge=0, le=2**63 - 1, description="0 clears the cover")


class AlbumSummaryOut(Schema):
    id: int
    name: str
    kind: Literal["manual", "smart"]
    count: int
    order: Literal["taken", "added"]
    query: dict | None  # a smart album's search; null for a manual album
    cover_id: int | None
    shared: bool  # a live share link exists
    url: str  # the album's page
    created_at: datetime
    updated_at: datetime


class AlbumOut(AlbumSummaryOut):
    results: list[ResultOut]
    next: str | None


class ShareIn(Schema):
    expires_at: datetime | None = None
    originals: bool = False


class ShareOut(Schema):
    url: str  # the read-only link, shown once: only the token's hash is kept
    token: str
    expires_at: datetime | None
    originals: bool
