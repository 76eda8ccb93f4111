"""Writes: adding, encoding, re-encoding and deleting images. Views, commands and jobs call these."""
from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from PIL import Image as PILImage
from PIL import ImageOps

from .clip_config import MODEL_KEY
from .index import bump_generation
from .models import Embedding, Image, Tombstone

log = logging.getLogger(__name__)

# Formats we accept, recognised by their first bytes before Pillow parses anything.
MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif"}
THUMB_SIZE = 320
MAX_ATTEMPTS = 3


class RejectedImage(ValueError):
    """The upload is not an image we can take; the message says why."""


class DuplicateImage(Exception):
    def __init__(self, existing: Image):
        super().__init__(f"an identical image is already stored as #{existing.pk}")
        self.existing = existing


def sniff_format(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, fmt in MAGIC.items():
        if data.startswith(magic):
            return fmt
    raise RejectedImage("not a supported image (JPEG, PNG, GIF, WebP, BMP or TIFF)")


@dataclass
class Inspected:
    format: str
    width: int
    height: int
    thumbnail: bytes


def inspect_image(data: bytes) -> Inspected:
    """Check an upload by its content, size and pixel count; make its thumbnail."""
    if not data:
        raise RejectedImage("the file is empty")
    if len(data) > settings.MAX_UPLOAD_BYTES:
        raise RejectedImage(f"the file is larger than {settings.MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    fmt = sniff_format(data)
    try:
        with PILImage.open(io.BytesIO(data), formats=[fmt]) as im:
            width, height = im.size
            if im.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF orientation: shown rotated by 90°
                width, height = height, width
            if width * height > settings.MAX_IMAGE_PIXELS:
                raise RejectedImage(f"the image is {width}x{height}: more than {settings.MAX_IMAGE_PIXELS} pixels")
            im.draft("RGB", (THUMB_SIZE * 2, THUMB_SIZE * 2))  # JPEG: decode at reduced scale
            im.load()  # decodes fully: catches truncated and corrupt data
            thumb = ImageOps.exif_transpose(im)
            thumb = thumb.convert("RGBA").convert("RGB") if thumb.mode in ("P", "PA", "LA", "RGBA") else thumb.convert("RGB")
            thumb.thumbnail((THUMB_SIZE, THUMB_SIZE))
            buf = io.BytesIO()
            thumb.save(buf, "JPEG", quality=85)
    except RejectedImage:
        raise
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise RejectedImage("the image has too many pixels (decompression bomb)") from None
    except Exception as exc:  # Pillow raises many types for broken files
        raise RejectedImage(f"the file is damaged or not a readable {fmt} image ({exc})") from None
    return Inspected(fmt, width, height, buf.getvalue())


def clean_filename(name: str) -> str:
    """Keep the original name as display data only: no path, no control characters."""
    name = os.path.basename((name or "").replace("\\", "/"))
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:255] or "unnamed"


def add_image(data: bytes, filename: str = "", user=None, enqueue: bool = True) -> Image:
    """Store one upload as a pending image and schedule its encoding.

    Raises RejectedImage (bad content) or DuplicateImage (same sha256 already stored).
    """
    sha = hashlib.sha256(data).hexdigest()
    existing = Image.objects.filter(sha256=sha).first()
    if existing:
        raise DuplicateImage(existing)
    info = inspect_image(data)
    stem = uuid.uuid4().hex
    image = Image(
        original_filename=clean_filename(filename), sha256=sha, width=info.width, height=info.height,
        format=info.format, byte_size=len(data), uploaded_by=user if user and user.is_authenticated else None,
    )
    image.file.save(f"{stem}.{EXTENSIONS[info.format]}", ContentFile(data), save=False)
    image.thumbnail.save(f"{stem}.jpg", ContentFile(info.thumbnail), save=False)
    try:
        with transaction.atomic():
            image.save()
            if enqueue:
                transaction.on_commit(_enqueue)
    except IntegrityError:
        # The same file arrived twice at once: the other upload won; drop our copy.
        _delete_files(image)
        existing = Image.objects.filter(sha256=sha).first()
        if existing is None:
            raise
        raise DuplicateImage(existing) from None
    return image


def _enqueue():
    from .jobs import enqueue_ingest

    enqueue_ingest()


def _delete_files(image: Image) -> None:
    for field in (image.file, image.thumbnail):
        if field.name:
            try:
                field.storage.delete(field.name)
            except OSError as exc:
                log.warning("could not delete %s: %s", field.name, exc)


def delete_images(images) -> int:
    """Delete images, their files and embeddings; web processes drop them from the index."""
    images = list(images)
    with transaction.atomic():
        Tombstone.objects.bulk_create([Tombstone(image_id=i.pk) for i in images])
        Image.objects.filter(pk__in=[i.pk for i in images]).delete()
        transaction.on_commit(lambda: bump_generation(MODEL_KEY))
    for image in images:
        _delete_files(image)
    return len(images)


def reencode_images(images) -> int:
    """Send images back to the queue; their new vectors replace the old ones when done."""
    ids = [i.pk for i in images]
    with transaction.atomic():
        n = Image.objects.filter(pk__in=ids).update(
            status=Image.Status.PENDING, failure_reason="", claim_token="", claimed_at=None, attempts=0
        )
        transaction.on_commit(_enqueue)
    return n


def enqueue_missing(model_key: str = MODEL_KEY) -> int:
    """Mark images lacking this model's embedding as pending (reindex, check_index --fix)."""
    missing = Image.objects.filter(status=Image.Status.INDEXED).exclude(embeddings__model_name=model_key)
    return reencode_images(missing)


# ---- the ingest work, run by RQ jobs --------------------------------------------------------
def _lease_key(token):
    return f"clipsearch:lease:{token}"


class Lease:
    """A Redis key that lives while this worker holds its claim: a killed worker's lease
    expires and the next worker puts its images back to pending."""

    def __init__(self, redis):
        self.redis, self.token = redis, uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self):
        self.redis.set(_lease_key(self.token), "1", ex=settings.CLAIM_LEASE_SECONDS)
        self._thread.start()
        return self

    def _beat(self):
        while not self._stop.wait(settings.CLAIM_LEASE_SECONDS / 4):
            try:
                self.redis.set(_lease_key(self.token), "1", ex=settings.CLAIM_LEASE_SECONDS)
            except Exception as exc:
                log.warning("lease heartbeat failed: %s", exc)

    def __exit__(self, *exc):
        self._stop.set()
        try:
            self.redis.delete(_lease_key(self.token))
        except Exception:
            pass


