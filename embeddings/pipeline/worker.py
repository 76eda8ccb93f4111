"""The RQ worker class for `manage.py rqworker embeddings`.

rq's default Worker forks a child per job, so the CLIP model would load once per job.
This one runs jobs in its own process (SimpleWorker) and loads the model once, at start.
It also watches the claims of other workers on a timer of its own: a killed worker's images go
back to the queue as soon as its lease lapses, not at rq's next maintenance (minutes later).
And it outlives a Redis restart: rq retries only its wait for the next job, and quits ("found an
unhandled exception") when the connection breaks anywhere else (a job's start or end, a heartbeat,
maintenance); here any of those waits for Redis to answer again and the loop goes on. A job whose
bookkeeping broke loses nothing: its images are pending or claimed under a lease that lapses, and
the sweep queues them again.
"""
import logging
import os
import threading
import time

import redis
from django.conf import settings
from django.db import close_old_connections
from rq.worker import SimpleWorker

from embeddings.index import build
from embeddings.library import libraries
from embeddings.models import Image
from embeddings.pipeline import ingest, ocr
from embeddings.queue import enqueue_ingest, enqueue_ocr

log = logging.getLogger(__name__)
# The worker's CPU priority: below the web processes (nice 0) that answer searches on the same
# machine, above its own OCR reader (which adds ocr.NICE on top, to 19). Encoding takes what searching
# leaves: at nice 10 a contended core goes ~90% to a search (kernel weights 1024 against 110).
NICE = 10
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class ModelWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        # rq runs maintenance at most this often (seconds); the sweeper below does not wait for it.
        kwargs.setdefault("maintenance_interval", 60)
        super().__init__(*args, **kwargs)
        self._stop_sweeping = threading.Event()
        # `rqworker embeddings` also reads the OCR queue, last: rq takes jobs in queue order, so
        # encoding always goes first and OCR only fills idle time.
        names = self.queue_names()
        if settings.RQ_QUEUE in names and settings.OCR_QUEUE not in names:
            self.queues.append(self.queue_class(settings.OCR_QUEUE, connection=self.connection, job_class=self.job_class,
                                                serializer=self.serializer))
            self._ordered_queues = self.queues[:]

    def sweep(self) -> int:
        """Put back what a killed worker left, and queue pending images whose job was lost."""
        reclaimed = ingest.reclaim_abandoned(self.connection)
        if Image.objects.filter(status=Image.Status.PENDING).exists():
            enqueue_ingest()
        if ocr.pending_exists():
            enqueue_ocr()
        return reclaimed

    def _safe_sweep(self) -> None:
        try:
            self.sweep()
        except Exception as exc:  # never let housekeeping kill the worker
            log.warning("sweep failed: %s", exc)
        finally:
            close_old_connections()

    def _sweeper(self) -> None:
        # Half a lease: a lapsed claim is found within 1.5 leases of its worker's death.
        while not self._stop_sweeping.wait(max(1.0, settings.CLAIM_LEASE_SECONDS / 2)):
            self._safe_sweep()

    def _library_scanner(self) -> None:
        # Periodic rescans run beside the jobs, not as one: encoding goes on while a library is
        # walked. Each library's Redis lock keeps two workers off the same one; `due` spaces them.
        minutes = settings.LIBRARY_SCAN_MINUTES
        while minutes and not self._stop_sweeping.wait(min(60.0, minutes * 60)):
            try:
                libraries.scan_due(minutes)
            except Exception as exc:  # never let housekeeping kill the worker
                log.warning("periodic library scan failed: %s", exc)
            finally:
                close_old_connections()

    def work(self, *args, burst=False, **kwargs):
        # Imported here: the settings name this class, and importing them must not load torch.
        from embeddings.clip.service import get_clip_service

        try:
            os.nice(NICE)  # raising one's own niceness needs no privilege
        except (AttributeError, OSError):
            pass
        get_clip_service().warmup()
        self._safe_sweep()
        sweeper = threading.Thread(target=self._sweeper, name="clipsearch-sweeper", daemon=True)
        sweeper.start()
        if not burst:
            threading.Thread(target=self._library_scanner, name="clipsearch-library-scanner", daemon=True).start()
            # The host's index file: built or folded here, beside the jobs (one builder per host, an flock).
            threading.Thread(target=build.maintain_forever, args=(self._stop_sweeping,),
                             name="clipsearch-index-builder", daemon=True).start()
        try:
            result = super().work(*args, burst=burst, **kwargs)
            if burst:
                self._wait_out_claims()
            return result
        finally:
            self._stop_sweeping.set()

    def _wait_out_claims(self) -> None:
        """A burst worker does not leave while another worker's claim may belong to a dead worker:
        it waits until that lease lapses, then encodes the images itself. A lease that is renewed
        while it waits belongs to a live worker, which finishes its own batch."""
        alive = set()
        while True:
            claims = {t: s for t, s in ingest.claim_leases(self.connection).items() if t not in alive}
            if not claims:
                return
            time.sleep(max(claims.values()) + 0.5)
            renewed = ingest.claim_leases(self.connection)
            alive |= {t for t in claims if renewed.get(t, 0) > 0}
            ingest.ingest_pending(redis=self.connection)  # reclaims the lapsed claims first
            close_old_connections()

    def wait_for_redis(self, during: str, exc: Exception) -> None:
        """Redis broke during `during`: wait (backing off to 5 s) until it answers, then go on."""
        log.warning("Redis went away during %s (%s); waiting for it to come back", during, exc)
        delay = 0.2
        while not self._stop_requested:
            try:
                self.connection.ping()
            except REDIS_DOWN:
                time.sleep(delay)
                delay = min(5.0, delay * 2)
                continue
            try:  # a restarted Redis lost the worker's registration: register again
                self.register_birth()
            except (ValueError, *REDIS_DOWN):
                pass  # still registered (a dropped connection, not a restart)
            log.warning("Redis answers again; going on")
            return

    def check_for_suspension(self, burst):
        try:
            super().check_for_suspension(burst)
        except REDIS_DOWN as exc:
            self.wait_for_redis("the suspension check", exc)

    def heartbeat(self, *args, **kwargs):
        try:
            super().heartbeat(*args, **kwargs)
        except REDIS_DOWN as exc:
            self.wait_for_redis("a heartbeat", exc)

    def execute_job(self, job, queue):
        # A long-lived process has no request cycle to drop dead database connections
        # (a restarted or failed-over server); do it around every job.
        close_old_connections()
        encoding = queue.name == settings.RQ_QUEUE
        if encoding:
            ocr.encoding.set()  # the OCR reader of this process waits while images are encoded
        try:
            return super().execute_job(job, queue)
        except REDIS_DOWN as exc:
            self.wait_for_redis(f"job {job.id} ({job.func_name})", exc)
        finally:
            if encoding:
                ocr.encoding.clear()
            close_old_connections()

    def request_stop(self, signum, frame):
        ocr.stopping.set()  # a running OCR job returns at once; its image stays pending for the next worker
        super().request_stop(signum, frame)

    def run_maintenance_tasks(self):
        try:
            super().run_maintenance_tasks()
        except REDIS_DOWN as exc:
            self.wait_for_redis("maintenance", exc)
        self._safe_sweep()
