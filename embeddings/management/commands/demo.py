import io

from django.core.management.base import BaseCommand

from demo.synth import gallery, neutral_filename
from embeddings import services


class Command(BaseCommand):
    help = "Draw the demo gallery (shapes of many colours) and load it. Safe to re-run."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=480)
        parser.add_argument("--seed", type=int, default=2024)

    def handle(self, count, seed, **options):
        def files():
            for i, (img, _meta) in enumerate(gallery(count, seed=seed)):
                buf = io.BytesIO()
                img.save(buf, "JPEG", quality=90)
                yield neutral_filename(i), buf.getvalue(), None

        report = services.add_images(files())
        added = len(report.added)
        self.stdout.write(f"demo gallery: {added} new images queued ({count - added} already there)")