def reclaim_abandoned(redis) -> int:
    """Images claimed by a worker that is gone go back to pending (or fail after MAX_ATTEMPTS)."""
    stale_before = timezone.now() - timezone.timedelta(seconds=settings.CLAIM_TIMEOUT_SECONDS)
    reclaimed = 0
    for token in Image.objects.filter(status=Image.Status.PROCESSING).values_list("claim_token", flat=True).distinct():
        try:
            alive = bool(token) and redis.exists(_lease_key(token))
        except Exception:
            alive = True  # can't tell without Redis: only the timeout below applies
        qs = Image.objects.filter(status=Image.Status.PROCESSING, claim_token=token)
        if alive:
            qs = qs.filter(claimed_at__lt=stale_before)
        reclaimed += qs.filter(attempts__gte=MAX_ATTEMPTS).update(
            status=Image.Status.FAILED, claim_token="",
            failure_reason=f"the worker stopped while encoding this image {MAX_ATTEMPTS} times",
        )
        reclaimed += qs.update(status=Image.Status.PENDING, claim_token="", claimed_at=None)
    if reclaimed:
        log.warning("put %d abandoned images back in the queue", reclaimed)
    return reclaimed


def _claim(token: str, n: int) -> list[Image]:
    with transaction.atomic():
        qs = Image.objects.filter(status=Image.Status.PENDING).order_by("id")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)  # several workers share the work
        ids = list(qs.values_list("id", flat=True)[:n])
        if not ids:
            return []
        Image.objects.filter(id__in=ids, status=Image.Status.PENDING).update(
            status=Image.Status.PROCESSING, claim_token=token, claimed_at=timezone.now(), attempts=F("attempts") + 1
        )
    return list(Image.objects.filter(id__in=ids, claim_token=token))


def _release(token: str) -> None:
    Image.objects.filter(status=Image.Status.PROCESSING, claim_token=token).update(
        status=Image.Status.PENDING, claim_token="", claimed_at=None
    )


def _read(image: Image) -> bytes:
    with image.file.open("rb") as f:
        return f.read()


def _encode_batch(service, images: list[Image], token: str) -> tuple[int, int]:
    datas, errors = [], {}
    for i, image in enumerate(images):
        try:
            datas.append(_read(image))
        except OSError as exc:
            datas.append(b"")
            errors[i] = f"the stored file cannot be read ({exc})"
    encoded = service.embed_image_batch_safe([d for i, d in enumerate(datas) if i not in errors])
    readable = [i for i in range(len(images)) if i not in errors]
    errors.update({readable[j]: msg for j, msg in encoded.errors.items()})
    vectors = {readable[j]: row for j, row in zip(encoded.indices, encoded.embeddings)}
    now, done, failed = timezone.now(), 0, 0
    with transaction.atomic():
        for i, image in enumerate(images):
            mine = Image.objects.filter(pk=image.pk, claim_token=token, status=Image.Status.PROCESSING)
            if i in errors:
                failed += mine.update(status=Image.Status.FAILED, failure_reason=str(errors[i])[:2000], claim_token="")
                continue
            # Only the holder of the claim writes; a reclaimed image is someone else's now.
            if mine.update(status=Image.Status.INDEXED, failure_reason="", claim_token="", indexed_at=now):
                # Delete + create (not update) so the new row gets a new id past every watermark.
                Embedding.objects.filter(image=image, model_name=MODEL_KEY).delete()
                Embedding.objects.create(image=image, model_name=MODEL_KEY, vector=vectors[i].astype("float32").tobytes())
                done += 1
        transaction.on_commit(lambda: bump_generation(MODEL_KEY))
    return done, failed


def ingest_pending(service=None, redis=None, batch_size: int | None = None, max_batches: int | None = None) -> dict:
    """Claim pending images in batches, encode them and store their vectors until none are left.

    One bad image fails alone. Any other error puts the claimed batch back to pending and
    re-raises, so RQ retries the job; a killed worker's claim expires with its lease.
    """
    from .clip_service import get_clip_service
    from .jobs import redis_connection

    service = service or get_clip_service()
    redis = redis or redis_connection()
    batch_size = batch_size or settings.INGEST_BATCH_SIZE
    totals = {"indexed": 0, "failed": 0, "batches": 0, "reclaimed": reclaim_abandoned(redis)}
    started = time.monotonic()
    while max_batches is None or totals["batches"] < max_batches:
        with Lease(redis) as lease:
            images = _claim(lease.token, batch_size)
            if not images:
                break
            try:
                done, failed = _encode_batch(service, images, lease.token)
            except BaseException:
                try:
                    _release(lease.token)
                except Exception:  # e.g. the database is gone: the expired lease frees them later
                    log.exception("could not release claimed images")
                raise
        totals["indexed"] += done
        totals["failed"] += failed
        totals["batches"] += 1
    totals["seconds"] = round(time.monotonic() - started, 3)
    if totals["batches"]:
        log.info("ingest: %s", totals)
    return totals
