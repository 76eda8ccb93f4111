"""Text in images: RapidOCR (PP-OCR models on ONNX Runtime, shipped inside its wheel) reads each
indexed image once, after its CLIP encoding, and never delays it. The first look (look_at_many) runs
in the encode batch on the picture CLIP decoded: only images where it finds text (or fails) get a job.

How it stays out of CLIP's way: the OCR job sits on its own queue, which workers read after the
embeddings queue; the job hands the worker back as soon as an encoding job waits, leaving a
background thread to go on; that thread waits while the worker encodes, and hands each picture to
a child process (embeddings.pipeline.ocr_engine) at a low CPU priority, so the reading never holds the
worker's GIL and a crash in the engine costs only the child. Each image is claimed by a Redis key
with a lifetime, so two workers never read the same image and a killed worker's image is read
again later; one that kept killing the reader fails after MAX_TRIES.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import CancelledError, ProcessPoolExecutor, TimeoutError, wait
from concurrent.futures.process import BrokenProcessPool

import numpy as np
from django.conf import settings
from django.db import close_old_connections

from embeddings.files import image_policy
from embeddings.files.originals import stored_bytes
from embeddings.models import Image
from embeddings.pipeline import ocr_engine
from embeddings.queue import enqueue_ocr, get_queue, redis_connection
from embeddings.search import keywords

log = logging.getLogger(__name__)
MAX_SIDE = 1280  # pixels on the longest side: enough for text a person can read in the photo
# The first look: text detection alone on a copy this size (a 12 MP JPEG decodes at 1/8 scale, about
# 500x375). Most photos hold no text; for them the look is the whole cost. Measured on a 2-core AVX2
# EPYC under load: 12 MP photo without text, full read 0.7-0.94 s, first look 0.06-0.08 s; it still
# finds 40 px letters in a corner of a 4000x3000 photo (1.3% of its height), and every sign of the
# hybrid gallery (tests/search/test_hybrid.py).
FIRST_LOOK_SIDE = 640
READ_TIMEOUT = 300  # seconds for one picture before its reading process is replaced
LOOK_TIMEOUT = 60  # seconds for the first looks of one encoded batch (~0.06-0.08 s each) before giving up on them
CLAIM_SECONDS = 300
MAX_TRIES = 3
JOB_SECONDS = 60  # a job waits this long for the reader, then queues its successor

NICE = 10  # the reading process's CPU priority: a contended core goes ~90% to CLIP
_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()
# Set by the worker while it runs an encoding job: the reader finishes its image, then waits.
encoding = threading.Event()
# Set when the worker is asked to stop: the OCR job returns at once.
stopping = threading.Event()


def _reader_process() -> ProcessPoolExecutor:
    """The one child process that reads text for this process (started on first use, again after a crash)."""
    global _pool
    with _pool_lock:
        if stopping.is_set():  # a stopping worker starts no new child: it would outlive the stop
            raise RuntimeError("the worker is stopping: no new OCR reader")
        if _pool is None:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=ocr_engine.start, initargs=(NICE, threads))
        return _pool


def read_text(picture) -> str:
    """The text lines OCR reads in a PIL image, top to bottom; "" when there are none."""
    pixels = _pixels(picture, MAX_SIDE)
    return "" if pixels is None else "\n".join(_in_reader(ocr_engine.read_lines, pixels))


def stop_reader() -> None:
    """End this process's reading child (after a crash, or when the worker leaves)."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            # Taken before the shutdown, which drops the executor's process table (it is None after:
            # iterating it then was the "'NoneType' object has no attribute 'values'" a stopping worker logged).
            children = list((getattr(_pool, "_processes", None) or {}).values())
            _pool.shutdown(wait=False, cancel_futures=True)
            for proc in children:
                proc.kill()
        _pool = None


# What the reader did in this process: first looks, and full reads after a look found text.
counts = {"looked": 0, "read": 0}


def _pixels(picture, side: int):
    picture = picture.copy()
    picture.thumbnail((side, side))
    if min(picture.size) < 8:  # a strip holds no text, and the reader would scale it up to a huge canvas (GBs)
        return None
    return np.ascontiguousarray(np.asarray(picture.convert("RGB")))


def _in_reader(fn, pixels):
    try:
        return _reader_process().submit(fn, pixels).result(timeout=READ_TIMEOUT)
    except (BrokenProcessPool, TimeoutError):
        stop_reader()  # the child died (or hangs) on this picture: the next one gets a new child
        raise


def looks_like_text(picture) -> bool:
    """The first look: whether text detection finds anything on a small copy."""
    pixels = _pixels(picture, FIRST_LOOK_SIDE)
    counts["looked"] += 1
    return pixels is not None and _in_reader(ocr_engine.has_text, pixels)


def look_copy(picture):
    """The first look's pixels: the picture as CLIP decoded it, at most FIRST_LOOK_SIDE px. A JPEG photo
    is looked at as CLIP's draft decode left it (a 12 MP one at 1/8, ~500x375; a 0.3 MP one at 1/2,
    320x240), not decoded again at 640 px: that doubled a 0.3 MP photo's look (139 against ~35 ms of
    detection on the AVX2 kind) for small text only; screenshots and other lossless pictures are not
    drafted, so they keep 640 px (bench/ocr_first_look.py measures what each kind of text loses)."""
    return _pixels(picture, FIRST_LOOK_SIDE)


def look_at_many(pixels: dict) -> dict:
    """First looks for an encoded batch (key -> array from look_copy), all handed to the reader at once:
    key -> whether text may be there, or None where the look failed (the reader crashed or hung, the
    worker is stopping): that image is left to the OCR job. Never raises."""
    looks, futures = {k: False for k, p in pixels.items() if p is None}, {}  # None: a strip, no text
    try:
        for key, p in pixels.items():
            if p is not None:
                futures[key] = _reader_process().submit(ocr_engine.has_text, p)
                counts["looked"] += 1
    except Exception as exc:  # RuntimeError (stopping) or BrokenProcessPool: the rest go to the OCR job
        log.info("first looks not all taken: %s", exc)
    wait(futures.values(), timeout=LOOK_TIMEOUT)
    failed = {key: _failure(f) for key, f in futures.items()}
    for key, future in futures.items():
        looks[key] = None if failed[key] else bool(future.result())
    if any(isinstance(e, (BrokenProcessPool, TimeoutError)) for e in failed.values()) or (
            len(futures) < sum(p is not None for p in pixels.values())):
        stop_reader()  # a dead or hung child: the next look or read starts a new one
    return {key: looks.get(key) for key in pixels}


def _failure(future) -> BaseException | None:
    if not future.done():
        return TimeoutError()
    return CancelledError() if future.cancelled() else future.exception()


def read_image(image: Image) -> str:
    """Decode a stored image through the upload policy and read it: first a look at a small copy
    (decoded at a reduced JPEG scale), and only where it finds text, the full read."""
    data = stored_bytes(image)
    if not looks_like_text(image_policy.decode(data, draft_target=FIRST_LOOK_SIDE // 2)):
        return ""
    # A draft keeps MAX_SIDE on the short side, so the reader's MAX_SIDE on the long side loses nothing.
    counts["read"] += 1
    return read_text(image_policy.decode(data, draft_target=MAX_SIDE))


def _tries(image_id: int) -> str:
    """The key counting the reads of an image that never finished (its worker was killed)."""
    return f"clipsearch:ocr:tries:{image_id}"


def _claim(redis, image_id: int) -> bool:
    if not redis.set(f"clipsearch:ocr:{image_id}", "1", nx=True, ex=CLAIM_SECONDS):
        return False  # another worker reads it
    tries = redis.incr(_tries(image_id))
    redis.expire(_tries(image_id), 86400)
    if tries > MAX_TRIES:
        Image.objects.filter(pk=image_id, ocr_status=Image.OcrStatus.PENDING).update(ocr_status=Image.OcrStatus.FAILED)
        log.warning("OCR of image %s stopped its worker %d times: marked failed", image_id, MAX_TRIES)
        return False
    return True


def _store(image: Image, text: str | None, ok: bool) -> None:
    image.ocr_text = text
    Image.objects.filter(pk=image.pk, ocr_status=Image.OcrStatus.PENDING).update(
        ocr_text=text, ocr_status=Image.OcrStatus.DONE if ok else Image.OcrStatus.FAILED, keywords=keywords.document(image))


def _let_clip_go_first(queued_wait: float = 5.0) -> None:
    """Wait while this process encodes, and (a few seconds at most, the time for the worker to
    pick it up) while an encoding job is queued: new images become searchable by meaning first."""
    deadline = time.monotonic() + queued_wait
    while encoding.is_set() or (time.monotonic() < deadline and clip_work_waiting()):
        time.sleep(0.05)


def run_pending(stop: threading.Event | None = None, redis=None) -> dict:
    """Read every image waiting for OCR (until `stop` is set). One bad image fails alone."""
    redis = redis or redis_connection()
    totals = {"done": 0, "failed": 0}
    skipped: set[int] = set()
    def leaving() -> bool:
        return stopping.is_set() or bool(stop and stop.is_set())

    while not leaving():
        batch = list(Image.objects.filter(ocr_status=Image.OcrStatus.PENDING, status=Image.Status.INDEXED)
                     .exclude(pk__in=skipped).select_related("library").order_by("id")[:16])
        if not batch:
            break
        for image in batch:
            _let_clip_go_first()
            if leaving():
                break
            if not _claim(redis, image.pk):
                skipped.add(image.pk)
                continue
            try:
                _store(image, read_image(image), True)
                redis.delete(_tries(image.pk))  # finished: a later image with this id (a restore) starts afresh
                totals["done"] += 1
            except Exception as exc:
                if leaving():  # the worker is stopping, not the image failing: the next worker reads it
                    redis.decr(_tries(image.pk))
                    log.info("OCR of image %s left for the next worker: this one is stopping", image.pk)
                    break
                log.warning("OCR failed for image %s: %s", image.pk, exc)  # a damaged or vanished file fails alone
                _store(image, None, False)
                redis.delete(_tries(image.pk))
                totals["failed"] += 1
            finally:
                redis.delete(f"clipsearch:ocr:{image.pk}")
    return totals


class _Reader:
    """The one background reading thread of a process, at the lowest CPU priority."""

    def __init__(self):
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.totals: dict = {}

    def ensure(self) -> threading.Thread:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="clipsearch-ocr", daemon=True)
                self.thread.start()
            return self.thread

    def _run(self) -> None:
        try:
            # below its worker's own priority (the worker runs at pipeline.worker.NICE)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICE))
        except (AttributeError, OSError):
            pass  # not Linux: the queue order alone keeps CLIP first
        try:
            self.totals = run_pending()
        except Exception as exc:
            log.warning("OCR stopped: %s", exc)
        finally:
            close_old_connections()


reader = _Reader()


def clip_work_waiting() -> bool:
    try:
        return get_queue().count > 0
    except Exception:
        return False


def job(max_seconds: float = JOB_SECONDS) -> dict:
    """The OCR job: start the reader, and wait for it while no encoding job waits (so that a
    burst worker ends only when the text is read). When one waits, or after `max_seconds`,
    queue the next OCR job and return, the reader going on underneath."""
    if not settings.OCR_ENABLED:
        return {"disabled": True}  # a job queued before OCR was turned off
    thread = reader.ensure()
    deadline = time.monotonic() + max_seconds
    while thread.is_alive():
        if stopping.is_set():
            return {"stopped": True}  # what is left is read after the next start
        if clip_work_waiting() or time.monotonic() > deadline:
            enqueue_ocr()
            return {"handed_back": True}
        thread.join(0.1)
    return dict(reader.totals)


def pending_exists() -> bool:
    return settings.OCR_ENABLED and Image.objects.filter(ocr_status=Image.OcrStatus.PENDING,
                                                         status=Image.Status.INDEXED).exists()
