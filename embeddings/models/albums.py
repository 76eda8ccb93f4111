"""Albums and their share links. A manual album holds the images put in it; a smart album holds a
saved search (its `query`), and its members are what that search passes now — computed when the
album is read, so no album does any work when an image is indexed."""
import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from embeddings.models.images import Image


class Album(models.Model):
    class Kind(models.TextChoices):
        MANUAL = "manual"
        SMART = "smart"

    class Order(models.TextChoices):
        TAKEN = "taken"  # newest taken first (uploaded time where none is known)
        ADDED = "added"  # newest added first (manual albums)

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.MANUAL)
    # A smart album's search: {"q": ..., and any search filter: "taken_after", "camera", "cutoff", ...}
    query = models.JSONField(default=dict, blank=True)
    order = models.CharField(max_length=8, choices=Order.choices, default=Order.TAKEN)
    cover = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    images = models.ManyToManyField(Image, through="AlbumImage", related_name="albums", blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("album", args=[self.pk])


class AlbumImage(models.Model):
    album = models.ForeignKey(Album, on_delete=models.CASCADE, related_name="entries")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="album_entries")
    added_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["album", "image"], name="one_entry_per_album_image")]


class Share(models.Model):
    """A read-only link to one album. Only the token's sha256 is kept: the link is shown once."""

    album = models.ForeignKey(Album, on_delete=models.CASCADE, related_name="shares")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    originals = models.BooleanField(default=False)  # may the visitor open the full-size files?
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"share of {self.album} ({'revoked' if self.revoked_at else 'active'})"

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)  # 256 bits: unguessable

    @property
    def active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())
