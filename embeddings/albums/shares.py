"""Read-only links to one album: an unguessable token (only its sha256 is stored), revocable, with an
optional expiry; originals only when the share says so. A link that is revoked, expired or unknown
finds nothing, and says no more than a 404."""
from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone

from embeddings.albums import albums
from embeddings.models import Album, Image, Share


def create(album: Album, expires_at: datetime | None = None, originals: bool = False) -> tuple[Share, str]:
    """A new link to the album: (the share, its token, shown this once)."""
    if expires_at is not None:
        try:  # stored in UTC: an offset that pushes it past the year 9999 cannot be
            expires_at = expires_at.astimezone(UTC) if timezone.is_aware(expires_at) else expires_at.replace(tzinfo=UTC)
        except (OverflowError, ValueError):
            raise albums.AlbumError("expires_at is out of range") from None
        if expires_at <= timezone.now():
            raise albums.AlbumError("expires_at is in the past")
    token = Share.new_token()
    share = Share.objects.create(album=album, token_hash=Share.hash(token), expires_at=expires_at, originals=originals)
    return share, token


def revoke(album: Album) -> int:
    """Every link to the album stops working."""
    return Share.objects.filter(album=album, revoked_at__isnull=True).update(revoked_at=timezone.now())


def find(token: str) -> Share | None:
    """The live share a token opens, or None (revoked, expired, unknown)."""
    if not token or len(token) > 100:
        return None
    share = Share.objects.select_related("album").filter(token_hash=Share.hash(token)).first()
    return share if share is not None and share.active else None


def shared_image(share: Share, image_id: int) -> Image | None:
    """An image of the shared album, or None: a share shows that album's images and nothing else."""
    if image_id not in albums.member_ids(share.album):
        return None
    return Image.objects.select_related("library").filter(pk=image_id).first()
