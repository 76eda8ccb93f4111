"""The ingest pipeline run by workers: claim pending images in batches under a Redis lease,
encode them, store their vectors; put back what a dead worker held."""
from __future__ import annotations

import logging
import threading
import time
import uuid

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from embeddings.clip.preprocessing import open_image
from embeddings.duplicates import store as duplicates
from embeddings.files import previews
from embeddings.files.originals import check_present, stored_bytes
from embeddings.index.signal import bump_generation
from embeddings.models import Embedding, Image
from embeddings.pipeline import ocr
from embeddings.queue import enqueue_ocr, redis_connection
from embeddings.search import keywords

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3


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


def claim_leases(redis) -> dict[str, float]:
    """Each token that holds claimed images -> seconds its lease still lives (0: lapsed, its
    worker is gone). An empty dict: no image is claimed."""
    leases = {}
    for token in Image.objects.filter(status=Image.Status.PROCESSING).values_list("claim_token", flat=True).distinct():
        ttl_ms = redis.pttl(_lease_key(token)) if token else -2  # -2: no such key
        leases[token] = max(ttl_ms, 0) / 1000
    return leases


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
    return list(Image.objects.filter(id__in=ids, claim_token=token).select_related("library"))


def _release(token: str) -> None:
    Image.objects.filter(status=Image.Status.PROCESSING, claim_token=token).update(
        status=Image.Status.PENDING, claim_token="", claimed_at=None
    )


def _picture(image: Image):
    """The import's decoded picture where it left one (a large photo is then decoded once), else the
    stored file's bytes. A library original must still be there either way: a vanished one fails as
    before. The preview is decoded here as it is (~2 ms): CLIP's draft would shrink it again for a
    model smaller than 224 px, and the OCR look sees what CLIP decodes."""
    if image.library_id:
        check_present(image)
    preview = previews.read(image.sha256)
    if preview:
        try:
            return open_image(preview, formats=["JPEG"])
        except ValueError:  # a damaged preview costs the original's decode, never the image
            log.warning("image %s: its preview cannot be read; decoding the original", image.pk)
    return stored_bytes(image)


def _encode_batch(service, images: list[Image], token: str) -> tuple[int, int]:
    datas, errors = [], {}
    for i, image in enumerate(images):
        try:
            datas.append(_picture(image))
        except (OSError, ValueError) as exc:  # ValueError: RejectedImage, a library file changed since its scan
            datas.append(b"")
            errors[i] = f"the stored file cannot be read ({exc})"
    readable = [i for i in range(len(images)) if i not in errors]
    # OCR's first look (text detection on a <=640 px copy) runs on the picture CLIP decodes: a photo
    # without text then needs no second decode (~30 ms at 12 MP) nor an OCR job (claim keys, an update).
    asks = {i for i in readable if settings.OCR_ENABLED and not images[i].ocr_status}
    kept: dict[int, object] = {}

    def keep(j: int, picture) -> None:  # in a decoding thread
        if (i := readable[j]) in asks:
            kept[i] = ocr.look_copy(picture)

    encoded = service.embed_image_batch_safe([datas[i] for i in readable], on_decoded=keep if asks else None)
    errors.update({readable[j]: msg for j, msg in encoded.errors.items()})
    vectors = {readable[j]: row for j, row in zip(encoded.indices, encoded.embeddings)}
    # After the encode, all at once: ~0.06-0.08 s a look on a 2-core EPYC. True or None (failed): the OCR job reads it.
    looks = ocr.look_at_many({i: p for i, p in kept.items() if i not in errors}) if kept else {}
    kept.clear()  # the copies (~1 MB each) go now
    now, done, failed, wants_ocr, indexed = timezone.now(), 0, 0, False, []
    model_key = settings.MODEL_KEY
    with transaction.atomic():
        for i, image in enumerate(images):
            mine = Image.objects.filter(pk=image.pk, claim_token=token, status=Image.Status.PROCESSING)
            if i in errors:
                failed += mine.update(status=Image.Status.FAILED, failure_reason=str(errors[i])[:2000], claim_token="")
                continue
            # Only the holder of the claim writes; a reclaimed image is someone else's now.
            # Its keyword text is refreshed, and OCR asked for once (re-encoding never redoes it).
            read_text = settings.OCR_ENABLED and not image.ocr_status
            extra = {"ocr_status": Image.OcrStatus.PENDING} if read_text else {}
            if read_text and looks.get(i) is False:  # the first look found no text: done, no OCR job
                image.ocr_text, read_text = "", False
                extra = {"ocr_status": Image.OcrStatus.DONE, "ocr_text": ""}
            if mine.update(status=Image.Status.INDEXED, failure_reason="", claim_token="", indexed_at=now,
                           keywords=keywords.document(image), **extra):
                wants_ocr = wants_ocr or read_text
                # Delete + create (not update) so the new row gets a new id past every watermark.
                Embedding.objects.filter(image=image, model_name=model_key).delete()
                Embedding.objects.create(image=image, model_name=model_key, vector=vectors[i].astype("float32").tobytes())
                done += 1
                indexed.append(image.pk)
        transaction.on_commit(lambda: bump_generation(model_key))
        transaction.on_commit(lambda: _check_duplicates(indexed))
        if wants_ocr:
            transaction.on_commit(enqueue_ocr)  # after the vectors are visible: meaning first
    previews.drop(image.sha256 for image in images)  # handled (a failed commit above keeps them for the retry)
    return done, failed


def _check_duplicates(ids: list[int]) -> None:
    """Newly indexed images against the collection (embeddings.duplicates.store): a few ms an image,
    measured in docs/DUPLICATES.md. A failure here never fails the batch: the full pass catches up."""
    try:
        duplicates.check_new(ids)
    except Exception:
        log.exception("duplicate check failed for images %s", ids[:10])


def ingest_pending(service=None, redis=None, batch_size: int | None = None, max_batches: int | None = None) -> dict:
    """Claim pending images in batches, encode them and store their vectors until none are left.

    One bad image fails alone. Any other error puts the claimed batch back to pending and
    re-raises, so RQ retries the job; a killed worker's claim expires with its lease.
    """
    # Imported here: the CLIP code brings torch, which processes that only queue work
    # (the admin, management commands) never need.
    from embeddings.clip.service import get_clip_service

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
