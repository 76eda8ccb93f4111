"""Images and what hangs off them: libraries, embeddings per model, tombstones of deleted images, API tokens."""
import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import F
from django.db.models.functions import Coalesce


class Library(models.Model):
    """A folder on the server whose images are searched where they lie; the app never writes to it."""

    class State(models.TextChoices):
        NEVER = "never"  # added, not scanned yet
        SCANNING = "scanning"
        OK = "ok"
        REFUSED = "refused"  # root missing, unreadable or suddenly empty: nothing was removed
        FAILED = "failed"

    name = models.CharField(max_length=100, unique=True)
    root = models.CharField(max_length=1024, unique=True)  # absolute, resolved
    created_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.NEVER)
    message = models.TextField(blank=True)  # why the last scan was refused or failed
    last_scan_started_at = models.DateTimeField(null=True, blank=True)
    last_scan_finished_at = models.DateTimeField(null=True, blank=True)
    last_scan_report = models.JSONField(default=dict, blank=True)  # counts and unreadable files with reasons

    class Meta:
        verbose_name_plural = "libraries"
        ordering = ["name"]

    def __str__(self):
        return self.name


class Image(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSING = "processing"
        INDEXED = "indexed"
        FAILED = "failed"

    # Uploads: stored under a generated name; the user's file name is kept only as data.
    # Library images have no stored copy (`file` is blank): `library` + `path` locate the original.
    file = models.FileField(upload_to="images/%Y/%m/", max_length=255, blank=True)
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
    # -- where a library image lies (relative POSIX path under its library's root) and what a
    # scan compares to know it unchanged without reading it
    library = models.ForeignKey(Library, null=True, blank=True, on_delete=models.CASCADE, related_name="images")
    path = models.CharField(max_length=1024, blank=True)
    file_mtime_ns = models.BigIntegerField(null=True, blank=True)
    # -- photo facts from EXIF (uploads and library files alike)
    taken_at = models.DateTimeField(null=True, blank=True, db_index=True)
    taken_offset = models.CharField(max_length=8, blank=True)  # EXIF OffsetTimeOriginal, e.g. "+02:00"
    camera_make = models.CharField(max_length=64, blank=True)
    camera_model = models.CharField(max_length=64, blank=True)
    gps_lat = models.FloatField(null=True, blank=True)
    gps_lon = models.FloatField(null=True, blank=True)
    # -- text read by OCR (after the CLIP encoding; never blocks it)
    class OcrStatus(models.TextChoices):
        NONE = ""  # not asked for (OCR off) or not yet queued
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    ocr_text = models.TextField(null=True, blank=True)
    ocr_status = models.CharField(max_length=8, choices=OcrStatus.choices, blank=True, default="", db_index=True)
    # OCR text, file name, path and camera, normalised for keyword search (embeddings.search.keywords;
    # indexed for partial words by migration 0003)
    keywords = models.TextField(blank=True, default="", editable=False)

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        indexes = [
            # Browsing lists images newest taken first (the upload time where none is known): without
            # this the database sorted every row for each page (181 ms at 100k on PostgreSQL).
            models.Index(Coalesce("taken_at", "uploaded_at").desc(), F("id").desc(), name="image_when_newest_first"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["library", "path"], condition=models.Q(library__isnull=False),
                                    name="one_image_per_library_path"),
        ]

    @property
    def camera(self) -> str:
        return " ".join(p for p in (self.camera_make, self.camera_model) if p)

    def __str__(self):
        return f"#{self.pk} {self.original_filename}"

    @property
    def original_url(self) -> str:
        """The full image: an upload's stored copy, or a library file served from where it lies."""
        if self.library_id:
            from django.urls import reverse

            return reverse("image-original", args=[self.pk])
        return self.file.url

    @property
    def display_url(self) -> str:
        """What to show in a grid: the thumbnail, or the file itself where there is none."""
        return self.thumbnail.url if self.thumbnail else self.original_url

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
