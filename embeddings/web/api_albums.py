"""The JSON API's albums: list, create (manual, or smart with a saved search), read a page of members,
rename or change, delete; put images in or take them out; share read-only by link, or stop sharing.
Reads follow the read rule; writes and shares need staff or a token."""
import json

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Status
from ninja.errors import HttpError

from embeddings.albums import albums, shares
from embeddings.models import Album, Share
from embeddings.search.request import MAX_K, MAX_OFFSET
from embeddings.web.api_base import READ, WRITE, reads, writes
from embeddings.web.schemas import BulkIdsIn, BulkOut, result_items
from embeddings.web.schemas_albums import AlbumIn, AlbumOut, AlbumPatch, AlbumSummaryOut, ShareIn, ShareOut

router = Router(tags=["albums"])


def summary(request: HttpRequest, album: Album) -> dict:
    live = Share.objects.filter(album=album, revoked_at__isnull=True).exclude(expires_at__lte=timezone.now()).exists()
    return {"id": album.pk, "name": album.name, "kind": album.kind, "count": albums.count(album), "order": album.order,
            "query": album.query if album.kind == Album.Kind.SMART else None, "cover_id": album.cover_id,
            "shared": live, "url": request.build_absolute_uri(album.get_absolute_url()), "created_at": album.created_at,
            "updated_at": album.updated_at}


def _album(album_id: int) -> Album:
    album = Album.objects.filter(pk=album_id).first() if 0 < album_id < 2**63 else None
    if album is None:
        raise HttpError(404, f"no album with id {album_id}")
    return album


def _an_object(request) -> None:
    # django-ninja reads a JSON list as an empty object for a body of optional fields: refuse it.
    try:
        if not isinstance(json.loads(request.body or b"{}"), dict):
            raise HttpError(422, "the body is a JSON object")
    except ValueError:
        raise HttpError(400, "the body is not JSON") from None


def _query(query) -> dict | None:
    return None if query is None else query.dict(exclude_none=True)


def _invalid(exc: albums.AlbumError):
    raise HttpError(422, str(exc)) from None


@router.get("", response={200: list[AlbumSummaryOut], **reads()}, auth=READ, summary="Albums")
def album_list(request):
    return [summary(request, a) for a in Album.objects.all()]


@router.post("", response={201: AlbumSummaryOut, **writes(400, 422)}, auth=WRITE, summary="Create an album (smart with a query)")
def album_create(request, body: AlbumIn):
    try:
        album = albums.create(body.name, _query(body.query), request.user)
    except albums.AlbumError as exc:
        _invalid(exc)
    return Status(201, summary(request, album))


@router.get("/{int:album_id}", response={200: AlbumOut, **reads(404, 422)}, auth=READ, summary="An album and a page of it")
def album_detail(request, album_id: int, k: int = Query(20, ge=1, le=MAX_K), offset: int = Query(0, ge=0, le=MAX_OFFSET)):
    album = _album(album_id)
    page = albums.members(album, k=k, offset=offset)
    nxt = None
    if page.has_more:
        q = request.GET.copy()
        q["offset"] = str(offset + k)
        nxt = request.build_absolute_uri(f"{request.path}?{q.urlencode()}")
    return {**summary(request, album), "results": result_items(page.hits, request), "next": nxt}


@router.patch("/{int:album_id}", response={200: AlbumSummaryOut, **writes(400, 404, 422)}, auth=WRITE,
              summary="Rename an album, change its search, order or cover")
def album_update(request, album_id: int, body: AlbumPatch):
    _an_object(request)
    album = _album(album_id)
    try:
        albums.update(album, name=body.name, query=_query(body.query), order=body.order, cover_id=body.cover_id)
    except albums.AlbumError as exc:
        _invalid(exc)
    return summary(request, album)


@router.delete("/{int:album_id}", response={204: None, **writes(404)}, auth=WRITE, summary="Delete an album (images stay)")
def album_delete(request, album_id: int):
    _album(album_id).delete()
    return Status(204, None)


@router.post("/{int:album_id}/images", response={200: BulkOut, **writes(400, 404, 409, 422)}, auth=WRITE,
             summary="Put images in a manual album")
def album_add(request, album_id: int, body: BulkIdsIn):
    try:
        done, missing = albums.add_images(_album(album_id), body.ids)
    except albums.AlbumError as exc:
        raise HttpError(409, str(exc)) from None
    return {"done": done, "missing": missing}


@router.post("/{int:album_id}/images/remove", response={200: BulkOut, **writes(400, 404, 409, 422)}, auth=WRITE,
             summary="Take images out of a manual album")
def album_remove(request, album_id: int, body: BulkIdsIn):
    try:
        done, missing = albums.remove_images(_album(album_id), body.ids)
    except albums.AlbumError as exc:
        raise HttpError(409, str(exc)) from None
    return {"done": done, "missing": missing}


@router.post("/{int:album_id}/share", response={201: ShareOut, **writes(400, 404, 422)}, auth=WRITE,
             summary="Share an album read-only by link")
def album_share(request, album_id: int, body: ShareIn):
    _an_object(request)
    try:
        share, token = shares.create(_album(album_id), body.expires_at, body.originals)
    except albums.AlbumError as exc:
        _invalid(exc)
    return Status(201, {"url": request.build_absolute_uri(f"/s/{token}/"), "token": token,
                        "expires_at": share.expires_at, "originals": share.originals})


@router.delete("/{int:album_id}/share", response={204: None, **writes(404)}, auth=WRITE, summary="Stop sharing an album")
def album_unshare(request, album_id: int):
    shares.revoke(_album(album_id))
    return Status(204, None)
