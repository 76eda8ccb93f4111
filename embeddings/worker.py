"""The RQ worker class for `manage.py rqworker embeddings`.

rq's default Worker forks a child per job, so the CLIP model would load once per job.
This one runs jobs in its own process (SimpleWorker) and loads the model once, at start.
"""
import logging

from django.db import close_old_connections
from rq.worker import SimpleWorker

from .ingest import reclaim_abandoned
from .jobs import enqueue_ingest
from .models import Image

log = logging.getLogger(__name__)


class ModelWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        # rq runs maintenance at most this often (seconds); ours adds the sweep below.
        kwargs.setdefault("maintenance_interval", 60)
        super().__init__(*args, **kwargs)

    def sweep(self):
        """Pick up what a killed worker left, and pending images whose job was lost with Redis."""
        reclaim_abandoned(self.connection)
        if Image.objects.filter(status=Image.Status.PENDING).exists():
            enqueue_ingest()

    def work(self, *args, **kwargs):
        # Imported here: the settings name this class, and importing them must not load torch.
        from .clip.service import get_clip_service

        get_clip_service().warmup()
        self.sweep()
        return super().work(*args, **kwargs)

    def execute_job(self, job, queue):
        # A long-lived process has no request cycle to drop dead database connections
        # (a restarted or failed-over server); do it around every job.
        close_old_connections()
        try:
            return super().execute_job(job, queue)
        finally:
            close_old_connections()

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        try:
            self.sweep()
        except Exception as exc:  # never let housekeeping kill the worker
            log.warning("sweep failed: %s", exc)
