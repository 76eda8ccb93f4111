"""The RQ worker class for `manage.py rqworker embeddings`.

rq's default Worker forks a child per job, so the CLIP model would load once per job.
This one runs jobs in its own process (SimpleWorker) and loads the model once, at start.
"""
import logging

from rq.worker import SimpleWorker

log = logging.getLogger(__name__)


class ModelWorker(SimpleWorker):
    def work(self, *args, **kwargs):
        from .clip_service import get_clip_service
        from .jobs import enqueue_ingest
        from .models import Image
        from .services import reclaim_abandoned

        get_clip_service().warmup()
        # Pick up what a killed worker left, and pending images whose job was lost with Redis.
        reclaim_abandoned(self.connection)
        if Image.objects.filter(status=Image.Status.PENDING).exists():
            enqueue_ingest()
        return super().work(*args, **kwargs)
