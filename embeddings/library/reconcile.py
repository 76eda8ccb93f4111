"""What a library scan changes in the database, given what it found in the folder.

Unchanged (same path, size and mtime): nothing. Same bytes at a known path (touched): the new
size and mtime. Same bytes at a new path as an image whose path is gone (moved): the new path,
same id and vector. New bytes at a known path (changed): new facts and thumbnail, back to pending,
its vectors dropped (a tombstone takes the old vector out of every index). New bytes at a new path
(added): a pending image with no stored copy. Bytes already stored as another image: skipped as
its duplicate. Known paths that are gone: removed, once the whole folder has been seen."""
from __future__ import annotations

import logging
import posixpath
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from embeddings import services
from embeddings.index.signal import bump_generation
from embeddings.models import Embedding, Image, Tombstone
from embeddings.queue import enqueue_ingest
from embeddings.search import keywords

log = logging.getLogger(__name__)
LISTED = 1000  # skipped files listed in the stored report (all are counted)
COUNTS = ("added", "changed", "moved", "removed", "unchanged", "touched", "unreadable", "duplicates")


class Known(NamedTuple):
    """What the database knows of a library file by its path."""

    id: int
    size: int
    mtime_ns: int
    sha256: str


class Owner(NamedTuple):
    """The image that already holds some bytes: its id, library (None: an upload) and path."""

    id: int
    library_id: int | None
    path: str


