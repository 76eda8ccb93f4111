"""Writes: adding, deleting and re-encoding images. The admin, the API, the commands and the
browser all add images through `add_images`, so every entry point checks and sorts files alike."""
from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from embeddings.files.image_policy import EXTENSIONS, RejectedImage, check_size, clean_filename, inspect_image
from embeddings.files.photo_facts import read_facts
from embeddings.index.signal import bump_generation
from embeddings.models import Image, Tombstone
from embeddings.queue import enqueue_ingest

log = logging.getLogger(__name__)


class DuplicateImage(Exception):
    def __init__(self, existing: Image):
        super().__init__(f"an identical image is already stored as #{existing.pk}")
        self.existing = existing


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
        **read_facts(data, info.format),
    )
    image.file.save(f"{stem}.{EXTENSIONS[info.format]}", ContentFile(data), save=False)
    image.thumbnail.save(f"{stem}.jpg", ContentFile(info.thumbnail), save=False)
    try:
        with transaction.atomic():
            image.save()
            if enqueue:
                transaction.on_commit(enqueue_ingest)
    except IntegrityError:
        # The same file arrived twice at once: the other upload won; drop our copy.
        _delete_files(image)
        existing = Image.objects.filter(sha256=sha).first()
        if existing is None:
            raise
        raise DuplicateImage(existing) from None
    return image


@dataclass
class Outcome:
    filename: str
    image: Image | None = None  # added
    existing: Image | None = None  # an identical image already stored
    reason: str = ""  # why it was refused or is a duplicate


@dataclass
class AddReport:
    added: list[Outcome] = field(default_factory=list)
    duplicates: list[Outcome] = field(default_factory=list)
    rejected: list[Outcome] = field(default_factory=list)


def add_images(files, user=None) -> AddReport:
    """Add many files, each judged alone. `files` yields (name, data, size): data is the bytes or
    a callable that reads them, size (or None) lets a file over the limit be refused unread.
    One ingest job is queued at the end."""
    report = AddReport()
    for name, data, size in files:
        try:
            if size is not None:
                check_size(size)
            image = add_image(data() if callable(data) else data, name, user, enqueue=False)
            report.added.append(Outcome(name, image=image))
        except DuplicateImage as dup:
            report.duplicates.append(Outcome(name, existing=dup.existing, reason=str(dup)))
        except (RejectedImage, OSError) as exc:
            report.rejected.append(Outcome(name, reason=str(exc)))
    if report.added:
        transaction.on_commit(enqueue_ingest)
    return report


def _delete_files(image: Image) -> None:
    for field_ in (image.file, image.thumbnail):
        if field_.name:
            try:
                field_.storage.delete(field_.name)
            except OSError as exc:
                log.warning("could not delete %s: %s", field_.name, exc)


def delete_images(images) -> int:
    """Delete images, their files and embeddings; web processes drop them from the index."""
    images = list(images)
    model_key = settings.MODEL_KEY
    with transaction.atomic():
        Tombstone.objects.bulk_create([Tombstone(image_id=i.pk) for i in images])
        Image.objects.filter(pk__in=[i.pk for i in images]).delete()
        transaction.on_commit(lambda: bump_generation(model_key))
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
        transaction.on_commit(enqueue_ingest)
    return n


def enqueue_missing(model_key: str | None = None) -> int:
    """Mark images lacking this model's embedding as pending (reindex, check_index --fix)."""
    model_key = model_key or settings.MODEL_KEY
    missing = Image.objects.filter(status=Image.Status.INDEXED).exclude(embeddings__model_name=model_key)
    return reencode_images(missing)

