"""Text in images: RapidOCR (PP-OCR models on ONNX Runtime, shipped inside its wheel) reads each
indexed image once, after its CLIP encoding, and never delays it.

How it stays out of CLIP's way: the OCR job sits on its own queue, which workers read after the
embeddings queue; the reading itself runs in a background thread of the worker at a low CPU
priority (Linux nice is per thread, and ONNX Runtime's pool threads inherit it); the job hands the
worker back as soon as an encoding job waits, and the reader, having finished the image in hand,
waits while the worker encodes. Each image is claimed by a Redis key
with a lifetime, so two workers never read the same image and a killed worker's image is read
again later; one that kept killing the reader fails after MAX_TRIES.
"""
from __future__ import annotations

import logging
import os
import threading
import time

import numpy as np
from django.conf import settings
from django.db import close_old_connections

from . import image_policy, keywords
from .ingest import _read
from .jobs import enqueue_ocr
from .models import Image
from .queue import get_queue, redis_connection

log = logging.getLogger(__name__)
MAX_SIDE = 1280  # pixels on the longest side: enough for text a person can read in the photo
MIN_CONFIDENCE = 0.6  # RapidOCR's score per line; below it, shapes read as letters ("O")
CLAIM_SECONDS = 300
MAX_TRIES = 3
JOB_SECONDS = 60  # a job waits this long for the reader, then queues its successor

NICE = 10  # the reader's CPU priority: CLIP's threads get ~90% of a contended core, and the reader also pauses
_engine = None
_engine_lock = threading.Lock()
# Set by the worker while it runs an encoding job: the reader finishes its image, then waits.
encoding = threading.Event()


def engine():
    """The OCR engine, loaded once per process, its threads sized to the CPUs this process may use."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR  # here: only workers that read text load it

            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            per_model = {f"{m}_{k}": v for m in ("det", "cls", "rec")
                         for k, v in (("intra_op_num_threads", threads), ("inter_op_num_threads", 1))}
            # "max": scale only large pictures down for detection; the default ("min") blows
            # small ones up to 736 px, which costs a second per thumbnail-sized image.
            _engine = _without_spinning(lambda: RapidOCR(det_limit_side_len=960, det_limit_type="max", **per_model))
    return _engine


def _without_spinning(make):
    """Build the engine with ONNX Runtime's idle spinning off: by default its pool threads spin
    between runs, taking CPU from a CLIP batch that is being encoded meanwhile. RapidOCR builds its
    sessions' options itself, so its builder is wrapped for the duration of the call."""
    from rapidocr_onnxruntime.utils import infer_engine

    original = infer_engine.OrtInferSession._init_sess_opts

    def quiet(config):
        options = original(config)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    infer_engine.OrtInferSession._init_sess_opts = staticmethod(quiet)
    try:
        return make()
    finally:
        infer_engine.OrtInferSession._init_sess_opts = staticmethod(original)


def read_text(picture) -> str:
    """The text lines OCR reads in a PIL image (RGB), top to bottom; "" when there are none."""
    picture = picture.copy()
    picture.thumbnail((MAX_SIDE, MAX_SIDE))
    result, _ = engine()(np.asarray(picture.convert("RGB")))
    lines = [str(text).strip() for _box, text, score in (result or []) if float(score) >= MIN_CONFIDENCE]
    return "\n".join(line for line in lines if line)


def read_image(image: Image) -> str:
    """Decode a stored image through the upload policy (drafted down when large) and read it."""
    picture = image_policy.decode(_read(image), draft_target=MAX_SIDE // 2)
    return read_text(picture)


def _claim(redis, image_id: int) -> bool:
    if not redis.set(f"clipsearch:ocr:{image_id}", "1", nx=True, ex=CLAIM_SECONDS):
        return False  # another worker reads it
    tries = redis.incr(f"clipsearch:ocr:tries:{image_id}")
    redis.expire(f"clipsearch:ocr:tries:{image_id}", 86400)
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
    while not (stop and stop.is_set()):
        batch = list(Image.objects.filter(ocr_status=Image.OcrStatus.PENDING, status=Image.Status.INDEXED)
                     .exclude(pk__in=skipped).select_related("library").order_by("id")[:16])
        if not batch:
            break
        for image in batch:
            _let_clip_go_first()
            if stop and stop.is_set():
                break
            if not _claim(redis, image.pk):
                skipped.add(image.pk)
                continue
            try:
                _store(image, read_image(image), True)
                totals["done"] += 1
            except Exception as exc:  # a damaged, vanished or unreadable file fails alone
                log.warning("OCR failed for image %s: %s", image.pk, exc)
                _store(image, None, False)
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
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
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
        if clip_work_waiting() or time.monotonic() > deadline:
            enqueue_ocr()
            return {"handed_back": True}
        thread.join(0.1)
    return dict(reader.totals)


def pending_exists() -> bool:
    return settings.OCR_ENABLED and Image.objects.filter(ocr_status=Image.OcrStatus.PENDING,
                                                         status=Image.Status.INDEXED).exists()
