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