class Reconciler:
    def __init__(self, library, files: dict, skipped: list, reread=None):
        self.library, self.files, self.reread = library, files, reread  # reread(path, size, mtime) -> a full FileReading
        self.counts = dict.fromkeys(COUNTS, 0)
        self.skipped: list[tuple[str, str]] = []
        for path, reason in skipped:
            self._skip(path, reason)
        rows = Image.objects.filter(library=library).values_list("path", "id", "byte_size", "file_mtime_ns", "sha256")
        self.known = {p: Known(i, size, mtime, sha) for p, i, size, mtime, sha in rows.iterator(chunk_size=5000)}
        # A folder that could not be read hides its files; they are not gone.
        hidden = tuple(p for p, _ in skipped if p.endswith("/"))
        self.gone = {p: v for p, v in self.known.items() if p not in files and not (hidden and p.startswith(hidden))}
        # Reading these bytes again tells nothing new: hash them, never decode them.
        self.skip_inspect = frozenset(k.sha256 for k in self.known.values())
        previous = library.last_scan_report if isinstance(library.last_scan_report, dict) else {}
        self.remembered = previous.get("remembered") or {}
        self.new_remembered: dict[str, list] = {}
        self.taken: dict[str, Image | int] = {}  # sha256 -> image (or id) added or changed in this scan

    def _skip(self, path: str, reason: str, duplicate: bool = False) -> None:
        self.counts["duplicates" if duplicate else "unreadable"] += 1
        self.skipped.append((path, reason))

    def to_read(self) -> list[str]:
        """The files that must be opened: new, or with another size or mtime than last time.
        A file that failed last time and has not changed since fails again unread."""
        todo, dup_shas = [], set()
        for path, (size, mtime) in self.files.items():
            k = self.known.get(path)
            if k and k.size == size and k.mtime_ns == mtime:
                self.counts["unchanged"] += 1
                continue
            old = self.remembered.get(path)
            if not k and isinstance(old, list) and len(old) in (3, 4) and old[:2] == [size, mtime]:
                if len(old) == 3:
                    self._skip(path, old[2])
                    self.new_remembered[path] = old
                    continue
                dup_shas.add(old[3])  # a duplicate last time: hashed again (its twin may be gone), not decoded
            todo.append(path)
        self.skip_inspect = self.skip_inspect | dup_shas
        return sorted(todo)

    def apply(self, chunk) -> None:
        owners = {sha: Owner(i, lib, p) for sha, i, lib, p in Image.objects.filter(
            sha256__in=[r.sha256 for r in chunk if r.sha256]).values_list("sha256", "id", "library_id", "path")}
        new, dups, tombs, old_thumbs, unused_thumbs = [], [], [], [], []
        with transaction.atomic():
            for r in chunk:
                if r.error:
                    self._skip(r.path, r.error)
                    self.new_remembered[r.path] = [r.size, r.mtime_ns, r.error]
                    continue  # a known image whose file turned unreadable keeps its entry until it reads again
                k, owner = self.known.get(r.path), owners.get(r.sha256)
                if k and r.sha256 == k.sha256:
                    Image.objects.filter(pk=k.id).update(byte_size=r.size, file_mtime_ns=r.mtime_ns)
                    self.counts["unchanged"] += 1
                    self.counts["touched"] += 1
                    continue
                if k and owner is None and r.sha256 not in self.taken and r.info is not None:
                    old_thumbs += self._change(k.id, r)
                    tombs.append(k.id)
                    continue
                if k:  # its new bytes are another image's: the image that was here is gone
                    services.delete_images(Image.objects.filter(pk=k.id))
                    self.counts["removed"] += 1
                if owner and owner.library_id == self.library.pk and owner.path in self.gone:
                    Image.objects.filter(pk=owner.id).update(path=r.path, original_filename=posixpath.basename(r.path)[:255],
                                                              byte_size=r.size, file_mtime_ns=r.mtime_ns)
                    keywords.refresh(Image.objects.filter(pk=owner.id))  # the old path must stop matching
                    del self.gone[owner.path]
                    self.counts["moved"] += 1
                    unused_thumbs.append(r.thumbnail)
                elif owner or r.sha256 in self.taken:
                    dups.append((r.path, owner.id if owner else self.taken[r.sha256]))
                    self.new_remembered[r.path] = [r.size, r.mtime_ns, "duplicate", r.sha256]
                    unused_thumbs.append(r.thumbnail)
                else:
                    if r.info is None:  # hashed only, as a known image's bytes; that image is gone now
                        r = self.reread(r.path, r.size, r.mtime_ns)
                        if r.error:
                            self._skip(r.path, r.error)
                            continue
                    image = self._new(r)
                    new.append(image)
                    self.taken[r.sha256] = image
            Image.objects.bulk_create(new)
            if tombs:
                Tombstone.objects.bulk_create([Tombstone(image_id=i) for i in tombs])
                transaction.on_commit(lambda: bump_generation(settings.MODEL_KEY))
            if new or tombs:
                transaction.on_commit(enqueue_ingest)
            transaction.on_commit(lambda: services.delete_stored(*old_thumbs, *unused_thumbs))
        self.counts["added"] += len(new)
        for path, other in dups:
            self._skip(path, f"duplicate of #{getattr(other, 'pk', other)}", duplicate=True)

    def _new(self, r) -> Image:
        return Image(library=self.library, path=r.path, original_filename=posixpath.basename(r.path)[:255],
                     thumbnail=r.thumbnail, sha256=r.sha256, width=r.info.width, height=r.info.height,
                     format=r.info.format, byte_size=r.size, file_mtime_ns=r.mtime_ns, **r.facts)

    def _change(self, image_id: int, r) -> list[str]:
        """New content at a known path: new facts, back to pending, old vectors dropped."""
        old_thumb = Image.objects.filter(pk=image_id).values_list("thumbnail", flat=True).first()
        Image.objects.filter(pk=image_id).update(
            sha256=r.sha256, byte_size=r.size, file_mtime_ns=r.mtime_ns, width=r.info.width, height=r.info.height,
            format=r.info.format, thumbnail=r.thumbnail, status=Image.Status.PENDING, failure_reason="", attempts=0,
            claim_token="", claimed_at=None, indexed_at=None, ocr_text=None, ocr_status="", updated_at=timezone.now(),
            **r.facts)
        Embedding.objects.filter(image_id=image_id).delete()
        self.taken[r.sha256] = image_id
        self.counts["changed"] += 1
        return [old_thumb]

    def remove_gone(self, batch: int = 500) -> None:
        ids = [k.id for k in self.gone.values()]
        for start in range(0, len(ids), batch):
            self.counts["removed"] += services.delete_images(Image.objects.filter(pk__in=ids[start:start + batch]))
        self.gone = {}

    def retry_unreadable(self) -> None:
        """Images that failed because their file could not be read then (a share that dropped out
        while they were being encoded) are tried again once the folder reads."""
        failed = Image.objects.filter(library=self.library, status=Image.Status.FAILED,
                                      failure_reason__startswith="the stored file cannot be read")
        self.counts["retried"] = services.reencode_images(failed) if failed.exists() else 0

    def report(self) -> dict:
        return {"counts": self.counts, "skipped": [list(s) for s in self.skipped[:LISTED]],
                "skipped_total": len(self.skipped), "remembered": self.new_remembered,
                "finished_at": timezone.now().isoformat()}
