"""Libraries: folders indexed in place. Adding, removing (which never touches a file), and running
a scan under a Redis lock, so that two workers (or a worker and `library scan`) never scan the
same library at once. The scan itself is embeddings.library.scan."""
from __future__ import annotations

import logging
import os
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.db.models import Count, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from embeddings import services
from embeddings.files import originals
from embeddings.library import scan
from embeddings.models import Image, Library
from embeddings.queue import redis_connection

log = logging.getLogger(__name__)
LOCK_SECONDS = 300  # renewed after every chunk; a killed scanner's lock lapses after this


class LibraryError(ValueError):
    """A library cannot be added or scanned; the message says why."""


class ScanBusy(LibraryError):
    pass


def check_new(path: str, name: str | None = None) -> tuple[str, str]:
    """The resolved root and the name of a library about to be added, or LibraryError."""
    root = os.path.realpath(os.path.expanduser(path))
    if not os.path.isdir(root):
        raise LibraryError(f"{path} is not a folder")
    name = (name or os.path.basename(root) or root).strip()[:100]
    media = os.path.realpath(settings.MEDIA_ROOT)
    if originals.inside(media, root) or originals.inside(root, media):
        raise LibraryError("a library cannot hold, or lie inside, the app's data folder")
    if Library.objects.filter(Q(name=name) | Q(root=root)).exists():
        raise LibraryError(f"a library named {name!r} or with the folder {root} already exists")
    return root, name


def add_library(path: str, name: str | None = None) -> Library:
    root, name = check_new(path, name)
    try:
        return Library.objects.create(name=name, root=root)
    except IntegrityError:
        raise LibraryError(f"a library named {name!r} or with the folder {root} already exists") from None


def remove_library(library: Library) -> int:
    """Drop the library's images from the app (vectors, thumbnails, rows); its files stay as they are."""
    ids = list(library.images.values_list("id", flat=True))
    for start in range(0, len(ids), 500):
        services.delete_images(Image.objects.filter(pk__in=ids[start:start + 500]))
    library.delete()
    return len(ids)


def with_counts(qs=None):
    """Libraries annotated with their image counts by status (admin, API)."""
    qs = Library.objects.all() if qs is None else qs
    return qs.annotate(
        image_count=Count("images"),
        pending_count=Count("images", filter=Q(images__status__in=[Image.Status.PENDING, Image.Status.PROCESSING])),
        indexed_count=Count("images", filter=Q(images__status=Image.Status.INDEXED)),
        failed_count=Count("images", filter=Q(images__status=Image.Status.FAILED)),
    )


def _lock(library: Library):
    try:
        lock = redis_connection().lock(f"clipsearch:libscan:{library.pk}", timeout=LOCK_SECONDS)
        acquired = lock.acquire(blocking=False)
    except Exception as exc:  # Redis down: the command still scans; workers need Redis anyway
        log.warning("scanning %s without a lock (Redis: %s)", library, exc)
        return None
    if not acquired:
        raise ScanBusy(f"library {library.name!r} is being scanned by another process")
    return lock


def run_scan(library: Library, progress=None, due_minutes: int | None = None) -> dict | None:
    """Scan one library under its lock; record state, message and report on the library.

    Returns the report; a refused scan returns {"refused": why} and changes nothing else. With
    `due_minutes` (periodic scans) it returns None when another worker has scanned it meanwhile."""
    lock = _lock(library)
    if due_minutes and not due(due_minutes).filter(pk=library.pk).exists():
        if lock:
            lock.release()
        return None
    Library.objects.filter(pk=library.pk).update(state=Library.State.SCANNING, last_scan_started_at=timezone.now())
    state, message = Library.State.FAILED, "the scan was interrupted; run it again"
    try:
        report = scan.scan(library, progress=progress, tick=(lambda: lock.reacquire()) if lock else None)
        state, message = Library.State.OK, ""
        Library.objects.filter(pk=library.pk).update(last_scan_report=report)
        return report
    except scan.Refused as exc:
        state, message = Library.State.REFUSED, str(exc)
        return {"refused": message}
    except Exception as exc:
        message = f"the scan failed: {exc}"
        raise
    finally:
        Library.objects.filter(pk=library.pk).update(state=state, message=message, last_scan_finished_at=timezone.now())
        library.refresh_from_db()
        if lock:
            try:
                lock.release()
            except Exception:  # lapsed or Redis gone: it expires on its own
                pass


def scan_by_id(library_id: int) -> dict | None:
    library = Library.objects.filter(pk=library_id).first()
    if library is None:
        return None  # removed since the scan was asked for
    try:
        return run_scan(library)
    except ScanBusy as exc:
        log.info("%s", exc)
        return None


def due(minutes: int):
    """Libraries whose last scan began (or, never scanned, which were added) `minutes` ago or more."""
    before = timezone.now() - timedelta(minutes=minutes)
    return Library.objects.annotate(since=Coalesce("last_scan_started_at", "created_at")).filter(since__lte=before)


def scan_due(minutes: int | None = None) -> int:
    """The workers' periodic rescan: every due library that no one else is scanning."""
    minutes = settings.LIBRARY_SCAN_MINUTES if minutes is None else minutes
    if not minutes:
        return 0
    done = 0
    for library in due(minutes):
        try:
            report = run_scan(library, due_minutes=minutes)
            if report is None:
                continue
            done += 1
            log.info("scanned library %s: %s", library, report.get("counts") or report)
        except ScanBusy:
            continue
        except Exception as exc:
            log.warning("scan of library %s failed: %s", library, exc)
    return done
