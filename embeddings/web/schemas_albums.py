"""The JSON API's shapes for albums and their share links."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field, StrictFloat, StrictInt, StrictStr, model_validator

from embeddings.web.schemas import ResultOut

Value = StrictStr | StrictInt | StrictFloat | None  # as in a URL's query: text or a number, never true/false


class JsonObject(Schema):
    """A body that must be a JSON object (a list or a bare value is a 422, not read as empty)."""

    @model_validator(mode="before")
    @classmethod
    def _an_object(cls, value):
        if not isinstance(value, dict) and not hasattr(value, "__dict__"):
            raise ValueError("the body is a JSON object")
        return value


class AlbumQuery(Schema):
    """A smart album's search: the names GET /api/search takes (paging is asked when reading)."""

    model_config = ConfigDict(extra="forbid")
    q: Value = None
    min_score: Value = None
    uploaded_after: Value = None
    uploaded_before: Value = None
    taken_after: Value = None
    taken_before: Value = None
    camera: Value = None
    library: Value = None
    sort: Literal["relevance", "taken"] | None = None
    cutoff: Literal["auto", "none"] | None = None


class AlbumIn(JsonObject):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=100, pattern=r"\S")
    query: AlbumQuery | None = None  # with a query the album is smart


class AlbumPatch(JsonObject):
    name: str | None = Field(None, min_length=1, max_length=100, pattern=r"\S")
    query: AlbumQuery | None = None
    order: Literal["taken", "added"] | None = None
    cover_id: StrictInt | None = Field(None, ge=0, le=2**63 - 1, description="0 clears the cover")


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


class ShareIn(JsonObject):
    expires_at: datetime | None = None
    originals: bool = False


class ShareOut(Schema):
    url: str  # the read-only link, shown once: only the token's hash is kept
    token: str
    expires_at: datetime | None
    originals: bool
