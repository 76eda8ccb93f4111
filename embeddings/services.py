"""Writes: adding, deleting and re-encoding images. The admin, the API, the commands and the
browser all add images through `add_images`, so every entry point checks and sorts files alike."""
from __future__ import annotations

import functools
import hashlib
import logging
import multiprocessing
import os
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from embeddings.files import prepare, previews
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
    previews.save(sha, info.preview)  # before the commit: a worker may claim the image at once
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


IMPORT_CHUNK = 32  # files committed (and handed to the workers) at a time
POOL_FROM = 16  # files from which a process pool pays for its start
# The import pool's CPU priority: batch work, like the workers' encoding (pipeline.worker.NICE), below
# the web processes answering searches on the same machine.
IMPORT_NICE = 10


def import_paths(paths, user=None, progress=None) -> AddReport:
    """Add the files at `paths` (a folder import): read, hashed, checked and thumbnailed in a pool of
    processes (every core), committed a chunk at a time with an ingest job queued after each, so the
    workers encode while the import goes on. The same rows as `add_images` would make."""
    paths = [str(p) for p in paths]
    import_id = uuid.uuid4().hex
    prepare.SHARED[import_id] = frozenset(Image.objects.values_list("sha256", flat=True))
    report, chunk = AddReport(), []
    workers = max(2, os.cpu_count() or 2)
    pool = (ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                                initializer=os.nice, initargs=(IMPORT_NICE,))
            if len(paths) >= POOL_FROM and "fork" in multiprocessing.get_all_start_methods()
            else ThreadPoolExecutor(max_workers=workers))
    try:
        for prepared in pool.map(functools.partial(prepare.prepare, import_id), paths, chunksize=4):
            chunk.append(prepared)
            if progress:
                progress.update(1)
            if len(chunk) >= IMPORT_CHUNK:
                _commit_prepared(chunk, report, user)
                chunk = []
        if chunk:
            _commit_prepared(chunk, report, user)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        del prepare.SHARED[import_id]
    return report


def _commit_prepared(chunk, report: AddReport, user) -> None:
    owners = Image.objects.in_bulk([p.sha256 for p in chunk if p.sha256], field_name="sha256")
    added, twins = [], []
    for p in chunk:
        if p.error:
            report.rejected.append(Outcome(p.path, reason=p.error))
        elif p.sha256 in owners:  # stored before, or earlier in this import (said once it has an id)
            delete_stored(p.file, p.thumbnail)
            if p.sha256 not in {im.sha256 for im in added}:  # an image stored before: its preview is long used
                previews.drop([p.sha256])
            twins.append(p)
        elif p.known:  # known when the import began, deleted since: read it again alone
            _add_one(p.path, report, user)
        else:
            image = Image(original_filename=clean_filename(p.path), sha256=p.sha256, width=p.width, height=p.height,
                          format=p.format, byte_size=p.size, file=p.file, thumbnail=p.thumbnail,
                          uploaded_by=user if user and user.is_authenticated else None, **p.facts)
            owners[p.sha256] = image
            added.append(image)
    try:
        with transaction.atomic():
            Image.objects.bulk_create(added)
    except IntegrityError:  # the same file arrived by another way meanwhile: one at a time, as uploads are
        for image in added:
            try:
                with transaction.atomic():
                    image.save()
            except IntegrityError:
                delete_stored(image.file.name, image.thumbnail.name)
                existing = Image.objects.get(sha256=image.sha256)
                report.duplicates.append(Outcome(image.original_filename, existing=existing,
                                                 reason=f"an identical image is already stored as #{existing.pk}"))
        added = [image for image in added if image.pk]
    report.added.extend(Outcome(image.original_filename, image=image) for image in added)
    for p in twins:
        existing = owners[p.sha256] if owners[p.sha256].pk else Image.objects.get(sha256=p.sha256)
        report.duplicates.append(Outcome(p.path, existing=existing,
                                         reason=f"an identical image is already stored as #{existing.pk}"))
    if added:
        enqueue_ingest()  # the workers start on this chunk while the next is prepared


def _add_one(path: str, report: AddReport, user) -> None:
    with open(path, "rb") as f:
        one = add_images([(path, f.read(), None)], user)
    report.added += one.added
    report.duplicates += one.duplicates
    report.rejected += one.rejected


def delete_stored(*names) -> None:
    """Delete stored files by name (best effort: a failure is logged, never raised)."""
    for name in names:
        if name:
            try:
                default_storage.delete(name)
            except OSError as exc:
                log.warning("could not delete %s: %s", name, exc)


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
        # Lock the rows first: a worker (on any host) that adds a row referring to one of them now
        # waits for this delete, instead of slipping in between Django's collecting of the related
        # rows and the delete (the commit would then fail on that row's foreign key: a 500).
        list(Image.objects.select_for_update().filter(pk__in=[i.pk for i in images]).values_list("pk", flat=True))
        Tombstone.objects.bulk_create([Tombstone(image_id=i.pk) for i in images])
        Image.objects.filter(pk__in=[i.pk for i in images]).delete()
        transaction.on_commit(lambda: bump_generation(model_key))
    for image in images:
        _delete_files(image)
    previews.drop(image.sha256 for image in images)  # deleted before a worker took it
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

