"""The JSON API's shapes for duplicate groups and the decisions on them."""
from __future__ import annotations

from typing import Annotated, Literal

from ninja import Schema
from pydantic import Field, model_validator

Id = Annotated[int, Field(ge=1, le=2**63 - 1, strict=True)]


class GroupOut(Schema):
    tier: Literal["exact", "same", "similar"]
    best: int  # the suggested one to keep (embeddings.duplicates.review.best_key)
    images: list[int]  # best first


class ResolveIn(Schema):
    """Either {"keep": id, "drop": [ids]} or {"not_duplicates": [ids]}."""

    keep: Id | None = None
    drop: list[Id] | None = Field(None, min_length=1, max_length=1000)
    not_duplicates: list[Id] | None = Field(None, min_length=2, max_length=1000)

    @model_validator(mode="after")
    def one_decision(self):
        keeping = self.keep is not None or self.drop is not None
        if keeping == (self.not_duplicates is not None):
            raise ValueError('give either "keep" and "drop", or "not_duplicates"')
        if keeping and (self.keep is None or self.drop is None):
            raise ValueError('"keep" needs "drop" (the images to let go), and "drop" needs "keep"')
        return self


class ResolveOut(Schema):
    kept: int | None = None
    deleted: list[int] = []  # uploads deleted (their ids now answer 404)
    hidden: list[int] = []  # library images hidden from search; their files are untouched, listed for the user
    remembered: int = 0  # pairs remembered as not duplicates
