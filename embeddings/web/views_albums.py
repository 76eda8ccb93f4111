"""Album pages and share links. Thin: parse the request, call embeddings.albums, render. A share link
(/s/<token>/) shows its album read-only to anyone holding it — even with CLIPSEARCH_PUBLIC=false —
and nothing else: no search, no other image, originals only if the share allows them."""
from datetime import UTC, datetime, time

from django.contrib.admin.views.decorators import staff_member_required
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_http_methods, require_POST

from embeddings.albums import albums, shares
from embeddings.files import originals
from embeddings.models import Album
from embeddings.search import selectors
from embeddings.web.views import readable

PAGE_SIZE = 48


def _offset(request) -> int:
    try:
        return min(max(int(request.GET.get("offset", 0)), 0), 10_000)
    except ValueError:
        return 0


def _paging(page, offset: int) -> dict:
    return {"next_url": f"?offset={offset + PAGE_SIZE}" if page.has_more else None,
            "prev_url": f"?offset={max(offset - PAGE_SIZE, 0)}" if offset else None}


@readable
@require_http_methods(["GET", "POST"])
def album_list(request):
    error = None
    if request.method == "POST":
        if not request.user.is_staff:
            return redirect(f"/admin/login/?next={request.path}")
        query = None
        if request.POST.get("smart"):  # "save this search as a smart album" from the search page
            query = {k: request.POST[k] for k in albums.QUERY_KEYS if request.POST.get(k)}
        try:
            album = albums.create(request.POST.get("name", ""), query, request.user)
            return redirect(album.get_absolute_url())
        except albums.AlbumError as exc:
            error = str(exc)
    rows = [{"album": a, "count": albums.count(a), "cover": albums.cover(a)} for a in Album.objects.all()]
    return render(request, "albums.html", {"rows": rows, "error": error, "model": selectors.model_info()},
                  status=400 if error else 200)


@readable
def album_page(request, pk):
    album = get_object_or_404(Album, pk=pk)
    offset = _offset(request)
    page = albums.members(album, k=PAGE_SIZE, offset=offset)
    ctx = {"album": album, "page": page, "count": albums.count(album), "offset": offset, "model": selectors.model_info(),
           "shares": album.shares.filter(revoked_at__isnull=True) if request.user.is_staff else [],
           "new_link": request.session.pop("new_share_link", None), **_paging(page, offset)}
    return render(request, "album.html", ctx)


@staff_member_required
@require_POST
def album_action(request, pk):
    """The album page's staff forms: rename, order, delete, share, stop sharing."""
    album = get_object_or_404(Album, pk=pk)
    action = request.POST.get("action")
    try:
        if action == "rename":
            albums.update(album, name=request.POST.get("name", ""))
        elif action == "order":
            albums.update(album, order=request.POST.get("order", ""))
        elif action == "delete":
            album.delete()
            return redirect("albums")
        elif action == "share":
            day = parse_date(request.POST.get("expires", "") or "") if request.POST.get("expires") else None
            expires = datetime.combine(day, time.max, tzinfo=UTC) if day else None
            _, token = shares.create(album, expires, originals=bool(request.POST.get("originals")))
            request.session["new_share_link"] = request.build_absolute_uri(f"/s/{token}/")
        elif action == "unshare":
            shares.revoke(album)
    except (albums.AlbumError, ValueError) as exc:
        return render(request, "album.html", {"album": album, "error": str(exc), "page": albums.members(album, k=PAGE_SIZE),
                                              "count": albums.count(album), "offset": 0}, status=400)
    return redirect(album.get_absolute_url())


# ---- share links: no login, no search, this album only -------------------------------------------
def _share(token):
    share = shares.find(token)
    if share is None:
        raise Http404("no such link")  # revoked, expired and unknown look alike
    return share


def share_page(request, token):
    share = _share(token)
    offset = _offset(request)
    page = albums.members(share.album, k=PAGE_SIZE, offset=offset)
    return render(request, "share.html", {"share": share, "album": share.album, "page": page, "token": token,
                                          "offset": offset, **_paging(page, offset)})


def _sent(response):
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=600"
    response["Referrer-Policy"] = "no-referrer"  # the token stays out of other sites' logs
    return response


def share_thumbnail(request, token, image_id):
    image = shares.shared_image(_share(token), image_id)
    if image is None or not image.thumbnail:
        raise Http404("not in this album")
    return _sent(FileResponse(default_storage.open(image.thumbnail.name, "rb"), content_type="image/jpeg"))


def share_original(request, token, image_id):
    share = _share(token)
    image = shares.shared_image(share, image_id) if share.originals else None
    if image is None:
        raise Http404("not available through this link")
    try:
        data, content_type = originals.for_serving(image) if image.library_id else (originals.stored_bytes(image), None)
    except (OSError, ValueError):
        raise Http404("the original is not available") from None
    return _sent(HttpResponse(data, content_type=content_type or originals.CONTENT_TYPES.get(image.format,
                                                                                            "application/octet-stream")))

