import io

from django.core.management.base import BaseCommand

from embeddings import services
from embeddings.jobs import enqueue_ingest
from embeddings.synth import gallery


class Command(BaseCommand):
    help = "Draw the demo gallery (shapes of many colours) and load it. Safe to re-run."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=480)
        parser.add_argument("--seed", type=int, default=2024)

    def handle(self, count, seed, **options):
        added = 0
        for i, (img, meta) in enumerate(gallery(count, seed=seed)):
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=90)
            name = f"demo-{i:04d}-{meta['size']}-{meta['colour']}-{meta['shape']}.jpg"
            try:
                services.add_image(buf.getvalue(), name, enqueue=False)
                added += 1
            except services.DuplicateImage:
                pass
        enqueue_ingest()
        self.stdout.write(f"demo gallery: {added} new images queued ({count - added} already there)")
