"""RQ jobs: thin wrappers that call the ingest pipeline. The queue holds no image data, only the call."""
import logging

from django.conf import settings
from rq import Retry

from . import ingest
from .queue import get_queue

log = logging.getLogger(__name__)
# Enough waiting jobs for every worker to have one; more would only find nothing to do.
MAX_WAITING_JOBS = 4


def ingest_pending():
    return ingest.ingest_pending()


def enqueue_ingest() -> bool:
    """Schedule ingestion of pending images. If Redis is down, the images stay pending and a
    worker picks them up at its next start (or `check_index --fix`)."""
    try:
        queue = get_queue()
        if queue.count >= MAX_WAITING_JOBS:
            return False
        queue.enqueue(ingest_pending, retry=Retry(max=3, interval=[5, 30, 120]),
                      job_timeout=settings.RQ_QUEUES[settings.RQ_QUEUE]["DEFAULT_TIMEOUT"])
        return True
    except Exception as exc:
        log.warning("could not enqueue ingestion (images stay pending): %s", exc)
        return False


def scan_library(library_id: int):
    """Scan one library (the API and the admin's "scan now"); skipped if another scan holds it."""
    from . import libraries  # libraries -> services -> jobs: imported when the job runs

    return libraries.scan_by_id(library_id)


# ---- OCR: its own queue, which the model worker reads after the embeddings queue ----------
def ocr_pending():
    """Read the text of indexed images waiting for OCR (embeddings.ocr)."""
    from . import ocr  # here: the OCR engine loads only in the processes that run this job

    return ocr.job()


def ocr_queue():
    import django_rq

    return django_rq.get_queue(settings.OCR_QUEUE)


def enqueue_ocr() -> bool:
    """Schedule OCR of images marked for it (one waiting job is enough: it reads until none are
    left). Without Redis they stay marked; a worker's sweep queues them later."""
    if not settings.OCR_ENABLED:
        return False
    try:
        queue = ocr_queue()
        if queue.count >= 1:
            return False
        queue.enqueue(ocr_pending, job_timeout=settings.RQ_QUEUES[settings.RQ_QUEUE]["DEFAULT_TIMEOUT"])
        return True
    except Exception as exc:
        log.warning("could not enqueue OCR (images stay marked): %s", exc)
        return False
