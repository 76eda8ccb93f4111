"""Groups as a person reviews them, and what their decisions do. Groups are formed when read, from
the stored pairs less those said not to be duplicates and images hidden or failed, as stars
(embeddings.duplicates.rules.star_groups), largest first. "Keep this one" deletes the other
uploads (through embeddings.services) and hides the other library images (their files are never
touched); the kept image inherits the dropped ones' album memberships and, where its own is
missing, their earliest taken time."""
from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from embeddings import services
from embeddings.albums import albums
from embeddings.duplicates import rules
from embeddings.models import DuplicatePair, HiddenImage, Image, Library, NotDuplicate

TIERS = ("exact", "same", "similar")


class ResolveError(ValueError):
    """A decision that cannot be carried out (unknown ids, keep among the dropped)."""


def best_key(image: Image):
    """The suggested best of a group, largest key first: highest resolution, then larger file, then
    an original over an edited copy (one that still carries its camera or taken time: re-exports and
    phone apps strip EXIF), then a library file over an upload, then the oldest row."""
    return (image.width * image.height, image.byte_size, bool(image.camera_make or image.camera_model or image.taken_at),
            image.library_id is not None, -image.pk)


def _live_edges(tier: str) -> dict[tuple[int, int], int]:
    rows = DuplicatePair.objects.all() if tier == "similar" else DuplicatePair.objects.filter(tier=DuplicatePair.Tier.SAME)
    gone = Q(low__duplicate_hidden__isnull=False) | Q(high__duplicate_hidden__isnull=False) | Q(
        low__status=Image.Status.FAILED) | Q(high__status=Image.Status.FAILED)
    edges = {(a, b): bits for a, b, bits in rows.exclude(gone).values_list("low_id", "high_id", "bits")}
    said = set(NotDuplicate.objects.filter(low_id__in={a for a, _ in edges}).values_list("low_id", "high_id"))
    return {pair: bits for pair, bits in edges.items() if pair not in said}


def groups(tier: str = "same") -> list[dict]:
    """[{"tier", "best", "images": [ids, best first]}], largest first."""
    if tier == "exact":
        return exact_groups()
    edges = _live_edges(tier)
    ids = {i for pair in edges for i in pair}
    if tier == "same":  # one picture has one taken time (rules.same_groups)
        times = Image.objects.filter(pk__in=ids).values_list("pk", "taken_at")
        taken = {pk: int(t.timestamp()) if t else None for pk, t in times}
        stars = rules.same_groups(edges, taken)
    else:
        stars = rules.star_groups(sorted(edges))
    rows = Image.objects.in_bulk([i for g in stars for i in g])
    out = []
    for group in stars:
        members = sorted((rows[i] for i in group if i in rows), key=best_key, reverse=True)
        if len(members) > 1:
            out.append({"tier": tier, "best": members[0].pk, "images": [m.pk for m in members]})
    out.sort(key=lambda g: (-len(g["images"]), g["best"]))
    return out


def exact_groups() -> list[dict]:
    """Same bytes: an upload is refused as a copy at once, so in the app these are the library
    files a scan skipped as copies of a stored image (their paths, beside the image that holds them)."""
    copies: dict[str, list[str]] = {}
    for library in Library.objects.all():
        for path, entry in (library.last_scan_report.get("remembered") or {}).items():
            if len(entry) >= 4 and entry[2] == "duplicate":
                copies.setdefault(entry[3], []).append(f"{library.name}:{path}")
    owners = dict(Image.objects.filter(sha256__in=list(copies)).values_list("sha256", "pk"))
    out = [{"tier": "exact", "best": pk, "images": [pk], "paths": sorted(copies[sha])} for sha, pk in owners.items()]
    out.sort(key=lambda g: (-len(g["paths"]), g["best"]))
    return out


def _existing(ids) -> dict[int, Image]:
    ids = list(dict.fromkeys(ids))
    found = Image.objects.in_bulk(ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise ResolveError(f"no image with id {', '.join(map(str, missing))}")
    return found


def keep(kept_id: int, drop_ids) -> dict:
    """Keep one: the dropped uploads are deleted (files too), the dropped library images hidden."""
    drop_ids = list(dict.fromkeys(drop_ids))
    if not drop_ids:
        raise ResolveError("name at least one image to drop")
    if kept_id in drop_ids:
        raise ResolveError("the kept image cannot also be dropped")
    found = _existing([kept_id, *drop_ids])
    kept, dropped = found[kept_id], [found[i] for i in drop_ids]
    uploads = [d for d in dropped if d.library_id is None]
    library = [d for d in dropped if d.library_id is not None]
    with transaction.atomic():
        albums.inherit(kept, drop_ids)
        taken = sorted((d for d in dropped if d.taken_at), key=lambda d: d.taken_at)
        if kept.taken_at is None and taken:
            Image.objects.filter(pk=kept.pk).update(taken_at=taken[0].taken_at, taken_offset=taken[0].taken_offset)
        HiddenImage.objects.bulk_create([HiddenImage(image=d, kept=kept) for d in library], ignore_conflicts=True)
        HiddenImage.objects.filter(image_id__in=[d.pk for d in library]).update(kept=kept)
        DuplicatePair.objects.filter(Q(low_id__in=drop_ids) | Q(high_id__in=drop_ids)).delete()
        services.delete_images(uploads)
    return {"kept": kept.pk, "deleted": [d.pk for d in uploads], "hidden": [d.pk for d in library]}


def not_duplicates(ids) -> dict:
    """Remember that no two of these images are duplicates."""
    ids = sorted(dict.fromkeys(ids))
    if len(ids) < 2:
        raise ResolveError("name at least two images")
    _existing(ids)
    pairs = [NotDuplicate(low_id=a, high_id=b) for n, a in enumerate(ids) for b in ids[n + 1:]]
    NotDuplicate.objects.bulk_create(pairs, ignore_conflicts=True)
    return {"remembered": len(pairs)}


def hidden() -> list[dict]:
    """Library images hidden because a copy was kept: for the user to delete from disk."""
    rows = HiddenImage.objects.select_related("image__library").order_by("image__library__name", "image__path")
    return [{"id": h.image_id, "library": h.image.library.name if h.image.library else None, "path": h.image.path,
             "kept": h.kept_id} for h in rows]
