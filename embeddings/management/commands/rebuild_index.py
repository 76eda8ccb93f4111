import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from embeddings.index import build
from embeddings.index.kinds import KINDS


class Command(BaseCommand):
    help = ("Build the index file of the current model afresh from the database (retraining) and publish it; "
            "running web processes keep answering from the old file and swap the new one in.")

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=KINDS, help="build this kind (default: CLIPSEARCH_INDEX_KIND, auto by size)")

    def handle(self, kind=None, **options):
        dim = build.dim_of(settings.MODEL_KEY)
        if dim is None:
            raise CommandError(f"no embeddings for {settings.MODEL_KEY} yet: nothing to build")
        started = time.perf_counter()
        meta = build.build(settings.MODEL_KEY, dim, kind=kind, retrain=True, blocking=True)
        self.stdout.write(f"rebuilt {meta['kind']} index: {meta['n']} vectors in {time.perf_counter() - started:.1f} s "
                          f"-> {build.root_for(settings.MODEL_KEY)}")
