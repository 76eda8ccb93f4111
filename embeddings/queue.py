"""The one home of the Redis connection and the RQ queues (jobs, leases, index generations and rate
counts all use this connection), and of enqueueing. Jobs are named by dotted path, not imported:
this module sits low (the writers call it) while the job bodies (embeddings.jobs) sit on top of
everything they run, and a job queued by an older release still resolves by the same name."""
import logging
import threading

import django_rq
from django.conf import settings
from rq import Retry

log = logging.getLogger(__name__)
# Enough waiting jobs for every worker to have one; more would only find nothing to do.
MAX_WAITING_JOBS = 4
INGEST_JOB = "embeddings.jobs.ingest_pending"
OCR_JOB = "embeddings.jobs.ocr_pending"
SCAN_JOB = "embeddings.jobs.scan_library"


_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def redis_connection():
    """This process's client of the app's Redis. Kept: django_rq makes a new client, and so opens a
    new TCP connection, on every call (2.5 ms of each search's index-generation read, measured).
    redis-py's pool is thread-safe and starts afresh in a forked child; a dropped connection is
    replaced on the next command."""
    url = settings.RQ_QUEUES[settings.RQ_QUEUE]["URL"]  # the key: a test or a restart may point elsewhere
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = django_rq.get_connection(settings.RQ_QUEUE)
        return client


def get_queue():
    return django_rq.get_queue(settings.RQ_QUEUE, connection=redis_connection())


def ocr_queue():  # the same Redis (settings.RQ_QUEUES): one client
    return django_rq.get_queue(settings.OCR_QUEUE, connection=redis_connection())


def _timeout() -> int:
    return settings.RQ_QUEUES[settings.RQ_QUEUE]["DEFAULT_TIMEOUT"]


def enqueue_ingest() -> bool:
    """Schedule ingestion of pending images. If Redis is down, the images stay pending and a
    worker picks them up at its next start (or `check_index --fix`)."""
    try:
        queue = get_queue()
        if queue.count >= MAX_WAITING_JOBS:
            return False
        queue.enqueue(INGEST_JOB, retry=Retry(max=3, interval=[5, 30, 120]), job_timeout=_timeout())
        return True
    except Exception as exc:
        log.warning("could not enqueue ingestion (images stay pending): %s", exc)
        return False


def enqueue_ocr() -> bool:
    """Schedule OCR of images marked for it (one waiting job is enough: it reads until none are
    left). Without Redis they stay marked; a worker's sweep queues them later."""
    if not settings.OCR_ENABLED:
        return False
    try:
        queue = ocr_queue()
        if queue.count >= 1:
            return False
        queue.enqueue(OCR_JOB, job_timeout=_timeout())
        return True
    except Exception as exc:
        log.warning("could not enqueue OCR (images stay marked): %s", exc)
        return False


def enqueue_scan(library_id: int) -> bool:
    """Ask a worker to scan a library (the API and the admin's "scan now")."""
    try:
        get_queue().enqueue(SCAN_JOB, library_id, job_timeout=6 * 3600)
        return True
    except Exception as exc:
        log.warning("could not enqueue a scan of library %s: %s", library_id, exc)
        return False
