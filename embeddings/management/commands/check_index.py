import sys

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand

from embeddings import services
from embeddings.index.vector_index import get_index
from embeddings.models import Embedding, Image
from embeddings.pipeline import ingest
from embeddings.queue import enqueue_ingest, redis_connection
from embeddings.search import selectors


class Command(BaseCommand):
    help = "Compare the database with the index and the media folder; exit 0 only when they agree."

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="rebuild the index and re-queue what is missing")

    def handle(self, fix, **options):
        index = get_index(settings.MODEL_KEY, selectors.model_info()["embedding_dim"])
        index.sync(force=True)
        embedded = Embedding.objects.filter(model_name=settings.MODEL_KEY).values_list("image_id", flat=True)
        in_db = np.asarray(sorted(embedded), dtype=np.int64)
        missing_in_index = np.setdiff1d(in_db, index.ids)
        orphaned = np.setdiff1d(index.ids, in_db)
        unembedded = Image.objects.filter(status=Image.Status.INDEXED).exclude(embeddings__model_name=settings.MODEL_KEY).count()
        media_ok = default_storage.exists("")  # the media root itself: a missing mount says False
        lost_files = [] if not media_ok else [
            i for i, name in Image.objects.values_list("id", "file") if not default_storage.exists(name)]
        facts = index.stats()
        self.stdout.write(f"model {settings.MODEL_KEY}: {len(in_db)} embeddings, index {index.kind} with {len(index.ids)} "
                          f"({'file mapped' if facts['mmap'] else 'no usable file'}, {facts['delta']} newer than the file"
                          f"{'; ' + facts['note'] if facts['note'] else ''})")
        redis = redis_connection()
        try:
            gone = [t for t, seconds in ingest.claim_leases(redis).items() if seconds == 0]
        except Exception as exc:  # Redis down: the index check still answers; leases can't be read
            self.stderr.write(f"cannot read workers' leases ({exc}); claims not checked")
            gone = []
        abandoned = Image.objects.filter(status=Image.Status.PROCESSING, claim_token__in=gone).count()
        self.stdout.write(f"missing from index: {len(missing_in_index)}; orphaned in index: {len(orphaned)}; "
                          f"indexed images without an embedding: {unembedded}; files missing: {len(lost_files)}; "
                          f"claimed by a worker that is gone: {abandoned}")
        if not media_ok:
            self.stderr.write("the media folder is missing: nothing will be deleted or re-queued (restore it first)")
            sys.exit(2)
        problems = len(missing_in_index) + len(orphaned) + unembedded + len(lost_files) + abandoned
        if problems and fix:
            reclaimed = ingest.reclaim_abandoned(redis)
            index.rebuild()  # a new file beside the one web processes serve; they swap it in
            n = services.enqueue_missing(settings.MODEL_KEY)
            if lost_files:
                Image.objects.filter(id__in=lost_files).update(status=Image.Status.FAILED,
                                                               failure_reason="the stored file is missing")
            enqueue_ingest()
            self.stdout.write(f"fixed: index rebuilt, {n + reclaimed} images re-queued, {len(lost_files)} marked failed")
            return
        if problems:
            sys.exit(1)
        self.stdout.write("index and database agree")
