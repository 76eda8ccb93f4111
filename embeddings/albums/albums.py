"""Albums: create, rename, delete; put images in and take them out; read a page of members. A smart
album's members are its saved search answered now (embeddings.search.answer), so a photo indexed a
moment ago that passes it is there at the next read, as it is for any search."""
from __future__ import annotations

import time
from dataclasses import replace

from django.db import IntegrityError, transaction
from django.db.models.functions import Coalesce

from embeddings.models import Album, AlbumImage, Image
from embeddings.search import request as search_request
from embeddings.search import selectors
from embeddings.search.answer import answer
from embeddings.search.request import SearchRequest

MAX_NAME = 100
# Search parameters a smart album may keep (the same names as GET /api/search takes).
QUERY_KEYS = ("q", "min_score", "uploaded_after", "uploaded_before", "taken_after", "taken_before", "camera", "library",
              "sort", "cutoff")
COUNT_LIMIT = 10_000  # a smart album without a relevance cutoff is counted this far


class AlbumError(ValueError):
    """An album request that cannot be done as asked; the message says why."""


def clean_name(name: str) -> str:
    name = " ".join((name or "").replace("\x00", "").split())[:MAX_NAME]
    if not name:
        raise AlbumError("an album needs a name")
    return name


def clean_query(query: dict) -> dict:
    """A smart album's search as stored: known keys only, values as text (they are parsed like a URL's)."""
    if not isinstance(query, dict):
        raise AlbumError("query is an object of search parameters")
    unknown = set(query) - set(QUERY_KEYS)
    if unknown:
        raise AlbumError(f"unknown search parameters: {', '.join(sorted(unknown))} (known: {', '.join(QUERY_KEYS)})")
    kept = {k: str(v).replace("\x00", "").strip()[:300] for k, v in query.items() if v not in (None, "")}
    try:
        search_request.parse(kept, strict=True)  # a date it cannot use is refused now, not at every read
    except search_request.BadParameter as exc:
        raise AlbumError(str(exc)) from None
    return kept


def create(name: str, query: dict | None = None, user=None) -> Album:
    kind = Album.Kind.SMART if query is not None else Album.Kind.MANUAL
    return Album.objects.create(name=clean_name(name), kind=kind, query=clean_query(query) if query is not None else {},
                                created_by=user if user and user.is_authenticated else None)


def update(album: Album, name: str | None = None, query: dict | None = None, order: str | None = None,
           cover_id: int | None = None) -> Album:
    if name is not None:
        album.name = clean_name(name)
    if query is not None:
        if album.kind != Album.Kind.SMART:
            raise AlbumError("only a smart album has a search")
        album.query = clean_query(query)
    if order is not None:
        if order not in Album.Order.values:
            raise AlbumError(f"order is one of {', '.join(Album.Order.values)}")
        album.order = order
    if cover_id is not None:
        album.cover = Image.objects.filter(pk=cover_id).first() if cover_id else None
        if cover_id and album.cover is None:
            raise AlbumError(f"no image with id {cover_id}")
    album.save()
    return album


def add_images(album: Album, ids) -> tuple[list[int], list[int]]:
    """Put images in a manual album: (ids now in it, ids with no image). Adding twice is harmless."""
    if album.kind != Album.Kind.MANUAL:
        raise AlbumError("a smart album's members come from its search; change its search instead")
    found = set(Image.objects.filter(pk__in=set(ids)).values_list("pk", flat=True))
    have = set(album.entries.filter(image_id__in=found).values_list("image_id", flat=True))
    try:
        with transaction.atomic():
            AlbumImage.objects.bulk_create([AlbumImage(album=album, image_id=i) for i in sorted(found - have)],
                                           ignore_conflicts=True)
    except IntegrityError:  # an image deleted meanwhile
        pass
    return sorted(found), sorted(set(ids) - found)


def remove_images(album: Album, ids) -> tuple[list[int], list[int]]:
    if album.kind != Album.Kind.MANUAL:
        raise AlbumError("a smart album's members come from its search; change its search instead")
    held = set(album.entries.filter(image_id__in=set(ids)).values_list("image_id", flat=True))
    album.entries.filter(image_id__in=held).delete()
    return sorted(held), sorted(set(ids) - held)


def inherit(kept: Image, dropped_ids) -> int:
    """The kept one of a set of duplicates joins every manual album the dropped ones were in."""
    albums = set(AlbumImage.objects.filter(image_id__in=list(dropped_ids)).values_list("album_id", flat=True))
    AlbumImage.objects.bulk_create([AlbumImage(album_id=a, image=kept) for a in albums], ignore_conflicts=True)
    return len(albums)


def _smart_request(album: Album, k: int, offset: int) -> SearchRequest:
    asked = search_request.parse(album.query)
    return replace(asked, k=k, offset=offset)


def members(album: Album, k: int = 20, offset: int = 0) -> selectors.Page:
    """A page of the album's images: a manual album's by taken time or by when they were added, a
    smart album's as its search ranks (or browses) them now."""
    if album.kind == Album.Kind.SMART:
        return answer(_smart_request(album, k, offset)).page
    started = time.perf_counter()
    rows = (Image.objects.filter(album_entries__album=album, duplicate_hidden__isnull=True)  # hidden duplicates leave
            .exclude(status=Image.Status.FAILED).select_related("library"))
    if album.order == Album.Order.ADDED:
        rows = rows.order_by("-album_entries__added_at", "-id")
    else:
        rows = rows.annotate(when=Coalesce("taken_at", "uploaded_at")).order_by("-when", "-id")
    page = list(rows[offset:offset + k + 1])
    return selectors.Page([selectors.Hit(im, None, []) for im in page[:k]], len(page) > k,
                          (time.perf_counter() - started) * 1000, None)


def count(album: Album) -> int:
    if album.kind == Album.Kind.MANUAL:
        return album.entries.exclude(image__status=Image.Status.FAILED).count()
    page = answer(_smart_request(album, COUNT_LIMIT, 0)).page
    return page.passed if page.passed is not None else len(page.hits)


def member_ids(album: Album, limit: int = COUNT_LIMIT) -> set[int]:
    """The ids a share of this album may show."""
    if album.kind == Album.Kind.MANUAL:
        return set(album.entries.values_list("image_id", flat=True))
    return {hit.image.pk for hit in members(album, k=limit).hits}


def cover(album: Album) -> Image | None:
    """The cover chosen, else the album's first image."""
    if album.cover_id:
        return album.cover
    page = members(album, k=1)
    return page.hits[0].image if page.hits else None
