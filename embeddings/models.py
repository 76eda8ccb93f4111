import hashlib
import secrets

from django.conf import settings
from django.db import models


class Image(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        INDEXED = "indexed"
        FAILED = "failed"

    # Stored under a generated name; the user's file name is kept only as data.
    file = models.FileField(upload_to="images/%Y/%m/", max_length=255)
    thumbnail = models.FileField(upload_to="thumbs/%Y/%m/", max_length=255, blank=True)
    original_filename = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, unique=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=16)
    byte_size = models.PositiveBigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    failure_reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Set while a worker holds the image; its Redis lease says whether that worker still lives.
    claim_token = models.CharField(max_length=64, blank=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    uploaded_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    indexed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-uploaded_at", "-id"]

    def __str__(self):
        return f"#{self.pk} {self.original_filename}"

    @property
    def display_url(self) -> str:
        """What to show in a grid: the thumbnail, or the file itself where there is none."""
        return self.thumbnail.url if self.thumbnail else self.file.url

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("image-detail", args=[self.pk])


class Embedding(models.Model):
    """One image's vector for one model; the database is the source of truth for vectors."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="embeddings")
    model_name = models.CharField(max_length=255, db_index=True)
    vector = models.BinaryField()  # float32, L2-normalised
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "model_name"], name="one_embedding_per_model")]


class Tombstone(models.Model):
    """A deleted image id: web processes read these to drop it from their in-memory index."""

    image_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)


class ApiToken(models.Model):
    """Bearer token for the JSON API; only its sha256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=8, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.prefix}… ({self.user})"

    @staticmethod
    def hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name=""):
        key = "cs_" + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, prefix=key[:8], key_hash=cls.hash(key))
        return token, key
